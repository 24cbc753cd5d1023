//! Connections: the night's TCP and UDP conversations, like Zeek's conn.log, built by
//! convert as frames stream past and written to `flows.parquet` beside
//! `packets.parquet`.
//!
//! A connection is one 5-tuple (protocol, two addresses, two ports) from its first
//! packet to its end: for TCP a new SYN after the connection closed (FIN both ways, or
//! RST) starts the next one, as tshark's `tcp.stream` does; any connection ends after
//! an idle time with no packet ([`FlowLimits`]), and at the end of the capture (rotated
//! parts are one capture). The originator is the first packet's source, except that a
//! SYN+ACK seen first makes its destination the originator.
//!
//! Memory is bounded: at most [`FlowLimits::max_active`] connections are open at once;
//! past that, the one idle longest is ended early (`end` = `evicted`) and written out.
//! Ended connections go to the file in batches, so the table holds only open ones.
//!
//! Schema of `flows.parquet`, one row per connection, in the order they ended:
//!
//! | column | type | |
//! |---|---|---|
//! | `proto` | u8 | 6 TCP, 17 UDP |
//! | `orig_addr`, `resp_addr` | string | originator and responder addresses |
//! | `orig_port`, `resp_port` | u16 | their ports |
//! | `orig_mac`, `resp_mac` | string? | link-layer source of each side's first packet |
//! | `first_ts`, `last_ts` | timestamp[ns, UTC] | earliest and latest packet (frames are not always in time order) |
//! | `first_frame` | u64 | the first packet's frame number |
//! | `orig_pkts`, `resp_pkts` | u64 | packets each way |
//! | `orig_bytes`, `resp_bytes` | u64 | frame bytes on the wire each way (as tshark's conversations) |
//! | `orig_payload`, `resp_payload` | u64 | TCP/UDP payload bytes each way |
//! | `state` | string? | TCP: `attempted` (SYN, no answer), `rejected` (SYN answered by RST), `established` (SYN+ACK, not closed), `closed` (established, then FIN both ways or RST), `partial` (no SYN seen: began before the capture); null for UDP |
//! | `end` | string | `fin`, `rst`, `idle`, `capture-end`, `evicted` |

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use foldhash::fast::RandomState;
use polars::prelude::*;

use crate::decode::{Addr, PacketRecord};

mod parquet;

use parquet::{Rows, Sink};
pub use parquet::{read, read_columns};

/// Idle times and the bound on open connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowLimits {
    /// A TCP connection with no packet for this long has ended.
    pub tcp_idle_s: u32,
    /// A UDP conversation with no packet for this long has ended.
    pub udp_idle_s: u32,
    /// A TCP connection closed (FIN both ways, RST) leaves the table after this long.
    pub closed_linger_s: u32,
    /// Most connections open at once.
    pub max_active: usize,
}

impl Default for FlowLimits {
    fn default() -> Self {
        Self {
            tcp_idle_s: 900,
            udp_idle_s: 120,
            closed_linger_s: 30,
            max_active: 200_000,
        }
    }
}

pub const PROTO: &str = "proto";
pub const ORIG_ADDR: &str = "orig_addr";
pub const ORIG_PORT: &str = "orig_port";
pub const RESP_ADDR: &str = "resp_addr";
pub const RESP_PORT: &str = "resp_port";
pub const ORIG_MAC: &str = "orig_mac";
pub const RESP_MAC: &str = "resp_mac";
pub const FIRST_TS: &str = "first_ts";
pub const LAST_TS: &str = "last_ts";
pub const FIRST_FRAME: &str = "first_frame";
pub const ORIG_PKTS: &str = "orig_pkts";
pub const RESP_PKTS: &str = "resp_pkts";
pub const ORIG_BYTES: &str = "orig_bytes";
pub const RESP_BYTES: &str = "resp_bytes";
pub const ORIG_PAYLOAD: &str = "orig_payload";
pub const RESP_PAYLOAD: &str = "resp_payload";
pub const STATE: &str = "state";
pub const END: &str = "end";

/// Rows buffered before they are written as one row group. A batch is held twice
/// while it is written (rows, then the DataFrame the writer encodes): 16 Ki rows keep
/// that to a few MB (64 Ki cost 11 MB more peak RSS on the 2M-packet bench night).
const BATCH_ROWS: usize = 16 * 1024;

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const FIN: u8 = 0x01;
const ACK: u8 = 0x10;

/// One side of a connection: an IP address as 128 bits (IPv4 in the low 32) with its
/// family, and a port. Ordered by family, address, port (as `(IpAddr, u16)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Endpoint {
    v6: bool,
    addr: u128,
    port: u16,
}

