//! The baseline across nights end to end: a sequence of synthetic nights (synth's
//! `night_sequence`, each with its own seed) through `pipeline::run` with a state
//! directory. The first 7 nights learn (and say so), the next 7 ordinary ones give no
//! finding above the lowest rank (the false positives, counted per kind), and a last
//! night with planted activities and a new device gives each of the baseline's findings
//! with the right sentence, while a beacon there every night is ranked low (and a new
//! one is not).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::tmpdir;
use netdigest::analyse::Summary;
use netdigest::analyse::findings::{Finding, LOWEST_RANK};
use netdigest::config::Config;
use netdigest::layout;
use netdigest::pipeline::{RunOptions, run};
use synth::{
    Activity, Awake, Beacon, Device, GroundTruth, NewDestination, NightSpec, Nights, VolumeSpike,
    night_sequence, since_22h,
};

const LEARN: usize = 7;
const ORDINARY: usize = 7;

fn config() -> Config {
    let mut cfg = Config::default();
    cfg.capture.timezone = Some("Europe/Berlin".parse().unwrap());
    cfg
}

/// Generates `spec` and runs it as a night of the state directory.
fn night(
    state: &Path,
    i: usize,
    spec: &NightSpec,
    cfg: &Config,
) -> (Summary, PathBuf, GroundTruth) {
    let pcap = state.join(format!("night-{i}.pcap"));
    let truth = synth::write_night_file(&pcap, spec).unwrap();
    let day = chrono::DateTime::from_timestamp_nanos(spec.start_ts_ns)
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive();
    let dir = layout::nights_dir(state).join(layout::night_name(day));
    let opts = RunOptions {
        state_dir: Some(state.to_path_buf()),
        ..RunOptions::default()
    };
    let o = run(std::slice::from_ref(&pcap), &dir, cfg, &opts).unwrap();
    std::fs::remove_file(&pcap).unwrap();
    (o.summary, dir, truth)
}

fn above_lowest(s: &Summary) -> Vec<&Finding> {
    s.findings.iter().filter(|f| f.rank > LOWEST_RANK).collect()
}

fn one<'a>(s: &'a Summary, kind: &str, device: Device) -> &'a Finding {
    let ip = device.ipv4().to_string();
    let found: Vec<&Finding> = s
        .findings
        .iter()
        .filter(|f| f.kind == kind && f.device == ip)
        .collect();
    assert_eq!(found.len(), 1, "{kind} of {ip}: {:#?}", s.findings);
    found[0]
}

fn email_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("report").join("email.txt")).unwrap()
}

fn every_night_beacon() -> Activity {
    Activity::Beacon(Beacon::new(
        Device::Tablet,
        "cdn-sync.example-beacon.net",
        300,
    ))
}

fn planted() -> Vec<Activity> {
    vec![
        Activity::Awake(Awake::new(
            Device::Printer,
            "upload.example-print.net",
            since_22h(3, 10),
            40_000_000,
        )),
        Activity::NewDestination(NewDestination::new(
            Device::Tv,
            "new.example-destination.org",
            since_22h(22, 50),
        )),
        Activity::VolumeSpike(VolumeSpike::new(Device::Laptop, 1000)),
        Activity::NoPingReplies(Device::Printer),
        // A beacon on this night only, to a name never contacted: not lowered.
        Activity::Beacon(Beacon::new(Device::BenPhone, "c2.example-once.org", 300)),
    ]
}

