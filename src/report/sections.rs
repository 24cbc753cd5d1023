//! The report's sections: one function per section builds its title, table rows and
//! empty-night line from the summary; the warnings and announcements above them.

use super::*;

/// The text of each section (its heading is its key's [`ReportSection::title`]): table
/// rows as text and the empty-section line.
pub(super) struct Section {
    pub(super) head: Vec<&'static str>,
    pub(super) rows: Vec<Vec<String>>,
    pub(super) empty: &'static str,
    /// "N more ..." under the table, when rows were left out.
    pub(super) more: Option<String>,
}

/// The sections `report.sections` lists, in its order, each with its key.
pub(super) fn sections(s: &Summary, opts: &ReportOptions) -> Vec<(ReportSection, Section)> {
    let n = opts.top_n;
    let mut out = Vec::new();
    for key in &opts.sections {
        let sec = match key {
            ReportSection::Pings => pings_section(s),
            ReportSection::Totals => totals_section(s),
            ReportSection::Timeline => timeline_section(s),
            ReportSection::Protocols => protocols_section(s),
            ReportSection::Talkers => talkers_section(s, n),
            ReportSection::Conversations => conversations_section(s, n),
            ReportSection::Ports => ports_section(s, n),
            ReportSection::Devices => devices_section(s),
            ReportSection::TalkedTo => talked_to_section(s),
            ReportSection::History => history_section(s),
        };
        out.push((*key, sec));
    }
    out
}

/// [`rows`] of every item.
pub(super) const ALL: usize = usize::MAX;

/// The first `n` of `items`, one table row each.
pub(super) fn rows<T>(
    items: &[T],
    n: usize,
    row: impl FnMut(&T) -> Vec<String>,
) -> Vec<Vec<String>> {
    items.iter().take(n).map(row).collect()
}

/// "N more <what>" when `more` rows were left out: the line under a cut table.
pub(super) fn more_line(more: u64, what: &str) -> Option<String> {
    (more > 0).then(|| format!("{} more {what}", thousands(more)))
}

/// Echo requests per source, all sources (the HTML table shows the first `top_n * 2`,
/// as the chart does).
pub(super) fn pings_section(s: &Summary) -> Section {
    Section {
        head: vec!["Source", ">Requests", ">Replies received", ">Unanswered"],
        rows: rows(&s.pings, ALL, |p| {
            vec![
                named(s, &p.src),
                thousands(p.requests),
                thousands(p.replies),
                thousands(p.unanswered),
            ]
        }),
        more: more_line(s.omitted.ping_sources, "sources"),
        empty: "No echo requests (pings) tonight.",
    }
}

/// The night in numbers: window, packets, bytes, hosts, decode errors, capture health.
pub(super) fn totals_section(s: &Summary) -> Section {
    Section {
        head: vec!["", ">"],
        rows: totals_rows(s),
        empty: "",
        more: None,
    }
}

/// Packets and bytes per local hour.
pub(super) fn timeline_section(s: &Summary) -> Section {
    Section {
        head: vec!["Hour", ">Packets", ">Bytes"],
        rows: hourly(s),
        empty: "No packets tonight.",
        more: None,
    }
}

/// Packets and bytes per protocol.
pub(super) fn protocols_section(s: &Summary) -> Section {
    Section {
        head: vec!["Protocol", ">Packets", ">Bytes"],
        rows: rows(&s.protocols, ALL, |p| {
            vec![
                p.protocol.clone(),
                thousands(p.packets),
                human_bytes(p.bytes),
            ]
        }),
        empty: "No packets tonight.",
        more: None,
    }
}

/// The first `n` addresses by bytes.
pub(super) fn talkers_section(s: &Summary, n: usize) -> Section {
    let (rows, more) = top_rows(
        &s.talkers_by_bytes,
        n,
        s.omitted.talkers,
        "addresses",
        |t| {
            vec![
                shown(s, t.name.as_deref(), &t.addr),
                human_bytes(t.tx_bytes),
                human_bytes(t.rx_bytes),
                thousands(t.packets),
            ]
        },
    );
    Section {
        head: vec!["Address", ">Sent", ">Received", ">Packets"],
        rows,
        more,
        empty: "No IP traffic tonight.",
    }
}

/// The first `n` address pairs.
pub(super) fn conversations_section(s: &Summary, n: usize) -> Section {
    let (rows, more) = top_rows(
        &s.conversations,
        n,
        s.omitted.conversations,
        "address pairs",
        |c| {
            vec![
                shown(s, c.a_name.as_deref(), &c.a),
                shown(s, c.b_name.as_deref(), &c.b),
                thousands(c.packets),
                human_bytes(c.bytes),
            ]
        },
    );
    Section {
        head: vec!["Between", "And", ">Packets", ">Bytes"],
        rows,
        more,
        empty: "No IP conversations tonight.",
    }
}

