//! What the system offers a capture: filter validation with libpcap's own compiler,
//! the interfaces and their link state (sysfs), the capability to capture
//! (`CAP_NET_RAW`) and the message that says how to grant it, and the appliance's own
//! addresses.
//!
//! Nothing here needs privileges: the filter is compiled on a dead handle, the state
//! comes from `/sys/class/net` and `/proc/self/status`.

use std::fs;
use std::net::IpAddr;
use std::path::Path;

use super::CaptureError;
use crate::linktype::LinkType;

/// Linux capability number of `CAP_NET_RAW`.
const CAP_NET_RAW: u32 = 13;

/// Compiles `filter` with libpcap's own compiler on a dead handle (no privileges
/// needed) for the link type `interface` will have (`any`: Linux cooked, else
/// Ethernet). An empty filter is valid (everything).
///
/// # Errors
/// [`CaptureError::Filter`] with libpcap's message, e.g. `can't parse filter expression:
/// syntax error`.
pub fn validate_filter(filter: &str, interface: &str) -> Result<(), CaptureError> {
    if filter.trim().is_empty() {
        return Ok(());
    }
    let lt = if interface == "any" {
        pcap::Linktype(LinkType::LINUX_SLL.0 as i32)
    } else {
        pcap::Linktype::ETHERNET
    };
    let refused = |e: pcap::Error| CaptureError::Filter {
        filter: filter.to_string(),
        message: pcap_msg(&e),
    };
    let dead = pcap::Capture::dead(lt).map_err(refused)?;
    dead.compile(filter, true).map(|_| ()).map_err(refused)
}

pub(super) fn pcap_msg(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Interfaces present (`/sys/class/net`), sorted.
#[must_use]
pub fn interfaces() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir("/sys/class/net")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Interface state from sysfs: `None` when it does not exist, else whether it is up.
pub(super) fn interface_up(name: &str) -> Option<bool> {
    if name == "any" {
        return Some(true);
    }
    let text = fs::read_to_string(Path::new("/sys/class/net").join(name).join("flags")).ok()?;
    let flags = u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).unwrap_or(0);
    Some(flags & 1 == 1)
}

/// A link's state, for gaps: administratively down, or up without a working link
/// (no carrier, Wi-Fi not associated) both mean nothing can be captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LinkState {
    Absent,
    Down(String),
    Up,
}

pub(super) fn link_state(name: &str) -> LinkState {
    match interface_up(name) {
        None => LinkState::Absent,
        Some(false) => LinkState::Down("is down".into()),
        Some(true) if name == "any" => LinkState::Up,
        Some(true) => {
            let oper = fs::read_to_string(Path::new("/sys/class/net").join(name).join("operstate"))
                .unwrap_or_default();
            match oper.trim() {
                "up" | "unknown" | "" => LinkState::Up,
                other => LinkState::Down(format!("has no link (operstate {other})")),
            }
        }
    }
}

/// Whether this process holds capability `cap` in its effective set (`/proc/self/status`).
fn has_capability(cap: u32) -> Option<bool> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    let bits = u64::from_str_radix(line["CapEff:".len()..].trim(), 16).ok()?;
    Some(bits & (1u64 << cap) != 0)
}

fn current_uid() -> String {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(String::from))
        })
        .unwrap_or_else(|| "?".into())
}

pub(super) fn is_permission_error(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("permission") || m.contains("operation not permitted") || m.contains("eperm")
}

/// The error for a capture refused for lack of privileges: which capability, and how to grant it.
#[must_use]
pub fn permission_message(interface: &str, libpcap: &str) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/path/to/netdigest".into());
    let what = if has_capability(CAP_NET_RAW) == Some(true) {
        "is not permitted although it holds CAP_NET_RAW (a sandbox may forbid AF_PACKET sockets: \
         allow them with RestrictAddressFamilies=AF_PACKET)"
            .to_string()
    } else {
        "lacks the capability CAP_NET_RAW, which capturing needs (nothing else is needed)"
            .to_string()
    };
    format!(
        "cannot capture on {interface}: this process (uid {uid}) {what}. Grant it to the capture \
         service under systemd with AmbientCapabilities=CAP_NET_RAW and \
         CapabilityBoundingSet=CAP_NET_RAW in its [Service] section (`netdigest units` writes \
         this), or to the binary with: sudo setcap cap_net_raw+ep {exe} (libpcap: {libpcap})",
        uid = current_uid()
    )
}

/// The appliance's own addresses on an interface (every interface for `any`), as libpcap
/// lists them. The pings chart leaves these out when `report.own_addresses` is not set.
#[must_use]
pub(super) fn interface_addresses(name: &str) -> Vec<IpAddr> {
    let Ok(devices) = pcap::Device::list() else {
        return Vec::new();
    };
    let mut v: Vec<IpAddr> = devices
        .into_iter()
        .filter(|d| name == "any" || d.name == name)
        .flat_map(|d| d.addresses.into_iter().map(|a| a.addr))
        .collect();
    v.sort();
    v.dedup();
    v
}