#[test]
fn seven_nights_learn_seven_ordinary_ones_stay_quiet_and_the_planted_night_is_found() {
    let state = tmpdir("baseline-sequence");
    let cfg = config();
    let last = LEARN + ORDINARY;
    let plan = vec![(Nights::Every, every_night_beacon())];
    let mut specs = night_sequence(&NightSpec::demo(), last + 1, &plan);
    specs[last].activities.extend(planted());
    specs[last].hostile_names = true;

    // Learning: nights 1..=7 say so, and compare nothing.
    for (i, spec) in specs.iter().enumerate().take(LEARN) {
        let (s, dir, _) = night(&state, i, spec, &cfg);
        for f in above_lowest(&s) {
            eprintln!(
                "night {:2} {:3} {:16} {}",
                i + 1,
                f.rank,
                f.kind,
                f.sentence
            );
        }
        let b = s
            .baseline
            .clone()
            .expect("a baseline status with a state directory");
        assert!(b.learning, "night {}: {b:?}", i + 1);
        assert_eq!(b.message(), format!("learning: {} of 7 nights", i + 1));
        assert!(
            email_text(&dir).contains(&format!("Baseline learning: {} of 7 nights", i + 1)),
            "{}",
            email_text(&dir)
        );
        assert!(
            s.findings
                .iter()
                .all(|f| !netdigest::analyse::findings::BASELINE_KINDS.contains(&f.kind.as_str())),
            "night {}: {:#?}",
            i + 1,
            s.findings
        );
    }

    // Ordinary nights once the baseline is learnt: nothing above the lowest rank; the
    // beacon planted on every night is part of the baseline.
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut above: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate().take(last).skip(LEARN) {
        let (s, dir, _) = night(&state, i, spec, &cfg);
        let b = s.baseline.clone().unwrap();
        assert!(!b.learning, "{b:?}");
        assert!(!email_text(&dir).contains("learning"));
        for f in &s.findings {
            *per_kind.entry(f.kind.clone()).or_default() += 1;
            eprintln!(
                "night {:2} {:3} {:16} {}",
                i + 1,
                f.rank,
                f.kind,
                f.sentence
            );
            if f.rank > LOWEST_RANK {
                above.push(format!("night {}: {} {}", i + 1, f.kind, f.sentence));
            }
        }
        let beacon = one(&s, "beacon", Device::Tablet);
        assert_eq!(beacon.rank, LOWEST_RANK, "{beacon:#?}");
        assert!(
            beacon.sentence.contains("part of the baseline"),
            "{}",
            beacon.sentence
        );
    }
    eprintln!(
        "findings on {ORDINARY} ordinary nights after {LEARN} learning nights, per kind: {per_kind:?}"
    );
    assert!(above.is_empty(), "{above:#?}");

    // The planted night.
    let (s, dir, truth) = night(&state, last, &specs[last], &cfg);
    for f in &s.findings {
        eprintln!("planted {:3} {:16} {}", f.rank, f.kind, f.sentence);
    }
    check_planted(&s, &truth);
    let text = email_text(&dir);
    let tonight = text
        .split("Tonight\n-------\n")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    assert!(tonight.contains("upload.example-print.net"), "{tonight}");
    assert!(
        !tonight.contains("cdn-sync.example-beacon.net"),
        "the usual beacon: {tonight}"
    );

    // Analysing the night again gives the same answer (its own entry is replaced).
    let (again, _, _) = night(&state, last, &specs[last], &cfg);
    let ids = |s: &Summary| -> Vec<(String, u8)> {
        s.findings.iter().map(|f| (f.id.clone(), f.rank)).collect()
    };
    assert_eq!(ids(&again), ids(&s));
    assert_eq!(again.baseline, s.baseline);

    // A corrupt baseline is moved aside, the night goes on, and learning starts again.
    let file = layout::baseline_file(&state);
    std::fs::write(&file, b"{\"version\": 1, \"nights\": [").unwrap();
    let (fresh, dir, _) = night(&state, last, &specs[last], &cfg);
    let b = fresh.baseline.clone().unwrap();
    assert!(b.learning && b.nights == 1, "{b:?}");
    assert!(dir.join("report").join("report.eml").exists());
    let aside = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("baseline.json.corrupt-")
        })
        .count();
    assert_eq!(aside, 1);
    std::fs::remove_dir_all(&state).unwrap();
}

