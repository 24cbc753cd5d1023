use super::*;

const NIGHT_HOURS: [u8; 8] = [22, 23, 0, 1, 2, 3, 4, 5];

/// A printer's usual night: 20 kB in every hour of the window, two names, pings
/// answered.
fn usual_printer() -> DeviceNight {
    let mut hour_bytes = [0; 24];
    for h in NIGHT_HOURS {
        hour_bytes[usize::from(h)] = 20_000;
    }
    DeviceNight {
        keys: vec!["mac:00:1b:a9:77:50:50".into()],
        name: "printer".into(),
        bytes: 160_000,
        hour_bytes,
        names: vec!["updates.example.com".into(), "www.example.org".into()],
        ping_requests: 100,
        ping_replies: 100,
        ..DeviceNight::default()
    }
}

fn nights(n: usize, with_printer: usize) -> Vec<NightEntry> {
    (0..n)
        .map(|i| NightEntry {
            night: format!("2026-11-{:02}", i + 1),
            hours: NIGHT_HOURS.to_vec(),
            devices: if i < with_printer {
                vec![usual_printer()]
            } else {
                Vec::new()
            },
            ..NightEntry::default()
        })
        .collect()
}

fn tonight() -> DeviceTonight {
    DeviceTonight {
        device: crate::devices::Device {
            mac: "00:1b:a9:77:50:50".into(),
            ips: vec!["192.168.1.50".into()],
            name: "printer".into(),
            ..crate::devices::Device::default()
        },
        night: usual_printer(),
        name_bytes: vec![100_000, 60_000],
        ..DeviceTonight::default()
    }
}

fn kinds(cfg: &FindingsConfig, d: &DeviceTonight, earlier: &[NightEntry]) -> Vec<String> {
    let labels = Labels::default();
    let u = Usual {
        labels: &labels,
        zone: Zone::Named(chrono_tz::UTC),
        cfg,
    };
    let refs: Vec<&NightEntry> = earlier.iter().collect();
    compare(d, &refs, &u)
        .into_iter()
        .map(|f| format!("{} {}", f.kind, f.remote))
        .collect()
}

#[test]
fn a_usual_night_gives_nothing_and_each_change_its_finding() {
    let cfg = FindingsConfig::default();
    let earlier = nights(7, 7);
    assert!(kinds(&cfg, &tonight(), &earlier).is_empty());

    let mut d = tonight();
    d.night.hour_bytes[3] = 5_000_000;
    d.night.bytes += 5_000_000;
    assert_eq!(
        kinds(&cfg, &d, &earlier),
        ["awake "],
        "the spike is the awake hour's"
    );
    d.night.hour_bytes[3] = 150_000;
    d.night.bytes = 290_000;
    assert!(
        kinds(&cfg, &d, &earlier).is_empty(),
        "under 10 times the hour's most"
    );

    let mut d = tonight();
    d.night.bytes = 2_000_000;
    assert_eq!(kinds(&cfg, &d, &earlier), ["volume-spike "], "12.5 times");
    d.night.bytes = 900_000;
    assert!(
        kinds(&cfg, &d, &earlier).is_empty(),
        "5.6 times, under 1 MB"
    );
    let cfg = FindingsConfig {
        spike_min_bytes: 0,
        ..FindingsConfig::default()
    };
    assert_eq!(kinds(&cfg, &d, &earlier), ["volume-spike "]);
    d.night.bytes = 700_000;
    assert!(kinds(&cfg, &d, &earlier).is_empty(), "4.4 times");
}

#[test]
fn new_destinations_are_bounded_and_never_local() {
    let cfg = FindingsConfig::default();
    let mut d = tonight();
    for (n, b) in [
        ("a.example.net", 90_000),
        ("192.168.1.66", 80_000),
        ("224.0.0.251", 70_000),
        ("b.example.net", 60_000),
        ("c.example.net", 50_000),
        ("d.example.net", 40_000),
        ("e.example.net", 19_999),
    ] {
        d.night.names.push(n.into());
        d.name_bytes.push(b);
    }
    assert_eq!(
        kinds(&cfg, &d, &nights(7, 7)),
        [
            "new-destination a.example.net",
            "new-destination b.example.net",
            "new-destination c.example.net"
        ]
    );
    assert!(
        kinds(&cfg, &d, &nights(7, 3)).is_empty(),
        "seen on fewer than half of the nights: no habits yet"
    );
}

#[test]
fn gone_quiet_needs_pings_answered_on_most_nights() {
    let cfg = FindingsConfig::default();
    let mut d = tonight();
    d.night.ping_replies = 0;
    assert_eq!(kinds(&cfg, &d, &nights(7, 7)), ["gone-quiet "]);
    d.night.ping_requests = cfg.ping_unanswered_min - 1;
    assert!(
        kinds(&cfg, &d, &nights(7, 7)).is_empty(),
        "too few requests"
    );
    d.night.ping_requests = 100;
    let mut earlier = nights(7, 7);
    for n in earlier.iter_mut().take(4) {
        n.devices[0].ping_replies = 0;
    }
    assert!(kinds(&cfg, &d, &earlier).is_empty(), "answered on 3 of 7");
}

#[test]
fn a_device_on_no_earlier_night_is_new_and_nothing_else() {
    let cfg = FindingsConfig::default();
    let mut d = tonight();
    d.night.keys = vec!["mac:02:66:6f:73:74:66".into()];
    d.night.ping_replies = 0;
    assert_eq!(kinds(&cfg, &d, &nights(7, 7)), ["new-device "]);
}

#[test]
fn a_finding_there_on_most_nights_is_lowered() {
    let mut earlier = nights(7, 7);
    let f = Finding {
        rank: 60,
        sentence: "x.".into(),
        ..Finding::new("long-connection", "192.168.1.50", "192.0.2.9")
    };
    for n in earlier.iter_mut().take(3) {
        n.findings.push(f.id.clone());
    }
    let refs: Vec<&NightEntry> = earlier.iter().collect();
    let mut out = vec![f.clone()];
    lower_the_usual(&mut out, &refs, &[tonight()]);
    assert_eq!(out[0].rank, 60, "3 of 7 nights");
    earlier[3].findings.push(f.id.clone());
    let refs: Vec<&NightEntry> = earlier.iter().collect();
    lower_the_usual(&mut out, &refs, &[tonight()]);
    assert_eq!(out[0].rank, LOWEST_RANK, "4 of 7 nights");
    assert!(
        out[0]
            .sentence
            .ends_with("on 4 of the 7 earlier nights: part of the baseline.")
    );
    // A beacon to a name the printer talks to every night.
    let mut beacon = vec![Finding {
        rank: 60,
        remote_name: Some("updates.example.com".into()),
        ..Finding::new("beacon", "192.168.1.50", "198.51.100.81")
    }];
    lower_the_usual(&mut beacon, &refs, &[tonight()]);
    assert_eq!(beacon[0].rank, LOWEST_RANK);
}

#[test]
fn the_silent_hours_around_one() {
    let night = |x: usize| !(6..22).contains(&x);
    assert_eq!(silent_run(3, night), (22, 6));
    assert_eq!(silent_run(3, |x| (1..6).contains(&x)), (1, 6));
    let (from, to) = silent_run(3, |_| true);
    assert_eq!(from, to, "all day");
    assert_eq!(silent_run(3, |_| false), (3, 4), "that hour alone");
}
