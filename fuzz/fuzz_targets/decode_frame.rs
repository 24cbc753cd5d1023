//! Any bytes as a frame of any link type: decode must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use netdigest_fuzz::decode::{FrameMeta, TcpSeqTracker, decode, info};
use netdigest_fuzz::linktype::LinkType;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let links = [0u32, 1, 9, 12, 14, 101, 108, 113, 228, 229, 239, 276, 127];
    let link = LinkType(links[usize::from(sel) % links.len()]);
    let wire_len = u32::try_from(frame.len()).unwrap_or(u32::MAX).saturating_add(u32::from(sel & 3));
    let meta = FrameMeta { frame: 1, ts_ns: 0, interface: 0, wire_len };
    let rec = decode(meta, frame, link);
    let mut tracker = TcpSeqTracker::new();
    let rel = tracker.relative(&rec);
    let _ = info(&rec, rel);
});
