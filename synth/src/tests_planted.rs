//! Planted activities against their ground truth, the pcap itself and tshark; ordinary
//! nights unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use sha2::{Digest, Sha256};

use super::*;
use crate::tests::{Record, parse, tshark, tshark_available};

const S: i64 = 1_000_000_000;

fn night(spec: &NightSpec) -> (GroundTruth, Vec<Record>) {
    let mut buf = Vec::new();
    let t = write_night(&mut buf, spec).unwrap();
    let (_, _, recs) = parse(&buf);
    assert_eq!(recs.len() as u64, t.frames);
    (t, recs)
}

fn with(acts: Vec<Activity>) -> NightSpec {
    NightSpec {
        activities: acts,
        ..NightSpec::demo()
    }
}

/// An IPv4 frame's (src, dst, protocol, src port, dst port, TCP flags, L4 payload length).
type V4 = ([u8; 4], [u8; 4], u8, u16, u16, u8, usize);

fn ipv4(d: &[u8]) -> Option<V4> {
    let (et, ip) = match u16::from_be_bytes([d[12], d[13]]) {
        0x8100 => (u16::from_be_bytes([d[16], d[17]]), &d[18..]),
        et => (et, &d[14..]),
    };
    if et != 0x0800 {
        return None;
    }
    let ihl = usize::from(ip[0] & 15) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let proto = ip[9];
    let src = ip[12..16].try_into().unwrap();
    let dst = ip[16..20].try_into().unwrap();
    let l4 = &ip[ihl..total];
    let (sp, dp) = (
        u16::from_be_bytes([l4[0], l4[1]]),
        u16::from_be_bytes([l4[2], l4[3]]),
    );
    match proto {
        6 => {
            let off = usize::from(l4[12] >> 4) * 4;
            Some((src, dst, proto, sp, dp, l4[13], l4.len() - off))
        }
        17 => Some((src, dst, proto, sp, dp, 0, l4.len() - 8)),
        // ICMP: the type where the TCP flags go.
        _ => Some((src, dst, proto, 0, 0, l4[0], 0)),
    }
}

fn v4(a: Option<IpAddr>) -> [u8; 4] {
    match a {
        Some(IpAddr::V4(a)) => a.octets(),
        other => panic!("not IPv4: {other:?}"),
    }
}

/// Times (ns) of the SYNs from `dev` to `remote`.
fn syns(recs: &[Record], dev: [u8; 4], remote: [u8; 4]) -> Vec<i64> {
    recs.iter()
        .filter_map(|r| {
            let (s, d, p, _, _, fl, _) = ipv4(&r.1)?;
            (s == dev && d == remote && p == 6 && fl & 0x12 == 0x02).then_some(r.0)
        })
        .collect()
}

fn intervals_s(ts: &[i64]) -> Vec<f64> {
    ts.windows(2)
        .map(|w| (w[1] - w[0]) as f64 / S as f64)
        .collect()
}

/// Coefficient of variation.
fn cv(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    var.sqrt() / mean
}

fn device_bytes(recs: &[Record], macs: &[[u8; 6]]) -> u64 {
    recs.iter()
        .filter(|r| {
            macs.iter()
                .any(|m| r.1[0..6] == m[..] || r.1[6..12] == m[..])
        })
        .map(|r| u64::from(r.2))
        .sum()
}

