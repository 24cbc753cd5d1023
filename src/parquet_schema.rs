//! The Parquet contract between `convert` (which writes a night's `packets.parquet`) and
//! `analyse` (which reads it): the column names and their types, the footer's key-value
//! keys, the "no address" id, and which columns are compressed for fast reading.
//!
//! Invariants: this module is the one place in product code that spells a column name;
//! the writer emits the columns in the order of [`COLUMNS`], every one of them in every
//! row group; the id columns ([`SRC_ID`], [`DST_ID`], [`SRC_MAC_ID`], [`PROTOCOL_ID`])
//! have no nulls. Types are given as polars reads the file back.

/// Frame number, from 1, counting on across the inputs of one conversion (u64).
pub const FRAME: &str = "frame";
/// Capture time (datetime, ns, UTC).
pub const TS: &str = "ts";
/// Capture interface: 0 for pcap, for pcapng a running number over all interface
/// description blocks (u16).
pub const INTERFACE: &str = "interface";
/// Link-layer header type of the frame (u16).
pub const LINK_TYPE: &str = "link_type";
/// Length on the wire (u32).
pub const WIRE_LEN: &str = "wire_len";
/// Length captured (u32).
pub const CAP_LEN: &str = "cap_len";
/// Source link-layer address of the outermost link header, as text (string).
pub const SRC_MAC: &str = "src_mac";
/// Destination link-layer address of the outermost link header, as text (string).
pub const DST_MAC: &str = "dst_mac";
/// Outermost VLAN id (u16, null without a tag).
pub const VLAN: &str = "vlan";
/// The ethertype after VLAN tags (u16).
pub const ETHER_TYPE: &str = "ether_type";
/// Version of the outermost IP header, 4 or 6 (u8, null for non-IP frames).
pub const IP_VERSION: &str = "ip_version";
/// tshark's Source column: the innermost IP source address, else the link address, as
/// text (string).
pub const SRC: &str = "src";
/// tshark's Destination column, as [`SRC`] (string).
pub const DST: &str = "dst";
/// TTL / hop limit of the outermost IP header (u8).
pub const TTL: &str = "ttl";
/// Upper-layer protocol number of the innermost IP header (u8).
pub const IP_PROTO: &str = "ip_proto";
/// tshark's Protocol column: "TCP", "ARP", ... (categorical).
pub const PROTOCOL: &str = "protocol";
/// TCP/UDP source port (u16).
pub const SRC_PORT: &str = "src_port";
/// TCP/UDP destination port (u16).
pub const DST_PORT: &str = "dst_port";
/// TCP flags, low 8 bits (u8).
pub const TCP_FLAGS: &str = "tcp_flags";
/// TCP sequence number relative to the stream's first, as tshark shows it (u32).
pub const TCP_SEQ: &str = "tcp_seq";
/// TCP sequence number as on the wire (u32).
pub const TCP_SEQ_RAW: &str = "tcp_seq_raw";
/// TCP/UDP payload length as the headers imply, tshark's `Len=` (u32).
pub const PAYLOAD_LEN: &str = "payload_len";
/// ICMP/ICMPv6 type (u8; set only on frames decoded as ICMP/ICMPv6).
pub const ICMP_TYPE: &str = "icmp_type";
/// ICMP/ICMPv6 code (u8).
pub const ICMP_CODE: &str = "icmp_code";
/// ICMP echo identifier (u16).
pub const ICMP_ID: &str = "icmp_id";
/// ICMP echo sequence number (u16).
pub const ICMP_SEQ: &str = "icmp_seq";
/// ARP operation: 1 request, 2 reply (u16).
pub const ARP_OP: &str = "arp_op";
/// ARP sender IPv4 address as text (string).
pub const ARP_SENDER_IP: &str = "arp_sender_ip";
/// ARP target IPv4 address as text (string).
pub const ARP_TARGET_IP: &str = "arp_target_ip";
/// An IP fragment: IPv4 MF set or offset != 0, or an IPv6 fragment header (bool).
pub const FRAGMENT: &str = "fragment";
/// Captured shorter than on the wire, or cut inside a header (bool).
pub const TRUNCATED: &str = "truncated";
/// Why the frame could not be decoded (string, null when it was).
pub const DECODE_ERROR: &str = "decode_error";
/// Id of [`SRC`] in the address table (u16, [`NO_ID`] for none).
pub const SRC_ID: &str = "src_id";
/// Id of [`DST`] in the address table (u16, [`NO_ID`] for none).
pub const DST_ID: &str = "dst_id";
/// Id of [`SRC_MAC`] in the address table (u16, [`NO_ID`] for none).
pub const SRC_MAC_ID: &str = "src_mac_id";
/// Id of [`PROTOCOL`] in the protocol table (u8, [`NO_PROTOCOL_ID`] for none).
pub const PROTOCOL_ID: &str = "protocol_id";

/// Every column, in the order the file holds them.
pub const COLUMNS: [&str; 36] = [
    FRAME,
    TS,
    INTERFACE,
    LINK_TYPE,
    WIRE_LEN,
    CAP_LEN,
    SRC_MAC,
    DST_MAC,
    VLAN,
    ETHER_TYPE,
    IP_VERSION,
    SRC,
    DST,
    TTL,
    IP_PROTO,
    PROTOCOL,
    SRC_PORT,
    DST_PORT,
    TCP_FLAGS,
    TCP_SEQ,
    TCP_SEQ_RAW,
    PAYLOAD_LEN,
    ICMP_TYPE,
    ICMP_CODE,
    ICMP_ID,
    ICMP_SEQ,
    ARP_OP,
    ARP_SENDER_IP,
    ARP_TARGET_IP,
    FRAGMENT,
    TRUNCATED,
    DECODE_ERROR,
    SRC_ID,
    DST_ID,
    SRC_MAC_ID,
    PROTOCOL_ID,
];

