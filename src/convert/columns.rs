//! One row group's columns under construction, one builder per column of
//! [`crate::parquet_schema::COLUMNS`], handed over as a DataFrame in that order.

use polars::prelude::*;
use polars_arrow::bitmap::{Bitmap, MutableBitmap};

use super::ROW_GROUP_ROWS;
use super::ids::{AddrCache, ProtocolCodes};
use crate::decode::{Addr, PacketRecord};
use crate::parquet_schema::{
    ARP_OP, ARP_SENDER_IP, ARP_TARGET_IP, CAP_LEN, DECODE_ERROR, DST, DST_ID, DST_MAC, DST_PORT,
    ETHER_TYPE, FRAGMENT, FRAME, ICMP_CODE, ICMP_ID, ICMP_SEQ, ICMP_TYPE, INTERFACE, IP_PROTO,
    IP_VERSION, LINK_TYPE, NO_ID, NO_PROTOCOL_ID, PAYLOAD_LEN, PROTOCOL, PROTOCOL_ID, SRC, SRC_ID,
    SRC_MAC, SRC_MAC_ID, SRC_PORT, TCP_FLAGS, TCP_SEQ, TCP_SEQ_RAW, TRUNCATED, TS, TTL, VLAN,
    WIRE_LEN,
};

/// An address column under construction: ids ([`NO_ID`] for null) while the file's
/// addresses all have one, text once they ran out.
enum AddrColumn {
    Ids(Vec<u16>),
    Text(StringChunkedBuilder),
}

impl AddrColumn {
    fn new(n: usize) -> Self {
        AddrColumn::Ids(Vec::with_capacity(n))
    }

    /// Appends the address and returns its id.
    #[inline]
    fn push(&mut self, name: &str, a: Option<Addr>, cache: &mut AddrCache) -> Option<u16> {
        let Some(a) = a else {
            match self {
                AddrColumn::Ids(v) => v.push(NO_ID),
                AddrColumn::Text(b) => b.append_null(),
            }
            return None;
        };
        let (id, text) = cache.get(a);
        match (&mut *self, id) {
            (AddrColumn::Ids(v), Some(id)) => v.push(id),
            (AddrColumn::Text(b), _) => b.append_value(text),
            (AddrColumn::Ids(v), None) => {
                // The ids just ran out: this column's rows so far become text.
                let mut b = StringChunkedBuilder::new(name.into(), v.capacity());
                for &id in v.iter() {
                    if id == NO_ID {
                        b.append_null();
                    } else {
                        b.append_value(cache.text(id));
                    }
                }
                let (_, text) = cache.get(a);
                b.append_value(text);
                *self = AddrColumn::Text(b);
            }
        }
        id
    }

    /// The column: u16 ids (the writer reads them as text through the table) or text.
    fn into_column(self, name: &str) -> Column {
        match self {
            AddrColumn::Ids(v) => Series::new(name.into(), v).into(),
            AddrColumn::Text(b) => b.finish().into_series().into(),
        }
    }
}

/// A nullable column under construction: values and validity side by side, handed to
/// polars as one array without another pass (building from `Vec<Option<T>>` costs a
/// second pass over every value).
struct Nullable<T> {
    values: Vec<T>,
    valid: MutableBitmap,
}

impl<T: Default + Copy> Nullable<T> {
    fn with_capacity(n: usize) -> Self {
        Nullable {
            values: Vec::with_capacity(n),
            valid: MutableBitmap::with_capacity(n),
        }
    }

    #[inline]
    fn push(&mut self, v: Option<T>) {
        self.values.push(v.unwrap_or_default());
        self.valid.push(v.is_some());
    }
}

impl<T> Nullable<T> {
    fn into_column<P>(self, name: &str) -> Column
    where
        P: PolarsNumericType<Native = T>,
    {
        let valid: Bitmap = self.valid.into();
        let valid = (valid.unset_bits() > 0).then_some(valid);
        ChunkedArray::<P>::from_vec_validity(name.into(), self.values, valid)
            .into_series()
            .into()
    }
}

/// The ids one row got ([`NO_ID`] / [`NO_PROTOCOL_ID`] for none, or once they ran
/// out), for the roll-up.
#[derive(Debug, Clone, Copy)]
pub(super) struct RowIds {
    pub(super) src: u16,
    pub(super) dst: u16,
    pub(super) src_mac: u16,
    pub(super) arp_sender: u16,
    pub(super) protocol: u8,
}