fn sha(spec: &NightSpec) -> String {
    let mut buf = Vec::new();
    write_night(&mut buf, spec).unwrap();
    Sha256::digest(&buf)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The ordinary nights are the bytes they were before activities existed (update these
/// digests only when the ordinary traffic changes on purpose).
#[test]
fn ordinary_nights_unchanged() {
    assert_eq!(
        sha(&NightSpec::demo()),
        "3e895795ed366607221cfd91bbe4050fb05e1bd7f274a3ea4abb68feb903ad8a"
    );
    let hostile = NightSpec {
        seed: 7,
        hostile_names: true,
        ..NightSpec::demo()
    };
    assert_eq!(
        sha(&hostile),
        "df7c6d2ea2c680410ccb8d60d275dcac2800867602fc3b39e86f3d8f6c0e87d0"
    );
    let t = write_night(std::io::sink(), &NightSpec::demo()).unwrap();
    assert!(t.planted.is_empty());
    assert_eq!((t.frames, t.bytes, t.names.len()), (20_007, 6_689_224, 121));
}

/// Planting adds frames and removes none: the ordinary night is a subsequence of the
/// planted one (same bytes, timestamps off by at most a few µs), and the rest is what the
/// ground truth says was planted.
#[test]
fn planting_leaves_ordinary_frames_alone() {
    let acts: Vec<Activity> = every_activity(3_000_000)
        .into_iter()
        .filter(|a| !matches!(a, Activity::NoPingReplies(_)))
        .collect();
    let (t0, plain) = night(&NightSpec::demo());
    let (t1, planted) = night(&with(acts));
    let mut j = 0;
    for r in &planted {
        if j < plain.len() && r.1 == plain[j].1 {
            assert!((r.0 - plain[j].0).abs() < 100_000, "frame moved: {j}");
            j += 1;
        }
    }
    assert_eq!(j, plain.len(), "ordinary frame {j} missing");
    let frames: u64 = t1.planted.iter().map(|p| p.frames).sum();
    let bytes: u64 = t1.planted.iter().map(|p| p.bytes).sum();
    assert_eq!(t1.frames, t0.frames + frames);
    assert_eq!(t1.bytes, t0.bytes + bytes);
    let tcp: u64 = t1
        .planted
        .iter()
        .filter(|p| matches!(p.transport, Some(Transport::Tls | Transport::Tcp(_))))
        .map(|p| p.contacts.len() as u64)
        .sum();
    assert_eq!(t1.tcp_sessions, t0.tcp_sessions + tcp);
    // Timestamps still increase strictly and stay in the window; names stay in order.
    let spec = NightSpec::demo();
    for w in planted.windows(2) {
        assert!(w[0].0 < w[1].0);
    }
    assert!(
        planted
            .iter()
            .all(|r| r.0 >= spec.start_ts_ns && r.0 < spec.end_ts_ns())
    );
    for w in t1.names.windows(2) {
        assert!(w[0].first_frame <= w[1].first_frame);
    }
    for n in &t1.names {
        let r = &planted[(n.first_frame - 1) as usize];
        assert_eq!(r.0 / 1000, n.first_ts_ns / 1000, "{:?}", n.name);
    }
    // Deterministic, and another seed plants differently.
    let (t2, again) = night(&with(every_activity(3_000_000)));
    let (_, again2) = night(&with(every_activity(3_000_000)));
    assert!(again == again2);
    let other = NightSpec {
        seed: 11,
        ..with(every_activity(3_000_000))
    };
    let (t3, _) = night(&other);
    assert_ne!(
        t2.planted[0].contacts[0].start_ts_ns,
        t3.planted[0].contacts[0].start_ts_ns
    );
}

#[test]
fn beacon_is_periodic() {
    let b = Beacon {
        jitter_permille: 20,
        ..Beacon::new(Device::Tablet, "cdn-sync.example-beacon.net", 300)
    };
    let (t, recs) = night(&with(vec![Activity::Beacon(b.clone())]));
    let p = &t.planted[0];
    assert_eq!(p.activity.kind(), "beacon");
    assert_eq!(p.host_name, "anna-tablet");
    assert_eq!(p.addr, IpAddr::V4(Device::Tablet.ipv4()));
    assert_eq!(
        p.remote_name.as_deref(),
        Some("cdn-sync.example-beacon.net")
    );
    assert_eq!(p.remote_addr, Some(IpAddr::V4(b.remote)));
    assert_eq!(p.remote_port, Some(443));
    // Through the whole window: one contact per period.
    let n = p.contacts.len();
    assert!((94..=96).contains(&n), "{n} contacts");
    let syn = syns(&recs, Device::Tablet.ipv4().octets(), b.remote.octets());
    let truth: Vec<i64> = p.contacts.iter().map(|c| c.start_ts_ns / 1000).collect();
    assert_eq!(syn.iter().map(|t| t / 1000).collect::<Vec<_>>(), truth);
    let iv = intervals_s(&syn);
    for i in &iv {
        assert!((293.9..=306.1).contains(i), "interval {i}");
    }
    assert!(cv(&iv) < 0.02, "cv {}", cv(&iv));
    let mean = iv.iter().sum::<f64>() / iv.len() as f64;
    assert!((mean - 300.0).abs() < 3.0, "mean {mean}");
    // Each contact: handshake, hello, request, response, FIN both ways; sizes steady.
    for c in &p.contacts {
        assert_eq!(c.exchanges, 1);
        assert!((12..=16).contains(&c.frames), "{c:?}");
        assert!(c.end_ts_ns - c.start_ts_ns < S);
    }
    let ups: Vec<f64> = p.contacts.iter().map(|c| c.up_bytes as f64).collect();
    assert!(cv(&ups) < 0.01);
    // The app data sent after the (same size) hello is 180 B ± 2 %.
    let lo = p.contacts.iter().map(|c| c.up_bytes).min().unwrap();
    let hi = p.contacts.iter().map(|c| c.up_bytes).max().unwrap();
    assert!(hi - lo <= 6, "{lo}..{hi}");
    // Looked up before the first contact and again after each TTL (300 s).
    assert!(p.dns_queries >= 45, "{}", p.dns_queries);
    // The server name is in every contact (under two MACs: the tablet changes its MAC at
    // about 02:25).
    let sni: Vec<&PlantedName> = t
        .names
        .iter()
        .filter(|n| n.kind == NameKind::TlsSni && n.name == b"cdn-sync.example-beacon.net")
        .collect();
    assert_eq!(sni.iter().map(|s| s.count).sum::<u64>(), n as u64);
    assert_eq!(sni[0].mac, Device::Tablet.mac());
    assert_eq!(p.mac, Device::Tablet.mac());
    assert_eq!(sni.len(), 2);
    // The first contact comes within the first period.
    let start = NightSpec::demo().start_ts_ns;
    assert!(p.contacts[0].start_ts_ns - start < 301 * S);
}

#[test]
fn udp_beacon() {
    let b = Beacon {
        transport: Transport::Udp(40_123),
        ..Beacon::new(Device::Thermostat, "telemetry.example-beacon.net", 600)
    };
    let (t, recs) = night(&with(vec![Activity::Beacon(b.clone())]));
    let p = &t.planted[0];
    let req: Vec<i64> = recs
        .iter()
        .filter(|r| {
            ipv4(&r.1).is_some_and(|(s, d, pr, _, dp, ..)| {
                s == Device::Thermostat.ipv4().octets()
                    && d == b.remote.octets()
                    && pr == 17
                    && dp == 40_123
            })
        })
        .map(|r| r.0)
        .collect();
    assert_eq!(req.len(), p.contacts.len());
    assert!((46..=48).contains(&req.len()), "{}", req.len());
    assert!(cv(&intervals_s(&req)) < 0.02);
    for c in &p.contacts {
        assert_eq!(c.frames, 2);
        assert!((176..=184).contains(&c.up_bytes));
    }
}

#[test]
fn irregular_control_is_not_periodic() {
    let b = Beacon::new(Device::Tablet, "cdn-sync.example-beacon.net", 300);
    let (t, recs) = night(&with(vec![Activity::Irregular(b.clone())]));
    let p = &t.planted[0];
    let syn = syns(&recs, Device::Tablet.ipv4().octets(), b.remote.octets());
    assert_eq!(syn.len(), p.contacts.len());
    let iv = intervals_s(&syn);
    let mean = iv.iter().sum::<f64>() / iv.len() as f64;
    assert!((210.0..390.0).contains(&mean), "mean interval {mean}");
    assert!(cv(&iv) > 0.6, "cv {}", cv(&iv));
    let ups: Vec<f64> = p.contacts.iter().map(|c| c.up_bytes as f64).collect();
    assert!(cv(&ups) > 0.05, "sizes vary: cv {}", cv(&ups));
}

#[test]
fn awake_at_ten_past_three() {
    let w = Awake::new(
        Device::Printer,
        "upload.example-print.net",
        since_22h(3, 10),
        4_000_000,
    );
    let (t, recs) = night(&with(vec![Activity::Awake(w.clone())]));
    let p = &t.planted[0];
    assert_eq!(p.contacts.len(), 1);
    let c = &p.contacts[0];
    let start = NightSpec::demo().start_ts_ns + i64::from(since_22h(3, 10)) * S;
    assert!(c.start_ts_ns >= start && c.start_ts_ns < start + S, "{c:?}");
    assert!(c.up_bytes >= 4_000_000 && c.up_bytes < 4_010_000);
    // 2 MB/s: about two seconds.
    let secs = (c.end_ts_ns - c.start_ts_ns) as f64 / S as f64;
    assert!((1.8..2.6).contains(&secs), "{secs} s");
    // The printer's bytes between 03:00 and 04:00 are almost all of it.
    let hour: u64 = recs
        .iter()
        .filter(|r| r.0 >= start - 600 * S && r.0 < start + 3000 * S)
        .filter(|r| r.1[6..12] == Device::Printer.mac() || r.1[0..6] == Device::Printer.mac())
        .map(|r| u64::from(r.2))
        .sum();
    assert!(hour > 4_000_000, "{hour}");
    assert_eq!(p.remote_addr, Some(IpAddr::V4(w.remote)));
}

#[test]
fn new_destination_is_new() {
    let n = NewDestination::new(Device::Tv, "new.example-destination.org", since_22h(22, 50));
    let (plain, _) = night(&NightSpec::demo());
    let (t, _) = night(&with(vec![Activity::NewDestination(n.clone())]));
    let seen = |t: &GroundTruth| -> BTreeSet<Vec<u8>> {
        t.names
            .iter()
            .filter(|x| x.mac == Device::Tv.mac() && x.kind == NameKind::DnsAnswer)
            .map(|x| x.name.clone())
            .collect()
    };
    let before = seen(&plain);
    let after = seen(&t);
    let new: Vec<_> = after.difference(&before).collect();
    assert_eq!(new, vec![&b"new.example-destination.org".to_vec()]);
    let p = &t.planted[0];
    assert_eq!(p.contacts.len(), 1);
    assert!(p.contacts[0].down_bytes >= 40_000);
    assert_eq!(
        p.remote_name.as_deref(),
        Some("new.example-destination.org")
    );
}

#[test]
fn volume_spike_multiplies() {
    let v = VolumeSpike::new(Device::Laptop, 1000);
    let (_, plain) = night(&NightSpec::demo());
    let (t, recs) = night(&with(vec![Activity::VolumeSpike(v)]));
    let p = &t.planted[0];
    let macs = [Device::Laptop.mac()];
    let normal = device_bytes(&plain, &macs);
    assert_eq!(p.normal_bytes, Some(normal));
    let now = device_bytes(&recs, &macs);
    assert_eq!(now, normal + p.bytes);
    let ratio = now as f64 / normal as f64;
    assert!((9.5..10.5).contains(&ratio), "ratio {ratio}");
    assert_eq!(p.remote_name.as_deref(), Some(usual_name(Device::Laptop)));
    // Spread over the half hour from 22:30.
    let start = NightSpec::demo().start_ts_ns + 1_800 * S;
    for c in &p.contacts {
        assert!(c.start_ts_ns >= start && c.end_ts_ns < start + 1_800 * S);
    }
}

#[test]
fn long_connection_lasts() {
    let l = LongConnection::new(Device::Thermostat, "stream.example-long.net", 3_600);
    let (t, recs) = night(&with(vec![Activity::LongConnection(l.clone())]));
    let p = &t.planted[0];
    assert_eq!(p.contacts.len(), 1);
    let c = &p.contacts[0];
    let secs = (c.end_ts_ns - c.start_ts_ns) / S;
    assert!((5_400..5_402).contains(&secs), "{secs}");
    assert_eq!(c.exchanges, 5_399 / 300, "one every 5 minutes");
    let syn = syns(&recs, Device::Thermostat.ipv4().octets(), l.remote.octets());
    assert_eq!(syn.len(), 1);
    // Data every five minutes on the one connection.
    let data: Vec<i64> = recs
        .iter()
        .filter(|r| {
            ipv4(&r.1).is_some_and(|(s, d, pr, sp, _, _, len)| {
                s == Device::Thermostat.ipv4().octets()
                    && d == l.remote.octets()
                    && pr == 6
                    && sp == c.client_port
                    && len > 0
            })
        })
        .map(|r| r.0)
        .collect();
    let iv = intervals_s(&data[1..]);
    assert!(iv.iter().all(|i| (290.0..310.0).contains(i)), "{iv:?}");
}

#[test]
fn dns_tunnel_burst() {
    let d = DnsTunnel::new(Device::BenPhone, "t.example-tunnel.net", since_22h(0, 30));
    let (t, recs) = night(&with(vec![Activity::DnsTunnel(d.clone())]));
    let p = &t.planted[0];
    assert_eq!(p.contacts.len(), 400);
    assert_eq!(p.dns_queries, 400);
    let unique: BTreeSet<&String> = p.queried_names.iter().collect();
    assert_eq!(unique.len(), 400);
    assert!(
        p.queried_names
            .iter()
            .all(|n| n.ends_with(".t.example-tunnel.net") && n.len() > 40)
    );
    let nx = p.dns_nxdomain as f64 / 400.0;
    assert!((0.6..0.8).contains(&nx), "{nx}");
    let start = NightSpec::demo().start_ts_ns + i64::from(since_22h(0, 30)) * S;
    assert!(p.first_ts_ns >= start && p.last_ts_ns < start + 150 * S);
    // In the pcap: 400 queries from the phone to the router's port 53 in that burst.
    let q = recs
        .iter()
        .filter(|r| r.0 >= start && r.0 < start + 150 * S)
        .filter(|r| {
            ipv4(&r.1).is_some_and(|(s, _, pr, _, dp, ..)| {
                s == Device::BenPhone.ipv4().octets() && pr == 17 && dp == 53
            })
        })
        .count();
    assert!(q >= 400);
}

#[test]
fn printer_stops_answering_pings() {
    let printer = Device::Printer.ipv4().octets();
    let replies = |recs: &[Record]| {
        recs.iter()
            .filter(|r| {
                ipv4(&r.1).is_some_and(|(s, _, pr, _, _, ty, _)| s == printer && pr == 1 && ty == 0)
            })
            .count() as u64
    };
    let (t0, plain) = night(&NightSpec::demo());
    let (t, recs) = night(&with(vec![Activity::NoPingReplies(Device::Printer)]));
    let before = replies(&plain);
    assert!(before > 0);
    assert_eq!(replies(&recs), 0);
    assert_eq!(t.planted[0].unanswered_pings, before);
    assert_eq!(t.frames, t0.frames - before);
    // Everything else is as it was, at the same time.
    let mut j = 0;
    for r in &plain {
        if j < recs.len() && r.1 == recs[j].1 {
            assert_eq!(r.0, recs[j].0);
            j += 1;
        }
    }
    assert_eq!(j, recs.len());
    let unanswered = |t: &GroundTruth| t.echo_unanswered_by_src.values().sum::<u64>();
    assert_eq!(unanswered(&t), unanswered(&t0) + before);
}

#[test]
fn rejects_activities_outside_the_window() {
    let late = Awake::new(Device::Printer, "x.example.net", 8 * 3600 - 2, 1_000_000);
    assert!(write_night(std::io::sink(), &with(vec![Activity::Awake(late)])).is_err());
    let zero = Beacon::new(Device::Tablet, "x.example.net", 0);
    assert!(write_night(std::io::sink(), &with(vec![Activity::Beacon(zero)])).is_err());
}

#[test]
fn sequence_of_nights() {
    let beacon = Activity::Beacon(Beacon::new(
        Device::Tablet,
        "cdn-sync.example-beacon.net",
        300,
    ));
    let habit = Activity::Beacon(Beacon::new(Device::Thermostat, "ntp-ish.example.com", 600));
    let base = NightSpec::demo();
    let specs = night_sequence(
        &base,
        7,
        &[(Nights::Only(5), beacon.clone()), (Nights::Every, habit)],
    );
    assert_eq!(specs.len(), 7);
    assert_eq!(specs[0].seed, base.seed);
    let seeds: BTreeSet<u64> = specs.iter().map(|s| s.seed).collect();
    assert_eq!(seeds.len(), 7);
    let mut names: Vec<BTreeSet<(Vec<u8>, [u8; 6])>> = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        assert_eq!(s.start_ts_ns - base.start_ts_ns, i as i64 * 86_400 * S);
        assert_eq!(s.activities.len(), if i == 5 { 2 } else { 1 });
        let t = write_night(std::io::sink(), s).unwrap();
        assert_eq!(t.planted.len(), s.activities.len());
        let hosts: BTreeSet<&[u8]> = t.devices.iter().map(|d| &d.host_name[..]).collect();
        assert_eq!(hosts.len(), 9, "the same devices every night");
        names.push(
            t.names
                .iter()
                .filter(|n| n.kind == NameKind::DnsAnswer)
                .map(|n| (n.name.clone(), n.mac))
                .collect(),
        );
    }
    // The usual (device, name) pairs recur: most of night 0's are there on every night.
    for n in &names[1..] {
        let common = names[0].intersection(n).count();
        assert!(
            common * 10 >= names[0].len() * 8,
            "{common} of {}",
            names[0].len()
        );
    }
    let beacon_name = (
        b"cdn-sync.example-beacon.net".to_vec(),
        Device::Tablet.mac(),
    );
    for (i, n) in names.iter().enumerate() {
        assert_eq!(n.contains(&beacon_name), i == 5);
    }
}

#[test]
fn planted_night_passes_tshark() {
    if !tshark_available() {
        return;
    }
    let f = std::env::temp_dir().join(format!(
        "netdigest-synth-planted-{}.pcap",
        std::process::id()
    ));
    let truth = write_night_file(&f, &with(every_activity(2_000_000))).unwrap();
    let bad = tshark(&f, &["-Y", "_ws.malformed || _ws.expert.severity >= error"]);
    assert!(bad.is_empty(), "malformed or erroneous packets:\n{bad}");
    let bad = tshark(
        &f,
        &[
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            "ip.checksum.status==Bad || tcp.checksum.status==Bad || udp.checksum.status==Bad",
        ],
    );
    assert!(bad.is_empty(), "bad checksums:\n{bad}");
    let n = tshark(
        &f,
        &[
            "-Y",
            "tcp.flags.syn==1 && tcp.flags.ack==0",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    )
    .lines()
    .count() as u64;
    assert_eq!(n, truth.tcp_sessions);
    // conv,tcp: one conversation per beacon contact, starting when the ground truth says.
    let p = &truth.planted[0];
    let remote = Ipv4Addr::from(v4(p.remote_addr)).to_string();
    let conv = tshark(&f, &["-q", "-z", "conv,tcp"]);
    let first = tshark(&f, &["-c", "1", "-T", "fields", "-e", "frame.time_epoch"]);
    let first: f64 = first.trim().parse().unwrap();
    let mut starts: Vec<f64> = conv
        .lines()
        .filter(|l| l.contains(&format!("{remote}:443")))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols[cols.len() - 2].parse::<f64>().unwrap()
        })
        .collect();
    starts.sort_by(f64::total_cmp);
    assert_eq!(starts.len(), p.contacts.len());
    for (s, c) in starts.iter().zip(&p.contacts) {
        let want = c.start_ts_ns as f64 / 1e9 - first;
        assert!((s - want).abs() < 1e-3, "{s} vs {want}");
    }
    let iv: Vec<f64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(iv.iter().all(|i| (293.9..306.1).contains(i)));
    // The tunnel's NXDOMAIN answers.
    let nx = tshark(
        &f,
        &[
            "-Y",
            "dns.flags.rcode==3",
            "-T",
            "fields",
            "-e",
            "dns.qry.name",
        ],
    );
    let tunnel = truth
        .planted
        .iter()
        .find(|p| p.activity.kind() == "dns-tunnel")
        .unwrap();
    assert_eq!(
        nx.lines()
            .filter(|l| l.ends_with(".t.example-tunnel.net"))
            .count() as u64,
        tunnel.dns_nxdomain
    );
    std::fs::remove_file(&f).unwrap();
}
