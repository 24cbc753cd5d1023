//! "What each device talked to": per device, the remote names it talked to most, in
//! the email (compact) and in index.html (complete); how addresses are shown by name.

use super::*;

/// An address in a table: a local device by its label ([`named`]), else a remote by the
/// name its client used ([`remote_named`]), else the address alone.
pub(super) fn shown(s: &Summary, remote: Option<&str>, addr: &str) -> String {
    if s.label(addr).is_some() {
        named(s, addr)
    } else {
        remote_named(remote, addr)
    }
}

/// A remote address as the tables show it: "name (addr)", or the address alone when
/// nothing named it. The name is cleaned again ([`crate::analyse::clean_name`]: no
/// control or bidi characters, DNS's length limits), whatever summary.json holds.
#[must_use]
pub fn remote_named(name: Option<&str>, addr: &str) -> String {
    match name.and_then(crate::analyse::clean_name) {
        Some(n) if n != addr => format!("{n} ({addr})"),
        _ => addr.to_string(),
    }
}

/// Devices and names per device in the email's compact view (the page shows all the
/// summary holds: at most `report.max_rows` of each).
pub(super) const EMAIL_DEVICES: usize = 5;
pub(super) const EMAIL_NAMES: usize = 3;

/// A device of the view: its name (the device's label, by MAC or by its first address;
/// else its MAC or address) and its first address.
pub(super) fn device_label(s: &Summary, d: &crate::analyse::DeviceRemotes) -> String {
    let name = std::iter::once(&d.device)
        .chain(d.ips.first())
        .find_map(|a| s.label(a))
        .map(|l| crate::analyse::clean(&l.name))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| d.device.clone());
    match d.ips.split_first() {
        Some((ip, _)) if *ip != name => {
            let more = if d.ips.len() > 1 {
                format!(" +{}", d.ips.len() - 1)
            } else {
                String::new()
            };
            format!("{name} ({ip}{more})")
        }
        _ => name,
    }
}

/// What a device talked to, one row: "name (addr)" ("name (addr +2)" for a name over
/// several addresses), or an unnamed address.
pub(super) fn remote_label(s: &Summary, r: &crate::analyse::RemoteRow) -> String {
    let addr = if r.addrs > 1 {
        format!("{} +{}", r.addr, r.addrs - 1)
    } else {
        r.addr.clone()
    };
    // A local device the traffic did not name as a remote: its own label.
    let local = r
        .name
        .is_none()
        .then(|| s.label(&r.addr))
        .flatten()
        .map(|l| crate::analyse::clean(&l.name))
        .filter(|n| !n.is_empty());
    match local {
        Some(n) => format!("{n} ({addr})"),
        None => remote_named(r.name.as_deref(), &addr),
    }
}

/// "N more, 1.2 MB" under a device's names.
pub(super) fn more_remotes(d: &crate::analyse::DeviceRemotes) -> Option<String> {
    (d.more > 0).then(|| format!("{} more, {}", thousands(d.more), human_bytes(d.more_bytes)))
}

/// What each device talked to (all the summary holds; the email parts show the
/// first [`EMAIL_DEVICES`] devices with [`EMAIL_NAMES`] names each).
pub(super) fn talked_to_section(s: &Summary) -> Section {
    let mut rows = Vec::new();
    for d in &s.talked_to {
        for (i, r) in d.remotes.iter().enumerate() {
            rows.push(vec![
                if i == 0 {
                    device_label(s, d)
                } else {
                    String::new()
                },
                remote_label(s, r),
                human_bytes(r.bytes),
                thousands(r.packets),
            ]);
        }
        if let Some(more) = more_remotes(d) {
            rows.push(vec![String::new(), more, String::new(), String::new()]);
        }
    }
    Section {
        head: vec!["Device", "Talked to", ">Bytes", ">Packets"],
        rows,
        more: more_line(s.omitted.talked_to, "devices"),
        empty: "No device talked to anything tonight.",
    }
}

