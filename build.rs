//! Build script: hands `src/chart/render.rs` the ECharts script it embeds, compiled.
//!
//! The charts are drawn by ECharts itself (inside QuickJS) and, in index.html, by the
//! browser. The script is `src/chart/echarts/echarts.min.js`: the parts of Apache
//! ECharts 5.5.1 the report uses (bar, line, pie and scatter charts; grid, legend,
//! title, tooltip; SVG and canvas renderers), bundled by `scripts/echarts-bundle` from
//! `src/chart/echarts/entry.js` and committed, so the build needs neither Node.js nor
//! the network. `NETDIGEST_ECHARTS_JS` in the environment names another copy (a full
//! `echarts.min.js` 5.x, say) for packagers who want one.
//!
//! Its absolute path goes to the crate as the compile-time variable
//! `NETDIGEST_ECHARTS_JS` (read with `include_str!(env!(..))`). The script is then
//! compiled into QuickJS bytecode (`$OUT_DIR/echarts.qjsbc`, handed over as
//! `NETDIGEST_ECHARTS_BYTECODE`) with the same QuickJS the binary embeds (`rquickjs`,
//! one version in Cargo.lock): parsing the script at start cost most of a renderer's
//! start. Only native builds get it (host = target, little-endian): a cross build
//! (cross/, pkgsCross) embeds none and parses the script at start.
//!
//! Reruns only when Cargo.lock, this file, the script or the variable change, so it
//! costs nothing on ordinary rebuilds.

use std::env;
use std::path::{Path, PathBuf};

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
                "cargo:warning=cannot find the ECharts script: {why}; \
                 run scripts/echarts-bundle or set NETDIGEST_ECHARTS_JS=/path/to/echarts.min.js"
            );
            std::process::exit(1);
        }
    }
}

/// Compiles the ECharts script as a module (the bundle's last line sets
/// `globalThis.echarts`; a full UMD build's wrapper does too) and writes QuickJS's
/// bytecode for it, little-endian.
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
    let p = manifest_dir.join("src/chart/echarts/echarts.min.js");
    if p.is_file() {
        Ok(absolute(p))
    } else {
        Err(format!(
            "{}: missing (scripts/echarts-bundle makes it)",
            p.display()
        ))
    }
}

fn absolute(p: PathBuf) -> PathBuf {
    std::fs::canonicalize(&p).unwrap_or(p)
}
