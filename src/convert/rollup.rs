//! The roll-up (`rollup.parquet`, see [`crate::parquet_schema::rollup`]): the cube at
//! 5-minute slots, the echo exchanges and the ARP senders, summed as the packets stream
//! past, so analysis groups thousands of rows instead of every packet.
//!
//! Invariants: only partial sums, minima and maxima are kept, so when the maps hold as
//! many keys as [`RollupLimits`] allows they are written out as rows and emptied, and
//! the rows of one key add up again exactly (memory stays bounded whatever the night
//! holds); the
//! roll-up is given up (no file) as soon as an address gets no id or a time is before
//! 1970, and analysis then groups the packets themselves.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_parquet::write as pq;

use super::columns::RowIds;
use super::{ConvertError, Result};
use crate::decode::PacketRecord;
use crate::fsutil::{AtomicFile, SharedBuf, random_hex};
use crate::parquet_schema::rollup::{
    ARP, BYTES, CUBE, ECHO, ERRORS, EXCHANGE, FIRST, LAST, PACKETS, PINGS, PORT, REPLIES, REQUESTS,
    RESPONDERS, SLOT, SLOT_NS, TABLE, UNANSWERED,
};
use crate::parquet_schema::{
    DST_ID, IP_VERSION, NO_ID, PROTOCOL_ID, ROLLUP_TOKEN_KEY, SRC_ID, SRC_MAC_ID,
};

/// How much of the roll-up is held in memory before it is written out as rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupLimits {
    /// Cube and ARP keys (about 80 bytes each).
    pub keys: usize,
    /// Echo exchanges (about 40 bytes each).
    pub exchanges: usize,
}

impl Default for RollupLimits {
    /// 2^17 keys and 2^19 exchanges: about 30 MB at most.
    fn default() -> Self {
        RollupLimits {
            keys: 1 << 17,
            exchanges: 1 << 19,
        }
    }
}

/// A cube key, as `analyse::cube` groups packets (ids, not text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CubeKey {
    slot: i64,
    src: u16,
    dst: u16,
    src_mac: u16,
    port: Option<u16>,
    protocol: u8,
    ip_version: Option<u8>,
}

/// Sums kept per cube or ARP key.
#[derive(Debug, Clone, Copy)]
struct Sums {
    packets: u64,
    bytes: u64,
    first: i64,
    last: i64,
    /// Cube: frames with a decode error. ARP: requests.
    errors_or_requests: u64,
    /// ARP: replies.
    replies: u64,
}

impl Sums {
    fn new(ts: i64) -> Self {
        Sums {
            packets: 0,
            bytes: 0,
            first: ts,
            last: ts,
            errors_or_requests: 0,
            replies: 0,
        }
    }

    #[inline]
    fn add(&mut self, ts: i64, bytes: u32) {
        self.packets += 1;
        self.bytes += u64::from(bytes);
        self.first = self.first.min(ts);
        self.last = self.last.max(ts);
    }
}

/// The roll-up under construction.
pub(super) struct Rollup {
    path: PathBuf,
    cube: PlHashMap<CubeKey, Sums>,
    /// Exchange -> (requests, replies).
    echoes: PlHashMap<u64, (u64, u64)>,
    /// (sender IP id, source MAC id) -> sums.
    arp: PlHashMap<(u16, u16), Sums>,
    /// Address id -> [echo requests sent to it, echo replies it sent]: at most one entry
    /// per id, written at the end.
    responders: PlHashMap<u16, [u64; 2]>,
    /// Cube and ARP keys held at most before they are written out.
    max_keys: usize,
    /// Echo exchanges held at most before they are written out.
    max_exchanges: usize,
    /// Set once exchanges were written out: the rest are written as exchanges too, not
    /// summed per initiator (a reply may come after its request was written).
    echoes_spilled: bool,
    /// The file, once rows were written out before the end.
    out: Option<(
        AtomicFile,
        SharedBuf,
        polars::io::parquet::write::BatchedWriter<SharedBuf>,
    )>,
    token: String,
    /// Set once the roll-up cannot be made (an address without id, a time before 1970).
    given_up: bool,
}