fn check_planted(s: &Summary, truth: &GroundTruth) {
    let p = |kind: &str| {
        truth
            .planted
            .iter()
            .find(|p| p.activity.kind() == kind)
            .unwrap()
    };
    // Awake at an unusual hour.
    let f = one(s, "awake", Device::Printer);
    assert!(f.rank > LOWEST_RANK);
    let awake = p("awake");
    let sent = awake.contacts[0].up_bytes as f64;
    assert!(
        f.sentence.starts_with(&format!(
            "brother-printer (192.168.1.50) sent {:.1} MB at 03:10, mostly with upload.example-print.net (192.0.2.",
            f.numbers["sent"] / 1e6
        )) && f.sentence.contains("; it is usually silent between "),
        "{}",
        f.sentence
    );
    assert!(
        f.numbers["sent"] >= sent && f.numbers["sent"] < sent * 1.1,
        "{:?}",
        f.numbers
    );
    assert_eq!(f.numbers["hour"], 3.0);

    // A new destination (the TV's), with its volume.
    let f = one(s, "new-destination", Device::Tv);
    assert!(f.rank > LOWEST_RANK);
    assert_eq!(f.remote, "new.example-destination.org");
    assert!(
        f.sentence.starts_with("kitchen-tv (192.168.1.40) talked to new.example-destination.org for the first time in 14 nights: "),
        "{}",
        f.sentence
    );
    let nd = p("new-destination");
    let planted_bytes = (nd.contacts[0].up_bytes + nd.contacts[0].down_bytes) as f64;
    assert!(
        f.numbers["bytes"] >= planted_bytes,
        "{} < {planted_bytes}",
        f.numbers["bytes"]
    );

    // The laptop's volume spike.
    let f = one(s, "volume-spike", Device::Laptop);
    assert!(f.rank > LOWEST_RANK);
    assert!(f.numbers["ratio"] > 5.0, "{:?}", f.numbers);
    assert!(
        f.sentence
            .starts_with("LAPTOP-K7Q2M9 (192.168.1.30) moved ")
            && f.sentence.contains("times its median of"),
        "{}",
        f.sentence
    );

    // The printer gone quiet.
    let f = one(s, "gone-quiet", Device::Printer);
    assert!(f.rank > LOWEST_RANK);
    assert!(
        f.sentence.contains("answered none of the")
            && f.sentence
                .contains("it answered pings on 14 of the 14 earlier nights"),
        "{}",
        f.sentence
    );

    // The new device (the generator's hostile-names device, only on this night).
    let new: Vec<&Finding> = s
        .findings
        .iter()
        .filter(|f| f.kind == "new-device")
        .collect();
    assert_eq!(new.len(), 1, "{:#?}", s.findings);
    assert!(
        new[0].sentence.starts_with("new device: ")
            && new[0]
                .sentence
                .contains("private address, 192.168.1.66, 02:66:6f:73:74:66, first seen "),
        "{}",
        new[0].sentence
    );
    assert!(new[0].rank > LOWEST_RANK);

    // The new beacon stays high, and its name is a new destination.
    let f = one(s, "beacon", Device::BenPhone);
    assert!(
        f.rank > LOWEST_RANK && !f.sentence.contains("baseline"),
        "{f:#?}"
    );
    assert_eq!(
        one(s, "new-destination", Device::BenPhone).remote,
        "c2.example-once.org"
    );

    // Controls: the every-night beacon is usual; devices that did nothing new are quiet.
    assert_eq!(one(s, "beacon", Device::Tablet).rank, LOWEST_RANK);
    for d in [Device::AnnaPhone, Device::Thermostat, Device::Tablet] {
        let ip = d.ipv4().to_string();
        let loud: Vec<&Finding> = above_lowest(s)
            .into_iter()
            .filter(|f| f.device == ip)
            .collect();
        assert!(loud.is_empty(), "{loud:#?}");
    }
}

/// More false-positive nights: sequences from other seeds (no planted activity), 7
/// learning nights then 7 compared ones each; nothing above the lowest rank.
#[test]
fn ordinary_sequences_from_other_seeds_stay_quiet_once_learnt() {
    let cfg = config();
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut above: Vec<String> = Vec::new();
    let seeds: Vec<u64> = std::env::var("BASELINE_SEEDS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![11, 12]);
    for seed in &seeds {
        let state = tmpdir(&format!("baseline-seed-{seed}"));
        let base = NightSpec {
            seed: *seed,
            ..NightSpec::demo()
        };
        for (i, spec) in night_sequence(&base, LEARN + ORDINARY, &[])
            .iter()
            .enumerate()
        {
            let (s, _, _) = night(&state, i, spec, &cfg);
            if i < LEARN {
                continue;
            }
            for f in &s.findings {
                *per_kind.entry(f.kind.clone()).or_default() += 1;
                if f.kind != "unanswered-pings" {
                    eprintln!("seed {seed} night {:2} {:3} {}", i + 1, f.rank, f.sentence);
                }
                if f.rank > LOWEST_RANK {
                    above.push(format!(
                        "seed {seed} night {}: {} {}",
                        i + 1,
                        f.kind,
                        f.sentence
                    ));
                }
            }
        }
        std::fs::remove_dir_all(&state).unwrap();
    }
    eprintln!(
        "findings on {} ordinary nights (seeds {seeds:?}, after {LEARN} learning nights each), per kind: {per_kind:?}",
        seeds.len() * ORDINARY
    );
    assert!(above.is_empty(), "{above:#?}");
}
