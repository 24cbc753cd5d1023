//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod smtp;

/// Reads `file` with netdigest's reader and decodes every frame as convert does
/// (numbered from 1), handing each record and its captured bytes to `f`; stops at the
/// first damage. An error when the reader cannot open the file.
pub fn for_each_decoded(
    file: &Path,
    mut f: impl FnMut(&netdigest::decode::PacketRecord, &[u8]),
) -> Result<(), String> {
    use netdigest::decode::{FrameMeta, decode};
    let mut reader = netdigest::capfile::CaptureReader::open(file).map_err(|e| e.to_string())?;
    let mut frame = 0u64;
    while let Ok(Some(fr)) = reader.next_frame() {
        frame += 1;
        let meta = FrameMeta {
            frame,
            ts_ns: fr.ts_ns,
            interface: fr.interface,
            wire_len: fr.wire_len,
        };
        f(&decode(meta, fr.data, fr.link), fr.data);
    }
    Ok(())
}

/// `../shared` (or `NETDIGEST_SHARED`). Missing: a failure under `CI=true`, else a skip.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("NETDIGEST_SHARED").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
        PathBuf::from,
    );
    if dir.join("corpus").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {} is missing: the real-capture tests need ../shared/corpus",
        dir.display()
    );
    eprintln!(
        "SKIP: {} not found; real-capture tests skipped",
        dir.display()
    );
    None
}

/// True when `program --version` runs here. Missing under `CI=true` (which installs
/// everything, scripts/install-deps): a failure naming the Debian package; elsewhere the
/// caller skips, and this prints why.
pub fn have_tool(program: &str, debian_package: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {program} is not installed (Debian package {debian_package})"
        );
        eprintln!("SKIP: {program} not installed (Debian package {debian_package})");
    }
    ok
}

/// True when tshark is installed. Missing under `CI=true`: a failure.
pub fn have_tshark() -> bool {
    have_tool("tshark", "tshark")
}

/// A fresh empty directory for one test.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netdigest-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The netdigest binary built for these tests.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netdigest"));
    c.env_remove("NETDIGEST_LOG")
        .env("NETDIGEST_CONFIG", "/nonexistent/netdigest.toml");
    c
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// tshark with name resolution off (never -N: it sends DNS queries).
pub fn tshark(args: &[&str]) -> Output {
    Command::new("tshark")
        .arg("-n")
        .args(args)
        .output()
        .unwrap()
}

/// tshark's frame count for a file, or None when tshark refuses it.
pub fn tshark_frames(file: &Path) -> Option<u64> {
    let o = tshark(&[
        "-r",
        file.to_str().unwrap(),
        "-T",
        "fields",
        "-e",
        "frame.number",
    ]);
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).lines().count() as u64)
}

/// Capture files in `../shared/corpus/<sub>`, sorted.
pub fn corpus(sub: &str) -> Vec<PathBuf> {
    let Some(dir) = shared_dir() else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("corpus").join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "tsv"))
        .collect();
    v.sort();
    v
}

/// `netdigest sample` of about `packets` packets with `seed` into `path`.
pub fn sample(path: &Path, packets: u64, seed: u64) {
    let out = run(&[
        "sample",
        "--packets",
        &packets.to_string(),
        "--seed",
        &seed.to_string(),
        "-o",
        path.to_str().unwrap(),
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Writes an Ethernet pcap of `(timestamp ns, frame)`, each frame captured whole.
pub fn write_pcap(path: &Path, frames: &[(i64, Vec<u8>)]) {
    let f = std::fs::File::create(path).unwrap();
    let mut w = pcapfmt::PcapWriter::new(
        std::io::BufWriter::new(f),
        pcapfmt::LinkType::ETHERNET,
        65535,
        false,
    )
    .unwrap();
    for (ts, data) in frames {
        w.write_packet(*ts, data, u32::try_from(data.len()).unwrap())
            .unwrap();
    }
    w.into_inner().unwrap();
}

/// Another process holding a flock(2) lock: util-linux `flock -o PATH sleep 120`, killed
/// on drop. Returned once the lock is held.
pub struct LockHolder(std::process::Child);

impl LockHolder {
    pub fn hold(path: &Path) -> LockHolder {
        // -o: the lock is flock's own (not passed to sleep), so killing flock releases it.
        let child = Command::new("flock")
            .arg("-o")
            .arg(path)
            .args(["sleep", "120"])
            .spawn()
            .expect("flock (util-linux)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while netdigest::lock::is_held(path).unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "flock never took {path:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        LockHolder(child)
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tmpfs of `mib` MiB mounted at `at` (created), unmounted on drop. `None` when mounting
/// is not permitted (not root): a skip with the reason printed, a failure under `CI=true`.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, mib: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0755")])
            .arg("netdigest-test")
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but a tmpfs cannot be mounted (need root)"
            );
            eprintln!("SKIP: mounting a tmpfs needs root");
        }
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    /// Free MiB on it now.
    pub fn free_mib(&self) -> u64 {
        netdigest::disk::space(&self.0).unwrap().available_mb()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a test's child still holding a file open does not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `<night_dir>/capture.json` as `netdigest capture` does for a window from
/// `start` to `end`, last written at `updated`; a night not `running` has ended at `end`
/// ("window end"). The interface is one no host has, so that nothing is looked up.
pub fn write_capture_json(
    night_dir: &Path,
    status: &str,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    updated: chrono::DateTime<chrono::Utc>,
) {
    use netdigest::capture::{CAPTURE_SCHEMA_VERSION, CaptureReport, WindowInfo};
    let rfc =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let night = night_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let over = status != "running";
    let report = CaptureReport {
        schema_version: CAPTURE_SCHEMA_VERSION,
        // The word as capture.json spells it.
        status: serde_json::from_value(serde_json::Value::from(status)).unwrap(),
        night,
        interface: "sample0".into(),
        snaplen: 192,
        window: WindowInfo {
            start: rfc(start),
            end: rfc(end),
            source: "config".into(),
            timezone: "system".into(),
        },
        started: rfc(start),
        ended: over.then(|| rfc(end)),
        updated: rfc(updated),
        stop_reason: over.then(|| "window end".to_string()),
        ..CaptureReport::default()
    };
    std::fs::write(
        netdigest::layout::NightDir::new(night_dir).capture_json(),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
}