impl Rollup {
    /// A roll-up to be written at `path`, with a fresh random token.
    ///
    /// # Errors
    /// The OS gives no random bytes for the token.
    pub(super) fn new(path: &Path, limits: RollupLimits) -> Result<Self> {
        let token = random_hex().map_err(|source| ConvertError::Output {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Rollup {
            path: path.to_path_buf(),
            cube: PlHashMap::default(),
            echoes: PlHashMap::default(),
            arp: PlHashMap::default(),
            responders: PlHashMap::default(),
            max_keys: limits.keys.max(1),
            max_exchanges: limits.exchanges.max(1),
            echoes_spilled: false,
            out: None,
            token,
            given_up: false,
        })
    }

    /// The token both files carry in their footer.
    pub(super) fn token(&self) -> &str {
        &self.token
    }

    /// Stops the roll-up: no file will be written.
    pub(super) fn give_up(&mut self) {
        self.given_up = true;
        self.cube = PlHashMap::default();
        self.echoes = PlHashMap::default();
        self.arp = PlHashMap::default();
        self.responders = PlHashMap::default();
        self.out = None;
    }

    pub(super) fn given_up(&self) -> bool {
        self.given_up
    }

    /// Adds one packet.
    #[inline]
    pub(super) fn observe(&mut self, r: &PacketRecord, ids: RowIds) -> Result<()> {
        if self.given_up {
            return Ok(());
        }
        let ts = r.ts_ns;
        if ts < 0 {
            self.give_up();
            return Ok(());
        }
        let port = match (r.src_port, r.dst_port) {
            (Some(s), Some(d)) => Some(s.min(d)),
            _ => None,
        };
        let key = CubeKey {
            slot: ts - ts % SLOT_NS,
            src: ids.src,
            dst: ids.dst,
            src_mac: ids.src_mac,
            port,
            protocol: ids.protocol,
            ip_version: r.ip_version,
        };
        let sums = self.cube.entry(key).or_insert_with(|| Sums::new(ts));
        sums.add(ts, r.wire_len);
        sums.errors_or_requests += u64::from(r.decode_error.is_some());
        if let Some(request) = echo(r) {
            if let Some(key) = exchange(r, ids, request) {
                let (requests, replies) = self.echoes.entry(key).or_default();
                *if request { requests } else { replies } += 1;
            }
            // Requests to an address, replies from it (at most one entry per id).
            let (addr, slot) = if request { (ids.dst, 0) } else { (ids.src, 1) };
            if addr != NO_ID {
                self.responders.entry(addr).or_default()[slot] += 1;
            }
        }
        if let (Some(op), Some(_)) = (r.arp_op, r.arp_sender_ip) {
            let sums = self
                .arp
                .entry((ids.arp_sender, ids.src_mac))
                .or_insert_with(|| Sums::new(ts));
            sums.add(ts, r.wire_len);
            sums.errors_or_requests += u64::from(op == 1);
            sums.replies += u64::from(op == 2);
        }
        if self.cube.len() + self.arp.len() >= self.max_keys {
            let batch = Batch {
                cube: std::mem::take(&mut self.cube),
                arp: std::mem::take(&mut self.arp),
                ..Batch::default()
            };
            self.write(batch)?;
        }
        if self.echoes.len() >= self.max_exchanges {
            self.echoes_spilled = true;
            let batch = Batch {
                echoes: std::mem::take(&mut self.echoes),
                ..Batch::default()
            };
            self.write(batch)?;
        }
        Ok(())
    }

    /// Writes a batch of rows.
    fn write(&mut self, batch: Batch) -> Result<()> {
        let df = batch.frame().map_err(|e| self.pq_err(e))?;
        if self.out.is_none() {
            let file = AtomicFile::create(&self.path).map_err(|e| self.io_err(e))?;
            let buf = SharedBuf::new(&file).map_err(|e| self.io_err(e))?;
            let writer = ParquetWriter::new(buf.clone())
                .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![(
                    ROLLUP_TOKEN_KEY.to_string(),
                    self.token.clone(),
                )])))
                .batched(df.schema())
                .map_err(|e| self.pq_err(e))?;
            self.out = Some((file, buf, writer));
        }
        if let Some((_, _, w)) = self.out.as_mut() {
            w.write_batch(&df).map_err(|e| ConvertError::Parquet {
                path: self.path.clone(),
                source: e,
            })?;
        }
        Ok(())
    }

    /// Writes the last rows and the footer and puts the file in place; nothing when the
    /// roll-up was given up (a file left by an earlier conversion is removed).
    pub(super) fn finish(mut self) -> Result<()> {
        if self.given_up {
            match std::fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io_err(e)),
            }
            return Ok(());
        }
        let batch = Batch {
            cube: std::mem::take(&mut self.cube),
            echoes: std::mem::take(&mut self.echoes),
            arp: std::mem::take(&mut self.arp),
            responders: std::mem::take(&mut self.responders),
            // A reply may come after its request was written out: then every exchange
            // is written as it is, else they are summed per initiator here.
            per_initiator: !self.echoes_spilled,
        };
        self.write(batch)?;
        if let Some((file, mut buf, w)) = self.out.take() {
            w.finish().map_err(|e| self.pq_err(e))?;
            std::io::Write::flush(&mut buf).map_err(|e| self.io_err(e))?;
            file.commit().map_err(|e| self.io_err(e))?;
        }
        Ok(())
    }

    fn io_err(&self, source: std::io::Error) -> ConvertError {
        ConvertError::Output {
            path: self.path.clone(),
            source,
        }
    }

    fn pq_err(&self, source: PolarsError) -> ConvertError {
        ConvertError::Parquet {
            path: self.path.clone(),
            source,
        }
    }
}

