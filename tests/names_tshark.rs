//! Oracle for passive names (issue 14): for every real capture in `shared/corpus/real`,
//! the set of (frame, kind, name, address) that convert's name extraction finds must
//! equal what `tshark -n` shows.
//!
//! Our side reads each file as convert does: netdigest's reader and decoder, then
//! [`namestore::packet`] and one [`names::Extractor`] per file.
//!
//! tshark's side: `-T json --no-duplicate-keys` (records stay grouped, so a DNS record's
//! owner, type and address belong together, and names with commas or tabs need no
//! aggregator), with IP reassembly off (`ip.defragment`/`ipv6.defragment` FALSE) as in
//! `oracle_tshark`, because we decode each frame on its own: the first fragment of a
//! datagram is read as far as it goes, by both sides. TCP and TLS reassembly stay on:
//! a ClientHello over several segments is shown by tshark on the frame that completes
//! it, where our reassembly reports it too. HTTP reassembly is off
//! (`http.desegment_headers`/`http.desegment_body` FALSE): our HTTP reader takes the
//! Host of a request that starts a segment, and so does tshark then. Mapping, per kind:
//!
//! - `dns-answer` (`dns` layer, responses): every A/AAAA record of class IN in any
//!   section; named by the question when its owner is the question or on the question's
//!   CNAME chain in the answer section (compared without case), else by its owner.
//! - `mdns` (`mdns` layer; responses: all sections, queries: only the authority
//!   section, where a prober proposes its own records): A/AAAA -> (owner, address);
//!   `mdns-service`: the instance label of a PTR target (`dns.ptr.domain_name`) and of
//!   SRV/TXT owners (`dns.srv.service`.`dns.srv.proto`.`dns.srv.name`,
//!   `dns.resp.name`); `mdns-friendly`/`mdns-model`: TXT strings `fn=`/`md=` or
//!   `model=` (`dns.txt`).
//! - `llmnr` (`llmnr` layer, responses): answer-section A/AAAA -> (owner, address).
//! - `nbns`: NB records (`nbns.type` 32) of positive responses' answers and of
//!   registrations'/refreshes' additional records (opcodes 5, 8, 9, 15), unique names
//!   (`nbns.nb_flags.group` 0) with suffix `<00>` or `<20>`, one per `nbns.addr`; the
//!   name is `nbns.name` without the suffix and tshark's description.
//! - `ssdp`: `http.server` in the `ssdp` layer, address the source.
//! - `dhcp-hostname`/`dhcp-fqdn`/`dhcp-vendor`/`dhcp-client-id`: `dhcp.option.hostname`,
//!   `dhcp.fqdn.name`, `dhcp.option.vendor_class_id`, option 61's `dhcp.option.value` as
//!   lower-case hex; address `dhcp.ip.your`, else `dhcp.option.requested_ip_address`,
//!   else `dhcp.ip.client` (the first not 0.0.0.0).
//! - `dhcpv6-fqdn`: the first `dhcpv6.client_domain`, address the first
//!   `dhcpv6.iaaddr.ip`.
//! - `tls-sni`/`quic-sni`: `tls.handshake.extensions_server_name`, `quic-sni` when the
//!   frame carries `quic`; Google QUIC's `gquic.tag.sni` is `quic-sni` too; address the
//!   (innermost) IP destination.
//! - `http-host`: `http.host` of the `http` layer (TCP; SSDP's Host is not a name), port
//!   stripped as our parser does, address the IP destination.
//!
//! Frames that carry ICMP are skipped on tshark's side: tshark dissects the datagram an
//! ICMP error quotes (a DNS response, say); for us the frame is ICMP, with no payload.
//!
//! Names are compared case-sensitively after the same sanitization on both sides: our
//! names are already [`names::sanitize::name`]d; tshark's strings are first unescaped
//! (`\\xHH`, `\\ooo`, `\\\\` and the C escapes back to bytes) and then put through the
//! same function (control characters removed, invalid UTF-8 replaced, lengths capped),
//! and tshark's `<Root>` is the empty name (no name).
//!
//! Legitimate differences are listed in [`EXCEPTIONS`] by file, kind and frames, with a
//! reason, and parser bugs reported to their owners in [`KNOWN_BUGS`] (tolerated,
//! printed on every run); each listed frame must still differ. As a check of the tshark side (a wrong
//! field would otherwise make the oracle pass vacuously), every file and column that
//! `corpus/NAMES.tsv` counts frames for must give tshark rows of the matching kinds,
//! unless [`NAMES_TSV_EXCEPTIONS`] says why not.
//!
//! `cargo test --release --test names_tshark -- --nocapture` prints a table of counts
//! per file and kind (ours / tshark / matched) and per kind.
//!
//! The shared directory is `NETDIGEST_SHARED`, else `CARGO_MANIFEST_DIR/../shared`.
//! Missing (or tshark missing): a failure under `CI=true`, else a skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use names::Kind;
use netdigest::namestore;
use serde_json::Value;

