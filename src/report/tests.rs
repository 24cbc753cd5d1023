//! Unit tests of the report: number formats, empty sections, escaping, address cells.
use super::*;
use crate::analyse::{PingRow, Summary};

#[test]
fn numbers_format() {
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(1204), "1,204");
    assert_eq!(thousands(1_234_567), "1,234,567");
    assert_eq!(human_bytes(999), "999 B");
    assert_eq!(human_bytes(12_345_678), "12.3 MB");
}

#[test]
fn empty_sections_say_so_in_one_line() {
    let s = Summary {
        night: "2026-11-27".into(),
        ..Summary::default()
    };
    let opts = ReportOptions::default();
    let html = email_html(&s, &[], &opts);
    assert!(html.contains("No echo requests (pings) tonight."));
    assert!(!html.contains("<script"));
    assert!(chart_defs(&s, &opts).is_empty(), "no chart for no data");
    let text = email_text(&s, &opts);
    assert!(text.contains("No echo requests (pings) tonight."));
}

#[test]
fn html_escapes_and_headline() {
    let s = Summary {
        pings: vec![PingRow {
            src: "<b>".into(),
            requests: 1204,
            replies: 1,
            unanswered: 1203,
        }],
        ..Summary::default()
    };
    let html = email_html(&s, &[], &ReportOptions::default());
    assert!(html.contains("&lt;b&gt;") && !html.contains("<b>"));
    assert_eq!(headline(&s), "0 new devices, 1,204 pings, 0 drops");
}

#[test]
fn address_cells_break_only_at_separators() {
    let t = table(
        &["Source", ">Requests"],
        &[vec!["fe80::dea6:32ff:fe5d:7e10".into(), "10,273".into()]],
    );
    assert!(
        t.contains(">fe80:<wbr>:<wbr>dea6:<wbr>32ff:<wbr>fe5d:<wbr>7e10</td>"),
        "{t}"
    );
    assert!(t.contains(">10,273</td>"), "numbers are never broken: {t}");
    assert_eq!(breakable("192.168.1.10"), "192.<wbr>168.<wbr>1.<wbr>10");
}

#[test]
fn cut_tables_say_how_many_more_and_other_services() {
    use crate::analyse::{Omitted, PortRow, Talker};
    let talker = |i: u64| Talker {
        addr: format!("192.168.1.{i}"),
        bytes: 1000 - i,
        ..Talker::default()
    };
    let port = |p: u16| PortRow {
        protocol: "TCP".into(),
        port: p,
        packets: 10,
        bytes: 100,
        ..PortRow::default()
    };
    let s = Summary {
        talkers_by_bytes: (1..=12).map(talker).collect(),
        ports: (1..=3).map(port).collect(),
        omitted: Omitted {
            talkers: 5,
            ports: 4,
            ports_packets: 40,
            ports_bytes: 400,
            ..Omitted::default()
        },
        ..Summary::default()
    };
    let mut opts = ReportOptions {
        top_n: 2,
        ..ReportOptions::default()
    };
    opts.sections.push(ReportSection::Ports);
    let text = email_text(&s, &opts);
    // 12 listed, 2 shown, 5 left out by the analysis.
    assert!(text.contains("\n15 more addresses\n"), "{text}");
    // 3 listed, 2 shown: one more here and 4 (40 packets) left out by the analysis.
    assert!(
        text.contains("other    5 more ports       50  500 B"),
        "{text}"
    );
    let html = email_html(&s, &[], &opts);
    assert!(html.contains(">15 more addresses</p>"), "{html}");
    let clean = email_text(
        &Summary {
            talkers_by_bytes: (1..=2).map(talker).collect(),
            ..Summary::default()
        },
        &opts,
    );
    assert!(
        !clean.contains("more"),
        "nothing cut, nothing said: {clean}"
    );
}

#[test]
fn a_stop_at_the_disk_floor_is_one_plain_sentence() {
    let mut s = Summary {
        night: "2026-11-28".into(),
        capture: Some(crate::analyse::CaptureHealth::default()),
        ..Summary::default()
    };
    let opts = ReportOptions::default();
    assert!(!email_text(&s, &opts).contains("Capture stopped"));
    if let Some(c) = s.capture.as_mut() {
        c.stopped_low_disk = Some(crate::analyse::LowDiskStop {
            at: "2026-11-28T23:41:07.250+01:00".into(),
            free_mb: 480,
            min_free_mb: 1024,
        });
    }
    let sentence = "Capture stopped writing at 2026-11-28 23:41 because the disk had only \
                    480 MiB free (below capture.min_free_mb, 1,024 MiB): later packets were \
                    counted but not kept, so this report misses them.";
    assert!(email_text(&s, &opts).contains(sentence));
    assert!(email_html(&s, &[], &opts).contains(sentence));
}
