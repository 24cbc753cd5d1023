//! The night's names: what convert reads out of packets with the `names` crate,
//! de-duplicated and bounded, written to `names.parquet` beside `packets.parquet`, and
//! read back by the analysis (which never decodes packets again).
//!
//! One row per distinct (kind, name, address, client MAC, client IP), with when it was
//! first and last seen, in how many frames, the first frame's number and the largest
//! TTL seen. At most [`MAX_ROWS`] rows are kept: a LAN device or a DNS server can send
//! any number of distinct names, and past the bound new ones are only counted
//! ([`NameStore::dropped`]); rows already kept go on being updated.
//!
//! Schema of `names.parquet` (all names already sanitized by the `names` crate: valid
//! UTF-8, no control or bidi characters, at most 253 bytes):
//!
//! | column | type | |
//! |---|---|---|
//! | `kind` | string | `dhcp-hostname`, `dhcp-fqdn`, `dhcp-vendor`, `dhcp-client-id`, `dhcpv6-fqdn`, `mdns`, `mdns-service`, `mdns-friendly`, `mdns-model`, `nbns`, `llmnr`, `ssdp`, `dns-answer`, `tls-sni`, `quic-sni`, `http-host` |
//! | `name` | string | the name |
//! | `addr` | string? | the address it names (DNS answer, server of an SNI/Host, announced or leased address) |
//! | `client_mac` | string? | the local device it belongs to or was seen by, `aa:bb:cc:dd:ee:ff` |
//! | `client_ip` | string? | that device's address in the packet |
//! | `ttl` | u32? | largest TTL seen (DNS, mDNS, LLMNR, NBNS answers) |
//! | `first_ts`, `last_ts` | timestamp[ns, UTC] | first and last frame carrying it |
//! | `frames` | u64 | frames carrying it |
//! | `first_frame` | u64 | the first such frame's number (tshark's `frame.number`) |

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use names::{Extractor, Kind, Name, Packet, Transport};
use polars::prelude::*;

use crate::decode::{Addr, PacketRecord};
use crate::fsutil::AtomicFile;

/// Most distinct names kept per night.
pub const MAX_ROWS: usize = 100_000;

pub const KIND: &str = "kind";
pub const NAME: &str = "name";
pub const ADDR: &str = "addr";
pub const CLIENT_MAC: &str = "client_mac";
pub const CLIENT_IP: &str = "client_ip";
pub const TTL: &str = "ttl";
pub const FIRST_TS: &str = "first_ts";
pub const LAST_TS: &str = "last_ts";
pub const FRAMES: &str = "frames";
pub const FIRST_FRAME: &str = "first_frame";

/// The `names` crate's view of a decoded frame: its innermost TCP or UDP payload with
/// addresses and ports. None for frames without one (ARP, ICMP, fragments after the
/// first, a transport header cut short).
#[must_use]
pub fn packet<'a>(rec: &PacketRecord, data: &'a [u8]) -> Option<Packet<'a>> {
    let transport = match rec.ip_proto? {
        6 => Transport::Tcp {
            seq: rec.tcp_seq?,
            flags: rec.tcp_flags?,
        },
        17 => Transport::Udp,
        _ => return None,
    };
    let ip = |a: Option<Addr>| match a? {
        Addr::V4(v) => Some(IpAddr::V4(v)),
        Addr::V6(v) => Some(IpAddr::V6(v)),
        Addr::Mac(_) => None,
    };
    let off = usize::try_from(rec.payload_off?).ok()?;
    let rest = data.get(off..)?;
    // The payload ends where the headers say (an Ethernet trailer is not payload); a
    // length tshark cannot know leaves what was captured.
    let payload = match rec.payload_len.and_then(|l| usize::try_from(l).ok()) {
        Some(l) => rest.get(..l).unwrap_or(rest),
        None => rest,
    };
    Some(Packet {
        ts_ns: rec.ts_ns,
        src_mac: rec.src_mac,
        dst_mac: rec.dst_mac,
        src: ip(rec.src)?,
        dst: ip(rec.dst)?,
        src_port: rec.src_port?,
        dst_port: rec.dst_port?,
        transport,
        payload,
    })
}