/// (file, kind, frames, reason): frames of that file where our names of that kind
/// legitimately differ from tshark's. Each listed frame must still differ.
const EXCEPTIONS: &[(&str, &str, &[u64], &str)] = &[
    (
        "nDPI__conncheck.pcap",
        "http-host",
        &[
            72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 88, 89, 90, 91, 92,
        ],
        "TCP retransmissions of a GET: tshark does not hand data it has already seen to HTTP \
         again; our HTTP reader keeps no TCP state and reads the same Host (same address) \
         from each copy",
    ),
    (
        "zeek__http_get-to-ssh-server.pcap",
        "http-host",
        &[4],
        "an HTTP GET sent to port 22: tshark dissects port 22 as SSH; we read any segment \
         that starts with a request line",
    ),
    (
        "nDPI__quic-29.pcap",
        "quic-sni",
        &[3, 5],
        "after a Retry (frame 2) the client sends its Initial again with a new DCID: we \
         start over with that DCID's keys and read the SNI in frame 3, as in frame 1; \
         tshark keeps one CRYPTO stream across the Retry, takes frame 3's bytes 0..301 as a \
         repeat and shows the SNI when frame 5 brings bytes 301..569. Same name, same server",
    ),
];

/// (file, kind, frames, what is wrong): differences that are parser bugs, reported to
/// the parser's owner. Tolerated so that the oracle guards everything else, printed on
/// every run, and, like [`EXCEPTIONS`], each listed frame must still differ: fixing the
/// bug fails this test until the entry is removed.
const KNOWN_BUGS: &[(&str, &str, &[u64], &str)] = &[];

/// (file, NAMES.tsv column, reason): NAMES.tsv counts frames of the protocol, but none
/// of them carries a name of ours.
const NAMES_TSV_EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "nDPI__iphone.pcap",
        "ssdp",
        "SSDP M-SEARCH requests only (USER-AGENT, no SERVER)",
    ),
    (
        "nDPI__telegram.pcap",
        "ssdp",
        "SSDP M-SEARCH requests only (USER-AGENT, no SERVER)",
    ),
    (
        "nDPI__ssdp-m-search-ua.pcap",
        "ssdp",
        "SSDP M-SEARCH requests only (USER-AGENT, no SERVER)",
    ),
    (
        "suricata-verify__smb2-ntlmssp-negotiateflags_input.pcap",
        "ssdp",
        "SSDP M-SEARCH requests only (USER-AGENT, no SERVER)",
    ),
    (
        "zeek__igmp_home-multicast-short.pcap",
        "ssdp",
        "SSDP M-SEARCH requests only (USER-AGENT, no SERVER)",
    ),
    (
        "nDPI__ssdp-m-search-ua.pcap",
        "http_host",
        "NAMES.tsv counts http.host in SSDP M-SEARCH (HOST: 239.255.255.250:1900), not a name",
    ),
    (
        "nDPI__telegram.pcap",
        "http_host",
        "NAMES.tsv counts http.host in SSDP M-SEARCH (HOST: 239.255.255.250:1900), not a name",
    ),
    (
        "suricata-verify__smb2-ntlmssp-negotiateflags_input.pcap",
        "http_host",
        "NAMES.tsv counts http.host in SSDP M-SEARCH (HOST: 239.255.255.250:1900), not a name",
    ),
    (
        "zeek__igmp_home-multicast-short.pcap",
        "http_host",
        "NAMES.tsv counts http.host in SSDP M-SEARCH (HOST: 239.255.255.250:1900), not a name",
    ),
    (
        "zeek__igmp_home-multicast-short.pcap",
        "mdns",
        "two mDNS queries with no authority records: nothing announced",
    ),
    (
        "nDPI__telegram.pcap",
        "nbns",
        "name queries only (WORKGROUP<1d>): no registration, no response",
    ),
    (
        "suricata-verify__output-eve-ftp-data_input.pcap",
        "nbns",
        "name queries only (ISATAP<00>, WPAD<00>): no registration, no response",
    ),
    (
        "zeek__wikipedia-filtered-plus-udp.pcap",
        "nbns",
        "name queries only (BRWC0CB383D1F42<00>, WORKGROUP<1d>)",
    ),
    (
        "suricata-verify__output-eve-ftp-data_input.pcap",
        "llmnr",
        "LLMNR queries only, no response",
    ),
    (
        "zeek__wikipedia-filtered-plus-udp.pcap",
        "llmnr",
        "LLMNR queries only, no response",
    ),
];

