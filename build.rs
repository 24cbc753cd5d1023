//! Build script: finds the ECharts script that `src/chart/render.rs` embeds.
//!
//! The charts are rendered by ECharts itself (inside QuickJS), and the script is the
//! one the `charming` crate ships in its source (`src/asset/echarts-<version>.min.js`).
//! It is not copied into this repository: this script finds charming's source
//! directory and hands the file's absolute path to the crate as the compile-time
//! variable `NETDIGEST_ECHARTS_JS` (read with `include_str!(env!(..))`).
//!
//! Where charming's source is, in order:
//! 1. `NETDIGEST_ECHARTS_JS` in the environment: an explicit path to an
//!    `echarts.min.js` (5.x), for packagers who want another copy.
//! 2. `cargo metadata --offline --locked --filter-platform <target>`: the package's
//!    `manifest_path`, wherever its source is (crates.io cache, `cargo vendor`
//!    directory as in a Nix build, git checkout, `[patch]` path). `--filter-platform`
//!    keeps cargo from wanting packages of other platforms, which a plain
//!    `cargo build` never downloads.
//! 3. When that fails (e.g. dev-dependencies not downloaded yet after a first plain
//!    `cargo build`), charming's version from `Cargo.lock` and the extracted crate
//!    under `$CARGO_HOME/registry/src/*/charming-<version>/`, where cargo has put it
//!    before running this script (it is a dependency of this package).
//!
//! It then compiles the script into QuickJS bytecode (`$OUT_DIR/echarts.qjsbc`, handed
//! over as `NETDIGEST_ECHARTS_BYTECODE`) with the same QuickJS the binary embeds
//! (`rquickjs`, one version in Cargo.lock): parsing the 1 MB script took 85 of the
//! 98 ms a report spent starting the chart renderer; loading the bytecode takes 8 ms.
//! Only native builds get it (host = target, little-endian): a cross build (cross/,
//! pkgsCross) embeds none and parses the script at start, as before.
//!
//! Reruns only when Cargo.lock, this file, the script or the variable change, so it
//! costs nothing on ordinary rebuilds.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed=NETDIGEST_ECHARTS_JS");
    println!("cargo:rerun-if-env-changed=CARGO_HOME");

    match find_echarts() {
        Ok(path) => {
            println!("cargo:rerun-if-changed={}", path.display());
            println!("cargo:rustc-env=NETDIGEST_ECHARTS_JS={}", path.display());
            let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
            let bytecode = out_dir.join("echarts.qjsbc");
            // Only when the build runs on the target's own architecture: QuickJS's
            // bytecode is meant for the engine build that wrote it, and loading it
            // is trusted (see src/chart/render.rs). Cross builds parse the script at start.
            let native = env::var("HOST").ok() == env::var("TARGET").ok();
            let little = env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() == Ok("little");
            let written = if native && little {
                compile_bytecode(&path, &bytecode).inspect_err(|why| {
                    println!(
                        "cargo:warning=ECharts bytecode not built ({why}); charts start slower"
                    );
                })
            } else {
                Err("cross build".to_string())
            };
            if written.is_err() {
                // Not fatal: the renderer parses the script instead (slower start).
                if let Err(e) = std::fs::write(&bytecode, b"") {
                    eprintln!("netdigest build: {}: {e}", bytecode.display());
                    std::process::exit(1);
                }
            }
            println!(
                "cargo:rustc-env=NETDIGEST_ECHARTS_BYTECODE={}",
                bytecode.display()
            );
        }
        Err(why) => {
            // A build error with the reasons; no way to build the chart renderer without it.
            eprintln!("netdigest build: cannot find the ECharts script: {why}");
            println!(
                "cargo:warning=cannot find the ECharts script (charming's src/asset/echarts-*.min.js): {why}; \
                 set NETDIGEST_ECHARTS_JS=/path/to/echarts.min.js"
            );
            std::process::exit(1);
        }
    }
}

/// Compiles the ECharts script as a module (its UMD wrapper sets `globalThis.echarts`
/// there too) and writes QuickJS's bytecode for it, little-endian.
fn compile_bytecode(js: &Path, out: &Path) -> Result<(), String> {
    use rquickjs::{CatchResultExt as _, Context, Module, Runtime, WriteOptions};
    let source = std::fs::read(js).map_err(|e| format!("{}: {e}", js.display()))?;
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let context = Context::full(&runtime).map_err(|e| e.to_string())?;
    let bytes = context.with(|ctx| {
        let module = Module::declare(ctx.clone(), "echarts.min.js", source)
            .catch(&ctx)
            .map_err(|e| format!("compiling {}: {e}", js.display()))?;
        module
            .write(WriteOptions {
                endianness: rquickjs::WriteOptionsEndianness::Little,
                strip_source: true,
                ..WriteOptions::default()
            })
            .map_err(|e| e.to_string())
    })?;
    std::fs::write(out, bytes).map_err(|e| format!("{}: {e}", out.display()))
}

