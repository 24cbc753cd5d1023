//! Devices and their names: who is on the network.
//!
//! A device is a MAC that sent IP traffic from a local address (or ARP), with every
//! local IP it used. Its name comes from names.parquet (what the traffic carries) and
//! the config's `[names]`, by this precedence (the first that gives a name that is not
//! junk wins):
//!
//! 1. the owner's label (`[names]`), by any of its MACs, else by any of its IPs;
//! 2. DHCP: host name (option 12), then client FQDN (option 81), then DHCPv6 FQDN;
//! 3. mDNS: friendly name (TXT `fn=`), then host name (`x.local`, without `.local`),
//!    then a service instance name (`Kitchen TV` of `Kitchen TV._googlecast._tcp.local`);
//! 4. NetBIOS name service, then LLMNR;
//! 5. SSDP (`SERVER` header);
//! 6. the vendor of its MAC and the MAC's last three octets (`Apple 77:50:50`;
//!    `device 40:88:22` for a private MAC or an unknown vendor).
//!
//! Within one source the name most recently seen wins (a device renamed in the night
//! shows its new name), then the one seen in most frames. An mDNS, NetBIOS or LLMNR
//! host name that says which address it names belongs to the device with that
//! address, not to the one that sent it (a sleep proxy answers for sleeping Macs).
//! Junk is never a name: empty, `localhost` (also `localhost.localdomain`), only digits,
//! an IP address, a name with no letter or digit, placeholders (`(none)`, `unknown`,
//! `null`), service types (`_airplay`). A default such as `android-3f2a9c...` or
//! `ESP_3A2B1C` is kept: it is what the device calls itself, and it says what it is.
//! The model (secondary) is the mDNS `md=`, else the DHCP vendor class.
//!
//! A randomised (locally administered) MAC is linked to another device when both sent
//! the same DHCP client identifier (option 61) or the same DHCP host name: the linked
//! records become one device, showing all their MACs (a universally administered one
//! first), all their IPs, and the sums of their packets and bytes. Two universally
//! administered MACs are never merged (a laptop's wired and wireless cards stay two
//! rows). A host name many devices carry out of the box (`iPhone`, `android`,
//! `Galaxy`, `MacBook-Pro`, `raspberrypi`, ... see [`is_generic`]) does not link:
//! two phones that both call themselves `iPhone` behind private MACs stay two rows.
//!
//! A device's addresses are those it sent from, busiest first, then those a DHCP server
//! gave it (the ACK's `yiaddr`, the requested address) that it has not used yet.
//!
//! Memory is bounded: polars group-bys over the packet cube and names.parquet (at most
//! 100,000 rows); at most `report.max_rows` devices, [`MAX_IPS`] addresses each and
//! [`NAMES_PER_KIND`] names per device and kind become Rust values.

use std::collections::{BTreeMap, HashMap};

use names::Kind;
use polars::prelude::*;

use super::rollup::{order, top_rows};
use super::summary::{Label, add_label};
use crate::config::Zone;
use crate::dataframe::{i64s, strs, u64s};
use crate::devices::{Device, MAX_IPS};
use crate::namestore::{ADDR, CLIENT_IP, CLIENT_MAC, FRAMES, KIND, LAST_TS, NAME, kind_is};
use crate::vendor;

/// Names kept per device and kind (the most recent).
pub(super) const NAMES_PER_KIND: usize = 4;

/// The kinds that name a device, in order of precedence (best first). `dhcp-vendor`,
/// `mdns-model` and `dhcp-client-id` are not names: model and link.
pub const NAME_PRECEDENCE: [Kind; 10] = [
    Kind::DhcpHostname,
    Kind::DhcpFqdn,
    Kind::Dhcpv6Fqdn,
    Kind::MdnsFriendly,
    Kind::Mdns,
    Kind::MdnsService,
    Kind::Nbns,
    Kind::Llmnr,
    Kind::Ssdp,
    // Not names, read for the model and for linking.
    Kind::MdnsModel,
];

/// The kinds whose `addr` says which device the name belongs to.
fn names_an_address(k: Kind) -> bool {
    matches!(k, Kind::Mdns | Kind::Nbns | Kind::Llmnr)
}

/// What the traffic called one device: per kind, names best first.
pub type Candidates = BTreeMap<Kind, Vec<String>>;