/// The first `n` of `items`, one table row each, and the "N more <what>" line for the
/// rest (counting the `omitted` ones the analysis left out of `items`).
fn top_rows<T>(
    items: &[T],
    n: usize,
    omitted: u64,
    what: &str,
    row: impl FnMut(&T) -> Vec<String>,
) -> (Vec<Vec<String>>, Option<String>) {
    let more = more_than_shown(items.len(), n, omitted);
    (rows(items, n, row), more_line(more, what))
}

/// Rows left out of a list of `len` shown `n` at a time, `omitted` of them by the analysis.
pub(super) fn more_than_shown(len: usize, n: usize, omitted: u64) -> u64 {
    omitted + u64::try_from(len.saturating_sub(n)).unwrap_or(u64::MAX)
}

/// The first `n` services (protocol and port), the rest as one "other" row.
pub(super) fn ports_section(s: &Summary, n: usize) -> Section {
    let o = &s.omitted;
    let mut rows = rows(&s.ports, n, |p| {
        let name = if p.service.is_empty() {
            "-".to_string()
        } else {
            p.service.clone()
        };
        vec![
            name,
            format!("{}/{}", p.protocol.to_lowercase(), p.port),
            thousands(p.packets),
            human_bytes(p.bytes),
        ]
    });
    let hidden = &s.ports[n.min(s.ports.len())..];
    let services = o.ports + u64::try_from(hidden.len()).unwrap_or(u64::MAX);
    if services > 0 {
        rows.push(vec![
            "other".into(),
            format!("{} more ports", thousands(services)),
            thousands(o.ports_packets + hidden.iter().map(|p| p.packets).sum::<u64>()),
            human_bytes(o.ports_bytes + hidden.iter().map(|p| p.bytes).sum::<u64>()),
        ]);
    }
    Section {
        head: vec!["Service", "Port", ">Packets", ">Bytes"],
        rows,
        empty: "No TCP or UDP traffic tonight.",
        more: None,
    }
}

/// New, silent and known devices.
pub(super) fn devices_section(s: &Summary) -> Section {
    Section {
        head: vec![
            "",
            "Device, vendor, MAC and IPs",
            ">First seen",
            ">Packets sent",
        ],
        rows: device_rows(s),
        more: more_line(s.omitted.devices, "devices (not listed, not compared)"),
        empty: "No devices seen tonight.",
    }
}

/// Tonight against the median of earlier nights.
pub(super) fn history_section(s: &Summary) -> Section {
    Section {
        head: vec!["", ">Tonight", ">Median", ""],
        rows: rows(&s.history, ALL, |h| {
            vec![
                h.metric.clone(),
                thousands(h.tonight),
                format!("{:.0}", h.median),
                if h.flagged {
                    "unusual".into()
                } else {
                    String::new()
                },
            ]
        }),
        empty: "No earlier nights to compare with yet.",
        more: None,
    }
}

/// The timeline summed per local hour (the chart keeps the finer bins).
pub(super) fn hourly(s: &Summary) -> Vec<Vec<String>> {
    let mut rows: Vec<(String, u64, u64)> = Vec::new();
    for b in &s.timeline.bins {
        let hour = format!("{}:00", b.start.get(11..13).unwrap_or("??"));
        match rows.last_mut() {
            Some(last) if last.0 == hour => {
                last.1 += b.packets;
                last.2 += b.bytes;
            }
            _ => rows.push((hour, b.packets, b.bytes)),
        }
    }
    rows.into_iter()
        .map(|(h, p, b)| vec![h, thousands(p), human_bytes(b)])
        .collect()
}

/// `2024-11-15T22:00:02+01:00` as `2024-11-15 22:00`.
pub(super) fn short_time(t: Option<&str>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.get(..16).unwrap_or(t).replace('T', " "),
    )
}

pub(super) fn totals_rows(s: &Summary) -> Vec<Vec<String>> {
    let t = &s.totals;
    let mut rows = vec![
        vec![
            "Window".into(),
            format!(
                "{} to {}",
                short_time(t.first.as_deref()),
                short_time(t.last.as_deref())
            ),
        ],
        vec!["Packets".into(), thousands(t.packets)],
        vec!["Bytes".into(), human_bytes(t.bytes)],
        vec!["Hosts (IP addresses)".into(), thousands(t.hosts)],
    ];
    if t.decode_errors > 0 {
        rows.push(vec![
            "Malformed or cut-short frames".into(),
            thousands(t.decode_errors),
        ]);
    }
    if let Some(c) = &s.capture {
        rows.push(vec![
            "Capture".into(),
            format!(
                "{} received, {} dropped by the kernel, {} by the interface, {} by netdigest ({:.3}%)",
                thousands(c.received),
                thousands(c.dropped_kernel),
                thousands(c.dropped_interface),
                thousands(c.dropped_ours),
                c.drop_ratio * 100.0
            ),
        ]);
    }
    rows
}