/// Rows for the roll-up.
#[derive(Default)]
struct Batch {
    cube: PlHashMap<CubeKey, Sums>,
    echoes: PlHashMap<u64, (u64, u64)>,
    arp: PlHashMap<(u16, u16), Sums>,
    responders: PlHashMap<u16, [u64; 2]>,
    /// Exchanges summed per initiator ([`PINGS`]) rather than written as they are.
    per_initiator: bool,
}

impl Batch {
    /// The rows as one frame of the roll-up's columns (nulls where a table has no such
    /// column).
    fn frame(self) -> PolarsResult<DataFrame> {
        let Batch {
            cube,
            echoes,
            arp,
            responders,
            per_initiator,
        } = self;
        let mut c = Frame::with_capacity(cube.len() + echoes.len() + arp.len() + responders.len());
        for (k, s) in cube {
            c.row(CUBE, Some(k.src), Some(k.src_mac), Some(&s));
            c.slot.push(Some(k.slot));
            c.protocol.push(Some(k.protocol));
            c.dst.push(Some(k.dst));
            c.ip_version.push(k.ip_version);
            c.port.push(k.port);
            c.errors.push(Some(s.errors_or_requests));
            c.echo(None, None, None, None);
        }
        if per_initiator {
            // (requests, replies, unanswered) per initiator id.
            let mut pings: PlHashMap<u16, (u64, u64, u64)> = PlHashMap::default();
            for (exchange, (requests, replies)) in echoes {
                let initiator = u16::try_from(exchange >> 48).unwrap_or(NO_ID);
                let p = pings.entry(initiator).or_default();
                p.0 += requests;
                p.1 += replies;
                p.2 += if replies == 0 { requests } else { 0 };
            }
            for (initiator, (requests, replies, unanswered)) in pings {
                c.row(PINGS, Some(initiator), None, None);
                c.cube_keys_none();
                c.echo(None, Some(requests), Some(replies), Some(unanswered));
            }
        } else {
            for (exchange, (requests, replies)) in echoes {
                c.row(ECHO, None, None, None);
                c.cube_keys_none();
                c.echo(Some(exchange), Some(requests), Some(replies), None);
            }
        }
        for ((ip, mac), s) in arp {
            c.row(ARP, Some(ip), Some(mac), Some(&s));
            c.cube_keys_none();
            c.echo(None, Some(s.errors_or_requests), Some(s.replies), None);
        }
        for (addr, [requests, replies]) in responders {
            c.row(RESPONDERS, Some(addr), None, None);
            c.cube_keys_none();
            c.echo(None, Some(requests), Some(replies), None);
        }
        c.into_frame()
    }
}

/// Whether the packet is an ICMP/ICMPv6 echo request (`Some(true)`) or reply
/// (`Some(false)`), as `analyse::pings` tells them.
#[inline]
fn echo(r: &PacketRecord) -> Option<bool> {
    let is = |v4: u8, v6: u8| match r.ip_proto {
        Some(1) => r.icmp_type == Some(v4),
        Some(58) => r.icmp_type == Some(v6),
        _ => false,
    };
    if is(8, 128) {
        Some(true)
    } else if is(0, 129) {
        Some(false)
    } else {
        None
    }
}

/// An echo message's exchange key, as `analyse::pings` builds it from the id columns:
/// initiator, responder, identifier, sequence number, 16 bits each; without
/// identifier/sequence, initiator, [`NO_ID`], responder. `None` for an initiator
/// without id.
#[inline]
fn exchange(r: &PacketRecord, ids: RowIds, request: bool) -> Option<u64> {
    let (initiator, responder) = if request {
        (ids.src, ids.dst)
    } else {
        (ids.dst, ids.src)
    };
    if initiator == NO_ID {
        return None;
    }
    let (initiator, responder) = (u64::from(initiator), u64::from(responder));
    let rest = match (r.icmp_id, r.icmp_seq) {
        (Some(id), Some(seq)) => (responder << 32) + (u64::from(id) << 16) + u64::from(seq),
        _ => (u64::from(NO_ID) << 32) + responder,
    };
    Some((initiator << 48) + rest)
}