/// NAMES.tsv's columns and the kinds each stands for.
const NAMES_TSV_COLUMNS: &[(&str, &[&str])] = &[
    ("dns_answers", &["dns-answer"]),
    (
        "mdns",
        &["mdns", "mdns-service", "mdns-friendly", "mdns-model"],
    ),
    ("llmnr", &["llmnr"]),
    ("nbns", &["nbns"]),
    ("ssdp", &["ssdp"]),
    ("dhcp_hostname", &["dhcp-hostname"]),
    ("dhcp_fqdn", &["dhcp-fqdn"]),
    ("dhcp_vendor", &["dhcp-vendor"]),
    ("dhcpv6_fqdn", &["dhcpv6-fqdn"]),
    ("tls_sni", &["tls-sni"]),
    ("quic_sni", &["quic-sni"]),
    ("http_host", &["http-host"]),
];

/// One name in one frame: (frame, kind, name, address or "").
type Row = (u64, &'static str, String, String);

/// Names of one frame and kind that only we, and only tshark, found.
type Sides = (Vec<String>, Vec<String>);

fn addr_str(a: Option<IpAddr>) -> String {
    a.map(|a| a.to_string()).unwrap_or_default()
}

// ---------------------------------------------------------------- our side

/// Our names, as convert reads them; an error when our reader cannot open the file.
fn ours(file: &Path) -> Result<BTreeSet<Row>, String> {
    let mut extractor = names::Extractor::new();
    let mut out = Vec::new();
    let mut rows = BTreeSet::new();
    common::for_each_decoded(file, |rec, data| {
        out.clear();
        namestore::frame_names(&mut extractor, rec, data, &mut out);
        for n in &out {
            rows.insert((rec.frame, n.kind.as_str(), n.name.clone(), addr_str(n.addr)));
        }
    })?;
    Ok(rows)
}

// ---------------------------------------------------------------- tshark's side

/// tshark's JSON for the frames that may carry names; None when tshark does not read
/// the file.
fn tshark_json(file: &Path) -> Option<Vec<Value>> {
    let mut cmd = Command::new("tshark");
    // -n: never name resolution (it would send DNS queries).
    cmd.args(["-n", "-r"]).arg(file).args([
        "-o",
        "ip.defragment:FALSE",
        "-o",
        "ipv6.defragment:FALSE",
        // Our HTTP reader takes the Host of a request that starts a segment; tshark, by
        // default, shows a request on the frame that completes its head and body.
        "-o",
        "http.desegment_headers:FALSE",
        "-o",
        "http.desegment_body:FALSE",
        "-Y",
        "dns || mdns || llmnr || nbns || dhcp || dhcpv6 || ssdp || http \
         || tls.handshake.extensions_server_name || gquic.tag.sni",
        "-T",
        "json",
        "--no-duplicate-keys",
        "-J",
        "frame ip ipv6 dns mdns llmnr nbns dhcp dhcpv6 ssdp http tls quic gquic",
    ]);
    let out = cmd.output().expect("running tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return (out.status.success()).then(Vec::new);
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(v)) => Some(v),
        _ => None,
    }
}

/// The values of `v` (an array's elements, else `v` itself).
fn items(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        v => vec![v],
    }
}

