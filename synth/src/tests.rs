//! The generator against its own ground truth, a minimal pcap reader and tshark.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use pcapfmt::{FILE_HEADER_LEN, MAGIC_MICROS, MAGIC_NANOS, RECORD_HEADER_LEN};

use super::*;
use crate::cast::{DEVICES, PLUG, mac_text};
use crate::clock::MAX_BURST;
use crate::payload::rfc3339;

/// Minimal pcap reader: (link type, nanos, [(ts_ns, data, wire_len)]).
pub(crate) type Record = (i64, Vec<u8>, u32);

pub(crate) fn parse(b: &[u8]) -> (u32, bool, Vec<Record>) {
    let u32at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let magic = u32at(0);
    let nanos = match magic {
        MAGIC_MICROS => false,
        MAGIC_NANOS => true,
        m => panic!("bad magic {m:08x}"),
    };
    assert_eq!(&b[4..8], &[2, 0, 4, 0]);
    let link = u32at(20);
    let mut out = Vec::new();
    let mut o = FILE_HEADER_LEN;
    while o < b.len() {
        assert!(
            o + RECORD_HEADER_LEN <= b.len(),
            "truncated record header at {o}"
        );
        let secs = i64::from(u32at(o));
        let frac = i64::from(u32at(o + 4));
        let cap = u32at(o + 8) as usize;
        let wire = u32at(o + 12);
        let ts = secs * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        o += RECORD_HEADER_LEN;
        out.push((ts, b[o..o + cap].to_vec(), wire));
        o += cap;
    }
    assert_eq!(o, b.len());
    (link, nanos, out)
}

fn small(packets: u64, nanos: bool) -> NightSpec {
    NightSpec {
        packets,
        nanos,
        ..NightSpec::demo()
    }
}

#[test]
fn round_trip() {
    for nanos in [false, true] {
        let spec = small(3_000, nanos);
        let truth = write_night(Vec::new(), &spec).unwrap();
        let mut buf = Vec::new();
        let truth2 = write_night(&mut buf, &spec).unwrap();
        assert_eq!(truth, truth2);
        let (link, n, recs) = parse(&buf);
        assert_eq!((link, n), (1, nanos));
        assert_eq!(recs.len() as u64, truth.frames);
        assert!(truth.frames >= 3_000 && truth.frames < 3_000 + MAX_BURST);
        let bytes: u64 = recs.iter().map(|r| u64::from(r.2)).sum();
        assert_eq!(bytes, truth.bytes);
        assert!(
            recs.iter()
                .all(|r| r.1.len() as u32 == r.2 && r.1.len() >= 42)
        );
        let (start, end) = (spec.start_ts_ns, spec.end_ts_ns());
        for w in recs.windows(2) {
            assert!(
                w[0].0 < w[1].0,
                "timestamps must increase: {} {}",
                w[0].0,
                w[1].0
            );
        }
        assert!(recs.iter().all(|r| r.0 >= start && r.0 < end));
        // The night is spread over the whole window, busier in the evening than at 3am.
        let hour = |h: i64| {
            recs.iter()
                .filter(|r| (r.0 - start) / 3_600_000_000_000 == h)
                .count()
        };
        assert!(hour(0) > 2 * hour(5), "{} vs {}", hour(0), hour(5));
        assert!(hour(7) > 0);
    }
}

#[test]
fn ground_truth_is_plausible() {
    let t = write_night(std::io::sink(), &NightSpec::demo()).unwrap();
    assert!(t.frames >= 20_000);
    let own: Vec<String> = t.own_addresses.iter().map(ToString::to_string).collect();
    assert_eq!(own[0], "192.168.1.10");
    assert!(own.contains(&"fd00::10".to_string()));
    // One IPv4 address per device; the tablet's under two MACs (it changes its MAC).
    let v4: std::collections::BTreeSet<IpAddr> = t
        .hosts
        .iter()
        .map(|h| h.0)
        .filter(IpAddr::is_ipv4)
        .collect();
    assert_eq!(v4.len(), DEVICES.len());
    assert_eq!(
        t.hosts.iter().filter(|h| h.0.is_ipv4()).count(),
        DEVICES.len() + 1
    );
    assert!(t.echo_requests_by_src[&"192.168.1.10".parse::<IpAddr>().unwrap()] > 50);
    assert!(t.echo_unanswered_by_src[&"192.168.1.10".parse::<IpAddr>().unwrap()] > 5);
    assert!(t.packets_by_src.contains_key("0.0.0.0"));
    assert!(t.packets_by_src.contains_key("::"));
    assert!(t.packets_by_src.contains_key(&mac_text(&DEVICES[PLUG].1)));
    assert!(t.vlan_frames > 0 && t.ipv4_fragments > 0 && t.tcp_sessions > 100);
    let sum: u64 = t.packets_by_src.values().sum();
    assert_eq!(sum, t.frames);
    for a in t.packets_by_src.keys() {
        if let Ok(ip) = a.parse::<IpAddr>() {
            let ok = match ip {
                IpAddr::V4(v) => {
                    v.is_private()
                        || v.is_unspecified()
                        || [[203, 0, 113], [198, 51, 100]].contains(&[
                            v.octets()[0],
                            v.octets()[1],
                            v.octets()[2],
                        ])
                }
                IpAddr::V6(v) => {
                    let s = v.segments();
                    v.is_unspecified()
                        || s[0] == 0xfd00
                        || s[0] == 0xfe80
                        || (s[0] == 0x2001 && s[1] == 0xdb8)
                }
            };
            assert!(ok, "address outside LAN/documentation ranges: {a}");
        }
    }
}

