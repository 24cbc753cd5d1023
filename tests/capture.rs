//! Live capture on real interfaces: each test makes its own pair of network
//! namespaces joined by a veth pair (10.77.0.1 in A, 10.77.0.2 in B), sends real
//! traffic between them and runs `netdigest capture` inside A on `veth-a`.
//! Traffic never leaves the two namespaces. Needs root, `ip`, `ping`, `setpriv`
//! and tshark; without root the tests are skipped (a failure under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

const ADDR_A: &str = "10.77.0.1";
const ADDR_B: &str = "10.77.0.2";

/// True when we may create namespaces (root with `ip`). Under `CI=true`, a failure otherwise.
fn can_netns() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let ip = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    let ok = root && ip;
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but the live-capture tests cannot run (need root and iproute2)"
        );
        eprintln!("SKIP: live-capture tests need root and iproute2");
    }
    ok
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces joined by a veth pair; removed on drop.
/// A running ping flood, killed on drop.
struct Flood(std::process::Child);

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Net {
    a: String,
    b: String,
}

impl Net {
    fn new(test: &str) -> Net {
        let id = format!("nd{}-{test}", std::process::id());
        let net = Net {
            a: format!("{id}-a"),
            b: format!("{id}-b"),
        };
        // Leftovers of an earlier run with the same pid: remove first.
        net.remove();
        sh(Command::new("ip").args(["netns", "add", &net.a]));
        sh(Command::new("ip").args(["netns", "add", &net.b]));
        net.make_link();
        net
    }

    /// (Re)creates veth-a (in A) and veth-b (in B) with their addresses, up.
    fn make_link(&self) {
        for ns in [&self.a, &self.b] {
            // No IPv6: no router solicitations or MLD reports in the captures.
            sh(Command::new("ip").args([
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]));
        }
        sh(Command::new("ip").args([
            "-n", &self.a, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b",
            "netns", &self.b,
        ]));
        sh(Command::new("ip").args([
            "-n",
            &self.a,
            "addr",
            "add",
            "10.77.0.1/24",
            "dev",
            "veth-a",
        ]));
        sh(Command::new("ip").args([
            "-n",
            &self.b,
            "addr",
            "add",
            "10.77.0.2/24",
            "dev",
            "veth-b",
        ]));
        self.link("up");
        sh(Command::new("ip").args(["-n", &self.b, "link", "set", "veth-b", "up"]));
    }

    fn link(&self, state: &str) {
        sh(Command::new("ip").args(["-n", &self.a, "link", "set", "veth-a", state]));
    }

    /// `ip netns exec A ...`
    /// A ping flood (1,200-byte echo requests, at most 30 s) from A to B, stopped when
    /// dropped.
    fn ping_flood(&self) -> Flood {
        Flood(
            self.in_a(&["ping", "-n", "-q", "-f", "-s", "1200", "-w", "30", ADDR_B])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    fn in_a(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.a]).args(args);
        c
    }