/// Column builders for one row group.
pub(super) struct Columns {
    pub(super) len: usize,
    frame: Vec<u64>,
    ts: Vec<i64>,
    interface: Vec<u16>,
    link_type: Vec<u16>,
    wire_len: Vec<u32>,
    cap_len: Vec<u32>,
    src_mac: AddrColumn,
    dst_mac: AddrColumn,
    vlan: Nullable<u16>,
    ether_type: Nullable<u16>,
    ip_version: Nullable<u8>,
    src: AddrColumn,
    dst: AddrColumn,
    ttl: Nullable<u8>,
    ip_proto: Nullable<u8>,
    protocol: Vec<u32>,
    src_port: Nullable<u16>,
    dst_port: Nullable<u16>,
    tcp_flags: Nullable<u8>,
    tcp_seq: Nullable<u32>,
    tcp_seq_raw: Nullable<u32>,
    payload_len: Nullable<u32>,
    icmp_type: Nullable<u8>,
    icmp_code: Nullable<u8>,
    icmp_id: Nullable<u16>,
    icmp_seq: Nullable<u16>,
    arp_op: Nullable<u16>,
    arp_sender_ip: AddrColumn,
    arp_target_ip: AddrColumn,
    fragment: Vec<bool>,
    truncated: Vec<bool>,
    decode_error: StringChunkedBuilder,
    src_id: Vec<u16>,
    dst_id: Vec<u16>,
    src_mac_id: Vec<u16>,
    protocol_id: Vec<u8>,
}

impl Columns {
    pub(super) fn new() -> Self {
        let n = ROW_GROUP_ROWS;
        let s = |name: &str| StringChunkedBuilder::new(name.into(), n);
        Columns {
            len: 0,
            frame: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            interface: Vec::with_capacity(n),
            link_type: Vec::with_capacity(n),
            wire_len: Vec::with_capacity(n),
            cap_len: Vec::with_capacity(n),
            src_mac: AddrColumn::new(n),
            dst_mac: AddrColumn::new(n),
            vlan: Nullable::with_capacity(n),
            ether_type: Nullable::with_capacity(n),
            ip_version: Nullable::with_capacity(n),
            src: AddrColumn::new(n),
            dst: AddrColumn::new(n),
            ttl: Nullable::with_capacity(n),
            ip_proto: Nullable::with_capacity(n),
            protocol: Vec::with_capacity(n),
            src_port: Nullable::with_capacity(n),
            dst_port: Nullable::with_capacity(n),
            tcp_flags: Nullable::with_capacity(n),
            tcp_seq: Nullable::with_capacity(n),
            tcp_seq_raw: Nullable::with_capacity(n),
            payload_len: Nullable::with_capacity(n),
            icmp_type: Nullable::with_capacity(n),
            icmp_code: Nullable::with_capacity(n),
            icmp_id: Nullable::with_capacity(n),
            icmp_seq: Nullable::with_capacity(n),
            arp_op: Nullable::with_capacity(n),
            arp_sender_ip: AddrColumn::new(n),
            arp_target_ip: AddrColumn::new(n),
            fragment: Vec::with_capacity(n),
            truncated: Vec::with_capacity(n),
            decode_error: s(DECODE_ERROR),
            src_id: Vec::with_capacity(n),
            dst_id: Vec::with_capacity(n),
            src_mac_id: Vec::with_capacity(n),
            protocol_id: Vec::with_capacity(n),
        }
    }