/// The string values of `key` in object `o` (not descending).
fn strs(o: &Value, key: &str) -> Vec<String> {
    o.get(key)
        .map(|v| {
            items(v)
                .into_iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn str1(o: &Value, key: &str) -> Option<String> {
    strs(o, key).into_iter().next()
}

/// Every string value of `key` anywhere under `v`, in document order (arrays) and key
/// order (objects).
fn find_all(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    for s in items(x) {
                        if let Some(s) = s.as_str() {
                            out.push(s.to_string());
                        }
                    }
                } else {
                    find_all(x, key, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| find_all(x, key, out)),
        _ => {}
    }
}

fn strs_deep(v: &Value, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    find_all(v, key, &mut out);
    out
}

fn find_first(v: &Value, key: &str) -> Option<String> {
    let mut out = Vec::new();
    find_all(v, key, &mut out);
    out.into_iter().next()
}

/// tshark's text back to bytes: `\xHH`, `\ooo`, `\\` and the C escapes.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        let simple = match c {
            b'\\' => Some(b'\\'),
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'"' => Some(b'"'),
            b'\'' => Some(b'\''),
            _ => None,
        };
        if let Some(x) = simple {
            out.push(x);
            i += 2;
        } else if c == b'x'
            && let Some(h) = s.get(i + 2..i + 4)
            && let Ok(x) = u8::from_str_radix(h, 16)
        {
            out.push(x);
            i += 4;
        } else if let Some(o) = s.get(i + 1..i + 4)
            && o.bytes().all(|d| (b'0'..=b'7').contains(&d))
            && let Ok(x) = u8::from_str_radix(o, 8)
        {
            out.push(x);
            i += 4;
        } else {
            out.push(b'\\');
            i += 1;
        }
    }
    out
}

/// A tshark string as a name compared with ours: unescaped, then sanitized as the
/// `names` crate does. None when nothing is left (or for `<Root>`).
fn norm(s: &str) -> Option<String> {
    if s == "<Root>" {
        return None;
    }
    names::sanitize::name(&unescape(s))
}

/// Collects tshark's rows for one frame.
struct Frame {
    no: u64,
    rows: BTreeSet<Row>,
}

impl Frame {
    fn push(&mut self, kind: Kind, raw: &str, addr: Option<String>) {
        if let Some(name) = norm(raw) {
            self.rows
                .insert((self.no, kind.as_str(), name, addr.unwrap_or_default()));
        }
    }
}

/// A DNS record as tshark shows it.
struct Rr {
    section: &'static str,
    owner: String,
    rtype: u16,
    class_in: bool,
    rec: Value,
}

const SECTIONS: [&str; 3] = ["Answers", "Authoritative nameservers", "Additional records"];

/// The records of a DNS-like layer, section by section.
fn records(layer: &Value) -> Vec<Rr> {
    let mut v = Vec::new();
    for section in SECTIONS {
        let Some(Value::Object(m)) = layer.get(section) else {
            continue;
        };
        for (_summary, recs) in m {
            for rec in items(recs) {
                let rtype = str1(rec, "dns.resp.type")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let owner = match (
                    str1(rec, "dns.resp.name"),
                    str1(rec, "dns.srv.service"),
                    str1(rec, "dns.srv.proto"),
                    str1(rec, "dns.srv.name"),
                ) {
                    (Some(n), ..) => n,
                    (None, Some(s), Some(p), Some(n)) => format!("{s}.{p}.{n}"),
                    _ => String::new(),
                };
                let class_in = str1(rec, "dns.resp.class")
                    .and_then(|c| u16::from_str_radix(c.trim_start_matches("0x"), 16).ok())
                    .is_some_and(|c| c & 0x7fff == 1);
                v.push(Rr {
                    section,
                    owner,
                    rtype,
                    class_in,
                    rec: rec.clone(),
                });
            }
        }
    }
    v
}

/// The address of an A or AAAA record of class IN.
fn rr_addr(rr: &Rr) -> Option<String> {
    if !rr.class_in {
        return None;
    }
    match rr.rtype {
        1 => str1(&rr.rec, "dns.a"),
        28 => str1(&rr.rec, "dns.aaaa"),
        _ => None,
    }
}

fn is_response(layer: &Value) -> bool {
    layer
        .get("dns.flags_tree")
        .and_then(|t| str1(t, "dns.flags.response"))
        .as_deref()
        == Some("1")
}