#[test]
fn dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_731_704_400), "2024-11-15T21:00:00Z");
    assert_eq!(rfc3339(951_782_400 + 86_399), "2000-02-29T23:59:59Z");
}

#[test]
fn deterministic() {
    let spec = small(5_000, false);
    let mut a = Vec::new();
    let mut b = Vec::new();
    write_night(&mut a, &spec).unwrap();
    write_night(&mut b, &spec).unwrap();
    assert!(a == b);
    let mut c = Vec::new();
    write_night(&mut c, &NightSpec { seed: 7, ..spec }).unwrap();
    assert!(a != c);
}

#[test]
fn rejects_unusable_specs() {
    let s = NightSpec::demo();
    assert!(
        write_night(
            Vec::new(),
            &NightSpec {
                duration_s: 0,
                ..s.clone()
            }
        )
        .is_err()
    );
    assert!(
        write_night(
            Vec::new(),
            &NightSpec {
                packets: 10_000_000_000,
                ..s.clone()
            }
        )
        .is_err()
    );
    assert!(
        write_night(
            Vec::new(),
            &NightSpec {
                start_ts_ns: -5,
                ..s
            }
        )
        .is_err()
    );
    let t = write_night(
        Vec::new(),
        &NightSpec {
            packets: 0,
            ..NightSpec::demo()
        },
    )
    .unwrap();
    assert_eq!(t.frames, 0);
}

pub(crate) fn tshark_available() -> bool {
    let ok = Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tshark is required in CI"
        );
        eprintln!("skipped: tshark not installed");
    }
    ok
}

pub(crate) fn tshark(file: &Path, args: &[&str]) -> String {
    let o = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(file)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tshark {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn counts(text: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for l in text.lines() {
        *m.entry(l.to_string()).or_default() += 1;
    }
    m
}

#[test]
fn ground_truth_matches_tshark() {
    if !tshark_available() {
        return;
    }
    let dir = std::env::temp_dir();
    let f = dir.join(format!(
        "netdigest-synth-{}-{:?}.pcap",
        std::process::id(),
        std::thread::current().id()
    ));
    let truth = write_night_file(&f, &NightSpec::demo()).unwrap();
    let got = counts(&tshark(
        &f,
        &[
            "-Y",
            "icmp.type==8 || icmpv6.type==128",
            "-T",
            "fields",
            "-e",
            "_ws.col.Source",
        ],
    ));
    let want: BTreeMap<String, u64> = truth
        .echo_requests_by_src
        .iter()
        .map(|(a, n)| (a.to_string(), *n))
        .collect();
    assert_eq!(got, want);
    let got = counts(&tshark(
        &f,
        &[
            "-Y",
            "icmp.type==0 || icmpv6.type==129",
            "-T",
            "fields",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
        ],
    ));
    let want: BTreeMap<String, u64> = truth
        .echo_replies_by_dst
        .iter()
        .map(|(a, n)| (a.to_string(), *n))
        .collect();
    let got: BTreeMap<String, u64> = got
        .into_iter()
        .map(|(k, v)| (k.trim().to_string(), v))
        .collect();
    assert_eq!(got, want);
    let got = counts(&tshark(&f, &["-T", "fields", "-e", "_ws.col.Source"]));
    assert_eq!(got, truth.packets_by_src);
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
            "ip.checksum.status==Bad || tcp.checksum.status==Bad || udp.checksum.status==Bad \
             || icmp.checksum.status==Bad || icmpv6.checksum.status==Bad",
        ],
    );
    assert!(bad.is_empty(), "bad checksums:\n{bad}");
    let n: u64 = tshark(&f, &["-Y", "vlan", "-T", "fields", "-e", "frame.number"])
        .lines()
        .count() as u64;
    assert_eq!(n, truth.vlan_frames);
    let n = tshark(
        &f,
        &[
            "-Y",
            "ip.flags.mf==1 || ip.frag_offset>0",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
    )
    .lines()
    .count() as u64;
    assert_eq!(n, truth.ipv4_fragments);
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
    std::fs::remove_file(&f).unwrap();
}

#[test]
fn kinds_follow_who_is_awake() {
    use crate::kind::{Kind, Moment};
    use crate::rng::Rng;
    let all = Kind::ALL;
    for (i, k) in all.iter().enumerate() {
        assert!(!all[i + 1..].contains(k), "{k:?} listed twice");
    }
    // 23:00: the TV is on, the plug has not joined; 03:00: the laptop sleeps, the TV is off.
    let evening = Moment::at(0.125);
    let night = Moment::at(0.625);
    assert!(Kind::TvStream.weight(evening) > 0.0);
    assert!(Kind::PlugTls.weight(evening) == 0.0);
    assert!(Kind::TvStream.weight(night) == 0.0 && Kind::Ssh.weight(night) == 0.0);
    assert!(Kind::Browse.weight(evening) > Kind::Browse.weight(night));
    let mut rng = Rng(1);
    for _ in 0..2_000 {
        let k = Kind::draw(&mut rng, night);
        assert!(k.weight(night) > 0.0, "{k:?} drawn with weight 0");
    }
}

/// `tshark -T fields` values of the frames in `frames`, split into tokens, by frame.
fn tshark_tokens(f: &Path, frames: &BTreeSet<u64>, fields: &[&str]) -> BTreeMap<u64, Vec<String>> {
    let list: Vec<String> = frames.iter().map(ToString::to_string).collect();
    let filter = format!("frame.number in {{{}}}", list.join(","));
    let mut args = vec![
        "-Y",
        &filter,
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
        "-e",
        "frame.number",
    ];
    for e in fields {
        args.extend(["-e", e]);
    }
    let text = tshark(f, &args);
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut cols = line.split('\t');
        let n: u64 = cols.next().unwrap().parse().unwrap();
        let toks = cols
            .flat_map(|c| c.split('|'))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        out.insert(n, toks);
    }
    out
}