/// A device's name and where it came from, by the precedence above, with `label` the
/// owner's label if any. `None` when nothing names it (the caller falls back to vendor
/// and MAC).
#[must_use]
pub fn pick_name(label: Option<&str>, cands: &Candidates) -> Option<(String, String)> {
    if let Some(l) = label.map(clean).filter(|l| !l.is_empty()) {
        return Some((l, "label".into()));
    }
    for kind in NAME_PRECEDENCE.iter().filter(|k| **k != Kind::MdnsModel) {
        for n in cands.get(kind).into_iter().flatten() {
            let n = shape(*kind, n);
            if !is_junk(&n) {
                return Some((n, kind.as_str().into()));
            }
        }
    }
    None
}

/// The model: mDNS `md=`, else the DHCP vendor class.
#[must_use]
pub fn pick_model(cands: &Candidates) -> Option<String> {
    [Kind::MdnsModel, Kind::DhcpVendor]
        .iter()
        .flat_map(|k| cands.get(k).into_iter().flatten())
        .map(|n| clean(n))
        .find(|n| !is_junk(n))
}

/// A name as shown: an mDNS host name without `.local`, any name without a trailing dot.
fn shape(kind: Kind, name: &str) -> String {
    let n = clean(name);
    let n = n.trim_end_matches('.');
    let n = if kind == Kind::Mdns {
        n.strip_suffix(".local")
            .or_else(|| n.strip_suffix(".LOCAL"))
            .unwrap_or(n)
    } else {
        n
    };
    n.to_string()
}

