//! Devices by name, end to end: a synthetic night converted by `netdigest convert`, a
//! names.parquet written beside it with `NameStore::add` (what convert's parsers will
//! extract from DHCP, mDNS and NetBIOS), then `netdigest analyse` and `netdigest report`
//! as the nightly job runs them. The report must call devices by name next to their
//! addresses, with vendors beside MACs, one row per device, and treat every name as
//! hostile: escaped in email.html and index.html (including the charts' JSON inside
//! `<script>`), stripped of control and bidi characters in email.txt, and the chart
//! images still drawn.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use common::{bin, run, stderr, tmpdir};
use names::{Kind, Name};
use netdigest::analyse::Summary;
use netdigest::namestore::NameStore;
use synth::NightSpec;

const TS: i64 = 1_731_704_460 * 1_000_000_000;

fn mac(s: &str) -> [u8; 6] {
    netdigest::vendor::parse_mac(s).unwrap()
}

fn name(kind: Kind, n: &str, client: &str, addr: Option<&str>) -> Name {
    Name {
        kind,
        name: n.to_string(),
        addr: addr.map(|a| a.parse::<IpAddr>().unwrap()),
        client_mac: Some(mac(client)),
        client_ip: None,
        ttl: None,
    }
}

/// A converted demo night (3,000 packets) in `dir/night`, without names.
fn night(dir: &Path) -> PathBuf {
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
    std::fs::create_dir_all(&out).unwrap();
    let o = run(&[
        "convert",
        pcap.to_str().unwrap(),
        "-o",
        out.join("packets.parquet").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

/// `netdigest analyse` then `netdigest report` on `night`, with `env`.
fn analyse_and_report(night: &Path, env: &[(&str, &str)]) -> Summary {
    for cmd in ["analyse", "report"] {
        let mut c = bin();
        c.env("NETDIGEST_CAPTURE__TIMEZONE", "Europe/Berlin")
            .env("NETDIGEST_CONFIG", night.join("no-config.toml"));
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c
            .args([cmd, "--night-dir", night.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
    }
    serde_json::from_str(&std::fs::read_to_string(night.join("summary.json")).unwrap()).unwrap()
}

fn read(night: &Path, file: &str) -> String {
    std::fs::read_to_string(night.join("report").join(file)).unwrap()
}

/// email.html without the line-break hints the tables put after `.` and `:`.
fn html_text(night: &Path, file: &str) -> String {
    read(night, file).replace("<wbr>", "")
}

#[test]
fn the_report_calls_devices_by_name_next_to_their_addresses() {
    let dir = tmpdir("names-report");
    let night = night(&dir);
    let mut store = NameStore::new();
    let names = [
        // The LG TV (192.168.1.40, a top talker): its DHCP host name beats its mDNS name.
        name(
            Kind::Mdns,
            "lg-webos.local",
            "38:8c:50:1e:40:40",
            Some("192.168.1.40"),
        ),
        name(Kind::DhcpHostname, "kitchen-tv", "38:8c:50:1e:40:40", None),
        name(Kind::MdnsModel, "OLED55C1", "38:8c:50:1e:40:40", None),
        // Two private MACs with one DHCP client id: one phone.
        name(
            Kind::DhcpClientId,
            "01aa0011223344",
            "6a:3f:91:c2:07:21",
            None,
        ),
        name(
            Kind::DhcpClientId,
            "01aa0011223344",
            "ae:12:7b:40:88:22",
            None,
        ),
        name(
            Kind::Mdns,
            "Annas-iPhone.local",
            "6a:3f:91:c2:07:21",
            Some("192.168.1.21"),
        ),
        // Junk DHCP host name: NetBIOS names it.
        name(Kind::DhcpHostname, "localhost", "5e:21:d0:9a:23:23", None),
        name(
            Kind::Nbns,
            "DESKTOP-23",
            "5e:21:d0:9a:23:23",
            Some("192.168.1.23"),
        ),
        // The Mac announces a sleeping printer's name for the printer's address: the
        // name is the printer's, not the Mac's.
        name(
            Kind::Mdns,
            "office-printer.local",
            "f4:5c:89:aa:30:30",
            Some("192.168.1.50"),
        ),
    ];
    for (i, n) in names.into_iter().enumerate() {
        store.add(n, TS + i64::try_from(i).unwrap(), 1);
    }
    store.write(&night.join("names.parquet")).unwrap();
    // The owner's label for the Mac, by MAC written without separators.
    let s = analyse_and_report(
        &night,
        &[("NETDIGEST_NAMES__F45C89AA3030", "living-room-mac")],
    );

    let devices = &s.devices.as_ref().unwrap().devices;
    let by_name = |n: &str| {
        devices
            .iter()
            .find(|d| d.name == n)
            .unwrap_or_else(|| panic!("no device {n}: {devices:#?}"))
    };
    let tv = by_name("kitchen-tv");
    assert_eq!(tv.name_source, "dhcp-hostname");
    assert_eq!(tv.vendor.as_deref(), Some("LG Electronics"));
    assert_eq!(tv.model.as_deref(), Some("OLED55C1"));
    assert!(tv.ips.contains(&"192.168.1.40".to_string()), "{tv:?}");
    let phone = by_name("Annas-iPhone");
    assert_eq!(phone.macs.len(), 2, "linked by client id: {phone:?}");
    assert!(phone.ips.contains(&"192.168.1.21".to_string()));
    assert!(phone.ips.contains(&"192.168.1.22".to_string()));
    assert_eq!(phone.vendor.as_deref(), Some("private address"));
    assert_eq!(by_name("DESKTOP-23").name_source, "nbns");
    assert_eq!(by_name("living-room-mac").name_source, "label");
    assert_eq!(by_name("office-printer").mac, "00:1b:a9:77:50:50");
    // Eleven MACs (the synthetic tablet rejoins on a new private MAC; this names.parquet
    // does not carry the client id that links them), two of them one phone.
    assert_eq!(devices.len(), 10, "eleven MACs, two of them one phone");
    // One MAC never appears in two devices.
    let mut macs: Vec<&str> = devices.iter().flat_map(|d| d.all_macs()).collect();
    macs.sort_unstable();
    let n = macs.len();
    macs.dedup();
    assert_eq!(n, macs.len());
    assert_eq!(s.labels["192.168.1.40"].name, "kitchen-tv");
    assert_eq!(s.labels["ae:12:7b:40:88:22"].name, "Annas-iPhone");

    let text = read(&night, "email.txt");
    let html = html_text(&night, "email.html");
    let page = html_text(&night, "index.html");
    for want in [
        "kitchen-tv (192.168.1.40)",
        "Annas-iPhone (192.168.1.21)",
        "living-room-mac (192.168.1.30)",
        "DESKTOP-23 (192.168.1.23)",
    ] {
        assert!(text.contains(want), "email.txt lacks {want}:\n{text}");
        assert!(html.contains(want), "email.html lacks {want}");
        assert!(page.contains(want), "index.html lacks {want}");
    }
    // The devices table: one row per device, the vendor beside its MAC.
    let row = text
        .lines()
        .find(|l| l.contains("kitchen-tv") && l.contains("38:8c:50:1e:40:40"))
        .unwrap_or_else(|| panic!("no device row for the TV:\n{text}"));
    assert!(row.contains("LG Electronics"), "{row}");
    assert!(row.contains("OLED55C1"), "{row}");
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("6a:3f:91:c2:07:21") && l.contains("ae:12:7b:40:88:22"))
            .count(),
        1,
        "the phone's two MACs are one row:\n{text}"
    );
    assert!(
        html.contains(
            "kitchen-tv<br>LG Electronics, OLED55C1<br>38:8c:50:1e:40:40<br>192.168.1.40</td>"
        ),
        "name, vendor and model, MAC, IPs"
    );
    // The talkers chart uses the short name.
    assert!(page.contains("\"kitchen-tv\""), "chart category");
}

/// The names a hostile LAN device can announce, raw (as if the names crate had let
/// them through).
fn hostile_names() -> Vec<(&'static str, String)> {
    let invalid_utf8 = String::from_utf8_lossy(b"bad\xff\xfe-name").into_owned();
    vec![
        ("script", "<script>alert(1)</script>".into()),
        ("img", "\"><img src=x onerror=alert(1)>".into()),
        ("bidi", "evil\u{202e}txt.exe".into()),
        ("nul", "nul\u{0}byte\u{1b}[31m".into()),
        ("long", "A".repeat(10_000)),
        ("utf8", invalid_utf8),
        ("close-script", "</script><script>alert(2)</script>".into()),
    ]
}

#[test]
fn hostile_names_are_escaped_in_every_output() {
    let dir = tmpdir("names-hostile");
    let night = night(&dir);
    // One hostile name per device, each by the best source (DHCP host name), and one
    // through the owner's labels (owner input is escaped too).
    let macs = [
        "38:8c:50:1e:40:40",
        "6a:3f:91:c2:07:21",
        "5e:21:d0:9a:23:23",
        "f4:5c:89:aa:30:30",
        "ae:12:7b:40:88:22",
        "dc:a6:32:5d:7e:10",
        "d8:07:b6:4e:21:01",
    ];
    let hostile = hostile_names();
    let mut store = NameStore::new();
    for (i, ((_, n), m)) in hostile.iter().zip(macs).enumerate() {
        store.add(
            name(Kind::DhcpHostname, n, m, None),
            TS + i64::try_from(i).unwrap(),
            1,
        );
    }
    store.write(&night.join("names.parquet")).unwrap();
    let s = analyse_and_report(&night, &[("NETDIGEST_NAMES__001BA9775050", "<b>owner</b>")]);
    assert!(
        s.devices
            .as_ref()
            .unwrap()
            .devices
            .iter()
            .any(|d| d.name.starts_with("AAAA") && d.name.len() <= 253),
        "a 10 kB name is cut to 253 bytes"
    );
    let text = read(&night, "email.txt");
    let html = read(&night, "email.html");
    let page = read(&night, "index.html");
    // index.html: the tables (HTML) before the charts' script (JSON in JavaScript).
    let charts_at = page.rfind("<script>if (window.echarts)").unwrap();
    let (page_html, chart_js) = page.split_at(charts_at);
    for (what, out) in [("email.html", html.as_str()), ("index.html", page_html)] {
        assert!(!out.contains("<script>alert"), "{what}: a script element");
        assert!(!out.contains("<img src=x"), "{what}: an img element");
        assert!(!out.contains("<b>owner"), "{what}: owner label not escaped");
        assert!(
            !out.contains('\u{202e}') && !out.contains('\u{0}'),
            "{what}: control/bidi"
        );
        assert!(!out.contains('\u{1b}'), "{what}: escape character");
    }
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped, shown"
    );
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(page_html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // The chart options are JSON inside one <script>: a name cannot close it
    // (`</script>` is written `<\/script>`), nor hide control characters.
    assert!(
        chart_js.contains("<\\/script>"),
        "the router's name is in a chart"
    );
    assert_eq!(
        chart_js.matches("</script>").count(),
        1,
        "only the script's own end"
    );
    assert!(chart_js.trim_end().ends_with("</script></body></html>"));
    assert!(!chart_js.contains('\u{202e}') && !chart_js.contains("\\u0000"));
    // Plain text: the names as text, no control or bidi characters.
    assert!(text.contains("<script>alert(1)</script>"));
    assert!(
        text.contains("evilb") || text.contains("eviltxt.exe"),
        "bidi removed"
    );
    assert!(
        !text.contains('\u{202e}') && !text.contains('\u{0}') && !text.contains('\u{1b}'),
        "control or bidi characters in email.txt"
    );
    assert!(
        text.contains("bad\u{fffd}\u{fffd}-name"),
        "invalid UTF-8 replaced"
    );
    // The chart images were drawn (the SVG path read the names without failing).
    let charts = night.join("report").join("charts");
    let jpgs = std::fs::read_dir(&charts)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "jpg"))
        })
        .count();
    assert!(jpgs >= 3, "charts in {}", charts.display());
}