/// A device's row: status; its name, with its vendor and model, its MACs and its IPs
/// under it (one a line; one cell, so that on a phone the addresses get the width);
/// first seen (local `HH:MM`); packets.
pub(super) fn device_row(status: &str, x: &crate::devices::Device, seen: bool) -> Vec<String> {
    let mut name = crate::analyse::clean(&x.name);
    let model = x
        .model
        .as_deref()
        .map(crate::analyse::clean)
        .filter(|m| !m.is_empty());
    let about: Vec<String> = x.vendor.iter().cloned().chain(model).collect();
    if !about.is_empty() {
        let _ = write!(name, "\n{}", about.join(", "));
    }
    for a in x.all_macs().chain(x.ips.iter().map(String::as_str)) {
        let _ = write!(name, "\n{a}");
    }
    if x.more_ips > 0 {
        let _ = write!(name, "\n{} more addresses", thousands(x.more_ips));
    }
    vec![
        status.into(),
        name,
        if seen {
            hhmm(&x.first_seen)
        } else {
            "-".into()
        },
        if seen {
            thousands(x.packets)
        } else {
            "-".into()
        },
    ]
}

/// `2024-11-15T22:01:07+01:00` as `22:01`.
pub(super) fn hhmm(t: &str) -> String {
    t.get(11..16).unwrap_or("-").to_string()
}

/// New devices first, then the others, then the silent ones: one row per device.
pub(super) fn device_rows(s: &Summary) -> Vec<Vec<String>> {
    let Some(d) = &s.devices else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for x in &d.new {
        rows.push(device_row("new", x, true));
    }
    for x in &d.devices {
        if !d.new.iter().any(|n| n.mac == x.mac) {
            rows.push(device_row("", x, true));
        }
    }
    for x in &d.silent {
        rows.push(device_row("silent", x, false));
    }
    rows
}

/// New devices announced at most this many to a message (the rest counted).
pub(super) const MAX_ANNOUNCED: usize = 10;

/// "New device: kitchen-tv, Samsung, 192.168.1.23, first seen 22:01", one line each
/// (the analysis runs after the night, so every name the night carried is known).
pub(super) fn new_device_lines(s: &Summary) -> Vec<String> {
    let Some(d) = &s.devices else {
        return Vec::new();
    };
    let mut out: Vec<String> = d
        .new
        .iter()
        .take(MAX_ANNOUNCED)
        .map(|x| {
            let mut parts = vec![crate::analyse::clean(&x.name)];
            if let Some(v) = &x.vendor {
                parts.push(v.clone());
            }
            if let Some(m) = x
                .model
                .as_deref()
                .map(crate::analyse::clean)
                .filter(|m| !m.is_empty())
            {
                parts.push(m);
            }
            parts.push(x.ips.first().cloned().unwrap_or_else(|| x.mac.clone()));
            parts.push(format!("first seen {}", hhmm(&x.first_seen)));
            format!("New device: {}", parts.join(", "))
        })
        .collect();
    if d.new.len() > MAX_ANNOUNCED {
        out.push(format!(
            "{} more new devices (see Devices)",
            thousands(u64::try_from(d.new.len() - MAX_ANNOUNCED).unwrap_or(u64::MAX))
        ));
    }
    out
}

/// One line per spoofed-source flood or scan.
pub(super) fn flood_lines(s: &Summary) -> Vec<String> {
    s.floods
        .iter()
        .map(|f| {
            let macs = if f.top_macs.is_empty() {
                String::new()
            } else {
                format!(
                    ", most from {}",
                    f.top_macs
                        .iter()
                        .map(|m| mac_named(s, m))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let from = format!(
                "{} {} ({} locally administered{macs})",
                thousands(f.macs),
                if f.macs == 1 { "MAC" } else { "MACs" },
                thousands(f.local_macs)
            );
            let count = |n: u64, one: &str, many: &str| {
                format!("{} {}", thousands(n), if n == 1 { one } else { many })
            };
            if f.kind == "scan" {
                format!(
                    "Scan: {} reached {} on {} in {}, from {from}.",
                    named(s, &f.src),
                    count(f.destinations, "address", "addresses"),
                    count(f.ports, "port", "ports"),
                    count(f.packets, "packet", "packets")
                )
            } else {
                format!(
                    "Spoofed-source flood: {} distinct local source addresses sent {} to {} on {}, from {from}.",
                    thousands(f.sources),
                    count(f.packets, "packet", "packets"),
                    count(f.destinations, "address", "addresses"),
                    count(f.ports, "port", "ports")
                )
            }
        })
        .collect()
}

pub(super) fn warnings(s: &Summary) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(l) = s.capture.as_ref().and_then(|c| c.stopped_low_disk.as_ref()) {
        w.push(format!(
            "Capture stopped writing at {} because the disk had only {} MiB free (below \
             capture.min_free_mb, {} MiB): later packets were counted but not kept, so this \
             report misses them.",
            short_time(Some(&l.at)),
            thousands(l.free_mb),
            thousands(l.min_free_mb)
        ));
    }
    if let Some(c) = &s.capture
        && c.warning
    {
        w.push(format!(
            "Capture dropped {:.2}% of packets ({} of {}): the numbers below undercount the night.",
            c.drop_ratio * 100.0,
            thousands(c.dropped_kernel + c.dropped_interface + c.dropped_ours),
            thousands(c.received + c.dropped_kernel + c.dropped_interface)
        ));
    }
    w.extend(flood_lines(s));
    w
}
