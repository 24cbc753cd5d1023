//! [`PcapWriter`]: classic pcap, little-endian, microsecond or nanosecond timestamps.
//! Used by the traffic generator and by tests that need a capture of known frames.
//!
//! Invariant: a record's captured length is its data's length cut to the snap length,
//! and never exceeds its wire length (such a packet is refused, not written).

use std::io::{self, Write};

use crate::{LinkType, file_header, record_header};

/// A pcap (classic, microsecond or nanosecond, little-endian) writer. Used for
/// synthetic captures and by tests.
///
/// Frames longer than the snap length are cut to it (the record keeps the wire
/// length). Wrap a file in a [`std::io::BufWriter`]: every packet is two small writes.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
    snaplen: u32,
    nanos: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the 24-byte global header (version 2.4, zone 0).
    ///
    /// # Errors
    /// `snaplen` is 0, or the write failed.
    pub fn new(mut w: W, link: LinkType, snaplen: u32, nanos: bool) -> io::Result<Self> {
        if snaplen == 0 {
            return Err(invalid("pcap snap length must be at least 1"));
        }
        w.write_all(&file_header(nanos, snaplen, link))?;
        Ok(PcapWriter { w, snaplen, nanos })
    }

    /// Writes one record. `ts_ns` is nanoseconds since the epoch (UTC); with a
    /// microsecond file it is truncated to microseconds.
    ///
    /// # Errors
    /// The time is before 1970 or after 2106 (not representable), `wire_len` is
    /// smaller than `data`, or the write failed.
    pub fn write_packet(&mut self, ts_ns: i64, data: &[u8], wire_len: u32) -> io::Result<()> {
        let secs = u32::try_from(ts_ns.div_euclid(1_000_000_000))
            .map_err(|_| invalid("packet time not representable in pcap (1970..2106)"))?;
        let sub = ts_ns.rem_euclid(1_000_000_000);
        let frac = if self.nanos { sub } else { sub / 1000 };
        let len = u32::try_from(data.len()).map_err(|_| invalid("packet longer than 4 GiB"))?;
        if len > wire_len {
            return Err(invalid("packet data longer than its wire length"));
        }
        let cap = len.min(self.snaplen);
        // frac < 1e9 fits in u32.
        let h = record_header(secs, frac as u32, cap, wire_len);
        self.w.write_all(&h)?;
        self.w.write_all(&data[..cap as usize])
    }

    /// Flushes and returns the inner writer.
    ///
    /// # Errors
    /// The flush failed.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}
