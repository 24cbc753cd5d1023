//! Writes a synthetic night: `cargo run --release -p synth --example night -- OUT.pcap
//! [PACKETS] [SEED] [hostile|planted]` (OUT `-`: no file; defaults: the demo night's 20 000
//! packets and seed; `planted`: [`synth::every_activity`] with a 40 MB upload).
//! Prints the frame count and the time it took (and with `planted`, what was planted).

use std::path::PathBuf;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = PathBuf::from(args.first().map_or("/tmp/night.pcap", String::as_str));
    let mut spec = synth::NightSpec::demo();
    if let Some(n) = args.get(1).and_then(|a| a.parse().ok()) {
        spec.packets = n;
    }
    if let Some(s) = args.get(2).and_then(|a| a.parse().ok()) {
        spec.seed = s;
    }
    spec.hostile_names = args.get(3).is_some_and(|a| a == "hostile");
    if args.get(3).is_some_and(|a| a == "planted") {
        spec.activities = synth::every_activity(40_000_000);
    }
    let t = Instant::now();
    // "-": generate only (to a sink), for timing the generator without the disk.
    let truth = if out.as_os_str() == "-" {
        synth::write_night(std::io::sink(), &spec)?
    } else {
        synth::write_night_file(&out, &spec)?
    };
    println!(
        "{}: {} frames, {} bytes, {} names in {:.2?}",
        out.display(),
        truth.frames,
        truth.bytes,
        truth.names.len(),
        t.elapsed()
    );
    for p in &truth.planted {
        let span = (p.last_ts_ns - p.first_ts_ns) / 1_000_000_000;
        println!(
            "{:<16} {:<19} {:<30} {:<15} {:>4} contacts {:>6} frames {:>9} bytes {:>5} s dns {}/{} nx, pings {}",
            p.activity.kind(),
            p.host_name,
            p.remote_name.as_deref().unwrap_or("-"),
            p.remote_addr.map_or("-".to_string(), |a| a.to_string()),
            p.contacts.len(),
            p.frames,
            p.bytes,
            span,
            p.dns_queries,
            p.dns_nxdomain,
            p.unanswered_pings,
        );
    }
    if std::env::var_os("SYNTH_NAMES").is_some() {
        for n in &truth.names {
            println!(
                "{:>7} {:<15} {:<45} {:?} {} {:?} {:?} x{}",
                n.first_frame,
                n.kind.as_str(),
                String::from_utf8_lossy(&n.name[..n.name.len().min(60)]),
                n.target.as_deref().map(String::from_utf8_lossy),
                synth_mac(n.mac),
                n.client,
                n.addr,
                n.count
            );
        }
    }
    Ok(())
}

fn synth_mac(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}