/// `names::sanitize::name` removes what the report also defends against (a name with
/// nothing left is None).
#[test]
fn sanitize_removes_control_and_bidi() {
    for (what, raw) in [
        ("bidi", "evil\u{202e}txt.exe".as_bytes().to_vec()),
        ("nul", b"nul\x00byte".to_vec()),
        ("utf8", b"bad\xff-name".to_vec()),
        ("long", vec![b'A'; 10_000]),
    ] {
        let out = names::sanitize::name(&raw).unwrap_or_else(|| panic!("{what}: nothing left"));
        assert!(
            !out.chars().any(netdigest::analyse::is_hidden),
            "{what}: {out:?}"
        );
        assert!(out.len() <= names::sanitize::MAX_NAME, "{what}");
    }
}

/// Hostile names from the wire, end to end: the synthetic night's hostile device puts
/// markup, an attribute break-out, U+202E, NUL, a 10 kB name and invalid UTF-8 into its
/// DHCP host name and vendor class, mDNS host, service and TXT records, DNS questions
/// and answers, TLS and QUIC server names and HTTP Host headers (real frames, decoded by
/// convert); every output of `netdigest run` keeps them inert and clean.
#[test]
fn hostile_names_from_frames_are_inert_in_every_output() {
    let dir = tmpdir("names-hostile-frames");
    let pcap = dir.join("hostile.pcap");
    synth::write_night_file(
        &pcap,
        &NightSpec {
            packets: 6_000,
            hostile_names: true,
            ..NightSpec::demo()
        },
    )
    .unwrap();
    let out = dir.join("night");
    let o = bin()
        .env("NETDIGEST_CAPTURE__TIMEZONE", "UTC")
        .args(["run", "--no-progress", "--pcap"])
        .arg(&pcap)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // The names were read off the wire (sanitized: the NUL and U+202E gone).
    let names = netdigest::namestore::read(&out.join("names.parquet")).unwrap();
    let all: Vec<String> = names
        .column("name")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    for planted in [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
    ] {
        assert!(all.iter().any(|n| n == planted), "{planted} not extracted");
    }
    assert!(
        all.iter()
            .any(|n| n.starts_with("kitchen") && n.ends_with("vt-nehctik"))
    );
    assert!(all.iter().all(|n| n.len() <= 253), "a name past 253 bytes");
    assert!(
        all.iter()
            .all(|n| !n.chars().any(netdigest::analyse::is_hidden)),
        "a control or bidi character stored"
    );
    let report = out.join("report");
    let text = std::fs::read_to_string(report.join("email.txt")).unwrap();
    let html = std::fs::read_to_string(report.join("email.html")).unwrap();
    let page = std::fs::read_to_string(report.join("index.html")).unwrap();
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    let charts_at = page.rfind("<script>if (window.echarts)").unwrap();
    let (page_html, chart_js) = page.split_at(charts_at);
    for (what, doc) in [("email.html", html.as_str()), ("index.html", page_html)] {
        assert!(!doc.contains("<script>alert"), "{what}: a script element");
        assert!(!doc.contains("<img src=x"), "{what}: an img element");
    }
    assert!(
        page_html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "index.html shows the hostile name, escaped"
    );
    assert_eq!(
        chart_js.matches("</script>").count(),
        1,
        "a name closed the script"
    );
    for (what, doc) in [
        ("email.txt", text.as_str()),
        ("email.html", html.as_str()),
        ("index.html", page.as_str()),
        ("summary.json", summary.as_str()),
    ] {
        let bad: Vec<char> = doc
            .chars()
            .filter(|c| netdigest::analyse::is_hidden(*c) && !matches!(c, '\n' | '\r' | '\t'))
            .collect();
        assert!(bad.is_empty(), "{what}: control/bidi characters {bad:?}");
        assert!(
            !doc.contains("\\u0000") && !doc.contains("\\u202e"),
            "{what}: escaped NUL/bidi"
        );
    }
    // The tshark-compatible CSV is unchanged in kind: one line per frame, no control
    // characters from the names.
    let csv = dir.join("hostile.csv");
    let o = run(&[
        "convert",
        pcap.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(!csv.contains('\u{0}') && !csv.contains('\u{202e}'));
}