/// Appends the names one decoded frame carries to `out`: what convert stores, frame by
/// frame (the tshark oracle reads frames through this too). Frames without a TCP/UDP
/// payload cost one comparison.
#[inline]
pub fn frame_names(ex: &mut Extractor, rec: &PacketRecord, data: &[u8], out: &mut Vec<Name>) {
    if rec.payload_off.is_none() || rec.payload_len == Some(0) {
        return;
    }
    if let Some(p) = packet(rec, data) {
        ex.packet(&p, out);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    kind: Kind,
    name: String,
    addr: Option<IpAddr>,
    client_mac: Option<[u8; 6]>,
    client_ip: Option<IpAddr>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    first_ts: i64,
    last_ts: i64,
    frames: u64,
    first_frame: u64,
    ttl: Option<u32>,
}

/// The night's names as convert collects them, frame by frame.
#[derive(Debug, Default)]
pub struct NameStore {
    extractor: Extractor,
    scratch: Vec<Name>,
    rows: HashMap<Key, Seen>,
    dropped: u64,
}

impl NameStore {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the names in one decoded frame (`data`: its captured bytes).
    #[inline]
    pub fn observe(&mut self, rec: &PacketRecord, data: &[u8]) {
        frame_names(&mut self.extractor, rec, data, &mut self.scratch);
        if self.scratch.is_empty() {
            return;
        }
        let mut names = std::mem::take(&mut self.scratch);
        for n in names.drain(..) {
            self.add(n, rec.ts_ns, rec.frame);
        }
        self.scratch = names;
    }

    /// Counts one name seen in frame `frame` at `ts_ns` (what [`NameStore::observe`]
    /// does for each name a frame carries).
    pub fn add(&mut self, n: Name, ts_ns: i64, frame: u64) {
        let key = Key {
            kind: n.kind,
            name: n.name,
            addr: n.addr,
            client_mac: n.client_mac,
            client_ip: n.client_ip,
        };
        if let Some(s) = self.rows.get_mut(&key) {
            s.first_ts = s.first_ts.min(ts_ns);
            s.last_ts = s.last_ts.max(ts_ns);
            s.frames += 1;
            s.ttl = s.ttl.max(n.ttl);
        } else if self.rows.len() < MAX_ROWS {
            self.rows.insert(
                key,
                Seen {
                    first_ts: ts_ns,
                    last_ts: ts_ns,
                    frames: 1,
                    first_frame: frame,
                    ttl: n.ttl,
                },
            );
        } else {
            self.dropped += 1;
        }
    }

    /// Distinct names kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Names seen after [`MAX_ROWS`] distinct ones were kept (not stored).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The names as a table (schema in the module's documentation), in order of first
    /// frame, then kind and name.
    ///
    /// # Errors
    /// Polars could not build the frame (it does not fail on these columns).
    pub fn to_frame(&self) -> PolarsResult<DataFrame> {
        let mut rows: Vec<(&Key, &Seen)> = self.rows.iter().collect();
        rows.sort_by(|a, b| {
            (
                a.1.first_frame,
                a.0.kind,
                &a.0.name,
                a.0.addr,
                a.0.client_mac,
            )
                .cmp(&(
                    b.1.first_frame,
                    b.0.kind,
                    &b.0.name,
                    b.0.addr,
                    b.0.client_mac,
                ))
        });
        let mac = |m: &Option<[u8; 6]>| m.map(|m| Addr::Mac(m).to_string());
        let ip = |a: &Option<IpAddr>| {
            a.map(|a| match a {
                IpAddr::V4(v) => Addr::V4(v).to_string(),
                IpAddr::V6(v) => Addr::V6(v).to_string(),
            })
        };
        let ts = |name: &str, f: fn(&Seen) -> i64| -> PolarsResult<Column> {
            Ok(Series::new(
                name.into(),
                rows.iter().map(|r| f(r.1)).collect::<Vec<i64>>(),
            )
            .cast(&DataType::Datetime(
                TimeUnit::Nanoseconds,
                Some(TimeZone::UTC),
            ))?
            .into())
        };
        DataFrame::new(
            rows.len(),
            vec![
                Column::new(
                    KIND.into(),
                    rows.iter().map(|r| r.0.kind.as_str()).collect::<Vec<_>>(),
                ),
                Column::new(
                    NAME.into(),
                    rows.iter().map(|r| r.0.name.as_str()).collect::<Vec<_>>(),
                ),
                Column::new(
                    ADDR.into(),
                    rows.iter().map(|r| ip(&r.0.addr)).collect::<Vec<_>>(),
                ),
                Column::new(
                    CLIENT_MAC.into(),
                    rows.iter()
                        .map(|r| mac(&r.0.client_mac))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    CLIENT_IP.into(),
                    rows.iter().map(|r| ip(&r.0.client_ip)).collect::<Vec<_>>(),
                ),
                Column::new(
                    TTL.into(),
                    rows.iter().map(|r| r.1.ttl).collect::<Vec<Option<u32>>>(),
                ),
                ts(FIRST_TS, |s| s.first_ts)?,
                ts(LAST_TS, |s| s.last_ts)?,
                Column::new(
                    FRAMES.into(),
                    rows.iter().map(|r| r.1.frames).collect::<Vec<u64>>(),
                ),
                Column::new(
                    FIRST_FRAME.into(),
                    rows.iter().map(|r| r.1.first_frame).collect::<Vec<u64>>(),
                ),
            ],
        )
    }

    /// Writes `names.parquet` atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &Path) -> Result<(), WriteError> {
        let mut df = self.to_frame().map_err(|source| WriteError::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
        let io = |source| WriteError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = AtomicFile::create(path).map_err(io)?;
        // Buffered: the Parquet writer writes each page header and page on its own.
        let mut out = std::io::BufWriter::new(file.writer().try_clone().map_err(io)?);
        ParquetWriter::new(&mut out)
            .finish(&mut df)
            .map_err(|source| WriteError::Parquet {
                path: path.to_path_buf(),
                source,
            })?;
        std::io::Write::flush(&mut out).map_err(io)?;
        file.commit().map_err(io)
    }
}

/// names.parquet could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: writing Parquet: {source}", path.display())]
    Parquet {
        path: std::path::PathBuf,
        source: PolarsError,
    },
}

/// A filter on the `kind` column: the rows of the kinds `pred` holds for.
pub fn kind_is(pred: impl Fn(Kind) -> bool) -> Expr {
    Kind::ALL
        .into_iter()
        .filter(|k| pred(*k))
        .map(|k| col(KIND).eq(lit(k.as_str())))
        .reduce(Expr::or)
        .unwrap_or_else(|| lit(false))
}

/// Reads `names.parquet`. A night converted before names existed has none: an empty
/// table with the same columns.
///
/// # Errors
/// The file exists but is not a names table.
pub fn read(path: &Path) -> PolarsResult<DataFrame> {
    if !path.exists() {
        return NameStore::new().to_frame();
    }
    let file = std::fs::File::open(path)?;
    ParquetReader::new(file).finish()
}