fn dns_answers(f: &mut Frame, layer: &Value) {
    if !is_response(layer) {
        return;
    }
    let question = layer
        .get("Queries")
        .and_then(Value::as_object)
        .and_then(|m| m.values().flat_map(items).next())
        .and_then(|q| str1(q, "dns.qry.name"));
    let rrs = records(layer);
    // The question's CNAME chain in the answer section.
    let mut chain: Vec<String> = question.iter().map(|q| q.to_lowercase()).collect();
    while let Some(cur) = chain.last().cloned() {
        let next = rrs.iter().find_map(|rr| {
            (rr.section == "Answers"
                && rr.rtype == 5
                && rr.class_in
                && rr.owner.to_lowercase() == cur)
                .then(|| str1(&rr.rec, "dns.cname"))
                .flatten()
        });
        match next.map(|n| n.to_lowercase()) {
            Some(n) if !chain.contains(&n) && chain.len() <= 8 => chain.push(n),
            _ => break,
        }
    }
    for rr in &rrs {
        let Some(addr) = rr_addr(rr) else { continue };
        let name = match &question {
            Some(q) if chain.contains(&rr.owner.to_lowercase()) => q.clone(),
            _ => rr.owner.clone(),
        };
        f.push(Kind::DnsAnswer, &name, Some(addr));
    }
}

/// The instance label of a DNS-SD service instance name, as tshark writes it (labels
/// joined by dots; an instance label may itself contain dots).
fn instance(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('.').collect();
    let is_proto = |p: &str| p.eq_ignore_ascii_case("_tcp") || p.eq_ignore_ascii_case("_udp");
    // The service label follows the instance: the first `_x` label followed by `_tcp` or
    // `_udp` and a domain. A second label starting with `_` that is not such a service
    // is a service type (`_printer._sub._http._tcp.local`), not an instance.
    let at = (1..parts.len()).find(|&i| parts[i].starts_with('_'))?;
    (at + 2 < parts.len() && is_proto(parts[at + 1])).then(|| parts[..at].join("."))
}

fn mdns(f: &mut Frame, layer: &Value) {
    let response = is_response(layer);
    for rr in records(layer) {
        if !response && rr.section != "Authoritative nameservers" {
            continue;
        }
        match rr.rtype {
            1 | 28 => {
                if let Some(addr) = rr_addr(&rr) {
                    f.push(Kind::Mdns, &rr.owner, Some(addr));
                }
            }
            12 if rr.class_in => {
                if let Some(i) = str1(&rr.rec, "dns.ptr.domain_name").and_then(|t| instance(&t)) {
                    f.push(Kind::MdnsService, &i, None);
                }
            }
            33 if rr.class_in => {
                if let Some(i) = instance(&rr.owner) {
                    f.push(Kind::MdnsService, &i, None);
                }
            }
            16 if rr.class_in => {
                if let Some(i) = instance(&rr.owner) {
                    f.push(Kind::MdnsService, &i, None);
                }
                for s in strs(&rr.rec, "dns.txt") {
                    let Some((k, v)) = s.split_once('=') else {
                        continue;
                    };
                    if k.eq_ignore_ascii_case("fn") {
                        f.push(Kind::MdnsFriendly, v, None);
                    } else if k.eq_ignore_ascii_case("md") || k.eq_ignore_ascii_case("model") {
                        f.push(Kind::MdnsModel, v, None);
                    }
                }
            }
            _ => {}
        }
    }
}

fn llmnr(f: &mut Frame, layer: &Value) {
    if !is_response(layer) {
        return;
    }
    for rr in records(layer) {
        if rr.section == "Answers"
            && let Some(addr) = rr_addr(&rr)
        {
            f.push(Kind::Llmnr, &rr.owner, Some(addr));
        }
    }
}