/// The token tshark shows for a planted name of this kind.
fn shown_as(n: &PlantedName) -> String {
    let name = String::from_utf8(n.name.clone()).unwrap();
    match n.kind {
        NameKind::MdnsFriendlyName => format!("fn={name}"),
        NameKind::MdnsModel if name.contains(' ') => format!("ty={name}"),
        NameKind::MdnsModel => format!("md={name}"),
        NameKind::SsdpUsn => format!("USN: {name}\\r\\n"),
        _ => name,
    }
}

#[test]
fn planted_names_match_tshark() {
    if !tshark_available() {
        return;
    }
    let f = std::env::temp_dir().join(format!("netdigest-synth-names-{}.pcap", std::process::id()));
    let truth = write_night_file(&f, &NightSpec::demo()).unwrap();
    let bad = tshark(&f, &["-Y", "_ws.malformed || _ws.expert.severity >= error"]);
    assert!(bad.is_empty(), "malformed or erroneous packets:\n{bad}");
    let names: Vec<&PlantedName> = truth
        .names
        .iter()
        .filter(|n| n.kind != NameKind::DhcpClientId)
        .collect();
    let frames: BTreeSet<u64> = names.iter().map(|n| n.first_frame).collect();
    let got = tshark_tokens(
        &f,
        &frames,
        &[
            "dns.qry.name",
            "dns.resp.name",
            "dns.cname",
            "dns.txt",
            "dns.ptr.domain_name",
            "dns.a",
            "dns.aaaa",
            "nbns.addr",
            "nbns.name",
            "tls.handshake.extensions_server_name",
            "dhcp.option.hostname",
            "dhcp.option.vendor_class_id",
            "dhcp.option.requested_ip_address",
            "http.host",
            "http.server",
            "http.unknown_header",
            "ip.src",
            "ip.dst",
            "ipv6.src",
            "ipv6.dst",
        ],
    );
    for n in &names {
        let toks = got
            .get(&n.first_frame)
            .unwrap_or_else(|| panic!("frame {} not shown", n.first_frame));
        let want = shown_as(n);
        let ok = if n.kind == NameKind::Nbns {
            toks.iter().any(|t| t.starts_with(&format!("{want}<")))
        } else {
            toks.contains(&want)
        };
        assert!(
            ok,
            "{} {want:?} not in frame {}: {toks:?}",
            n.kind.as_str(),
            n.first_frame
        );
        if let Some(a) = n.addr {
            assert!(
                toks.contains(&a.to_string()),
                "{} {want}: address {a} not in frame {}: {toks:?}",
                n.kind.as_str(),
                n.first_frame
            );
        }
        if let Some(t) = &n.target {
            assert!(toks.contains(&String::from_utf8(t.clone()).unwrap()));
        }
    }
    // Every kind is there, the TLS server name spans two segments, QUIC's two Initials.
    let kinds: BTreeSet<NameKind> = truth.names.iter().map(|n| n.kind).collect();
    assert_eq!(kinds.len(), 15, "{kinds:?}");
    let sni = |kind: NameKind, name: &str| {
        truth
            .names
            .iter()
            .find(|n| n.kind == kind && n.name == name.as_bytes())
            .unwrap()
            .first_frame
    };
    let big = BTreeSet::from([sni(NameKind::TlsSni, "www.example-vendor.com")]);
    let segs = tshark_tokens(&f, &big, &["tcp.segment.count"]);
    assert_eq!(segs.values().next().unwrap(), &vec!["2".to_string()]);
    let quic = BTreeSet::from([sni(NameKind::QuicSni, "video.example-stream.net")]);
    let off = tshark_tokens(&f, &quic, &["quic.crypto.offset"]);
    assert_ne!(off.values().next().unwrap(), &vec!["0".to_string()]);
    std::fs::remove_file(&f).unwrap();
}