/// The email's compact view: per device (most bytes first) a line with its total and
/// a two-column table of its first names, narrow enough for a phone.
pub(super) fn talked_to_email_html(h: &mut String, s: &Summary) {
    const DEV: &str = "margin:12px 0 2px 0;font-size:14px;font-weight:bold;color:#111827;";
    const TOTAL: &str = "font-weight:normal;color:#6b7280;";
    const TABLE: &str = "border-collapse:collapse;width:100%;max-width:600px;table-layout:fixed;";
    const NAME: &str = "padding:3px 8px 3px 12px;border-bottom:1px solid #e5e7eb;font-size:14px;overflow-wrap:anywhere;word-break:break-word;";
    const BYTES: &str = "padding:3px 8px;border-bottom:1px solid #e5e7eb;font-size:14px;text-align:right;white-space:nowrap;width:76px;";
    for d in s.talked_to.iter().take(EMAIL_DEVICES) {
        let _ = write!(
            h,
            "<p style=\"{DEV}\">{} <span style=\"{TOTAL}\">{}</span></p>\
<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" style=\"{TABLE}\">",
            breakable(&esc(&device_label(s, d))),
            esc(&human_bytes(d.bytes))
        );
        for r in d.remotes.iter().take(EMAIL_NAMES) {
            let _ = write!(
                h,
                "<tr><td style=\"{NAME}\">{}</td><td style=\"{BYTES}\">{}</td></tr>",
                remote_cell_html(s, r),
                esc(&human_bytes(r.bytes))
            );
        }
        h.push_str("</table>");
        if let Some(more) = email_more(d) {
            let _ = write!(
                h,
                "<p style=\"{MORE}padding-left:12px;\">{}</p>",
                esc(&more)
            );
        }
    }
    if let Some(more) = more_devices(s) {
        let _ = write!(h, "<p style=\"{MORE}\">{}</p>", esc(&more));
    }
}

/// A remote in the email's view: the name (breakable at its dots), then its address in
/// grey, kept on one line when it is short (a phone would split "203.0.113.25" at a
/// dot); an unnamed address alone.
pub(super) fn remote_cell_html(s: &Summary, r: &crate::analyse::RemoteRow) -> String {
    const ADDR: &str = "color:#6b7280;";
    let label = remote_label(s, r);
    let Some(name) = r.name.as_deref().and_then(crate::analyse::clean_name) else {
        return breakable(&esc(&label));
    };
    let addr = label
        .strip_prefix(name.as_str())
        .map_or(label.as_str(), str::trim_start);
    let short = addr.chars().count() <= 24;
    let (addr, nowrap) = if short {
        (esc(addr), "white-space:nowrap;")
    } else {
        (breakable(&esc(addr)), "")
    };
    format!(
        "{} <span style=\"{ADDR}{nowrap}\">{addr}</span>",
        breakable(&esc(&name))
    )
}

/// Names of a device the email leaves out: "N more, 1.2 MB".
pub(super) fn email_more(d: &crate::analyse::DeviceRemotes) -> Option<String> {
    let hidden = d.remotes.get(EMAIL_NAMES..).unwrap_or_default();
    let more = d.more + u64::try_from(hidden.len()).unwrap_or(u64::MAX);
    let bytes = d.more_bytes + hidden.iter().map(|r| r.bytes).sum::<u64>();
    (more > 0).then(|| format!("{} more, {}", thousands(more), human_bytes(bytes)))
}

/// Devices the email leaves out: "N more devices (see index.html)".
pub(super) fn more_devices(s: &Summary) -> Option<String> {
    let more = more_than_shown(s.talked_to.len(), EMAIL_DEVICES, s.omitted.talked_to);
    (more > 0).then(|| format!("{} more devices (see index.html)", thousands(more)))
}

/// The plain-text compact view: a line per device, its first names indented.
pub(super) fn talked_to_text(t: &mut String, s: &Summary) {
    for d in s.talked_to.iter().take(EMAIL_DEVICES) {
        let _ = writeln!(t, "{}: {}", device_label(s, d), human_bytes(d.bytes));
        let shown: Vec<(String, String)> = d
            .remotes
            .iter()
            .take(EMAIL_NAMES)
            .map(|r| (remote_label(s, r), human_bytes(r.bytes)))
            .collect();
        let w = shown.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        for (name, bytes) in shown {
            let _ = writeln!(t, "  {name:<w$}  {bytes:>8}");
        }
        if let Some(more) = email_more(d) {
            let _ = writeln!(t, "  {more}");
        }
    }
    if let Some(more) = more_devices(s) {
        let _ = writeln!(t, "{more}");
    }
    t.push('\n');
}
