//! Tonight's findings end to end: synthetic nights with planted activities through
//! `pipeline::run` (convert, analyse, report), checked against the generator's ground
//! truth; ordinary nights for false positives; hostile names in the report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::tmpdir;
use netdigest::analyse::Summary;
use netdigest::analyse::findings::{Finding, LOWEST_RANK};
use netdigest::config::Config;
use netdigest::pipeline::{RunOptions, run};
use synth::{Activity, Beacon, Device, GroundTruth, NightSpec};

/// Generates `spec` and runs the whole night; the summary, the night directory and the truth.
fn night(name: &str, spec: &NightSpec, cfg: &Config) -> (Summary, PathBuf, GroundTruth) {
    let dir = tmpdir(name);
    let pcap = dir.join("night.pcap");
    let truth = synth::write_night_file(&pcap, spec).unwrap();
    let out = dir.join("night");
    let o = run(&[pcap], &out, cfg, &RunOptions::default()).unwrap();
    (o.summary, out, truth)
}

fn of_kind<'a>(s: &'a Summary, kind: &str, device: &str) -> Vec<&'a Finding> {
    s.findings
        .iter()
        .filter(|f| f.kind == kind && f.device == device)
        .collect()
}

fn ip(d: Device) -> String {
    d.ipv4().to_string()
}

fn planted_spec() -> NightSpec {
    NightSpec {
        activities: synth::every_activity(4_000_000),
        ..NightSpec::demo()
    }
}

#[test]
fn planted_beacon_long_connection_and_dns_burst_are_found_and_the_irregular_host_is_not() {
    let (s, dir, truth) = night("planted", &planted_spec(), &Config::default());
    for f in &s.findings {
        eprintln!("{:3} {:18} {}", f.rank, f.kind, f.sentence);
    }
    let planted = |kind: &str| {
        truth
            .planted
            .iter()
            .find(|p| p.activity.kind() == kind)
            .unwrap()
    };

    // The beacon: right device, remote, period and count.
    let b = planted("beacon");
    let found = of_kind(&s, "beacon", &b.addr.to_string());
    assert_eq!(found.len(), 1, "{:#?}", s.findings);
    let f = found[0];
    assert_eq!(f.remote, b.remote_addr.unwrap().to_string());
    assert_eq!(f.remote_name.as_deref(), b.remote_name.as_deref());
    assert_eq!(f.numbers["connections"], b.contacts.len() as f64);
    assert!(
        (f.numbers["period_s"] - 300.0).abs() <= 6.0,
        "period {}",
        f.numbers["period_s"]
    );
    assert!(f.rank > LOWEST_RANK && f.numbers["score"] >= 0.8);
    // Its chart: one dot per connection, local times; the first is the sentence's "from".
    let chart = f.chart.as_ref().expect("a beacon has a chart");
    assert_eq!(chart.points.len(), b.contacts.len());
    let first_hm = &chart.points[0].0[11..16];
    assert!(
        f.sentence.contains(&format!("from {first_hm} to")),
        "{first_hm} / {}",
        f.sentence
    );
    assert!(
        f.sentence.contains("every 5 min")
            && f.sentence.contains(&format!("{} times", b.contacts.len()))
            && f.sentence.contains("cdn-sync.example-beacon.net (192.0.2.")
            && f.sentence.starts_with("anna-tablet (192.168.1.23)"),
        "{}",
        f.sentence
    );

    // The control: the same mean interval, not periodic.
    let irr = planted("irregular");
    assert!(
        s.findings
            .iter()
            .all(|f| f.kind != "beacon" || f.device != irr.addr.to_string()),
        "{:#?}",
        s.findings
    );

    // The long connection.
    let l = planted("long-connection");
    let found = of_kind(&s, "long-connection", &l.addr.to_string());
    assert_eq!(found.len(), 1, "{:#?}", s.findings);
    assert_eq!(found[0].remote, l.remote_addr.unwrap().to_string());
    let span = (l.last_ts_ns - l.first_ts_ns) as f64 / 1e9;
    assert!(
        (found[0].numbers["duration_s"] - span).abs() <= 2.0,
        "{} vs {span}",
        found[0].numbers["duration_s"]
    );
    assert!(found[0].sentence.contains("stream.example-long.net"));

    // The DNS tunnel's burst.
    let t = planted("dns-tunnel");
    let found = of_kind(&s, "dns-burst", &t.addr.to_string());
    assert_eq!(found.len(), 1, "{:#?}", s.findings);
    assert!(found[0].numbers["queries"] >= t.dns_queries as f64);
    assert!(found[0].rank > LOWEST_RANK);

    // The report: the "Tonight" section first, at most five, each with its id in index.html.
    let report = dir.join("report");
    let text = std::fs::read_to_string(report.join("email.txt")).unwrap();
    let tonight = text.split("Tonight\n-------\n").nth(1).unwrap();
    let lines: Vec<&str> = tonight
        .lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("* "))
        .collect();
    assert!(!lines.is_empty() && lines.len() <= 5, "{tonight}");
    assert!(
        lines[0].contains("anna-tablet"),
        "highest rank first: {tonight}"
    );
    let index = std::fs::read_to_string(report.join("index.html")).unwrap();
    for f in &s.findings {
        assert!(
            index.contains(&format!("id=\"finding-{}\"", f.id)),
            "{}",
            f.id
        );
    }
    let chart_div = format!("id=\"finding-chart-{}\"", f.id);
    assert!(
        index.contains(&chart_div),
        "the beacon's chart in index.html"
    );
    let html = std::fs::read_to_string(report.join("email.html")).unwrap();
    assert!(html.contains(">Tonight</h2>") && html.contains("every 5 min"));
    assert!(
        !html.contains("finding-chart-"),
        "charts of findings stay in index.html"
    );

    // Ids are stable: the same finding on a night with another seed has the same id.
    let again = night(
        "planted-again",
        &NightSpec {
            seed: 99,
            ..planted_spec()
        },
        &Config::default(),
    )
    .0;
    let id2 = of_kind(&again, "beacon", &b.addr.to_string())
        .first()
        .map(|f| f.id.clone());
    assert_eq!(id2.as_deref(), Some(f.id.as_str()));
}