#[test]
fn names_ground_truth() {
    let t = write_night(std::io::sink(), &NightSpec::demo()).unwrap();
    // Two devices name one CDN address differently.
    let cdn: IpAddr = "198.51.100.7".parse().unwrap();
    let askers: BTreeSet<(Vec<u8>, [u8; 6])> = t
        .names
        .iter()
        .filter(|n| n.kind == NameKind::DnsAnswer && n.addr == Some(cdn))
        .map(|n| (n.name.clone(), n.mac))
        .collect();
    assert_eq!(askers.len(), 2, "{askers:?}");
    assert!(
        t.names
            .iter()
            .all(|n| !n.hostile && n.first_ts_ns > 0 && n.count > 0)
    );
    for w in t.names.windows(2) {
        assert!(w[0].first_frame <= w[1].first_frame);
    }
    // The tablet comes back with another randomised MAC, same client id and host name.
    assert_eq!(t.mac_changes.len(), 1);
    let c = &t.mac_changes[0];
    assert_ne!(c.old_mac, c.new_mac);
    assert!(c.old_mac[0] & 2 != 0 && c.new_mac[0] & 2 != 0);
    let ids: BTreeSet<[u8; 6]> = t
        .names
        .iter()
        .filter(|n| n.kind == NameKind::DhcpClientId && n.name == c.client_id)
        .map(|n| n.mac)
        .collect();
    assert_eq!(ids, BTreeSet::from([c.old_mac, c.new_mac]));
    let tablet = t
        .devices
        .iter()
        .find(|d| d.host_name == b"anna-tablet")
        .unwrap();
    assert_eq!(tablet.macs, vec![c.old_mac, c.new_mac]);
    assert!(tablet.private_mac);
    // Every device but the router has a DHCP host name in the night.
    assert_eq!(t.devices.len(), DEVICES.len() - 1);
    for d in &t.devices {
        assert!(
            t.names
                .iter()
                .any(|n| n.kind == NameKind::DhcpHostname && n.name == d.host_name),
            "{:?}",
            String::from_utf8_lossy(&d.host_name)
        );
    }
}

#[test]
fn hostile_names_are_planted() {
    let spec = NightSpec {
        hostile_names: true,
        ..NightSpec::demo()
    };
    let mut a = Vec::new();
    let t = write_night(&mut a, &spec).unwrap();
    let mut b = Vec::new();
    write_night(&mut b, &spec).unwrap();
    assert!(a == b, "deterministic");
    for h in hostile_names() {
        for kind in [
            NameKind::DhcpHostname,
            NameKind::TlsSni,
            NameKind::DnsAnswer,
            NameKind::MdnsService,
        ] {
            let mut inst = h.clone();
            if kind == NameKind::MdnsService {
                inst.extend_from_slice(b"._http._tcp.local");
            }
            assert!(
                t.names
                    .iter()
                    .any(|n| n.hostile && n.kind == kind && n.name == inst),
                "{} {:?}",
                kind.as_str(),
                String::from_utf8_lossy(&h[..h.len().min(40)])
            );
        }
        assert!(t.names.iter().any(|n| n.hostile
            && n.kind == NameKind::DnsAnswer
            && n.target.as_deref() == Some(&h[..])));
    }
    assert!(
        t.names
            .iter()
            .any(|n| n.kind == NameKind::QuicSni && n.hostile)
    );
    assert!(
        t.names
            .iter()
            .any(|n| n.kind == NameKind::HttpHost && n.hostile)
    );
    assert!(t.devices.iter().any(|d| d.hostile));
    // The normal night's names are all there too.
    let normal = write_night(std::io::sink(), &NightSpec::demo()).unwrap();
    let kinds =
        |t: &GroundTruth| -> BTreeSet<NameKind> { t.names.iter().map(|n| n.kind).collect() };
    assert_eq!(kinds(&t), kinds(&normal));
}