    /// `count` pings from A to B, one every 0.1 s; all must be answered.
    fn ping(&self, count: u32) {
        let out = self
            .in_a(&[
                "ping",
                "-n",
                "-q",
                "-c",
                &count.to_string(),
                "-i",
                "0.1",
                "-W",
                "2",
                ADDR_B,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ping failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn remove(&self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A running `netdigest capture` inside namespace A; killed on drop.
struct Capture {
    child: Option<Child>,
    state: PathBuf,
    log: PathBuf,
}

/// Environment for the capture: no config file, these `NETDIGEST_*` overrides.
fn capture_cmd(net: &Net, prefix: &[&str], args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut all: Vec<&str> = prefix.to_vec();
    all.push(env!("CARGO_BIN_EXE_netdigest"));
    all.push("capture");
    all.extend_from_slice(args);
    let mut c = net.in_a(&all);
    c.env_remove("NETDIGEST_LOG")
        .env("NETDIGEST_CONFIG", "/nonexistent/netdigest.toml");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

impl Capture {
    /// Starts `netdigest capture --interface veth-a --state DIR ARGS` in A (after `prefix`,
    /// e.g. a setpriv command line) and waits until capture.json says it is running.
    fn start(
        net: &Net,
        dir: &Path,
        prefix: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Capture {
        let state = dir.join("state");
        std::fs::create_dir_all(&state).unwrap();
        let log = dir.join("capture.log");
        let mut all = vec!["--interface", "veth-a", "--state", state.to_str().unwrap()];
        all.extend_from_slice(args);
        let child = capture_cmd(net, prefix, &all, env)
            .stdout(Stdio::null())
            .stderr(Stdio::from(File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        let mut c = Capture {
            child: Some(child),
            state,
            log,
        };
        c.wait_for("capture running", Duration::from_secs(20), |j| {
            j["status"] == "running"
        });
        c
    }

    /// The night directory of the latest capture (`<state>/nights/<date>`, which
    /// nightly makes).
    fn night_dir(&self) -> Option<PathBuf> {
        Some(
            self.state
                .join("nights")
                .join(self.capture_dir()?.file_name()?),
        )
    }

    /// Capture's folder of the latest night (`<state>/capture/<date>`).
    fn capture_dir(&self) -> Option<PathBuf> {
        let nights = self.state.join("capture");
        let mut v: Vec<PathBuf> = std::fs::read_dir(nights)
            .ok()?
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v.pop()
    }

    fn json(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.capture_dir()?.join("capture.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls capture.json until `ok` holds; panics (with the log) on timeout or early exit.
    fn wait_for(&mut self, what: &str, limit: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(j) = self.json()
                && ok(&j)
            {
                return j;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("capture exited ({st}) before {what}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}\n{:?}",
                self.log(),
                self.json()
            );
            sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        sh(Command::new("kill").args([sig, &pid]));
    }

    /// Waits (at most `limit`) for the capture to exit; returns its status and final capture.json.
    fn wait(&mut self, limit: Duration) -> (ExitStatus, Value) {
        let deadline = Instant::now() + limit;
        let mut child = self.child.take().unwrap();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                let j = self.json().unwrap_or(Value::Null);
                return (st, j);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("capture did not exit within {limit:?}:\n{}", self.log());
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status (must be 0) and the final capture.json.
    fn stop(&mut self) -> Value {
        self.signal("-TERM");
        let (st, j) = self.wait(Duration::from_secs(20));
        assert!(st.success(), "exit {st}:\n{}", self.log());
        assert_eq!(j["status"], "complete", "{j:#}");
        j
    }

    fn parts(&self) -> Vec<PathBuf> {
        let dir = self.capture_dir().unwrap();
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
            .collect();
        v.sort();
        v
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Frames in `files` matching a tshark display filter (asserting tshark reads each file cleanly).
fn count(files: &[PathBuf], display_filter: &str) -> u64 {
    let mut n = 0;
    for f in files {
        let mut args = vec![
            "-r",
            f.to_str().unwrap(),
            "-T",
            "fields",
            "-e",
            "frame.number",
        ];
        if !display_filter.is_empty() {
            args.extend(["-Y", display_filter]);
        }
        let o = common::tshark(&args);
        let err = common::stderr(&o);
        let real_err: Vec<&str> = err
            .lines()
            .filter(|l| !l.contains("Running as user") && !l.trim().is_empty())
            .collect();
        assert!(
            o.status.success() && real_err.is_empty(),
            "tshark on {}: {err}",
            f.display()
        );
        n += String::from_utf8_lossy(&o.stdout).lines().count() as u64;
    }
    n
}

fn u(j: &Value, path: &[&str]) -> u64 {
    let mut v = j;
    for p in path {
        v = &v[p];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("{path:?} missing in {j:#}"))
}

fn setup(test: &str) -> Option<(Net, PathBuf)> {
    if !can_netns() || !common::have_tshark() {
        return None;
    }
    Some((Net::new(test), common::tmpdir(&format!("capture-{test}"))))
}

#[test]
fn pings_are_captured_exactly_with_filter_icmp() {
    let Some((net, dir)) = setup("pings") else {
        return;
    };
    let mut cap = Capture::start(
        &net,
        &dir,
        &[],
        &["--for", "2m"],
        &[("NETDIGEST_CAPTURE__FILTER", "icmp")],
    );
    net.ping(7);
    let j = cap.stop();
    let files = cap.parts();
    assert_eq!(files.len(), 1, "{files:?}");
    let req = format!("icmp.type == 8 && ip.src == {ADDR_A} && ip.dst == {ADDR_B}");
    let rep = format!("icmp.type == 0 && ip.src == {ADDR_B} && ip.dst == {ADDR_A}");
    assert_eq!(count(&files, &req), 7);
    assert_eq!(count(&files, &rep), 7);
    assert_eq!(count(&files, ""), 14, "nothing else");
    // What the report reads, and our own counters.
    assert_eq!(j["interface"], "veth-a");
    assert_eq!(
        j["own_addresses"],
        serde_json::json!([ADDR_A]),
        "the capturing interface's address, recorded at the start"
    );
    assert_eq!(j["filter"], "icmp");
    assert_eq!(u(&j, &["stats", "received"]), 14, "{j:#}");
    assert_eq!(u(&j, &["stats", "dropped_kernel"]), 0);
    assert_eq!(u(&j, &["stats", "dropped_interface"]), 0);
    assert_eq!(u(&j, &["stats", "dropped_queue"]), 0);
    assert_eq!(u(&j, &["stats", "written"]), 14);
    assert_eq!(j["stop_reason"], "SIGTERM");
    assert_eq!(j["link_type"], 1);
    assert_eq!(j["files"][0]["name"], "part-0001.pcap");
    assert_eq!(j["files"][0]["packets"], 14);
    assert_eq!(j["files"][0]["complete"], true);
    assert!(j["gaps"].as_array().unwrap().is_empty(), "{j:#}");
    assert!(!j["samples"].as_array().unwrap().is_empty());
    // <night> is a local date.
    let night = cap.night_dir().unwrap();
    let name = night.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        chrono::NaiveDate::parse_from_str(&name, "%Y-%m-%d").is_ok(),
        "{name}"
    );
    assert_eq!(j["night"], name.as_str());
}

#[test]
fn filter_matching_nothing_gives_an_empty_valid_capture_and_for_ends_it() {
    let Some((net, dir)) = setup("empty") else {
        return;
    };
    let mut cap = Capture::start(
        &net,
        &dir,
        &[],
        &["--for", "3s"],
        &[("NETDIGEST_CAPTURE__FILTER", "udp port 9")],
    );
    net.ping(3);
    let (st, j) = cap.wait(Duration::from_secs(30));
    assert!(st.success(), "{st}: {}", cap.log());
    assert_eq!(j["status"], "complete");
    assert_eq!(j["stop_reason"], "duration");
    let files = cap.parts();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(common::tshark_frames(&files[0]), Some(0));
    assert_eq!(count(&files, ""), 0);
    assert_eq!(u(&j, &["stats", "received"]), 0);
    assert_eq!(u(&j, &["stats", "written"]), 0);
}

#[test]
fn sigterm_during_a_flood_leaves_valid_rotated_files_with_every_counted_packet() {
    let Some((net, dir)) = setup("sigterm") else {
        return;
    };
    // Big records and 1 MiB parts, so a second of flood rotates several times.
    let mut cap = Capture::start(
        &net,
        &dir,
        &[],
        &["--for", "2m"],
        &[
            ("NETDIGEST_CAPTURE__SNAPLEN", "1500"),
            ("NETDIGEST_CAPTURE__ROTATE_MB", "1"),
        ],
    );
    let flood = net.ping_flood();
    // Wait until a few parts exist, then stop in the middle of the flood.
    let deadline = Instant::now() + Duration::from_secs(20);
    while cap.parts().len() < 3 {
        assert!(Instant::now() < deadline, "no rotation: {}", cap.log());
        sleep(Duration::from_millis(50));
    }
    let j = cap.stop();
    drop(flood);
    let files = cap.parts();
    assert!(files.len() >= 3, "{files:?}");
    let in_files = count(&files, "");
    let s = |k: &str| u(&j, &["stats", k]);
    assert!(in_files > 1000, "{in_files}");
    assert_eq!(in_files, s("written"), "{j:#}");
    assert_eq!(
        in_files + s("dropped_queue") + s("dropped_disk"),
        s("received") - s("dropped_kernel"),
        "every packet libpcap counted (and did not drop) is in the files: {j:#}"
    );
    let listed: u64 = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["packets"].as_u64().unwrap())
        .sum();
    assert_eq!(listed, in_files);
    assert_eq!(j["files"].as_array().unwrap().len(), files.len());
    for f in &files {
        assert!(
            std::fs::metadata(f).unwrap().len() <= 1024 * 1024 + 256 * 1024 + 4096,
            "{} exceeds the rotation size by more than a batch",
            f.display()
        );
    }
}

#[test]
fn the_nights_disk_cap_stops_writing_but_not_counting() {
    let Some((net, dir)) = setup("diskcap") else {
        return;
    };
    let mut cap = Capture::start(
        &net,
        &dir,
        &[],
        &["--for", "2m"],
        &[
            ("NETDIGEST_CAPTURE__SNAPLEN", "1500"),
            ("NETDIGEST_CAPTURE__ROTATE_MB", "1"),
            ("NETDIGEST_CAPTURE__MAX_DISK_MB", "2"),
        ],
    );
    let flood = net.ping_flood();
    let j = cap.wait_for("the disk cap", Duration::from_secs(30), |j| {
        j["disk"]["cap_reached_at"].is_string()
    });
    assert_eq!(j["status"], "running", "the capture goes on");
    sleep(Duration::from_millis(500));
    let j = cap.stop();
    drop(flood);
    let files = cap.parts();
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(bytes <= 2 * 1024 * 1024, "{bytes} bytes on disk");
    assert!(bytes > 1024 * 1024, "{bytes} bytes on disk");
    let s = |k: &str| u(&j, &["stats", k]);
    assert!(s("dropped_disk") > 0, "{j:#}");
    assert_eq!(count(&files, ""), s("written"));
    assert_eq!(
        s("written") + s("dropped_disk") + s("dropped_queue"),
        s("received") - s("dropped_kernel"),
        "{j:#}"
    );
    assert!(cap.log().contains("max_disk_mb"), "{}", cap.log());
}

#[test]
fn link_down_and_up_is_a_recorded_gap_and_capture_goes_on() {
    let Some((net, dir)) = setup("linkdown") else {
        return;
    };
    let mut cap = Capture::start(
        &net,
        &dir,
        &[],
        &["--for", "2m"],
        &[("NETDIGEST_CAPTURE__FILTER", "icmp")],
    );
    net.ping(3);
    net.link("down");
    cap.wait_for("gap start", Duration::from_secs(10), |j| {
        j["gaps"]
            .as_array()
            .is_some_and(|g| g.len() == 1 && g[0]["end"].is_null())
    });
    net.link("up");
    cap.wait_for("gap end", Duration::from_secs(10), |j| {
        j["gaps"]
            .as_array()
            .is_some_and(|g| g.len() == 1 && g[0]["end"].is_string())
    });
    net.ping(4);
    let j = cap.stop();
    let files = cap.parts();
    let req = format!("icmp.type == 8 && ip.src == {ADDR_A}");
    assert_eq!(count(&files, &req), 7, "pings before and after the gap");
    let gaps = j["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{j:#}");
    assert!(
        gaps[0]["reason"].as_str().unwrap().contains("down"),
        "{j:#}"
    );
    assert!(gaps[0]["seconds"].as_f64().unwrap() > 0.0);
    assert!(gaps[0]["start"].as_str() < gaps[0]["end"].as_str());
}

#[test]
fn interface_that_vanishes_and_returns_is_reopened() {
    let Some((net, dir)) = setup("vanish") else {
        return;
    };
    let mut cap = Capture::start(
        &net,
        &dir,
        &[],
        &["--for", "2m"],
        &[("NETDIGEST_CAPTURE__FILTER", "icmp")],
    );
    net.ping(3);
    // The USB adapter is pulled: the interface is gone.
    sh(Command::new("ip").args(["-n", &net.a, "link", "del", "veth-a"]));
    cap.wait_for("gap start", Duration::from_secs(10), |j| {
        j["gaps"].as_array().is_some_and(|g| g.len() == 1)
    });
    net.make_link();
    cap.wait_for("gap end", Duration::from_secs(30), |j| {
        j["gaps"]
            .as_array()
            .is_some_and(|g| g.len() == 1 && g[0]["end"].is_string())
    });
    net.ping(4);
    let j = cap.stop();
    let req = format!("icmp.type == 8 && ip.src == {ADDR_A}");
    assert_eq!(count(&cap.parts(), &req), 7, "{j:#}");
    assert!(
        cap.log().contains("resumed"),
        "the log says the capture resumed:\n{}",
        cap.log()
    );
}

const SETPRIV_NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

fn chown_nobody(dir: &Path) {
    sh(Command::new("chown").args(["-R", "65534:65534", dir.to_str().unwrap()]));
}

#[test]
fn unprivileged_with_only_cap_net_raw_captures_in_promiscuous_mode() {
    let Some((net, dir)) = setup("capraw") else {
        return;
    };
    std::fs::create_dir_all(dir.join("state")).unwrap();
    chown_nobody(&dir);
    let mut prefix = SETPRIV_NOBODY.to_vec();
    prefix.extend(["--inh-caps=+net_raw", "--ambient-caps=+net_raw"]);
    let mut cap = Capture::start(
        &net,
        &dir,
        &prefix,
        &["--for", "2m"],
        &[
            ("NETDIGEST_CAPTURE__FILTER", "icmp"),
            ("NETDIGEST_CAPTURE__PROMISCUOUS", "true"),
        ],
    );
    net.ping(3);
    let j = cap.stop();
    let req = format!("icmp.type == 8 && ip.src == {ADDR_A}");
    assert_eq!(count(&cap.parts(), &req), 3, "{j:#}");
    assert_eq!(j["promiscuous"], true);
    let owner = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(owner.contains("Uid:\t0"), "the test itself runs as root");
}

#[test]
fn without_cap_net_raw_the_error_names_it_and_how_to_grant_it() {
    let Some((net, dir)) = setup("nocap") else {
        return;
    };
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    chown_nobody(&dir);
    let mut prefix = SETPRIV_NOBODY.to_vec();
    prefix.push("--inh-caps=-all");
    let out = capture_cmd(
        &net,
        &prefix,
        &[
            "--for",
            "5s",
            "--interface",
            "veth-a",
            "--state",
            state.to_str().unwrap(),
        ],
        &[],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for needle in [
        "CAP_NET_RAW",
        "AmbientCapabilities=CAP_NET_RAW",
        "setcap cap_net_raw+ep",
        "veth-a",
    ] {
        assert!(err.contains(needle), "{needle:?} missing in: {err}");
    }
    assert!(!state.join("capture").exists(), "nothing written");
}

#[test]
fn bad_filter_is_refused_with_libpcaps_message() {
    // At validation time (check-config), no privileges or interface needed.
    let e = netdigest::capture::validate_filter("icmpp and", "wlan0").unwrap_err();
    assert!(e.to_string().contains("syntax error"), "{e}");
    netdigest::capture::validate_filter("icmp or (udp and port 53)", "any").unwrap();
    netdigest::capture::validate_filter("", "eth0").unwrap();
    // At start.
    let Some((net, dir)) = setup("badfilter") else {
        return;
    };
    let state = dir.join("state");
    let out = capture_cmd(
        &net,
        &[],
        &[
            "--for",
            "5s",
            "--interface",
            "veth-a",
            "--state",
            state.to_str().unwrap(),
        ],
        &[("NETDIGEST_CAPTURE__FILTER", "icmpp and")],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("capture.filter"), "{err}");
    assert!(err.contains("icmpp and"), "{err}");
    assert!(err.contains("syntax error"), "{err}");
    assert!(!state.join("capture").exists());
}

/// `HH:MM` of `now + minutes` in UTC.
fn hhmm_from_now(minutes: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(minutes))
        .format("%H:%M")
        .to_string()
}

#[test]
fn outside_the_window_exits_zero_and_captures_nothing() {
    if !can_netns() {
        return;
    }
    let dir = common::tmpdir("capture-outside");
    let out = common::bin()
        .args([
            "capture",
            "--interface",
            "lo",
            "--state",
            dir.to_str().unwrap(),
        ])
        .env("NETDIGEST_CAPTURE__TIMEZONE", "UTC")
        .env("NETDIGEST_CAPTURE__START", hhmm_from_now(120))
        .env("NETDIGEST_CAPTURE__END", hhmm_from_now(180))
        .output()
        .unwrap();
    let err = common::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("outside the capture window"), "{err}");
    assert!(!dir.join("capture").exists(), "nothing written");
}

#[test]
fn started_late_inside_the_configured_window_captures_until_its_end() {
    let Some((net, dir)) = setup("late") else {
        return;
    };
    // The window began an hour ago (the Pi booted late) and ends in two hours.
    let start = hhmm_from_now(-60);
    let end = hhmm_from_now(120);
    let started_at = chrono::Utc::now() - chrono::Duration::minutes(60);
    let mut cap = Capture::start(
        &net,
        &dir,
        &[],
        &[],
        &[
            ("NETDIGEST_CAPTURE__TIMEZONE", "UTC"),
            ("NETDIGEST_CAPTURE__START", &start),
            ("NETDIGEST_CAPTURE__END", &end),
        ],
    );
    let j = cap.json().unwrap();
    assert_eq!(j["window"]["source"], "config", "{j:#}");
    assert_eq!(j["window"]["timezone"], "UTC");
    let win_end =
        chrono::DateTime::parse_from_rfc3339(j["window"]["end"].as_str().unwrap()).unwrap();
    let left = win_end.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(115) && left <= chrono::Duration::minutes(121),
        "ends at the window's end: {j:#}"
    );
    let win_start =
        chrono::DateTime::parse_from_rfc3339(j["window"]["start"].as_str().unwrap()).unwrap();
    let ago = chrono::Utc::now() - win_start.with_timezone(&chrono::Utc);
    assert!(
        ago > chrono::Duration::minutes(59) && ago <= chrono::Duration::minutes(61),
        "the configured start, an hour ago: {j:#}"
    );
    assert!(j["started"].as_str() > j["window"]["start"].as_str());
    // <night> is the local date the window started.
    let night = started_at.format("%Y-%m-%d").to_string();
    assert_eq!(j["night"], night.as_str(), "{j:#}");
    net.ping(2);
    let j = cap.stop();
    assert_eq!(u(&j, &["stats", "written"]), u(&j, &["stats", "received"]));
}

#[test]
fn a_second_run_the_same_night_continues_and_keeps_the_first() {
    let Some((net, dir)) = setup("rerun") else {
        return;
    };
    let env = [("NETDIGEST_CAPTURE__FILTER", "icmp")];
    let mut first = Capture::start(&net, &dir, &[], &["--for", "2m"], &env);
    net.ping(2);
    let j1 = first.stop();
    let night1 = first.night_dir().unwrap();
    let mut second = Capture::start(&net, &dir, &[], &["--for", "2m"], &env);
    net.ping(3);
    let j2 = second.stop();
    assert_eq!(second.night_dir().unwrap(), night1, "same night");
    let files = second.parts();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["part-0001.pcap", "part-0002.pcap"],
        "nothing overwritten"
    );
    assert_eq!(u(&j1, &["stats", "written"]), 4);
    assert_eq!(u(&j2, &["stats", "written"]), 10, "night totals: {j2:#}");
    assert_eq!(u(&j2, &["stats", "received"]), 10);
    assert_eq!(j2["previous_runs"].as_array().unwrap().len(), 1);
    assert_eq!(j2["files"].as_array().unwrap().len(), 2);
    let gaps = j2["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "the time between the runs: {j2:#}");
    assert!(gaps[0]["reason"].as_str().unwrap().contains("not running"));
    assert_eq!(count(&files, "icmp.type == 8"), 5);
}

/// Two captures of one night: the second refuses at once (one line naming the other
/// process, exit 1) and writes nothing; the first goes on, its part intact.
#[test]
fn a_second_capture_of_the_same_night_is_refused() {
    let Some((net, dir)) = setup("twice") else {
        return;
    };
    let env = [("NETDIGEST_CAPTURE__FILTER", "icmp")];
    let mut first = Capture::start(&net, &dir, &[], &["--for", "2m"], &env);
    net.ping(2);
    let state = dir.join("state");
    let args = [
        "--interface",
        "veth-a",
        "--state",
        state.to_str().unwrap(),
        "--for",
        "2m",
    ];
    let out = capture_cmd(&net, &[], &args, &env).output().unwrap();
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("being captured by another netdigest process"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("(pid "), "{err}");
    net.ping(3);
    let j = first.stop();
    let files = first.parts();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["part-0001.pcap"], "the second run wrote nothing");
    assert_eq!(u(&j, &["stats", "written"]), 10, "{j:#}");
    assert_eq!(count(&files, "icmp.type == 8"), 5);
}

/// The state directory fills up during a flood: the capture cuts its part back to the
/// last whole record, and every part converts with no damage and no cut-short warning.
#[test]
fn a_full_disk_leaves_parts_that_read_cleanly() {
    let Some((net, dir)) = setup("fulldisk") else {
        return;
    };
    let Some(_fs) = common::Tmpfs::mount(&dir.join("state"), 3) else {
        return;
    };
    let mut cap = Capture::start(
        &net,
        &dir,
        &[],
        &["--for", "2m"],
        &[
            ("NETDIGEST_CAPTURE__SNAPLEN", "1500"),
            ("NETDIGEST_CAPTURE__ROTATE_MB", "1"),
            // No floor: the disk must really fill (the floor has its own tests).
            ("NETDIGEST_CAPTURE__MIN_FREE_MB", "0"),
        ],
    );
    let flood = net.ping_flood();
    let deadline = Instant::now() + Duration::from_secs(25);
    while !cap.log().contains("No space left") {
        assert!(
            Instant::now() < deadline,
            "the disk never filled: {}",
            cap.log()
        );
        sleep(Duration::from_millis(50));
    }
    drop(flood);
    cap.signal("-TERM");
    // Exit 0, or 1 when the final capture.json found no room: the parts are what counts.
    let _ = cap.wait(Duration::from_secs(20));
    assert!(
        cap.log().contains("cut back to its last whole record"),
        "{}",
        cap.log()
    );
    let files: Vec<PathBuf> = cap
        .parts()
        .into_iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() > 24)
        .collect();
    assert!(!files.is_empty());
    let in_files = count(&files, "");
    assert!(in_files > 1000, "{in_files}");
    let out = dir.join("check.parquet");
    let mut args = vec!["convert".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend(["-o".to_string(), out.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = common::run(&args);
    let err = common::stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("before it") && !err.contains("before the damage") && !err.contains("WARN"),
        "{err}"
    );
    assert!(
        err.contains(&format!("converted {in_files} packets")),
        "{err}"
    );
}

#[test]
fn check_capture_for_doctor() {
    if !can_netns() {
        return;
    }
    let cfg = netdigest::config::Config::default();
    assert!(netdigest::capture::check_capture(&cfg, Some("lo")).unwrap());
    let e = netdigest::capture::check_capture(&cfg, Some("nd-nosuch0")).unwrap_err();
    assert!(e.to_string().contains("no interface \"nd-nosuch0\""), "{e}");
    assert!(
        e.to_string().contains("lo"),
        "lists the interfaces present: {e}"
    );
    let exit = |e: netdigest::capture::CaptureError| netdigest::exit::of_error(&e.into());
    assert_eq!(exit(e), netdigest::exit::Exit::Failed);
    let mut bad = cfg.clone();
    bad.capture.filter = "port 99999".into();
    let e = netdigest::capture::check_capture(&bad, Some("lo")).unwrap_err();
    assert!(e.to_string().contains("port 99999"), "{e}");
    assert_eq!(exit(e), netdigest::exit::Exit::Usage);
}

#[test]
fn below_the_disk_floor_nothing_is_written_and_the_report_says_so() {
    let Some((net, dir)) = setup("floor") else {
        return;
    };
    let Some(fs) = common::Tmpfs::mount(&dir.join("state"), 16) else {
        return;
    };
    let mut cap = Capture::start(
        &net,
        &dir,
        &[],
        &["--for", "4s"],
        &[("NETDIGEST_CAPTURE__MIN_FREE_MB", "64")],
    );
    net.ping(5);
    let (st, j) = cap.wait(Duration::from_secs(30));
    assert!(st.success(), "exits cleanly: {st}: {}", cap.log());
    assert_eq!(j["status"], "complete", "{j:#}");
    let stop = &j["disk"]["stopped_low_disk"];
    assert!(stop["at"].is_string(), "{j:#}");
    assert!(
        u(&j, &["disk", "stopped_low_disk", "free_mb"]) <= 16,
        "{j:#}"
    );
    assert_eq!(u(&j, &["disk", "min_free_mb"]), 64);
    assert_eq!(u(&j, &["schema_version"]), 3);
    assert!(j["write_error"].is_null(), "{j:#}");
    let s = |k: &str| u(&j, &["stats", k]);
    assert!(s("received") >= 10, "the pings were seen: {j:#}");
    assert_eq!(s("written"), 0, "{j:#}");
    assert_eq!(
        s("written") + s("dropped_disk") + s("dropped_queue"),
        s("received") - s("dropped_kernel"),
        "counted, not kept: {j:#}"
    );
    // The part has its header only: the night still converts, and its report says why.
    let files = cap.parts();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(count(&files, ""), 0);
    assert!(cap.log().contains("capture.min_free_mb"), "{}", cap.log());

    let out = common::bin()
        .args(["nightly", "--state"])
        .arg(&fs.0)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = std::fs::read_to_string(cap.night_dir().unwrap().join("report/email.txt")).unwrap();
    assert!(
        text.contains("Capture stopped writing at ")
            && text.contains("MiB free (below capture.min_free_mb, 64 MiB): later packets were counted but not kept"),
        "{text}"
    );
    drop(cap);
}

#[test]
fn the_disk_floor_stops_a_flood_before_the_disk_fills() {
    let Some((net, dir)) = setup("floorflood") else {
        return;
    };
    let Some(fs) = common::Tmpfs::mount(&dir.join("state"), 40) else {
        return;
    };
    let mut cap = Capture::start(
        &net,
        &dir,
        &[],
        &["--for", "2m"],
        &[
            ("NETDIGEST_CAPTURE__SNAPLEN", "1500"),
            ("NETDIGEST_CAPTURE__MIN_FREE_MB", "28"),
        ],
    );
    let flood = net.ping_flood();
    let j = cap.wait_for("the disk floor", Duration::from_secs(40), |j| {
        j["disk"]["stopped_low_disk"].is_object()
    });
    assert_eq!(j["status"], "running", "the capture goes on counting");
    sleep(Duration::from_millis(500));
    let j = cap.stop();
    drop(flood);
    let free = fs.free_mib();
    let recorded = u(&j, &["disk", "stopped_low_disk", "free_mb"]);
    assert!(recorded < 28, "{j:#}");
    eprintln!(
        "40 MiB tmpfs, floor 28 MiB: stopped with {recorded} MiB free, {free} MiB free at the end, {} packets written",
        u(&j, &["stats", "written"])
    );
    // Checked every 4 MiB written (and every second): the floor is barely crossed.
    assert!(free >= 20, "{free} MiB left on the 40 MiB disk: {j:#}");
    assert!(j["write_error"].is_null(), "{j:#}");
    let files = cap.parts();
    let s = |k: &str| u(&j, &["stats", k]);
    assert!(s("written") > 1000 && s("dropped_disk") > 0, "{j:#}");
    assert_eq!(count(&files, ""), s("written"));
    assert_eq!(
        s("written") + s("dropped_disk") + s("dropped_queue"),
        s("received") - s("dropped_kernel"),
        "{j:#}"
    );
}
