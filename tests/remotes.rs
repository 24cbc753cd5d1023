//! Remote names in the report, end to end: a night made of frames (written as a pcap and
//! converted by `netdigest run`) with a names.parquet the test writes beside it, then
//! `netdigest analyse` and `netdigest report`; email.html, email.txt and index.html
//! checked for the names next to their addresses, the "what each device talked to"
//! view, and hostile names (markup, `</script>`, control and bidi characters, 10 kB).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use common::{stderr, tmpdir, write_pcap};
use names::{Kind, Name};
use netdigest::analyse::Summary;
use netdigest::namestore::NameStore;

/// 2024-11-19T23:00:00Z.
const T0: i64 = 1_732_057_200_000_000_000;
const ROUTER: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const TV: Device = ([2, 0, 0, 0, 0, 0x23], "192.168.1.23");
const LAPTOP: Device = ([2, 0, 0, 0, 0, 0x40], "192.168.1.40");
const TELEMETRY: &str = "198.51.100.7";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(
    smac: [u8; 6],
    dmac: [u8; 6],
    src: &str,
    dst: &str,
    sp: u16,
    dp: u16,
    len: usize,
) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (ip(src), ip(dst)) else {
        panic!("IPv4 only here")
    };
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2(smac, dmac)
        .ipv4(s.octets(), d.octets(), 64)
        .tcp(sp, dp, 1, 65_535)
        .ack(1)
        .write(&mut out, &vec![0u8; len])
        .unwrap();
    out
}

