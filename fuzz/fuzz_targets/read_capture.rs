//! Any bytes as a capture file: read every frame and decode it. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netdigest_fuzz::capfile::CaptureReader;
use netdigest_fuzz::decode::{FrameMeta, TcpSeqTracker, decode, info};

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = CaptureReader::new(data) else { return };
    let mut tracker = TcpSeqTracker::new();
    let mut n = 0u64;
    while let Ok(Some(f)) = r.next_frame() {
        n += 1;
        let meta = FrameMeta { frame: n, ts_ns: f.ts_ns, interface: f.interface, wire_len: f.wire_len };
        let rec = decode(meta, f.data, f.link);
        let rel = tracker.relative(&rec);
        let _ = info(&rec, rel);
    }
});