fn nbns(f: &mut Frame, layer: &Value) {
    let flags = layer.get("nbns.flags_tree").cloned().unwrap_or(Value::Null);
    let flag = |k: &str| str1(&flags, k).and_then(|v| v.parse::<u32>().ok());
    let wanted = match (flag("nbns.flags.response"), flag("nbns.flags.opcode")) {
        (Some(1), _) if flag("nbns.flags.rcode").unwrap_or(0) == 0 => "Answers",
        (Some(0), Some(5 | 8 | 9 | 15)) => "Additional records",
        _ => return,
    };
    let Some(Value::Object(m)) = layer.get(wanted) else {
        return;
    };
    for rec in m.values().flat_map(items) {
        if str1(rec, "nbns.type").as_deref() != Some("32") {
            continue;
        }
        let Some(full) = str1(rec, "nbns.name") else {
            continue;
        };
        // "NAME<20> (Server service)": the name, its suffix, tshark's description.
        let Some(lt) = full.rfind('<') else { continue };
        let suffix = full.get(lt + 1..lt + 3).unwrap_or("");
        if suffix != "00" && suffix != "20" {
            continue;
        }
        let name = full[..lt].trim_end_matches(' ');
        let groups: Vec<String> = rec
            .get("nbns.nb_flags_tree")
            .map(|t| {
                items(t)
                    .into_iter()
                    .filter_map(|x| str1(x, "nbns.nb_flags.group"))
                    .collect()
            })
            .unwrap_or_default();
        for (i, addr) in strs(rec, "nbns.addr").into_iter().enumerate() {
            if groups.get(i).map(String::as_str) == Some("0") {
                f.push(Kind::Nbns, name, Some(addr));
            }
        }
    }
}

fn nonzero(a: Option<String>) -> Option<String> {
    a.filter(|a| a != "0.0.0.0")
}

fn dhcp(f: &mut Frame, layer: &Value) {
    let types = strs(layer, "dhcp.option.type");
    let trees: Vec<&Value> = layer
        .get("dhcp.option.type_tree")
        .map(items)
        .unwrap_or_default();
    let requested = trees
        .iter()
        .find_map(|t| str1(t, "dhcp.option.requested_ip_address"));
    let addr = nonzero(str1(layer, "dhcp.ip.your"))
        .or(nonzero(requested))
        .or(nonzero(str1(layer, "dhcp.ip.client")));
    for (i, t) in trees.iter().enumerate() {
        if let Some(h) = str1(t, "dhcp.option.hostname") {
            f.push(Kind::DhcpHostname, &h, addr.clone());
        }
        if let Some(n) = str1(t, "dhcp.fqdn.name") {
            f.push(Kind::DhcpFqdn, &n, addr.clone());
        }
        if let Some(v) = str1(t, "dhcp.option.vendor_class_id") {
            f.push(Kind::DhcpVendor, &v, addr.clone());
        }
        if types.get(i).map(String::as_str) == Some("61")
            && let Some(v) = str1(t, "dhcp.option.value")
        {
            f.push(Kind::DhcpClientId, &v.replace(':', ""), addr.clone());
        }
    }
}

fn dhcpv6(f: &mut Frame, layer: &Value) {
    if let Some(n) = find_first(layer, "dhcpv6.client_domain") {
        f.push(Kind::Dhcpv6Fqdn, &n, find_first(layer, "dhcpv6.iaaddr.ip"));
    }
}

/// `host[:port]` without the port, as our HTTP parser strips it.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The frame's innermost IP source and destination.
fn ip_ends(layers: &Value, protocols: &str) -> (Option<String>, Option<String>) {
    let v4 = protocols.rfind(":ip:").map(|i| i as isize).unwrap_or(-1);
    let v6 = protocols.rfind(":ipv6:").map(|i| i as isize).unwrap_or(-1);
    let (layer, src, dst) = if v6 > v4 {
        ("ipv6", "ipv6.src", "ipv6.dst")
    } else {
        ("ip", "ip.src", "ip.dst")
    };
    let Some(l) = layers.get(layer).map(items).and_then(|v| v.last().copied()) else {
        return (None, None);
    };
    (str1(l, src), str1(l, dst))
}