#[test]
fn the_irregular_control_alone_on_another_night_is_not_a_beacon() {
    // The beacon's own device, name and mean interval, exponential intervals.
    let spec = NightSpec {
        seed: 4242,
        activities: vec![Activity::Irregular(Beacon::new(
            Device::Tablet,
            "cdn-sync.example-beacon.net",
            300,
        ))],
        ..NightSpec::demo()
    };
    let (s, _, truth) = night("irregular", &spec, &Config::default());
    assert!(truth.planted[0].contacts.len() >= 60);
    assert!(
        of_kind(&s, "beacon", &ip(Device::Tablet)).is_empty(),
        "{:#?}",
        s.findings
    );
}

#[test]
fn ordinary_nights_have_no_finding_above_the_lowest_rank() {
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    for seed in [1u64, 2, 3, 0x6e65_7464_6967_6573] {
        let spec = NightSpec {
            seed,
            ..NightSpec::demo()
        };
        let (s, _, _) = night(&format!("ordinary-{seed}"), &spec, &Config::default());
        for f in &s.findings {
            *per_kind.entry(f.kind.clone()).or_default() += 1;
            assert!(f.rank <= LOWEST_RANK, "seed {seed}: {f:#?}");
        }
    }
    eprintln!("findings on 4 ordinary nights, per kind: {per_kind:?}");
}

#[test]
fn the_allow_list_silences_a_finding_and_thresholds_come_from_the_config() {
    let mut cfg = Config::default();
    cfg.findings.allow = vec!["anna-tablet+cdn-sync.example-beacon.net".into()];
    cfg.findings.long_connection_min = 120;
    let (s, _, _) = night("allow", &planted_spec(), &cfg);
    assert!(of_kind(&s, "beacon", &ip(Device::Tablet)).is_empty());
    assert!(of_kind(&s, "long-connection", &ip(Device::Thermostat)).is_empty());
    assert_eq!(of_kind(&s, "dns-burst", &ip(Device::BenPhone)).len(), 1);
}

#[test]
fn hostile_names_in_findings_are_escaped_in_every_report_part() {
    let evil = "x<b>y</b>&q\"t'.example-beacon.net";
    let spec = NightSpec {
        activities: vec![Activity::Beacon(Beacon::new(Device::Tablet, evil, 300))],
        ..NightSpec::demo()
    };
    let (s, dir, _) = night("hostile", &spec, &Config::default());
    let f = of_kind(&s, "beacon", &ip(Device::Tablet));
    assert_eq!(f.len(), 1, "{:#?}", s.findings);
    assert!(f[0].sentence.contains("<b>y</b>"), "{}", f[0].sentence);
    let report = dir.join("report");
    let read = |p: &str| std::fs::read_to_string(report.join(p)).unwrap();
    for page in ["email.html", "index.html"] {
        let h = read(page);
        assert!(!h.contains("<b>y</b>"), "{page} has the raw markup");
        assert!(
            h.contains("x&lt;b&gt;y&lt;/b&gt;&amp;q&quot;t&#39;.example-beacon.net"),
            "{page}"
        );
    }
    let text = read("email.txt");
    assert!(text.contains(evil), "the text part keeps the name as text");
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
}