/// The roll-up's columns under construction.
struct Frame {
    table: Vec<u8>,
    slot: Vec<Option<i64>>,
    protocol: Vec<Option<u8>>,
    src: Vec<Option<u16>>,
    dst: Vec<Option<u16>>,
    ip_version: Vec<Option<u8>>,
    port: Vec<Option<u16>>,
    src_mac: Vec<Option<u16>>,
    packets: Vec<Option<u64>>,
    bytes: Vec<Option<u64>>,
    first: Vec<Option<i64>>,
    last: Vec<Option<i64>>,
    errors: Vec<Option<u64>>,
    exchange: Vec<Option<u64>>,
    requests: Vec<Option<u64>>,
    replies: Vec<Option<u64>>,
    unanswered: Vec<Option<u64>>,
}

impl Frame {
    fn with_capacity(n: usize) -> Self {
        Frame {
            table: Vec::with_capacity(n),
            slot: Vec::with_capacity(n),
            protocol: Vec::with_capacity(n),
            src: Vec::with_capacity(n),
            dst: Vec::with_capacity(n),
            ip_version: Vec::with_capacity(n),
            port: Vec::with_capacity(n),
            src_mac: Vec::with_capacity(n),
            packets: Vec::with_capacity(n),
            bytes: Vec::with_capacity(n),
            first: Vec::with_capacity(n),
            last: Vec::with_capacity(n),
            errors: Vec::with_capacity(n),
            exchange: Vec::with_capacity(n),
            requests: Vec::with_capacity(n),
            replies: Vec::with_capacity(n),
            unanswered: Vec::with_capacity(n),
        }
    }

    /// Starts a row: its table, the columns every table may have.
    fn row(&mut self, table: u8, src: Option<u16>, src_mac: Option<u16>, s: Option<&Sums>) {
        self.table.push(table);
        self.src.push(src);
        self.src_mac.push(src_mac);
        self.packets.push(s.map(|s| s.packets));
        self.bytes.push(s.map(|s| s.bytes));
        self.first.push(s.map(|s| s.first));
        self.last.push(s.map(|s| s.last));
    }

    /// The cube's own columns, null.
    fn cube_keys_none(&mut self) {
        self.slot.push(None);
        self.protocol.push(None);
        self.dst.push(None);
        self.ip_version.push(None);
        self.port.push(None);
        self.errors.push(None);
    }

    /// The echo columns.
    fn echo(
        &mut self,
        exchange: Option<u64>,
        requests: Option<u64>,
        replies: Option<u64>,
        unanswered: Option<u64>,
    ) {
        self.exchange.push(exchange);
        self.requests.push(requests);
        self.replies.push(replies);
        self.unanswered.push(unanswered);
    }

    fn into_frame(self) -> PolarsResult<DataFrame> {
        let n = self.table.len();
        DataFrame::new(
            n,
            vec![
                Column::new(TABLE.into(), self.table),
                Column::new(SLOT.into(), self.slot),
                Column::new(PROTOCOL_ID.into(), self.protocol),
                Column::new(SRC_ID.into(), self.src),
                Column::new(DST_ID.into(), self.dst),
                Column::new(IP_VERSION.into(), self.ip_version),
                Column::new(PORT.into(), self.port),
                Column::new(SRC_MAC_ID.into(), self.src_mac),
                Column::new(PACKETS.into(), self.packets),
                Column::new(BYTES.into(), self.bytes),
                Column::new(FIRST.into(), self.first),
                Column::new(LAST.into(), self.last),
                Column::new(ERRORS.into(), self.errors),
                Column::new(EXCHANGE.into(), self.exchange),
                Column::new(REQUESTS.into(), self.requests),
                Column::new(REPLIES.into(), self.replies),
                Column::new(UNANSWERED.into(), self.unanswered),
            ],
        )
    }
}

/// The key-value entry `packets.parquet` carries for its roll-up.
pub(super) fn token_entry(token: &str) -> pq::KeyValue {
    pq::KeyValue {
        key: ROLLUP_TOKEN_KEY.to_string(),
        value: Some(token.to_string()),
    }
}