    pub(super) fn push(
        &mut self,
        r: &PacketRecord,
        rel_seq: Option<u32>,
        cache: &mut AddrCache,
        protos: &mut ProtocolCodes,
    ) -> PolarsResult<RowIds> {
        self.len += 1;
        self.frame.push(r.frame);
        self.ts.push(r.ts_ns);
        self.interface
            .push(u16::try_from(r.interface).unwrap_or(u16::MAX));
        self.link_type
            .push(u16::try_from(r.link.0).unwrap_or(u16::MAX));
        self.wire_len.push(r.wire_len);
        self.cap_len.push(r.cap_len);
        let src_mac_id = self.src_mac.push(SRC_MAC, r.src_mac.map(Addr::Mac), cache);
        self.src_mac_id.push(src_mac_id.unwrap_or(NO_ID));
        self.dst_mac.push(DST_MAC, r.dst_mac.map(Addr::Mac), cache);
        self.vlan.push(r.vlan);
        self.ether_type.push(r.ether_type);
        self.ip_version.push(r.ip_version);
        let src_id = self.src.push(SRC, r.src, cache);
        self.src_id.push(src_id.unwrap_or(NO_ID));
        let dst_id = self.dst.push(DST, r.dst, cache);
        self.dst_id.push(dst_id.unwrap_or(NO_ID));
        self.ttl.push(r.ttl);
        self.ip_proto.push(r.ip_proto);
        let (code, protocol_id) = protos.code(r.protocol)?;
        self.protocol.push(code);
        self.protocol_id.push(protocol_id.unwrap_or(NO_PROTOCOL_ID));
        self.src_port.push(r.src_port);
        self.dst_port.push(r.dst_port);
        self.tcp_flags.push(r.tcp_flags);
        self.tcp_seq.push(rel_seq);
        self.tcp_seq_raw.push(r.tcp_seq);
        self.payload_len.push(r.payload_len);
        self.icmp_type.push(r.icmp_type);
        self.icmp_code.push(r.icmp_code);
        self.icmp_id.push(r.icmp_id);
        self.icmp_seq.push(r.icmp_seq);
        self.arp_op.push(r.arp_op);
        let arp_sender =
            self.arp_sender_ip
                .push(ARP_SENDER_IP, r.arp_sender_ip.map(Addr::V4), cache);
        self.arp_target_ip
            .push(ARP_TARGET_IP, r.arp_target_ip.map(Addr::V4), cache);
        self.fragment.push(r.fragment);
        self.truncated.push(r.truncated);
        self.decode_error.append_option(r.decode_error.as_deref());
        Ok(RowIds {
            src: src_id.unwrap_or(NO_ID),
            dst: dst_id.unwrap_or(NO_ID),
            src_mac: src_mac_id.unwrap_or(NO_ID),
            arp_sender: arp_sender.unwrap_or(NO_ID),
            protocol: protocol_id.unwrap_or(NO_PROTOCOL_ID),
        })
    }

    /// Builds the batch's DataFrame and resets the builders.
    pub(super) fn take(&mut self, protos: &ProtocolCodes) -> PolarsResult<DataFrame> {
        let mut old = std::mem::replace(self, Columns::new());
        let ts = Series::new(TS.into(), std::mem::take(&mut old.ts))
            .into_datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC));
        let protocol = CategoricalChunked::<Categorical32Type>::from_cats_and_dtype(
            UInt32Chunked::from_vec(PROTOCOL.into(), old.protocol),
            protos.dtype(),
        )
        .into_series();
        let cols: Vec<Column> = vec![
            Series::new(FRAME.into(), old.frame).into(),
            ts.into(),
            Series::new(INTERFACE.into(), old.interface).into(),
            Series::new(LINK_TYPE.into(), old.link_type).into(),
            Series::new(WIRE_LEN.into(), old.wire_len).into(),
            Series::new(CAP_LEN.into(), old.cap_len).into(),
            old.src_mac.into_column(SRC_MAC),
            old.dst_mac.into_column(DST_MAC),
            old.vlan.into_column::<UInt16Type>(VLAN),
            old.ether_type.into_column::<UInt16Type>(ETHER_TYPE),
            old.ip_version.into_column::<UInt8Type>(IP_VERSION),
            old.src.into_column(SRC),
            old.dst.into_column(DST),
            old.ttl.into_column::<UInt8Type>(TTL),
            old.ip_proto.into_column::<UInt8Type>(IP_PROTO),
            protocol.into(),
            old.src_port.into_column::<UInt16Type>(SRC_PORT),
            old.dst_port.into_column::<UInt16Type>(DST_PORT),
            old.tcp_flags.into_column::<UInt8Type>(TCP_FLAGS),
            old.tcp_seq.into_column::<UInt32Type>(TCP_SEQ),
            old.tcp_seq_raw.into_column::<UInt32Type>(TCP_SEQ_RAW),
            old.payload_len.into_column::<UInt32Type>(PAYLOAD_LEN),
            old.icmp_type.into_column::<UInt8Type>(ICMP_TYPE),
            old.icmp_code.into_column::<UInt8Type>(ICMP_CODE),
            old.icmp_id.into_column::<UInt16Type>(ICMP_ID),
            old.icmp_seq.into_column::<UInt16Type>(ICMP_SEQ),
            old.arp_op.into_column::<UInt16Type>(ARP_OP),
            old.arp_sender_ip.into_column(ARP_SENDER_IP),
            old.arp_target_ip.into_column(ARP_TARGET_IP),
            Series::new(FRAGMENT.into(), old.fragment).into(),
            Series::new(TRUNCATED.into(), old.truncated).into(),
            old.decode_error.finish().into_series().into(),
            Series::new(SRC_ID.into(), old.src_id).into(),
            Series::new(DST_ID.into(), old.dst_id).into(),
            Series::new(SRC_MAC_ID.into(), old.src_mac_id).into(),
            Series::new(PROTOCOL_ID.into(), old.protocol_id).into(),
        ];
        DataFrame::new(old.len, cols)
    }
}