impl Endpoint {
    fn new(a: Addr, port: u16) -> Option<Self> {
        let (v6, addr) = match a {
            Addr::V4(v) => (false, u128::from(u32::from(v))),
            Addr::V6(v) => (true, u128::from(v)),
            Addr::Mac(_) => return None,
        };
        Some(Self { v6, addr, port })
    }
}

/// The connection index's key: both sides, lower first, and the protocol, packed into
/// 40 bytes of plain integers (cheap to hash and compare per packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    lo: u128,
    hi: u128,
    /// proto | lo.v6 << 8 | hi.v6 << 9 | lo.port << 16 | hi.port << 32.
    rest: u64,
}

impl Key {
    fn new(proto: u8, lo: Endpoint, hi: Endpoint) -> Self {
        Self {
            lo: lo.addr,
            hi: hi.addr,
            rest: u64::from(proto)
                | u64::from(lo.v6) << 8
                | u64::from(hi.v6) << 9
                | u64::from(lo.port) << 16
                | u64::from(hi.port) << 32,
        }
    }

    #[allow(clippy::cast_possible_truncation)]
    fn proto(&self) -> u8 {
        self.rest as u8
    }

    /// Both sides, lower first: [`Key::new`] unpacked.
    #[allow(clippy::cast_possible_truncation)]
    fn ends(&self) -> (Endpoint, Endpoint) {
        let side = |addr, v6_bit: u32, port_shift: u32| Endpoint {
            v6: (self.rest >> v6_bit) & 1 != 0,
            addr,
            port: (self.rest >> port_shift) as u16,
        };
        (side(self.lo, 8, 16), side(self.hi, 9, 32))
    }
}

// What a TCP connection has shown, as bits.
const ORIG_SYN: u8 = 1 << 0;
const RESP_SYNACK: u8 = 1 << 1;
const ORIG_FIN: u8 = 1 << 2;
const RESP_FIN: u8 = 1 << 3;
const ANY_RST: u8 = 1 << 4;
const RST_BEFORE_SYNACK: u8 = 1 << 5;

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndReason {
    Idle,
    CaptureEnd,
    Evicted,
    NewSyn,
}

#[derive(Debug, Clone)]
struct Flow {
    key: Key,
    /// The originator is the key's lower side.
    orig_lo: bool,
    macs: [Option<[u8; 6]>; 2],
    first_ns: i64,
    last_ns: i64,
    first_frame: u64,
    pkts: [u64; 2],
    bytes: [u64; 2],
    payload: [u64; 2],
    tcp: u8,
}

impl Flow {
    fn proto(&self) -> u8 {
        self.key.proto()
    }

    /// Originator and responder.
    fn sides(&self) -> (Endpoint, Endpoint) {
        let (lo, hi) = self.key.ends();
        if self.orig_lo { (lo, hi) } else { (hi, lo) }
    }

    fn closed(&self) -> bool {
        self.proto() == 6
            && (self.tcp & ANY_RST != 0 || self.tcp & (ORIG_FIN | RESP_FIN) == ORIG_FIN | RESP_FIN)
    }

    fn state(&self) -> Option<&'static str> {
        if self.proto() != 6 {
            return None;
        }
        let t = self.tcp;
        Some(if t & ORIG_SYN == 0 {
            "partial"
        } else if t & RESP_SYNACK == 0 {
            if t & RST_BEFORE_SYNACK != 0 {
                "rejected"
            } else {
                "attempted"
            }
        } else if self.closed() {
            "closed"
        } else {
            "established"
        })
    }

    fn end(&self, why: EndReason) -> &'static str {
        if self.proto() == 6 && self.tcp & ANY_RST != 0 {
            "rst"
        } else if self.proto() == 6 && self.closed() {
            "fin"
        } else {
            match why {
                EndReason::Idle | EndReason::NewSyn => "idle",
                EndReason::CaptureEnd => "capture-end",
                EndReason::Evicted => "evicted",
            }
        }
    }
}

/// The open connections and the writer of ended ones.
pub struct FlowTable {
    limits: FlowLimits,
    /// foldhash with a per-process random seed (as the TCP sequence tracker): keys come
    /// off the wire, so the seed must not be guessable; several times cheaper than SipHash.
    index: HashMap<Key, usize, RandomState>,
    slots: Vec<Option<Flow>>,
    /// Each slot's generation, bumped when its connection ends, so that expiry entries
    /// of an earlier connection in the same slot are recognised as stale.
    gens: Vec<u32>,
    free: Vec<usize>,
    /// (deadline, slot, generation): when a connection may have gone idle. Entries are
    /// checked when they come due; one that was active since is pushed again.
    expiry: BinaryHeap<Reverse<(i64, usize, u32)>>,
    out: Rows,
    sink: Option<Sink>,
    /// Ended connections, when there is no file to write them to.
    kept: Vec<Rows>,
    /// Connections written.
    pub written: u64,
    /// Connections ended early because the table was full.
    pub evicted: u64,
}

