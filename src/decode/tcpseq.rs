//! tshark's relative TCP sequence numbers (its default `tcp.seq`), across the frames of
//! a capture.
//!
//! The rules, as in Wireshark's `packet-tcp.c` (`dissect_tcp`,
//! `tcp_analyze_sequence_number`):
//! - A conversation is the pair of (address, port) endpoints, both directions together;
//!   each direction has a base sequence number, unset at first.
//! - Only segments whose length tshark knows are analysed: not TCP inside the first of
//!   several IP fragments, and not when the TCP header is longer than the segment. Those
//!   show the absolute number (`tcp.seq` is then raw in tshark too).
//! - A SYN without ACK whose sequence number differs from the base of its direction
//!   (once set) starts a new conversation (port reuse): both bases are forgotten.
//! - The first analysed segment of a direction sets its base: its sequence number when
//!   SYN is set, else sequence number − 1 (so a capture starting mid-flow shows 1).
//! - A segment with ACK set also sets the other direction's base, if unset, to its
//!   acknowledgment number − 1.
//! - relative = seq − base (mod 2³²); relative ack = ack − other direction's base.
//! - Directions are ordered as tshark orders them (address comparison, then ports), so a
//!   frame whose endpoints are equal is always the same direction.
//! - TCP headers cut before the window field (16 bytes) have no `tcp.seq` in tshark:
//!   `None`.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use super::{Addr, PacketRecord};

type Key = (Addr, u16, Addr, u16);

#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    base: Option<u32>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Conv {
    /// `flow[0]`: the direction tshark calls flow 1 (source greater than destination).
    flow: [Flow; 2],
}

/// Relative TCP sequence numbers, stateful across the frames of one capture (feed every
/// frame in order).
#[derive(Debug, Default)]
pub struct TcpSeqTracker {
    /// foldhash with a per-process random seed: several times cheaper than std's SipHash
    /// on these small keys, and still not predictable by whoever sends the packets.
    convs: HashMap<Key, Conv, RandomState>,
    /// The generation before `convs`: conversations not seen since it was retired are
    /// looked up here and moved back. Two generations bound memory on any capture while
    /// every conversation still active keeps its bases.
    older: HashMap<Key, Conv, RandomState>,
    last_ack: Option<u32>,
}

impl TcpSeqTracker {
    /// Conversations in one generation. A conversation silent for a whole generation
    /// (this many newer conversations started since) is forgotten and, if it speaks again,
    /// restarts mid-flow as tshark's would after its first frame. At most two generations
    /// (about 10 MB) are held.
    pub const GENERATION_LEN: usize = 1 << 16;

    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Conversations currently remembered (both generations).
    #[must_use]
    pub fn conversations(&self) -> usize {
        self.convs.len() + self.older.len()
    }

    /// The relative sequence number tshark shows for this frame's TCP header, or `None`
    /// for frames without one. Feed every frame, in capture order.
    pub fn relative(&mut self, rec: &PacketRecord) -> Option<u32> {
        self.last_ack = None;
        if rec.ip_proto != Some(6) || rec.protocol != "TCP" {
            return None;
        }
        let (Some(src), Some(dst), Some(sp), Some(dp), Some(seq), Some(flags)) = (
            rec.src,
            rec.dst,
            rec.src_port,
            rec.dst_port,
            rec.tcp_seq,
            rec.tcp_flags,
        ) else {
            return None;
        };
        rec.tcp_window?;
        if rec.payload_len.is_none() {
            // tshark does not analyse this segment: absolute number.
            return Some(seq);
        }
        let ack = rec.tcp_ack.unwrap_or(0);
        let syn = flags & 0x02 != 0;
        let has_ack = flags & 0x10 != 0;
        // tshark: flow 1 when the source address is greater, or equal with a greater port.
        let fwd_is_1 = match src.cmp(&dst) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => sp > dp,
        };
        let key = if fwd_is_1 {
            (src, sp, dst, dp)
        } else {
            (dst, dp, src, sp)
        };
        let (f, r) = if fwd_is_1 { (0, 1) } else { (1, 0) };
        if self.convs.len() >= Self::GENERATION_LEN {
            self.older = std::mem::take(&mut self.convs);
        }
        let older = &mut self.older;
        let conv = self
            .convs
            .entry(key)
            .or_insert_with(|| older.remove(&key).unwrap_or_default());
        if syn && !has_ack && conv.flow[f].base.is_some_and(|b| b != seq) {
            // Port reuse: a new conversation.
            *conv = Conv::default();
        }
        let base = *conv.flow[f]
            .base
            .get_or_insert(if syn { seq } else { seq.wrapping_sub(1) });
        if has_ack {
            let rbase = *conv.flow[r].base.get_or_insert(ack.wrapping_sub(1));
            self.last_ack = Some(ack.wrapping_sub(rbase));
        }
        Some(seq.wrapping_sub(base))
    }

    /// The relative acknowledgment number of the frame last given to
    /// [`relative`](Self::relative), when its ACK flag was set and it was analysed.
    #[must_use]
    pub fn last_relative_ack(&self) -> Option<u32> {
        self.last_ack
    }
}