/// The address columns: built as ids while every address has one.
pub const ADDRESS_COLUMNS: [&str; 6] = [SRC_MAC, DST_MAC, SRC, DST, ARP_SENDER_IP, ARP_TARGET_IP];

/// The text columns that have an id column beside them, with it: analysis groups on the
/// id and turns only the result rows back into text.
pub const ID_COLUMNS: [(&str, &str); 4] = [
    (SRC, SRC_ID),
    (DST, DST_ID),
    (SRC_MAC, SRC_MAC_ID),
    (PROTOCOL, PROTOCOL_ID),
];

/// Footer key (Parquet key-value metadata) of the address table: the text of every
/// address in `src`/`dst`/`src_mac`, one per line, line `i` being id `i` of
/// `src_id`/`dst_id`/`src_mac_id`. Absent when the file has more distinct addresses
/// than the ids can number: the id columns are then incomplete and readers use the
/// text columns.
pub const ADDRESSES_KEY: &str = "netdigest.addresses";
/// The id of "no address" in `src_id`/`dst_id`/`src_mac_id` (where the text column is
/// null, or the address got no id): the id columns have no nulls, so they are read
/// without definition levels.
pub const NO_ID: u16 = u16::MAX;

/// Footer key of the protocol table: line `i` is the name of `protocol_id` `i`.
pub const PROTOCOLS_KEY: &str = "netdigest.protocols";
/// The `protocol_id` of a protocol past the table's end (more names than ids; the
/// decoder cannot produce that many, and the file then has no protocol table).
pub const NO_PROTOCOL_ID: u8 = u8::MAX;

/// The columns analysis reads on every row: LZ4 (about 4x faster to decompress than
/// zstd) instead of zstd. Measured on a 2M-packet night: analyse 5-10% faster, convert
/// no slower, the file 13% bigger (27.8 -> 31.5 MB).
pub const HOT_COLUMNS: [&str; 16] = [
    TS,
    WIRE_LEN,
    SRC_ID,
    DST_ID,
    SRC_MAC_ID,
    PROTOCOL_ID,
    IP_VERSION,
    SRC_PORT,
    DST_PORT,
    IP_PROTO,
    ICMP_TYPE,
    ICMP_ID,
    ICMP_SEQ,
    ARP_OP,
    ARP_SENDER_IP,
    DECODE_ERROR,
];

/// Footer key of the roll-up token: a random value written in both `packets.parquet`
/// and the `rollup.parquet` convert wrote with it, so a roll-up is read only beside the
/// very file it sums (one left from another conversion is ignored).
pub const ROLLUP_TOKEN_KEY: &str = "netdigest.rollup";

/// `rollup.parquet`: what analysis would otherwise group from every packet, summed by
/// convert as it streams. Partial sums (counts, byte sums, minima, maxima) only, so rows
/// of the same key (written when convert's maps filled up) add up again exactly. Keys
/// are ids of `packets.parquet`'s tables; the file exists only when every address got
/// an id. Three tables in one file, told apart by [`rollup::TABLE`].
pub mod rollup {
    /// Which table a row belongs to (u8): [`CUBE`], [`ECHO`] or [`ARP`].
    pub const TABLE: &str = "table";
    /// Packets and bytes per (slot, protocol, source, destination, IP version, service
    /// port, source MAC).
    pub const CUBE: u8 = 0;
    /// ICMP/ICMPv6 echo requests and replies per exchange: written when there were too
    /// many exchanges to hold, instead of [`PINGS`].
    pub const ECHO: u8 = 1;
    /// ARP packets per (sender IP, source MAC).
    pub const ARP: u8 = 2;
    /// Echo requests, replies and unanswered requests per initiator (in `src_id`): the
    /// exchanges summed up, when convert held them all to the end.
    pub const PINGS: u8 = 3;
    /// Echo requests sent to an address and echo replies it sent, per address (in
    /// `src_id`), whoever asked.
    pub const RESPONDERS: u8 = 4;
    /// The cube's time slot: the start of its 5 minutes, ns since the epoch, UTC (i64).
    /// Analysis can build slots of any multiple of 5 minutes from it (every zone's UTC
    /// offset is a multiple of 15 minutes).
    pub const SLOT: &str = "slot";
    /// Length of a slot in ns.
    pub const SLOT_NS: i64 = 300 * 1_000_000_000;
    /// The smaller port when both are set (u16, null otherwise).
    pub const PORT: &str = "port";
    /// Frames (u64).
    pub const PACKETS: &str = "packets";
    /// Bytes on the wire (u64).
    pub const BYTES: &str = "bytes";
    /// First and last capture time, ns since the epoch (i64).
    pub const FIRST: &str = "first";
    pub const LAST: &str = "last";
    /// Frames with a decode error (u64).
    pub const ERRORS: &str = "errors";
    /// An echo exchange: initiator, responder, identifier and sequence number, 16 bits
    /// each (u64; see `analyse::pings`).
    pub const EXCHANGE: &str = "exchange";
    /// Echo or ARP requests, and replies (u64).
    pub const REQUESTS: &str = "requests";
    pub const REPLIES: &str = "replies";
    /// Echo requests of exchanges that got no reply (u64).
    pub const UNANSWERED: &str = "unanswered";
    // The cube's keys and the ARP table's source MAC reuse the packets' id column names
    // (`protocol_id`, `src_id`, `dst_id`, `ip_version`, `src_mac_id`); the ARP table's
    // sender IP, the pings table's initiator and the responders' address are in `src_id`.
}