/// tshark's rows for one file, from its JSON.
fn theirs(packets: &[Value]) -> BTreeSet<Row> {
    let mut rows = BTreeSet::new();
    for p in packets {
        let Some(layers) = p.pointer("/_source/layers") else {
            continue;
        };
        let frame = layers.get("frame").cloned().unwrap_or(Value::Null);
        let no: u64 = str1(&frame, "frame.number")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let protocols = format!(":{}:", str1(&frame, "frame.protocols").unwrap_or_default());
        // An ICMP error quoting a datagram: for us an ICMP frame without payload.
        if protocols.contains(":icmp:") || protocols.contains(":icmpv6:") {
            continue;
        }
        let (src, dst) = ip_ends(layers, &protocols);
        let mut f = Frame {
            no,
            rows: BTreeSet::new(),
        };
        let each = |name: &str| layers.get(name).map(items).unwrap_or_default();
        for l in each("dns") {
            dns_answers(&mut f, l);
        }
        for l in each("mdns") {
            mdns(&mut f, l);
        }
        for l in each("llmnr") {
            llmnr(&mut f, l);
        }
        for l in each("nbns") {
            nbns(&mut f, l);
        }
        for l in each("dhcp") {
            dhcp(&mut f, l);
        }
        for l in each("dhcpv6") {
            dhcpv6(&mut f, l);
        }
        for l in each("ssdp") {
            for s in strs(l, "http.server") {
                f.push(Kind::Ssdp, &s, src.clone());
            }
        }
        for l in each("http") {
            let mut hosts = Vec::new();
            find_all(l, "http.host", &mut hosts);
            for h in hosts {
                f.push(Kind::HttpHost, strip_port(&h), dst.clone());
            }
        }
        let mut sni = Vec::new();
        find_all(layers, "tls.handshake.extensions_server_name", &mut sni);
        let kind = if protocols.contains(":quic:") {
            Kind::QuicSni
        } else {
            Kind::TlsSni
        };
        for s in sni {
            f.push(kind, &s, dst.clone());
        }
        for l in each("gquic") {
            for s in strs_deep(l, "gquic.tag.sni") {
                f.push(Kind::QuicSni, &s, dst.clone());
            }
        }
        rows.extend(f.rows);
    }
    rows
}

// ---------------------------------------------------------------- NAMES.tsv

/// NAMES.tsv as (file, column) -> frames; empty when it is missing.
fn names_tsv(shared: &Path) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    let text = ["corpus/NAMES.tsv", "corpus/real/NAMES.tsv"]
        .iter()
        .find_map(|p| std::fs::read_to_string(shared.join(p)).ok())
        .unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    for line in lines {
        let cols: Vec<&str> = line.split('\t').collect();
        for (i, c) in cols.iter().enumerate().skip(1) {
            if let (Some(h), Ok(n)) = (header.get(i), c.parse::<u64>()) {
                m.insert((cols[0].to_string(), (*h).to_string()), n);
            }
        }
    }
    m
}

// ---------------------------------------------------------------- the test

#[derive(Default, Clone, Copy)]
struct Counts {
    ours: usize,
    tshark: usize,
    matched: usize,
}

