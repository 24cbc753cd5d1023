//! `netdigest run` / `demo` end to end: the summary's numbers against the generator's
//! ground truth, the rendered images, the email and the `.eml` checked with a real MIME
//! parser (Python's `email` package), odd nights, and devices across three nights.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{run, stderr, tmpdir, write_pcap};
use netdigest::analyse::Summary;
use synth::NightSpec;

fn summary(night: &Path) -> Summary {
    serde_json::from_str(&std::fs::read_to_string(night.join("summary.json")).unwrap()).unwrap()
}

fn run_night(pcap: &Path, out: &Path, extra_env: &[(&str, &str)]) -> std::process::Output {
    let mut c = common::bin();
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.args([
        "run",
        "--pcap",
        pcap.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ])
    .output()
    .unwrap()
}

#[test]
fn pings_per_source_are_exact_and_own_address_is_absent() {
    let dir = tmpdir("pings");
    let pcap = dir.join("n.pcap");
    let truth = synth::write_night_file(
        &pcap,
        &NightSpec {
            packets: 8_000,
            ..NightSpec::demo()
        },
    )
    .unwrap();
    let own = truth
        .own_addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let out = dir.join("night");
    let o = run_night(
        &pcap,
        &out,
        &[(
            "NETDIGEST_REPORT__OWN_ADDRESSES",
            &format!(
                "[{}]",
                own.split(',')
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        )],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = summary(&out);
    let got: BTreeMap<String, u64> = s
        .pings
        .iter()
        .map(|p| (p.src.clone(), p.requests))
        .collect();
    let want: BTreeMap<String, u64> = truth
        .echo_requests_by_src
        .iter()
        .filter(|(a, _)| !truth.own_addresses.contains(a))
        .map(|(a, n)| (a.to_string(), *n))
        .collect();
    assert_eq!(got, want);
    for a in &truth.own_addresses {
        assert!(
            truth.echo_requests_by_src.contains_key(a),
            "the generator pings from the appliance too"
        );
        assert!(
            !got.contains_key(&a.to_string()),
            "own address {a} must not be in the chart"
        );
    }
    // Sorted, most first.
    assert!(s.pings.windows(2).all(|w| w[0].requests >= w[1].requests));
    assert_eq!(s.totals.packets, truth.frames);
    assert_eq!(s.totals.bytes, truth.bytes);
}

#[test]
fn report_images_email_and_eml() {
    let dir = tmpdir("report");
    let pcap = dir.join("n.pcap");
    synth::write_night_file(
        &pcap,
        &NightSpec {
            packets: 6_000,
            ..NightSpec::demo()
        },
    )
    .unwrap();
    let out = dir.join("night");
    let o = run_night(&pcap, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rep = out.join("report");
    let charts: Vec<PathBuf> = std::fs::read_dir(rep.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(charts.len() >= 4, "{charts:?}");
    for c in &charts {
        let img = image::open(c).unwrap().to_luma8();
        assert_eq!((img.width(), img.height()), (600, 320), "{}", c.display());
        let px: Vec<f64> = img.pixels().map(|p| f64::from(p.0[0])).collect();
        let mean = px.iter().sum::<f64>() / px.len() as f64;
        let var = px.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / px.len() as f64;
        assert!(var > 50.0, "{} looks blank (variance {var})", c.display());
    }
    // The interactive page is self-contained: ECharts inline, a policy that forbids
    // any request, and no address of any other host anywhere outside the script (whose
    // licence header names apache.org and which holds XML namespace strings).
    let index = std::fs::read_to_string(rep.join("index.html")).unwrap();
    let echarts = netdigest::chart::echarts_js();
    assert!(
        index.contains(&format!("<script>{echarts}</script>")),
        "ECharts is not inline"
    );
    let rest = index.replace(echarts, "");
    for remote in [
        "http://", "https://", "//cdn", "src=", "href=", "@import", "url(",
    ] {
        assert!(
            !rest.contains(remote),
            "{remote} in index.html outside ECharts"
        );
    }
    assert!(rest.contains("Content-Security-Policy") && rest.contains("default-src 'none'"));
    assert!(rest.contains("echarts.init("), "the charts are drawn");
    let html = std::fs::read_to_string(rep.join("email.html")).unwrap();
    assert!(!html.contains("<script"), "no scripts in email");
    assert!(!html.contains("<style"), "inline CSS only");
    let cids: Vec<&str> = html
        .split("src=\"cid:")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert!(cids.len() >= 4, "{cids:?}");
    // Parse the .eml with Python's email package and check every cid resolves to an image part.
    let script = r#"
import sys, email, json, io
from email import policy
msg = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=policy.default)
parts = {}
out = {"content_type": msg.get_content_type(), "text": None, "html": None, "cids": {}, "attachments": []}
for p in msg.walk():
    ct = p.get_content_type()
    cid = p.get("Content-ID")
    if ct == "text/plain" and out["text"] is None: out["text"] = p.get_content()
    elif ct == "text/html" and p.get_filename() is None and out["html"] is None: out["html"] = p.get_content()
    if cid: out["cids"][cid.strip("<>")] = [ct, len(p.get_payload(decode=True))]
    if p.get_filename() and not cid: out["attachments"].append([p.get_filename(), ct])
print(json.dumps(out))
"#;
    let py = std::process::Command::new("python3")
        .args(["-c", script, rep.join("report.eml").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(parsed["content_type"], "multipart/mixed");
    let text = parsed["text"].as_str().unwrap();
    assert!(text.contains("Pings per source"), "{text}");
    assert_eq!(parsed["html"].as_str().unwrap().trim(), html.trim());
    for cid in &cids {
        let part = &parsed["cids"][cid];
        assert_eq!(
            part[0], "image/jpeg",
            "cid {cid} resolves to an image part: {parsed}"
        );
        assert!(part[1].as_u64().unwrap() > 1000);
    }
    assert_eq!(parsed["attachments"][0][0], "index.html");
    // The plain text has the same numbers as the HTML tables.
    let s = summary(&out);
    let top = &s.pings[0];
    // Addresses in the HTML may carry line-break opportunities (<wbr>) after `.`/`:`.
    assert!(text.contains(&top.src) && html.replace("<wbr>", "").contains(&top.src));
    assert!(text.contains(&netdigest::report::thousands(top.requests)));
}

#[test]
fn odd_nights_get_a_sensible_report() {
    let dir = tmpdir("odd");
    // Empty night: a valid capture with no packets.
    let empty = dir.join("empty.pcap");
    write_pcap(&empty, &[]);
    // Only non-IP traffic: LLDP-like frames of an unknown ethertype.
    let nonip = dir.join("nonip.pcap");
    let lldp: Vec<u8> = [[0x01, 0x80, 0xc2, 0, 0, 0x0e], [2, 0, 0, 0, 0, 1]]
        .concat()
        .into_iter()
        .chain([0x88, 0xcc])
        .chain([0u8; 46])
        .collect();
    write_pcap(
        &nonip,
        &[
            (1_700_000_000_000_000_000, lldp.clone()),
            (1_700_000_001_000_000_000, lldp),
        ],
    );
    // One host pinging nobody.
    let one = dir.join("one.pcap");
    let mut b = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([192, 168, 1, 5], [192, 168, 1, 99], 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut b, &[0u8; 8])
        .unwrap();
    write_pcap(&one, &[(1_700_000_000_000_000_000, b)]);
    for (pcap, what) in [(&empty, "empty"), (&nonip, "non-IP"), (&one, "one host")] {
        let out = dir.join(format!("{what}-night"));
        let o = run_night(pcap, &out, &[]);
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        let html = std::fs::read_to_string(out.join("report/email.html")).unwrap();
        assert!(out.join("report/report.eml").exists(), "{what}");
        let s = summary(&out);
        match what {
            "empty" => {
                assert_eq!(s.totals.packets, 0);
                assert!(
                    html.contains("No echo requests (pings) tonight.")
                        && html.contains("No packets tonight.")
                );
            }
            "non-IP" => {
                assert_eq!((s.totals.packets, s.totals.hosts), (2, 0));
                assert!(html.contains("No IP traffic tonight."));
            }
            _ => {
                assert_eq!(s.pings.len(), 1);
                assert_eq!((s.pings[0].requests, s.pings[0].unanswered), (1, 1));
            }
        }
    }
}

#[test]
fn demo_writes_the_whole_report() {
    let dir = tmpdir("demo");
    let out = dir.join("demo");
    let o = run(&["demo", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "sample-night.pcap",
        "packets.parquet",
        "packets.csv",
        "summary.json",
        "report/email.html",
        "report/index.html",
        "report/report.eml",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let s = summary(&out);
    assert!(s.totals.packets > 10_000 && !s.pings.is_empty());
}

#[test]
fn summary_json_snapshot() {
    let dir = tmpdir("snapshot");
    let pcap = dir.join("n.pcap");
    synth::write_night_file(
        &pcap,
        &NightSpec {
            packets: 3_000,
            ..NightSpec::demo()
        },
    )
    .unwrap();
    let out = dir.join("night");
    let o = run_night(
        &pcap,
        &out,
        &[
            ("NETDIGEST_CAPTURE__TIMEZONE", "Europe/Berlin"),
            ("NETDIGEST_REPORT__TOP_N", "5"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let json = std::fs::read_to_string(out.join("summary.json")).unwrap();
    insta::assert_snapshot!("summary_3000_packets", json);
}

#[test]
fn own_addresses_come_from_capture_json() {
    // A night "captured" on lo: its pings from 127.0.0.1 are the appliance's own.
    let dir = tmpdir("own");
    let night = dir.join("night");
    std::fs::create_dir_all(&night).unwrap();
    let mut frames = Vec::new();
    for (i, src) in [[127, 0, 0, 1], [127, 0, 0, 1], [192, 168, 1, 7]]
        .iter()
        .enumerate()
    {
        let mut b = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(*src, [192, 168, 1, 99], 64)
            .icmpv4_echo_request(7, u16::try_from(i).unwrap())
            .write(&mut b, &[0u8; 8])
            .unwrap();
        frames.push((1_700_000_000_000_000_000 + i64::try_from(i).unwrap(), b));
    }
    let pcap = dir.join("n.pcap");
    write_pcap(&pcap, &frames);
    let pq = night.join("packets.parquet");
    let o = run(&[
        "convert",
        pcap.to_str().unwrap(),
        "-o",
        pq.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let analyse = |n: &Path| {
        let o = run(&["analyse", "--night-dir", n.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        summary(n)
            .pings
            .iter()
            .map(|p| p.src.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        analyse(&night),
        vec!["127.0.0.1", "192.168.1.7"],
        "no capture.json: nothing is excluded"
    );
    // The analysis takes the addresses capture.json recorded, not the system's now.
    std::fs::write(
        night.join("capture.json"),
        r#"{"interface": "lo", "stats": {"received": 3}}"#,
    )
    .unwrap();
    assert_eq!(
        analyse(&night),
        vec!["127.0.0.1", "192.168.1.7"],
        "capture.json without own_addresses: nothing is excluded"
    );
    std::fs::write(
        night.join("capture.json"),
        r#"{"interface": "lo", "own_addresses": ["127.0.0.1", "::1"], "stats": {"received": 3}}"#,
    )
    .unwrap();
    assert_eq!(
        analyse(&night),
        vec!["192.168.1.7"],
        "lo's own 127.0.0.1, recorded by the capture, is left out"
    );
}

#[test]
fn three_nights_give_new_and_silent_devices() {
    let dir = tmpdir("three-nights");
    let state = dir.join("state");
    // One ICMP echo from each device (MAC, IP) at 23:00 UTC on the night's date.
    let night = |day: i64, devices: &[([u8; 6], [u8; 4])]| {
        let ts0 = 1_732_057_200_000_000_000 + day * 86_400_000_000_000; // 2024-11-19T23:00:00Z + days
        let frames: Vec<(i64, Vec<u8>)> = devices
            .iter()
            .enumerate()
            .map(|(i, (mac, ip))| {
                let mut b = Vec::new();
                etherparse::PacketBuilder::ethernet2(*mac, [2, 0, 0, 0, 0, 0xfe])
                    .ipv4(*ip, [192, 168, 1, 1], 64)
                    .icmpv4_echo_request(1, u16::try_from(i).unwrap())
                    .write(&mut b, &[0u8; 8])
                    .unwrap();
                (ts0 + i64::try_from(i).unwrap() * 1_000_000, b)
            })
            .collect();
        let pcap = dir.join(format!("night{day}.pcap"));
        write_pcap(&pcap, &frames);
        let out = state.join("nights").join(format!("n{day}"));
        let o = common::bin()
            .env("NETDIGEST_CAPTURE__TIMEZONE", "UTC")
            .args([
                "run",
                "--pcap",
                pcap.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
                "--no-progress",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let d = summary(&out).devices.unwrap();
        let macs =
            |v: &[netdigest::devices::Device]| v.iter().map(|x| x.mac.clone()).collect::<Vec<_>>();
        (macs(&d.new), macs(&d.silent), summary(&out).history.len())
    };
    let a = ([2, 0, 0, 0, 0, 0xa], [192, 168, 1, 10]);
    let b = ([2, 0, 0, 0, 0, 0xb], [192, 168, 1, 11]);
    let c = ([2, 0, 0, 0, 0, 0xc], [192, 168, 1, 12]);
    let (new, silent, hist) = night(0, &[a, b]);
    assert!(
        new.is_empty() && silent.is_empty() && hist == 0,
        "first night: no history"
    );
    let (new, silent, hist) = night(1, &[a, c]);
    assert_eq!(
        (new, silent),
        (
            vec!["02:00:00:00:00:0c".to_string()],
            vec!["02:00:00:00:00:0b".to_string()]
        )
    );
    assert_eq!(hist, 4, "compared with the night before");
    // The new device is announced with its name and vendor, one row per device.
    let text = std::fs::read_to_string(
        state
            .join("nights")
            .join("n1")
            .join("report")
            .join("email.txt"),
    )
    .unwrap();
    assert!(
        text.contains(
            "New device: device 00:00:0c, private address, 192.168.1.12, first seen 23:00"
        ),
        "{text}"
    );
    let (new, silent, _) = night(2, &[a, b, c]);
    assert!(
        new.is_empty() && silent.is_empty(),
        "all three seen before: {new:?} {silent:?}"
    );
}