/// Defensive: a name from the traffic without control or bidirectional formatting
/// characters, trimmed, at most 253 bytes (the names crate does this already; the
/// report must not depend on it).
#[must_use]
pub fn clean(name: &str) -> String {
    let mut out: String = name.chars().filter(|c| !is_hidden(*c)).collect();
    let t = out.trim();
    if t.len() != out.len() {
        out = t.to_string();
    }
    if out.len() > 253 {
        let mut end = 253;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// Control characters and the bidirectional formatting characters (which can make a
/// name read backwards: U+202E).
#[must_use]
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// True for a name that names nothing (see the module's documentation).
#[must_use]
pub fn is_junk(name: &str) -> bool {
    let n = name.trim().trim_end_matches('.');
    let lower = n.to_ascii_lowercase();
    n.is_empty()
        || lower == "localhost"
        || lower.starts_with("localhost.")
        || matches!(
            lower.as_str(),
            "(none)" | "none" | "unknown" | "null" | "(null)"
        )
        || n.starts_with('_')
        || n.bytes().all(|b| b.is_ascii_digit())
        || n.parse::<std::net::IpAddr>().is_ok()
        || !n.chars().any(char::is_alphanumeric)
}

/// A host name that devices carry out of the box, so that two devices may well share
/// it: a name, but no proof that two records are one device. Compared without case,
/// after removing a trailing `.local`/`.lan`/`.home` and separators (`iPhone`,
/// `MacBook-Pro`, `Galaxy-S23`, `android`, `raspberrypi`...).
#[must_use]
pub fn is_generic(name: &str) -> bool {
    const GENERIC: [&str; 40] = [
        "iphone",
        "ipad",
        "ipod",
        "ipodtouch",
        "imac",
        "macbook",
        "macbookpro",
        "macbookair",
        "macmini",
        "appletv",
        "homepod",
        "applewatch",
        "android",
        "androidphone",
        "galaxy",
        "samsung",
        "pixel",
        "oneplus",
        "xiaomi",
        "redmi",
        "huawei",
        "oppo",
        "phone",
        "smartphone",
        "tablet",
        "laptop",
        "desktop",
        "pc",
        "computer",
        "raspberrypi",
        "ubuntu",
        "debian",
        "fedora",
        "linux",
        "windows",
        "chromecast",
        "googlehome",
        "echo",
        "kindle",
        "esp",
    ];
    let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let lower = [".local", ".lan", ".home", ".localdomain"]
        .iter()
        .find_map(|s| lower.strip_suffix(s))
        .unwrap_or(&lower);
    let squeezed: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
    // A model number after the generic word (`Galaxy-S23`, `iPhone 15`, `Pixel-7a`)
    // is still the same out-of-the-box name.
    let stem = squeezed.trim_end_matches(|c: char| c.is_ascii_digit());
    GENERIC.iter().any(|g| {
        squeezed == *g
            || stem == *g
            || squeezed
                .strip_prefix(g)
                .is_some_and(|rest| rest.len() <= 4 && rest.chars().any(|c| c.is_ascii_digit()))
    })
}

/// A device before linking: its MACs and addresses from the packets, what the traffic
/// called it.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// MACs with the packets each sent, busiest first.
    pub macs: Vec<(String, u64)>,
    pub ips: Vec<String>,
    pub more_ips: u64,
    pub first_ns: i64,
    pub last_ns: i64,
    pub packets: u64,
    pub bytes: u64,
    pub names: Candidates,
}

impl Record {
    fn private(&self) -> bool {
        self.macs
            .iter()
            .any(|(m, _)| vendor::parse_mac(m).is_some_and(vendor::is_private))
    }
    fn first_of(&self, kind: Kind) -> Option<String> {
        self.names
            .get(&kind)
            .into_iter()
            .flatten()
            .map(|n| clean(n))
            .find(|n| !n.is_empty())
    }
    fn client_id(&self) -> Option<String> {
        self.first_of(Kind::DhcpClientId).map(|c| c.to_lowercase())
    }
    /// Its DHCP host name (not junk).
    fn dhcp_name(&self) -> Option<String> {
        self.names
            .get(&Kind::DhcpHostname)
            .into_iter()
            .flatten()
            .map(|n| clean(n))
            .find(|n| !is_junk(n))
    }

    /// The DHCP host name that links it to another record: not junk, not generic.
    fn link_name(&self) -> Option<String> {
        self.dhcp_name().filter(|n| !is_generic(n))
    }
}

/// Merges records that are one device: a record with a randomised MAC and another
/// with the same DHCP client identifier or host name (case-insensitive). Records are
/// returned in the order of their first member.
#[must_use]
pub fn link(records: Vec<Record>) -> Vec<Record> {
    let n = records.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let ids: Vec<(Option<String>, Option<String>, bool)> = records
        .iter()
        .map(|r| {
            (
                r.client_id(),
                r.link_name().map(|h| h.to_lowercase()),
                r.private(),
            )
        })
        .collect();
    // Index by identifier: linking costs one pass, not a comparison of every pair.
    let mut by_key: HashMap<(u8, &str), Vec<usize>> = HashMap::new();
    for (i, (cid, host, _)) in ids.iter().enumerate() {
        if let Some(c) = cid {
            by_key.entry((0, c.as_str())).or_default().push(i);
        }
        if let Some(h) = host {
            by_key.entry((1, h.as_str())).or_default().push(i);
        }
    }
    for members in by_key.values() {
        // Private records join the group's first record; universal ones only through a
        // private one (never two universal MACs with each other).
        let Some(&anchor) = members.iter().find(|i| !ids[**i].2).or(members.first()) else {
            continue;
        };
        for &i in members {
            if i != anchor && (ids[i].2 || ids[anchor].2) {
                let (a, b) = (root(&mut parent, anchor), root(&mut parent, i));
                if a != b {
                    parent[b.max(a)] = a.min(b);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Record> = BTreeMap::new();
    for (i, r) in records.into_iter().enumerate() {
        let g = root(&mut parent, i);
        match groups.get_mut(&g) {
            None => {
                groups.insert(g, r);
            }
            Some(acc) => merge(acc, r),
        }
    }
    groups.into_values().collect()
}

fn merge(acc: &mut Record, r: Record) {
    acc.macs.extend(r.macs);
    // A universally administered MAC first, then by packets.
    acc.macs.sort_by(|a, b| {
        let private = |m: &str| vendor::parse_mac(m).is_some_and(vendor::is_private);
        (private(&a.0), std::cmp::Reverse(a.1), &a.0).cmp(&(
            private(&b.0),
            std::cmp::Reverse(b.1),
            &b.0,
        ))
    });
    for ip in r.ips {
        if acc.ips.contains(&ip) {
            continue;
        }
        if acc.ips.len() < MAX_IPS {
            acc.ips.push(ip);
        } else {
            acc.more_ips += 1;
        }
    }
    acc.more_ips += r.more_ips;
    acc.first_ns = acc.first_ns.min(r.first_ns);
    acc.last_ns = acc.last_ns.max(r.last_ns);
    acc.packets += r.packets;
    acc.bytes += r.bytes;
    for (k, v) in r.names {
        let e = acc.names.entry(k).or_default();
        for n in v {
            if !e.contains(&n) {
                e.push(n);
            }
        }
    }
}

/// The device a record is, named: owner labels (`labels`: address -> label) first.
#[must_use]
pub fn device(r: Record, labels: &BTreeMap<String, String>, zone: Zone) -> Device {
    let mac = r.macs.first().map(|m| m.0.clone()).unwrap_or_default();
    let label = r
        .macs
        .iter()
        .map(|m| &m.0)
        .chain(&r.ips)
        .find_map(|a| labels.get(a))
        .map(String::as_str);
    let vendor = vendor::vendor(&mac);
    let (name, source) = pick_name(label, &r.names).unwrap_or_else(|| {
        let tail = mac.get(9..).unwrap_or(&mac);
        // A private MAC's "vendor" says nothing about the device: `device 40:88:22`.
        let who = vendor.as_deref().filter(|v| *v != vendor::PRIVATE);
        (
            format!("{} {tail}", who.unwrap_or("device")),
            "vendor".into(),
        )
    });
    Device {
        macs: r.macs.iter().map(|m| m.0.clone()).collect(),
        mac,
        ips: r.ips.clone(),
        more_ips: r.more_ips,
        name,
        name_source: source,
        vendor,
        model: pick_model(&r.names),
        client_id: r.client_id(),
        dhcp_name: r.dhcp_name(),
        first_seen: zone.rfc3339_ns(r.first_ns),
        first_seen_ns: r.first_ns,
        last_seen_ns: r.last_ns,
        packets: r.packets,
        bytes: r.bytes,
    }
}

/// The labels of a night: every MAC and IP of every device, then the config's
/// addresses that are no device's.
#[must_use]
pub fn labels_of(devices: &[Device], config: &BTreeMap<String, String>) -> BTreeMap<String, Label> {
    let mut out = BTreeMap::new();
    for d in devices {
        let label = Label {
            name: d.name.clone(),
            vendor: d.vendor.clone(),
            source: d.name_source.clone(),
        };
        for a in d.macs.iter().chain(&d.ips) {
            add_label(&mut out, a, label.clone());
        }
    }
    for (a, l) in config {
        add_label(
            &mut out,
            a,
            Label {
                name: clean(l),
                vendor: vendor::vendor(a),
                source: "label".into(),
            },
        );
    }
    out
}

/// Tonight's devices from `pairs` (one row per local (mac, ip): first, last, packets,
/// bytes) and `names` (names.parquet): at most `max_rows` (the busiest MACs before
/// linking), named; and how many MACs were left out.
pub(super) fn night_devices(
    pairs: &DataFrame,
    names: &DataFrame,
    labels: &BTreeMap<String, String>,
    max_rows: usize,
    zone: Zone,
) -> PolarsResult<(Vec<Device>, u64)> {
    let per_mac = pairs
        .clone()
        .lazy()
        .group_by([col("mac")])
        .agg([
            col("first").min(),
            col("last").max(),
            col("packets").sum(),
            col("bytes").sum(),
            col("ip").count().cast(DataType::UInt64).alias("n_ips"),
        ])
        .collect()?;
    let omitted = u64::try_from(per_mac.height().saturating_sub(max_rows)).unwrap_or(u64::MAX);
    let chosen = top_rows(&per_mac, "packets", &["mac"], max_rows)?
        .sort(["mac"], SortMultipleOptions::default())?
        .with_row_index("dev".into(), None)?;
    let (mac, first, last) = (
        strs(&chosen, "mac")?,
        i64s(&chosen, "first")?,
        i64s(&chosen, "last")?,
    );
    let (packets, bytes, n_ips) = (
        u64s(&chosen, "packets")?,
        u64s(&chosen, "bytes")?,
        u64s(&chosen, "n_ips")?,
    );
    let mut records: Vec<Record> = (0..mac.len())
        .map(|i| Record {
            macs: vec![(mac[i].clone(), packets[i])],
            first_ns: first[i],
            last_ns: last[i],
            packets: packets[i],
            bytes: bytes[i],
            more_ips: n_ips[i].saturating_sub(MAX_IPS as u64),
            ..Record::default()
        })
        .collect();
    let keyed = chosen.clone().lazy().select([col("dev"), col("mac")]);
    let dev_pairs = pairs
        .clone()
        .lazy()
        .inner_join(keyed.clone(), col("mac"), col("mac"));
    // The addresses of each device, busiest first.
    let ips = dev_pairs
        .clone()
        .sort_by_exprs(
            [col("dev"), col("packets"), col("ip")],
            order(&[false, true, false]),
        )
        .group_by_stable([col("dev")])
        .head(Some(MAX_IPS))
        .select([col("dev"), col("ip")])
        .collect()?;
    for (d, ip) in u64s(&ips, "dev")?.into_iter().zip(strs(&ips, "ip")?) {
        if let Some(r) = usize::try_from(d).ok().and_then(|d| records.get_mut(d)) {
            r.ips.push(ip);
        }
    }
    // Which device an address or MAC in names.parquet is: every MAC, and every IP
    // (of all, not only the listed ones) to the MAC that sent most from it.
    let by_ip = dev_pairs
        .sort_by_exprs([col("ip"), col("packets")], order(&[false, true]))
        .group_by_stable([col("ip")])
        .head(Some(1))
        .select([col("ip").alias("key"), col("dev")]);
    let owners = concat(
        [
            keyed.clone().select([col("mac").alias("key"), col("dev")]),
            by_ip,
        ],
        UnionArgs::default(),
    )?;
    for (d, ip) in dhcp_addresses(names, keyed)? {
        if let Some(r) = records.get_mut(d)
            && !r.ips.contains(&ip)
        {
            if r.ips.len() < MAX_IPS {
                r.ips.push(ip);
            } else {
                r.more_ips += 1;
            }
        }
    }
    let named = device_names(names, owners)?;
    let (devs, kinds, texts) = (
        u64s(&named, "dev")?,
        strs(&named, KIND)?,
        strs(&named, NAME)?,
    );
    for ((d, k), n) in devs.into_iter().zip(kinds).zip(texts) {
        if let (Some(r), Some(k)) = (
            usize::try_from(d).ok().and_then(|d| records.get_mut(d)),
            Kind::parse(&k),
        ) {
            r.names.entry(k).or_default().push(n);
        }
    }
    let mut devices: Vec<Device> = link(records)
        .into_iter()
        .map(|r| device(r, labels, zone))
        .collect();
    devices.sort_by(|a, b| (a.name.to_lowercase(), &a.mac).cmp(&(b.name.to_lowercase(), &b.mac)));
    Ok((devices, omitted))
}

/// The addresses DHCP gave each device (by its MAC): (dev, address), the
/// `addr` of its DHCPv4 rows (yiaddr, else the requested address or ciaddr) and DHCPv6
/// IA_NA addresses, at most [`MAX_IPS`] per device.
fn dhcp_addresses(names: &DataFrame, keyed: LazyFrame) -> PolarsResult<Vec<(usize, String)>> {
    let dhcp = kind_is(Kind::is_dhcp);
    let df = names
        .clone()
        .lazy()
        .filter(
            dhcp.and(col(ADDR).is_not_null())
                .and(col(CLIENT_MAC).is_not_null()),
        )
        .select([col(CLIENT_MAC).alias("mac"), col(ADDR).alias("ip")])
        .unique(None, UniqueKeepStrategy::Any)
        .inner_join(keyed, col("mac"), col("mac"))
        .sort_by_exprs([col("dev"), col("ip")], order(&[false, false]))
        .group_by_stable([col("dev")])
        .head(Some(MAX_IPS))
        .select([col("dev"), col("ip")])
        .collect()?;
    Ok(u64s(&df, "dev")?
        .into_iter()
        .zip(strs(&df, "ip")?)
        .filter(|(_, ip)| {
            ip.parse::<std::net::IpAddr>()
                .is_ok_and(|a| !a.is_unspecified())
        })
        .filter_map(|(d, ip)| Some((usize::try_from(d).ok()?, ip)))
        .collect())
}

/// The device names of names.parquet per device (`owners`: key -> dev, the key being a
/// MAC or an IP): (dev, kind, name), at most [`NAMES_PER_KIND`] per device and kind, the
/// most recently seen first, then the most frequent.
fn device_names(names: &DataFrame, owners: LazyFrame) -> PolarsResult<DataFrame> {
    let is_device_kind = kind_is(Kind::is_device_name);
    let owner = when(kind_is(names_an_address).and(col(ADDR).is_not_null()))
        .then(col(ADDR))
        .when(col(CLIENT_MAC).is_not_null())
        .then(col(CLIENT_MAC))
        .otherwise(col(CLIENT_IP));
    names
        .clone()
        .lazy()
        .filter(is_device_kind)
        .with_column(owner.alias("key"))
        .inner_join(owners, col("key"), col("key"))
        .group_by([col("dev"), col(KIND), col(NAME)])
        .agg([
            col(LAST_TS).cast(DataType::Int64).max().alias("last"),
            col(FRAMES).cast(DataType::UInt64).sum().alias("frames"),
        ])
        .sort_by_exprs(
            [col("dev"), col(KIND), col("last"), col("frames"), col(NAME)],
            order(&[false, false, true, true, false]),
        )
        .group_by_stable([col("dev"), col(KIND)])
        .head(Some(NAMES_PER_KIND))
        .select([col("dev"), col(KIND), col(NAME)])
        .collect()
}

#[cfg(test)]
mod tests;