#[test]
fn names_tshark() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    if !common::have_tshark() {
        return;
    }
    let files = common::corpus("real");
    assert!(!files.is_empty(), "no captures in {}", shared.display());
    let expected = names_tsv(&shared);
    assert!(
        !expected.is_empty(),
        "{}: corpus/NAMES.tsv missing or empty",
        shared.display()
    );

    let mut failures: Vec<String> = Vec::new();
    let mut per_kind: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut table: Vec<(String, &str, Counts)> = Vec::new();
    // (file, kind) -> frames that differed (tolerated by an exception)
    let mut used: BTreeMap<(&str, &str), BTreeSet<u64>> = BTreeMap::new();
    // (file, kind) -> tshark rows
    let mut tshark_rows: BTreeMap<(String, &str), usize> = BTreeMap::new();

    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(json) = tshark_json(path) else {
            println!("{file}: not read by tshark, skipped");
            continue;
        };
        let t = theirs(&json);
        let o = match ours(path) {
            Ok(o) => o,
            Err(e) => {
                if !t.is_empty() {
                    failures.push(format!(
                        "{file}: tshark shows {} names, our reader cannot open it: {e}",
                        t.len()
                    ));
                }
                BTreeSet::new()
            }
        };
        let mut counts: BTreeMap<&str, Counts> = BTreeMap::new();
        for r in &o {
            counts.entry(r.1).or_default().ours += 1;
        }
        for r in &t {
            counts.entry(r.1).or_default().tshark += 1;
            *tshark_rows.entry((file.clone(), r.1)).or_default() += 1;
        }
        for r in o.intersection(&t) {
            counts.entry(r.1).or_default().matched += 1;
        }
        // Differences, grouped by (frame, kind).
        let mut diff: BTreeMap<(u64, &str), Sides> = BTreeMap::new();
        let show = |r: &Row| {
            if r.3.is_empty() {
                format!("{:?}", r.2)
            } else {
                format!("{:?} {}", r.2, r.3)
            }
        };
        for r in o.difference(&t) {
            diff.entry((r.0, r.1)).or_default().0.push(show(r));
        }
        for r in t.difference(&o) {
            diff.entry((r.0, r.1)).or_default().1.push(show(r));
        }
        for ((frame, kind), (ours, theirs)) in diff {
            if let Some(&(f, k, _, _)) = EXCEPTIONS
                .iter()
                .chain(KNOWN_BUGS)
                .find(|(f, k, frames, _)| *f == file && *k == kind && frames.contains(&frame))
            {
                used.entry((f, k)).or_default().insert(frame);
                continue;
            }
            failures.push(format!(
                "{file} frame {frame}: {kind}: ours [{}], tshark [{}]",
                ours.join(", "),
                theirs.join(", ")
            ));
        }
        for (kind, c) in counts {
            let k = per_kind.entry(kind).or_default();
            k.ours += c.ours;
            k.tshark += c.tshark;
            k.matched += c.matched;
            table.push((file.clone(), kind, c));
        }
    }

    println!(
        "\n{:<62} {:<14} {:>6} {:>6} {:>7}",
        "file", "kind", "ours", "tshark", "matched"
    );
    for (file, kind, c) in &table {
        println!(
            "{file:<62} {kind:<14} {:>6} {:>6} {:>7}",
            c.ours, c.tshark, c.matched
        );
    }
    println!(
        "\n{:<14} {:>6} {:>6} {:>7}",
        "kind", "ours", "tshark", "matched"
    );
    for kind in Kind::ALL {
        let c = per_kind.get(kind.as_str()).copied().unwrap_or_default();
        println!(
            "{:<14} {:>6} {:>6} {:>7}",
            kind.as_str(),
            c.ours,
            c.tshark,
            c.matched
        );
    }

    for (label, list) in [("exception", EXCEPTIONS), ("KNOWN BUG", KNOWN_BUGS)] {
        for (file, kind, frames, reason) in list {
            let seen = used.get(&(*file, *kind)).cloned().unwrap_or_default();
            let stale: Vec<&u64> = frames.iter().filter(|f| !seen.contains(f)).collect();
            if stale.is_empty() {
                println!("{label} {file} {kind}: frames {frames:?} ({reason})");
            } else {
                failures.push(format!(
                    "exception ({file}, {kind}) no longer differs in frames {stale:?}: remove them \
                 ({reason})"
                ));
            }
        }
    }

    // The tshark side is not vacuous: what NAMES.tsv counts, tshark shows names for.
    for ((file, column), n) in &expected {
        if *n == 0 {
            continue;
        }
        let Some((_, kinds)) = NAMES_TSV_COLUMNS.iter().find(|(c, _)| c == column) else {
            continue;
        };
        let rows: usize = kinds
            .iter()
            .map(|k| tshark_rows.get(&(file.clone(), *k)).copied().unwrap_or(0))
            .sum();
        let excepted = NAMES_TSV_EXCEPTIONS
            .iter()
            .find(|(f, c, _)| f == file && c == column);
        match (rows, excepted) {
            (0, None) => failures.push(format!(
                "{file}: NAMES.tsv counts {n} frames of {column}, tshark's side finds no {kinds:?}"
            )),
            (r, Some(_)) if r > 0 => failures.push(format!(
                "NAMES.tsv exception ({file}, {column}) no longer needed: tshark's side finds {r}"
            )),
            (_, Some((_, _, reason))) => {
                println!("NAMES.tsv {file} {column}: {n} frames, no names ({reason})");
            }
            _ => {}
        }
    }

    if !failures.is_empty() {
        let shown = failures.len().min(300);
        panic!(
            "{} mismatches:\n{}{}",
            failures.len(),
            failures[..shown].join("\n"),
            if failures.len() > shown { "\n..." } else { "" }
        );
    }
}