fn find_echarts() -> Result<PathBuf, String> {
    if let Some(p) = env::var_os("NETDIGEST_ECHARTS_JS").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(absolute(p))
        } else {
            Err(format!("NETDIGEST_ECHARTS_JS={}: not a file", p.display()))
        };
    }
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR not set")?);
    let mut reasons = Vec::new();
    match charming_dir_from_metadata(&manifest_dir) {
        Ok(dir) => match echarts_in(&dir) {
            Ok(p) => {
                eprintln!("found by cargo metadata: {}", p.display());
                return Ok(p);
            }
            Err(e) => reasons.push(e),
        },
        Err(e) => reasons.push(format!("cargo metadata: {e}")),
    }
    match charming_dir_from_registry(&manifest_dir) {
        Ok(dir) => match echarts_in(&dir) {
            Ok(p) => {
                // (In target/*/build/netdigest-*/stderr, for whoever wonders.)
                eprintln!(
                    "found in the cargo registry ({}): {}",
                    reasons.join("; "),
                    p.display()
                );
                return Ok(p);
            }
            Err(e) => reasons.push(e),
        },
        Err(e) => reasons.push(format!("cargo registry: {e}")),
    }
    Err(reasons.join("; "))
}

fn absolute(p: PathBuf) -> PathBuf {
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// `<charming>/src/asset/echarts-*.min.js` (the newest if several).
fn echarts_in(charming_dir: &Path) -> Result<PathBuf, String> {
    let assets = charming_dir.join("src").join("asset");
    let rd = std::fs::read_dir(&assets).map_err(|e| format!("{}: {e}", assets.display()))?;
    let mut found: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("echarts-") && n.ends_with(".min.js"))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(absolute)
        .ok_or_else(|| format!("{}: no echarts-*.min.js", assets.display()))
}

fn charming_dir_from_metadata(manifest_dir: &Path) -> Result<PathBuf, String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(manifest_dir)
        .args(["metadata", "--format-version", "1", "--offline", "--locked"])
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"));
    for var in ["TARGET", "HOST"] {
        if let Ok(t) = env::var(var) {
            cmd.args(["--filter-platform", &t]);
        }
    }
    let out = cmd.output().map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("failed");
        return Err(first.trim().to_string());
    }
    let json = String::from_utf8_lossy(&out.stdout);
    // Package objects start `{"name":"charming","version":...` (dependency entries
    // are `{"name":..,"source":..}`); the next "manifest_path" is the package's own.
    let start = json
        .find(r#"{"name":"charming","version":"#)
        .ok_or("no package charming in the dependency graph")?;
    let key = r#""manifest_path":""#;
    let at = json[start..]
        .find(key)
        .ok_or("charming has no manifest_path")?
        + start
        + key.len();
    let manifest = json_string(&json[at..]).ok_or("unreadable manifest_path")?;
    Path::new(&manifest)
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{manifest}: no parent directory"))
}

/// The JSON string body starting at `s` (after the opening quote), unescaped.
fn json_string(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

fn charming_dir_from_registry(manifest_dir: &Path) -> Result<PathBuf, String> {
    let version = charming_version_from_lock(manifest_dir)?;
    let cargo_home = env::var_os("CARGO_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME set")?;
    let src = cargo_home.join("registry").join("src");
    let rd = std::fs::read_dir(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let name = format!("charming-{version}");
    rd.filter_map(Result::ok)
        .map(|e| e.path().join(&name))
        .find(|p| p.join("Cargo.toml").is_file())
        .ok_or_else(|| format!("{name} not under {}", src.display()))
}

/// charming's version in the Cargo.lock of this package or an enclosing workspace.
fn charming_version_from_lock(manifest_dir: &Path) -> Result<String, String> {
    let lock = manifest_dir
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.is_file())
        .ok_or("no Cargo.lock")?;
    let text = std::fs::read_to_string(&lock).map_err(|e| format!("{}: {e}", lock.display()))?;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == r#"name = "charming""#
            && let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
        {
            return Ok(v.to_string());
        }
    }
    Err(format!("{}: no package charming", lock.display()))
}