impl std::fmt::Debug for FlowTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowTable")
            .field("open", &self.index.len())
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

/// Why flows.parquet could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: writing Parquet: {source}", path.display())]
    Parquet { path: PathBuf, source: PolarsError },
}

impl FlowError {
    /// For `map_err`: an I/O error on `path`.
    fn io(path: &Path) -> impl Fn(std::io::Error) -> Self {
        move |source| Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// For `map_err`: a Polars error building or writing `path`.
    fn parquet(path: &Path) -> impl Fn(PolarsError) -> Self {
        move |source| Self::Parquet {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl FlowTable {
    /// A table whose ended connections are kept in memory ([`FlowTable::finish_frame`]).
    #[must_use]
    pub fn new(limits: FlowLimits) -> Self {
        Self {
            limits,
            index: HashMap::default(),
            slots: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            expiry: BinaryHeap::new(),
            out: Rows::default(),
            sink: None,
            kept: Vec::new(),
            written: 0,
            evicted: 0,
        }
    }

    /// A table that writes ended connections to `path` (atomically: the file appears
    /// on [`FlowTable::finish`]).
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn to_file(path: &Path, limits: FlowLimits) -> Result<Self, FlowError> {
        let sink = Sink::create(path)?;
        let mut t = Self::new(limits);
        t.sink = Some(sink);
        Ok(t)
    }

    /// Connections open now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.index.len()
    }

    fn idle_ns(&self, f: &Flow) -> i64 {
        let s = if f.closed() {
            self.limits.closed_linger_s
        } else if f.proto() == 6 {
            self.limits.tcp_idle_s
        } else {
            self.limits.udp_idle_s
        };
        i64::from(s) * 1_000_000_000
    }

    /// Counts one decoded frame. Frames without TCP/UDP ports and IP addresses (ARP,
    /// ICMP, later IP fragments) are not part of a connection.
    ///
    /// # Errors
    /// Writing a batch of ended connections failed.
    pub fn observe(&mut self, rec: &PacketRecord) -> Result<(), FlowError> {
        let proto = match rec.ip_proto {
            Some(p @ (6 | 17)) => p,
            _ => return Ok(()),
        };
        let (Some(src), Some(dst), Some(sp), Some(dp)) =
            (rec.src, rec.dst, rec.src_port, rec.dst_port)
        else {
            return Ok(());
        };
        let (Some(a), Some(b)) = (Endpoint::new(src, sp), Endpoint::new(dst, dp)) else {
            return Ok(());
        };
        let now = rec.ts_ns;
        self.expire(now)?;
        // Whether this packet comes from the key's lower side (both, when a == b).
        let from_lo = a <= b;
        let key = if from_lo {
            Key::new(proto, a, b)
        } else {
            Key::new(proto, b, a)
        };
        let flags = rec.tcp_flags.unwrap_or(0);
        let fresh_syn = proto == 6 && flags & (SYN | ACK) == SYN;
        let mut slot = self.index.get(&key).copied();
        if let Some(s) = slot
            && fresh_syn
            && self.slots[s].as_ref().is_some_and(Flow::closed)
        {
            self.end_slot(s, EndReason::NewSyn)?;
            slot = None;
        }
        let s = match slot {
            Some(s) => s,
            None => {
                if self.index.len() >= self.limits.max_active {
                    self.evict_one()?;
                }
                // A SYN+ACK seen first: its destination opened the connection.
                let synack = proto == 6 && flags & (SYN | ACK) == SYN | ACK;
                let orig_lo = a == b || from_lo != synack;
                self.insert(key, orig_lo, rec)
            }
        };
        let closed = {
            let Some(f) = self.slots[s].as_mut() else {
                return Ok(());
            };
            let dir = usize::from(a != b && from_lo != f.orig_lo);
            // Frames are not always in time order (merged interfaces, reordering
            // bridges): the connection spans its earliest to its latest timestamp.
            f.first_ns = f.first_ns.min(now);
            f.last_ns = f.last_ns.max(now);
            f.pkts[dir] += 1;
            f.bytes[dir] += u64::from(rec.wire_len);
            f.payload[dir] += u64::from(rec.payload_len.unwrap_or(0));
            if f.macs[dir].is_none() {
                f.macs[dir] = rec.src_mac;
            }
            if proto == 6 {
                if flags & SYN != 0 {
                    f.tcp |= if dir == 0 { ORIG_SYN } else { RESP_SYNACK };
                }
                if flags & FIN != 0 {
                    f.tcp |= if dir == 0 { ORIG_FIN } else { RESP_FIN };
                }
                if flags & RST != 0 {
                    if f.tcp & RESP_SYNACK == 0 && dir == 1 {
                        f.tcp |= RST_BEFORE_SYNACK;
                    }
                    f.tcp |= ANY_RST;
                }
            }
            f.closed()
        };
        if closed {
            // A closed connection lingers only briefly: push its nearer deadline.
            if let Some(f) = self.slots[s].as_ref() {
                let d = f.last_ns.saturating_add(self.idle_ns(f));
                self.expiry.push(Reverse((d, s, self.gens[s])));
            }
        }
        Ok(())
    }

    fn insert(&mut self, key: Key, orig_lo: bool, rec: &PacketRecord) -> usize {
        let s = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.gens.push(0);
            self.slots.len() - 1
        });
        let generation = self.gens[s];
        let f = Flow {
            key,
            orig_lo,
            macs: [None, None],
            first_ns: rec.ts_ns,
            last_ns: rec.ts_ns,
            first_frame: rec.frame,
            pkts: [0; 2],
            bytes: [0; 2],
            payload: [0; 2],
            tcp: 0,
        };
        let d = rec.ts_ns.saturating_add(self.idle_ns(&f));
        self.expiry.push(Reverse((d, s, generation)));
        self.slots[s] = Some(f);
        self.index.insert(key, s);
        s
    }

    /// Ends the connections idle at `now`.
    fn expire(&mut self, now: i64) -> Result<(), FlowError> {
        while let Some(&Reverse((deadline, s, generation))) = self.expiry.peek() {
            if deadline > now {
                break;
            }
            self.expiry.pop();
            let Some(f) = self.slots[s].as_ref() else {
                continue;
            };
            if self.gens[s] != generation {
                continue;
            }
            let due = f.last_ns.saturating_add(self.idle_ns(f));
            if due <= now {
                self.end_slot(s, EndReason::Idle)?;
            } else {
                self.expiry.push(Reverse((due, s, generation)));
            }
        }
        Ok(())
    }

    /// Ends the connection idle longest (the table is full).
    fn evict_one(&mut self) -> Result<(), FlowError> {
        while let Some(Reverse((_, s, generation))) = self.expiry.pop() {
            let Some(f) = self.slots[s].as_ref() else {
                continue;
            };
            if self.gens[s] != generation {
                continue;
            }
            let due = f.last_ns.saturating_add(self.idle_ns(f));
            if let Some(&Reverse((next, _, _))) = self.expiry.peek()
                && due > next
            {
                // Active since this entry was pushed: another may be idler.
                self.expiry.push(Reverse((due, s, generation)));
                continue;
            }
            self.evicted += 1;
            return self.end_slot(s, EndReason::Evicted);
        }
        Ok(())
    }

    fn end_slot(&mut self, s: usize, why: EndReason) -> Result<(), FlowError> {
        let Some(f) = self.slots[s].take() else {
            return Ok(());
        };
        self.index.remove(&f.key);
        self.gens[s] = self.gens[s].wrapping_add(1);
        self.free.push(s);
        self.out.push(&f, why);
        if self.out.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Ends every open connection (the capture is over) and writes the file.
    ///
    /// # Errors
    /// The last batch or the file's footer could not be written.
    pub fn finish(mut self) -> Result<FlowTableDone, FlowError> {
        self.end_all()?;
        let done = FlowTableDone {
            written: self.written,
            evicted: self.evicted,
        };
        if let Some(sink) = self.sink.take() {
            sink.finish()?;
        }
        Ok(done)
    }

    /// Ends every open connection and returns all connections as a table (no file).
    ///
    /// # Errors
    /// Polars could not build the table.
    pub fn finish_frame(mut self) -> Result<DataFrame, FlowError> {
        self.end_all()?;
        // No file: errors name an empty path.
        let err = FlowError::parquet(Path::new(""));
        let mut df = Rows::default().into_frame().map_err(&err)?;
        for rows in std::mem::take(&mut self.kept) {
            let part = rows.into_frame().map_err(&err)?;
            df.vstack_mut_owned(part).map_err(&err)?;
        }
        Ok(df)
    }

    fn end_all(&mut self) -> Result<(), FlowError> {
        // In the order they began, so the file reads in time order at its end.
        let mut open: Vec<(u64, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.as_ref().map(|f| (f.first_frame, i)))
            .collect();
        open.sort_unstable();
        for (_, s) in open {
            self.end_slot(s, EndReason::CaptureEnd)?;
        }
        self.expiry.clear();
        self.flush()
    }

    fn flush(&mut self) -> Result<(), FlowError> {
        let rows = std::mem::take(&mut self.out);
        if rows.len() == 0 {
            return Ok(());
        }
        self.written += rows.len() as u64;
        if let Some(sink) = self.sink.as_mut() {
            sink.write(rows)?;
        } else {
            self.kept.push(rows);
        }
        Ok(())
    }
}

/// What a finished table wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTableDone {
    pub written: u64,
    pub evicted: u64,
}

#[cfg(test)]
mod tests;