/// A local device: its MAC and IPv4 address.
type Device = ([u8; 6], &'static str);

/// A night: frames, and the names the test says they carried.
#[derive(Default)]
struct Night {
    frames: Vec<(i64, Vec<u8>)>,
    names: Vec<(Kind, String, &'static str, Device)>,
}

impl Night {
    /// `n` segments of `len` bytes from the device to `dst` and as many back.
    fn talk(&mut self, dev: ([u8; 6], &str), dst: &str, n: usize, len: usize) {
        for i in 0..n {
            let t = T0 + i64::try_from(self.frames.len() + i).unwrap() * 1_000_000;
            self.frames
                .push((t, tcp(dev.0, ROUTER, dev.1, dst, 50_000, 443, len)));
            self.frames
                .push((t + 1, tcp(ROUTER, dev.0, dst, dev.1, 443, 50_000, len)));
        }
    }

    fn name(&mut self, kind: Kind, name: &str, addr: &'static str, dev: Device) {
        self.names.push((kind, name.to_string(), addr, dev));
    }

    /// `run` (convert, analyse, report), then names.parquet replaced by the test's and
    /// `analyse` and `report` again; the night directory.
    fn run(mut self, dir: &Path, env: &[(&str, &str)]) -> PathBuf {
        self.frames.sort_by_key(|f| f.0);
        let pcap = dir.join("n.pcap");
        write_pcap(&pcap, &self.frames);
        let out = dir.join("night");
        let cmd = |args: &[&str]| {
            let mut c = common::bin();
            c.env("NETDIGEST_CAPTURE__TIMEZONE", "UTC");
            for (k, v) in env {
                c.env(k, v);
            }
            let o = c.args(args).output().unwrap();
            assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        };
        let night = out.to_str().unwrap();
        cmd(&[
            "run",
            "--pcap",
            pcap.to_str().unwrap(),
            "--out",
            night,
            "--no-progress",
        ]);
        let mut store = NameStore::new();
        for (i, (kind, name, addr, (mac, client))) in self.names.into_iter().enumerate() {
            store.add(
                Name {
                    kind,
                    name,
                    addr: Some(ip(addr)),
                    client_mac: Some(mac),
                    client_ip: Some(ip(client)),
                    ttl: None,
                },
                T0 - 1_000,
                u64::try_from(i).unwrap(),
            );
        }
        store.write(&out.join("names.parquet")).unwrap();
        cmd(&["analyse", "--night-dir", night]);
        cmd(&["report", "--night-dir", night]);
        out
    }
}

fn read(night: &Path, file: &str) -> String {
    std::fs::read_to_string(night.join("report").join(file)).unwrap()
}

/// The text of an HTML page: tags removed (`<wbr>`, the spans of the email's view).
fn text_of(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn summary(night: &Path) -> Summary {
    serde_json::from_str(&std::fs::read_to_string(night.join("summary.json")).unwrap()).unwrap()
}

/// Every section, so the conversations show too.
const ALL_SECTIONS: (&str, &str) = (
    "NETDIGEST_REPORT__SECTIONS",
    r#"["pings","totals","timeline","protocols","talkers","conversations","ports","devices","talked-to","history"]"#,
);

#[test]
fn the_report_names_remote_addresses_and_what_each_device_talked_to() {
    let dir = tmpdir("remotes-report");
    let mut n = Night::default();
    n.name(
        Kind::DnsAnswer,
        "telemetry.tvvendor-example.com",
        TELEMETRY,
        TV,
    );
    n.name(
        Kind::TlsSni,
        "video.streaming-example.net",
        "203.0.113.80",
        TV,
    );
    // The laptop reaches the same address by another name (a CDN).
    n.name(Kind::TlsSni, "api.other-example.org", TELEMETRY, LAPTOP);
    n.talk(TV, TELEMETRY, 40, 600);
    n.talk(TV, "203.0.113.80", 60, 1200);
    n.talk(TV, "192.0.2.99", 5, 100);
    n.talk(LAPTOP, TELEMETRY, 10, 300);
    let night = n.run(&dir, &[ALL_SECTIONS]);

    let s = summary(&night);
    let tv = s
        .talked_to
        .iter()
        .find(|d| d.device == "02:00:00:00:00:23")
        .unwrap();
    let got: Vec<(Option<&str>, &str)> = tv
        .remotes
        .iter()
        .map(|r| (r.name.as_deref(), r.addr.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Some("video.streaming-example.net"), "203.0.113.80"),
            (Some("telemetry.tvvendor-example.com"), TELEMETRY),
            (None, "192.0.2.99"),
        ]
    );

    let html = read(&night, "email.html").replace("<wbr>", "");
    let text = read(&night, "email.txt");
    let index = read(&night, "index.html").replace("<wbr>", "");
    for page in [&text_of(&html), &text, &text_of(&index)] {
        for want in [
            "What each device talked to",
            // The device by its label (a private MAC without a name: its last octets).
            "device 00:00:23 (192.168.1.23)",
            "telemetry.tvvendor-example.com (198.51.100.7)",
            "video.streaming-example.net (203.0.113.80)",
            // Per client: the laptop's name for the same address.
            "api.other-example.org (198.51.100.7)",
            "192.0.2.99",
        ] {
            assert!(page.contains(want), "{want} missing from\n{page}");
        }
    }
    // The talkers table: the name with the most bytes for the address.
    assert!(
        html.contains(">telemetry.tvvendor-example.com (198.51.100.7)</td><td"),
        "{html}"
    );
    // The conversations: each pair named as its device saw it.
    let pair = |a: &str, b: &str| text.lines().any(|l| l.starts_with(a) && l.contains(b));
    assert!(
        pair(
            "device 00:00:40 (192.168.1.40)",
            "api.other-example.org (198.51.100.7)"
        ),
        "{text}"
    );
    assert!(
        pair(
            "device 00:00:23 (192.168.1.23)",
            "telemetry.tvvendor-example.com (198.51.100.7)"
        ),
        "{text}"
    );
    // The talkers chart labels the address by its short name (the table keeps it all).
    assert!(
        index.contains("\"telemetry…vendor-example.com\""),
        "chart label"
    );
}

/// Script contents cut out of an HTML page: (the markup around them, the scripts).
fn split_scripts(page: &str) -> (String, Vec<String>) {
    let (mut markup, mut scripts) = (String::new(), Vec::new());
    let mut rest = page;
    while let Some(start) = rest.find("<script>") {
        markup.push_str(&rest[..start + "<script>".len()]);
        let body = &rest[start + "<script>".len()..];
        let end = body.find("</script>").expect("a script is closed");
        scripts.push(body[..end].to_string());
        rest = &body[end..];
    }
    markup.push_str(rest);
    (markup, scripts)
}

#[test]
fn hostile_remote_names_stay_text_in_every_output() {
    let dir = tmpdir("remotes-hostile");
    let long = "a".repeat(10_000);
    let hostile = [
        ("<script>alert(1)</script>", "203.0.113.1"),
        ("\"><img src=x onerror=alert(1)>", "203.0.113.2"),
        ("</script>", "203.0.113.3"),
        (long.as_str(), "203.0.113.4"),
        ("evil\u{202e}moc.elgoog\u{0}\u{7}\r\nx", "203.0.113.5"),
        ("<!--<script>", "203.0.113.6"),
    ];
    let mut n = Night::default();
    for (i, (name, addr)) in hostile.iter().enumerate() {
        let kind = if i % 2 == 0 {
            Kind::DnsAnswer
        } else {
            Kind::TlsSni
        };
        n.name(kind, name, addr, TV);
        n.talk(TV, addr, 10 + i, 500);
    }
    let night = n.run(&dir, &[ALL_SECTIONS]);

    let html = read(&night, "email.html");
    let text = read(&night, "email.txt");
    let index = read(&night, "index.html");
    for (what, page) in [
        ("email.html", &html),
        ("email.txt", &text),
        ("index.html", &index),
    ] {
        assert!(
            !page.contains('\u{202e}') && !page.contains('\0') && !page.contains('\u{7}'),
            "{what}: control or bidi character"
        );
        assert!(
            !page.contains(&"a".repeat(64)),
            "{what}: a label longer than 63 bytes"
        );
        assert!(page.contains(&"a".repeat(63)), "{what}: the long name, cut");
    }
    assert!(!text.contains('\r'), "no carriage return in the text part");
    for page in [&html, &index] {
        let (markup, _) = split_scripts(&page.replace(netdigest::chart::echarts_js(), ""));
        for bad in ["<img src=x", "<script>alert", "<!--", "onerror=alert(1)>"] {
            assert!(!markup.contains(bad), "{bad} as markup");
        }
        assert!(
            markup.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "escaped"
        );
        assert!(markup.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    }
    assert!(!html.contains("<script"), "no scripts in the email");
    // index.html: ECharts and the charts' script, each closed where it should be; the
    // names inside the chart options cannot close it or open a comment.
    let (_, scripts) = split_scripts(&index.replace(netdigest::chart::echarts_js(), ""));
    assert_eq!(scripts.len(), 2, "ECharts and the charts: {scripts:?}");
    let charts = &scripts[1];
    assert!(charts.contains("echarts.init("));
    assert!(!charts.contains("</") && !charts.contains("<!--"));
    assert!(
        charts.contains("<script>alert(1)<\\/script>"),
        "the name, as data"
    );
    // The chart image was drawn (ECharts' SVG escaped the labels, or resvg would fail).
    assert!(night.join("report/charts/talkers.jpg").exists());
    assert!(
        text.contains("<script>alert(1)</script> (203.0.113.1)"),
        "text stays text"
    );
}

#[test]
fn hostile_names_in_the_chart_svg_are_text() {
    use netdigest::analyse::Talker;
    let talkers: Vec<Talker> = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "</svg>&",
    ]
    .iter()
    .enumerate()
    .map(|(i, n)| Talker {
        addr: format!("203.0.113.{i}"),
        name: Some((*n).to_string()),
        bytes: 100,
        tx_bytes: 100,
        ..Talker::default()
    })
    .collect();
    let def = netdigest::chart::defs::talkers(&talkers, 10, &|a| a.to_string());
    let svg = netdigest::chart::ChartRenderer::new()
        .unwrap()
        .render_svg(&def.chart, 600, 320)
        .unwrap();
    assert!(
        !svg.contains("<script") && !svg.contains("<img") && !svg.contains("</svg>&"),
        "{svg}"
    );
    assert!(
        svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || svg.contains("&lt;script>alert(1)&lt;/script>"),
        "{svg}"
    );
}

/// Not a test: writes a names.parquet for an analysed night (`NETDIGEST_NAMES_NIGHT`,
/// a night directory with summary.json), for measuring and looking at the report: each
/// device's remote addresses named by a DNS answer (some by an SNI), and filler rows up
/// to `NETDIGEST_NAMES_ROWS` (default 100,000, names.parquet's bound) of other names for
/// the same addresses and clients, spread over the night.
#[test]
#[ignore = "a tool: run with NETDIGEST_NAMES_NIGHT=<night dir>"]
fn write_names_for_a_night() {
    let Ok(night) = std::env::var("NETDIGEST_NAMES_NIGHT") else {
        return;
    };
    let rows: usize = std::env::var("NETDIGEST_NAMES_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let night = PathBuf::from(night);
    let s = summary(&night);
    let t0 = s.totals.first_ns.unwrap();
    let span = (s.totals.last_ns.unwrap() - t0).max(1);
    let mac = |m: &str| -> Option<[u8; 6]> {
        let b: Vec<u8> = m
            .split(':')
            .filter_map(|x| u8::from_str_radix(x, 16).ok())
            .collect();
        b.try_into().ok()
    };
    let services = [
        "telemetry.tvvendor-example.com",
        "video.streaming-example.net",
        "updates.os-example.org",
        "api.weather-example.com",
        "time.example.net",
    ];
    let mut store = NameStore::new();
    let mut pairs = Vec::new();
    for d in &s.talked_to {
        let (m, client) = (mac(&d.device), d.ips.first().map(|i| ip(i)));
        for (i, r) in d.remotes.iter().enumerate() {
            pairs.push((m, client, ip(&r.addr)));
            let name = services[i % services.len()].to_string();
            let kind = if i % 3 == 0 {
                Kind::TlsSni
            } else {
                Kind::DnsAnswer
            };
            store.add(
                Name {
                    kind,
                    name,
                    addr: Some(ip(&r.addr)),
                    client_mac: m,
                    client_ip: client,
                    ttl: Some(300),
                },
                t0,
                0,
            );
        }
    }
    let mut i = 0usize;
    while store.len() < rows && !pairs.is_empty() {
        let (m, client, addr) = pairs[i % pairs.len()];
        let ts = t0 + i64::try_from(i).unwrap() % span;
        store.add(
            Name {
                kind: Kind::DnsAnswer,
                name: format!("host{i}.cdn-example.net"),
                addr: Some(addr),
                client_mac: m,
                client_ip: client,
                ttl: Some(60),
            },
            ts,
            u64::try_from(i).unwrap(),
        );
        i += 1;
    }
    store.write(&night.join("names.parquet")).unwrap();
    eprintln!("{} names", store.len());
}
