//! Names for the addresses in a finding, from `names.parquet`: a device's own name
//! (DHCP host name, else mDNS/NBNS/LLMNR) and the name a client used for a remote
//! (TLS/QUIC server name, HTTP Host, else the DNS answer it was given).

use std::collections::HashMap;

use polars::prelude::*;

use crate::dataframe::{opt_strs, strs};
use crate::namestore::{ADDR, CLIENT_IP, KIND, NAME};
use names::Kind;

/// Lookups built once per night.
#[derive(Debug, Default)]
pub(super) struct Labels {
    device: HashMap<String, (u8, String)>,
    remote: HashMap<(String, String), (u8, String)>,
    remote_any: HashMap<String, (u8, String)>,
}

/// Preference of a device name kind (lower is better); None: not a device name.
fn device_pref(kind: &str) -> Option<u8> {
    match Kind::parse(kind)? {
        Kind::DhcpHostname => Some(0),
        Kind::DhcpFqdn | Kind::Dhcpv6Fqdn => Some(1),
        Kind::Mdns => Some(2),
        Kind::Nbns | Kind::Llmnr => Some(3),
        _ => None,
    }
}

/// Preference of a remote name kind (lower is better); None: not a remote's name.
fn remote_pref(kind: &str) -> Option<u8> {
    match Kind::parse(kind)? {
        Kind::TlsSni | Kind::QuicSni => Some(0),
        Kind::HttpHost => Some(1),
        Kind::DnsAnswer => Some(2),
        _ => None,
    }
}

/// Keeps the better (lower preference, then fewer-sorting name) of two candidates, so
/// the choice does not depend on row order.
fn keep<K: std::hash::Hash + Eq>(m: &mut HashMap<K, (u8, String)>, k: K, pref: u8, name: &str) {
    match m.get_mut(&k) {
        Some(cur) if (cur.0, cur.1.as_str()) <= (pref, name) => {}
        Some(cur) => *cur = (pref, name.to_string()),
        None => {
            m.insert(k, (pref, name.to_string()));
        }
    }
}

impl Labels {
    /// From `names.parquet`'s table (see [`crate::namestore`]).
    pub(super) fn from_names(df: &DataFrame) -> PolarsResult<Labels> {
        let mut l = Labels::default();
        if df.height() == 0 {
            return Ok(l);
        }
        let kind = strs(df, KIND)?;
        let name = strs(df, NAME)?;
        let addr = opt_strs(df, ADDR)?;
        let client = opt_strs(df, CLIENT_IP)?;
        for i in 0..df.height() {
            let (k, n) = (kind[i].as_str(), name[i].as_str());
            if n.is_empty() {
                continue;
            }
            if let Some(p) = device_pref(k) {
                if let Some(ip) = client[i].as_ref().or(addr[i].as_ref()) {
                    keep(&mut l.device, ip.clone(), p, n);
                }
            } else if let Some(p) = remote_pref(k)
                && let Some(a) = &addr[i]
            {
                if let Some(c) = &client[i] {
                    keep(&mut l.remote, (c.clone(), a.clone()), p, n);
                }
                keep(&mut l.remote_any, a.clone(), p, n);
            }
        }
        Ok(l)
    }

    /// A device's name, if one was seen.
    pub(super) fn device_name(&self, ip: &str) -> Option<&str> {
        self.device.get(ip).map(|(_, n)| n.as_str())
    }

    /// The name `client` used for `addr` (else any client's name for it).
    pub(super) fn remote_name(&self, client: &str, addr: &str) -> Option<&str> {
        self.remote
            .get(&(client.to_string(), addr.to_string()))
            .or_else(|| self.remote_any.get(addr))
            .map(|(_, n)| n.as_str())
    }

    /// "name (addr)", or the address alone.
    pub(super) fn device(&self, ip: &str) -> String {
        label(self.device_name(ip), ip)
    }

    pub(super) fn remote(&self, client: &str, addr: &str) -> String {
        label(self.remote_name(client, addr), addr)
    }
}

fn label(name: Option<&str>, addr: &str) -> String {
    match name {
        Some(n) if n != addr => format!("{n} ({addr})"),
        _ => addr.to_string(),
    }
}
