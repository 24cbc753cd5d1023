//! Report: the morning email (HTML with inline CSS and `cid:` images, plus a plain
//! text part with the same numbers) and the interactive `index.html`, which
//! [`crate::message`] spools as `report.eml`. Everything here is generated from a
//! [`Summary`].
//!
//! The report composes sections: one function per section builds its title, table and
//! empty-night line, in the order the config's `report.sections` lists them; the
//! charts of the sections that have data are defined in [`crate::chart::defs`].
//! Invariants: every text put into HTML goes through [`esc`]; the email parts and the
//! page are pure functions of the summary and the options (no clock, no randomness).

use std::fmt::Write as _;

use crate::analyse::Summary;
pub use crate::chart::ChartDef;
use crate::chart::defs;
use crate::config::ReportSection;

/// A rendered chart image, attached inline to the email.
#[derive(Debug, Clone)]
pub struct ChartImage {
    pub id: String,
    pub title: String,
    /// `image/jpeg` or `image/png`.
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl ChartImage {
    #[must_use]
    pub fn file_name(&self) -> String {
        let ext = if self.content_type.ends_with("png") {
            "png"
        } else {
            "jpg"
        };
        format!("{}.{ext}", self.id)
    }
    #[must_use]
    pub fn cid(&self) -> String {
        format!("{}@netdigest", self.id)
    }
}

/// Which sections to show, in order (names from the config's `report.sections`).
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub sections: Vec<ReportSection>,
    pub top_n: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        let sections = crate::config::ReportConfig::default().sections;
        ReportOptions {
            sections,
            top_n: 10,
        }
    }
}

impl ReportOptions {
    fn has(&self, s: ReportSection) -> bool {
        self.sections.contains(&s)
    }
}

/// `1234567` as `1,234,567`.
#[must_use]
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as `12.3 MB` (decimal units, as mail clients show sizes).
#[must_use]
#[expect(clippy::cast_precision_loss, reason = "display only")]
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

fn drops(s: &Summary) -> u64 {
    s.capture.as_ref().map_or(0, |c| {
        c.dropped_kernel + c.dropped_interface + c.dropped_ours
    })
}

/// The night's headline, used in the subject: "3 new devices, 1,204 pings, 0 drops".
#[must_use]
pub fn headline(s: &Summary) -> String {
    let new = s.devices.as_ref().map_or(0, |d| d.new.len());
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            one.to_string()
        } else {
            many.to_string()
        }
    };
    format!(
        "{} new {}, {} pings, {} drops",
        new,
        plural(new, "device", "devices"),
        thousands(s.total_pings()),
        thousands(drops(s))
    )
}

/// The charts of the report, for the sections that have data (always in this order:
/// pings, timeline, protocols, talkers; the chart images are attached in it).
#[must_use]
pub fn chart_defs(s: &Summary, opts: &ReportOptions) -> Vec<ChartDef> {
    let mut out = Vec::new();
    if opts.has(ReportSection::Pings) && !s.pings.is_empty() {
        out.push(defs::pings(&s.pings, opts.top_n.max(1) * 2, &|a| {
            short_name(s, a)
        }));
    }
    if opts.has(ReportSection::Timeline) && !s.timeline.bins.is_empty() {
        out.push(defs::timeline(&s.timeline));
    }
    if opts.has(ReportSection::Protocols) && !s.protocols.is_empty() {
        out.push(defs::protocols(&s.protocols));
    }
    if opts.has(ReportSection::Talkers) && !s.talkers_by_bytes.is_empty() {
        out.push(defs::talkers(&s.talkers_by_bytes, opts.top_n, &|a| {
            short_name(s, a)
        }));
    }
    out
}

/// HTML-escapes text for element content and attribute values.
#[must_use]
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// An address as every table shows it: `kitchen-tv (192.168.1.23)` when the summary
/// has a label for it, else the address alone. Plain text (the caller escapes it).
#[must_use]
pub fn named(s: &Summary, addr: &str) -> String {
    match s.label(addr) {
        Some(l) if !crate::analyse::clean(&l.name).is_empty() => {
            format!("{} ({addr})", crate::analyse::clean(&l.name))
        }
        _ => addr.to_string(),
    }
}

/// An address as a chart labels it: the label's short name, else the address.
#[must_use]
pub fn short_name(s: &Summary, addr: &str) -> String {
    s.label(addr)
        .map(|l| crate::analyse::clean(&l.name))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| addr.to_string())
}

/// A MAC with its vendor beside it: `00:1b:a9:77:50:50 (Brother industries)`, or with
/// the device's name when it has one: `printer (00:1b:a9:77:50:50, Brother industries)`.
#[must_use]
pub fn mac_named(s: &Summary, mac: &str) -> String {
    let label = s.label(mac);
    let vendor = label
        .and_then(|l| l.vendor.clone())
        .or_else(|| crate::vendor::vendor(mac));
    let name = label
        .filter(|l| l.source != "vendor")
        .map(|l| crate::analyse::clean(&l.name))
        .filter(|n| !n.is_empty());
    match (name, vendor) {
        (Some(n), Some(v)) => format!("{n} ({mac}, {v})"),
        (Some(n), None) => format!("{n} ({mac})"),
        (None, Some(v)) => format!("{mac} ({v})"),
        (None, None) => mac.to_string(),
    }
}

/// Text for a table cell or a line: control and bidirectional formatting characters
/// removed (names are hostile; the names crate removes them already, the report does
/// not depend on it).
fn plain(s: &str) -> String {
    s.chars()
        .filter(|c| !crate::analyse::is_hidden(*c))
        .collect()
}

/// A cell's lines (cells hold several lines, e.g. a device's addresses): split on the
/// line breaks the report put there, each line [`plain`].
fn cell_lines(c: &str) -> impl Iterator<Item = String> + '_ {
    c.split('\n').map(plain)
}

const TD: &str = "padding:4px 8px;border-bottom:1px solid #e5e7eb;font-size:14px;";
const TDR: &str =
    "padding:4px 8px;border-bottom:1px solid #e5e7eb;font-size:14px;text-align:right;";
const TH: &str =
    "padding:4px 8px;border-bottom:2px solid #9ca3af;font-size:13px;text-align:left;color:#374151;";
const MORE: &str = "margin:4px 0;color:#6b7280;font-size:13px;";

/// Text with a line-break opportunity (`<wbr>`) after each `.` and `:`: on a phone a
/// long IPv6 address would otherwise push the number columns off the screen, and a
/// break anywhere else could split a number ("192.168.1.1" / "0").
fn breakable(html: &str) -> String {
    html.replace('.', ".<wbr>").replace(':', ":<wbr>")
}

/// A table: header cells (a leading `>` right-aligns a column) and rows.
fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = String::from(
        "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse;width:100%;max-width:600px;\"><tr>",
    );
    let right: Vec<bool> = head.iter().map(|h| h.starts_with('>')).collect();
    for h in head {
        let name = h.trim_start_matches('>');
        let style = if h.starts_with('>') {
            format!("{TH}text-align:right;")
        } else {
            TH.to_string()
        };
        let _ = write!(t, "<th style=\"{style}\">{}</th>", esc(name));
    }
    t.push_str("</tr>");
    for r in rows {
        t.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let html = cell_lines(c)
                .map(|l| esc(&l))
                .collect::<Vec<_>>()
                .join("<br>");
            if right.get(i).copied().unwrap_or(false) {
                let _ = write!(t, "<td style=\"{TDR}\">{html}</td>");
            } else {
                let _ = write!(t, "<td style=\"{TD}\">{}</td>", breakable(&html));
            }
        }
        t.push_str("</tr>");
    }
    t.push_str("</table>");
    t
}

/// The text of each section: (title, table rows as text, empty-section line).
struct Section {
    key: &'static str,
    title: &'static str,
    head: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    empty: &'static str,
    chart: Option<&'static str>,
    /// "N more ..." under the table, when rows were left out.
    more: Option<String>,
}

fn sections(s: &Summary, opts: &ReportOptions) -> Vec<Section> {
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
        out.push(sec);
    }
    out
}

/// [`rows`] of every item.
const ALL: usize = usize::MAX;

/// The first `n` of `items`, one table row each.
fn rows<T>(items: &[T], n: usize, row: impl FnMut(&T) -> Vec<String>) -> Vec<Vec<String>> {
    items.iter().take(n).map(row).collect()
}

/// "N more <what>" when `more` rows were left out: the line under a cut table.
fn more_line(more: u64, what: &str) -> Option<String> {
    (more > 0).then(|| format!("{} more {what}", thousands(more)))
}

/// Echo requests per source, all sources (the HTML table shows the first `top_n * 2`,
/// as the chart does).
fn pings_section(s: &Summary) -> Section {
    Section {
        key: "pings",
        title: "Pings per source",
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
        chart: Some("pings"),
    }
}

/// The night in numbers: window, packets, bytes, hosts, decode errors, capture health.
fn totals_section(s: &Summary) -> Section {
    Section {
        key: "totals",
        title: "The night in numbers",
        head: vec!["", ">"],
        rows: totals_rows(s),
        empty: "",
        chart: None,
        more: None,
    }
}

/// Packets and bytes per local hour.
fn timeline_section(s: &Summary) -> Section {
    Section {
        key: "timeline",
        title: "Activity through the night",
        head: vec!["Hour", ">Packets", ">Bytes"],
        rows: hourly(s),
        empty: "No packets tonight.",
        chart: Some("timeline"),
        more: None,
    }
}

/// Packets and bytes per protocol.
fn protocols_section(s: &Summary) -> Section {
    Section {
        key: "protocols",
        title: "Protocol mix",
        head: vec!["Protocol", ">Packets", ">Bytes"],
        rows: rows(&s.protocols, ALL, |p| {
            vec![
                p.protocol.clone(),
                thousands(p.packets),
                human_bytes(p.bytes),
            ]
        }),
        empty: "No packets tonight.",
        chart: Some("protocols"),
        more: None,
    }
}

/// The first `n` addresses by bytes.
fn talkers_section(s: &Summary, n: usize) -> Section {
    Section {
        key: "talkers",
        title: "Top talkers",
        head: vec!["Address", ">Sent", ">Received", ">Packets"],
        rows: rows(&s.talkers_by_bytes, n, |t| {
            vec![
                shown(s, t.name.as_deref(), &t.addr),
                human_bytes(t.tx_bytes),
                human_bytes(t.rx_bytes),
                thousands(t.packets),
            ]
        }),
        more: more_line(
            more_than_shown(s.talkers_by_bytes.len(), n, s.omitted.talkers),
            "addresses",
        ),
        empty: "No IP traffic tonight.",
        chart: Some("talkers"),
    }
}

/// The first `n` address pairs.
fn conversations_section(s: &Summary, n: usize) -> Section {
    Section {
        key: "conversations",
        title: "Top conversations",
        head: vec!["Between", "And", ">Packets", ">Bytes"],
        rows: rows(&s.conversations, n, |c| {
            vec![
                shown(s, c.a_name.as_deref(), &c.a),
                shown(s, c.b_name.as_deref(), &c.b),
                thousands(c.packets),
                human_bytes(c.bytes),
            ]
        }),
        more: more_line(
            more_than_shown(s.conversations.len(), n, s.omitted.conversations),
            "address pairs",
        ),
        empty: "No IP conversations tonight.",
        chart: None,
    }
}

/// Rows left out of a list of `len` shown `n` at a time, `omitted` of them by the analysis.
fn more_than_shown(len: usize, n: usize, omitted: u64) -> u64 {
    omitted + u64::try_from(len.saturating_sub(n)).unwrap_or(u64::MAX)
}

/// The first `n` services (protocol and port), the rest as one "other" row.
fn ports_section(s: &Summary, n: usize) -> Section {
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
        key: "ports",
        title: "Top services",
        head: vec!["Service", "Port", ">Packets", ">Bytes"],
        rows,
        empty: "No TCP or UDP traffic tonight.",
        chart: None,
        more: None,
    }
}

/// New, silent and known devices.
fn devices_section(s: &Summary) -> Section {
    Section {
        key: "devices",
        title: "Devices",
        head: vec![
            "",
            "Device, vendor, MAC and IPs",
            ">First seen",
            ">Packets sent",
        ],
        rows: device_rows(s),
        more: more_line(s.omitted.devices, "devices (not listed, not compared)"),
        empty: "No devices seen tonight.",
        chart: None,
    }
}

/// Tonight against the median of earlier nights.
fn history_section(s: &Summary) -> Section {
    Section {
        key: "history",
        title: "Compared with previous nights",
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
        chart: None,
        more: None,
    }
}

/// The timeline summed per local hour (the chart keeps the finer bins).
fn hourly(s: &Summary) -> Vec<Vec<String>> {
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
fn short_time(t: Option<&str>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.get(..16).unwrap_or(t).replace('T', " "),
    )
}

fn totals_rows(s: &Summary) -> Vec<Vec<String>> {
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
fn device_row(status: &str, x: &crate::devices::Device, seen: bool) -> Vec<String> {
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
fn hhmm(t: &str) -> String {
    t.get(11..16).unwrap_or("-").to_string()
}

/// New devices first, then the others, then the silent ones: one row per device.
fn device_rows(s: &Summary) -> Vec<Vec<String>> {
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
const MAX_ANNOUNCED: usize = 10;

/// "New device: kitchen-tv, Samsung, 192.168.1.23, first seen 22:01", one line each
/// (the analysis runs after the night, so every name the night carried is known).
fn new_device_lines(s: &Summary) -> Vec<String> {
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
fn flood_lines(s: &Summary) -> Vec<String> {
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

fn warnings(s: &Summary) -> Vec<String> {
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

/// The opening tags of one HTML flavour: the email's (inline styles, for mail clients)
/// or the page's (a stylesheet).
struct Tags {
    warning: &'static str,
    notice: &'static str,
    h2: &'static str,
    empty: &'static str,
}

const EMAIL_TAGS: Tags = Tags {
    warning: "<p style=\"margin:8px 0;padding:8px 12px;background:#fef2f2;border-left:4px solid #dc2626;color:#991b1b;font-size:14px;\">",
    notice: "<p style=\"margin:8px 0;padding:8px 12px;background:#eff6ff;border-left:4px solid #2563eb;color:#1e3a8a;font-size:14px;\">",
    h2: "<h2 style=\"font-size:18px;margin:24px 0 8px 0;color:#111827;\">",
    empty: "<p style=\"margin:4px 0;color:#6b7280;font-size:14px;\">",
};

const PAGE_TAGS: Tags = Tags {
    warning: "<p style=\"color:#991b1b\">",
    notice: "<p style=\"color:#1e3a8a\">",
    h2: "<h2>",
    empty: "<p>",
};

/// The warnings, then each section in turn: its heading, then (unless it is empty, which
/// says so in one line) what `body` writes for it.
fn html_sections(
    h: &mut String,
    s: &Summary,
    opts: &ReportOptions,
    tags: &Tags,
    mut body: impl FnMut(&mut String, Section),
) {
    for w in warnings(s) {
        let _ = write!(
            h,
            "{}<strong>Warning:</strong> {}</p>",
            tags.warning,
            esc(&plain(&w))
        );
    }
    for n in new_device_lines(s) {
        let _ = write!(h, "{}{}</p>", tags.notice, esc(&plain(&n)));
    }
    for sec in sections(s, opts) {
        let _ = write!(h, "{}{}</h2>", tags.h2, esc(sec.title));
        if sec.rows.is_empty() {
            let _ = write!(h, "{}{}</p>", tags.empty, esc(sec.empty));
        } else {
            body(h, sec);
        }
    }
}

/// The email's HTML body: inline CSS only, no scripts, images by `cid:`, a table of
/// the numbers behind each chart, readable at 600 px and on a phone.
#[must_use]
pub fn email_html(s: &Summary, charts: &[ChartImage], opts: &ReportOptions) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>netdigest {night}</title></head>\
<body style=\"margin:0;padding:0;background:#f3f4f6;\">\
<div style=\"max-width:600px;margin:0 auto;padding:16px;background:#ffffff;font-family:Helvetica,Arial,sans-serif;color:#111827;\">\
<h1 style=\"font-size:22px;margin:0 0 4px 0;\">Your network overnight</h1>\
<p style=\"margin:0 0 12px 0;color:#4b5563;font-size:14px;\">Night of {night} &middot; {headline}</p>",
        night = esc(&s.night),
        headline = esc(&headline(s)),
    );
    h.push_str(&findings::tonight_html(s));
    html_sections(&mut h, s, opts, &EMAIL_TAGS, |h, sec| {
        if sec.key == TALKED_TO {
            talked_to_email_html(h, s);
            return;
        }
        if let Some(id) = sec.chart
            && let Some(img) = charts.iter().find(|c| c.id == id)
        {
            let _ = write!(
                h,
                "<img src=\"cid:{}\" alt=\"{}\" width=\"600\" style=\"display:block;width:100%;max-width:600px;height:auto;border:0;margin:0 0 8px 0;\">",
                esc(&img.cid()),
                esc(&img.title)
            );
        }
        let (rows, more) = if sec.key == "pings" && s.pings.len() > opts.top_n * 2 {
            let shown = opts.top_n * 2;
            let more = more_than_shown(s.pings.len(), shown, s.omitted.ping_sources);
            let rows: Vec<Vec<String>> = sec.rows.into_iter().take(shown).collect();
            (rows, more_line(more, "sources"))
        } else {
            (sec.rows, sec.more)
        };
        h.push_str(&table(&sec.head, &rows));
        if let Some(more) = more {
            let _ = write!(h, "<p style=\"{MORE}\">{}</p>", esc(&more));
        }
    });
    h.push_str("<p style=\"margin:24px 0 0 0;color:#9ca3af;font-size:12px;\">netdigest &middot; the interactive report is attached as index.html</p></div></body></html>\n");
    h
}

/// The plain-text part: the same numbers as the HTML.
#[must_use]
pub fn email_text(s: &Summary, opts: &ReportOptions) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Your network overnight: night of {}\n{}\n",
        s.night,
        headline(s)
    );
    t.push_str(&findings::tonight_text(s));
    for w in warnings(s) {
        let _ = writeln!(t, "WARNING: {}\n", plain(&w));
    }
    let new = new_device_lines(s);
    for n in &new {
        let _ = writeln!(t, "{}", plain(n));
    }
    if !new.is_empty() {
        t.push('\n');
    }
    for sec in sections(s, opts) {
        let _ = writeln!(t, "{}\n{}", sec.title, "-".repeat(sec.title.len()));
        if sec.rows.is_empty() {
            let _ = writeln!(t, "{}\n", sec.empty);
            continue;
        }
        if sec.key == TALKED_TO {
            talked_to_text(&mut t, s);
            continue;
        }
        let cols = sec.head.len();
        // One line per row: a cell's lines joined with ", ".
        let rows: Vec<Vec<String>> = sec
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| cell_lines(c).collect::<Vec<_>>().join(", "))
                    .collect()
            })
            .collect();
        let mut width = vec![0usize; cols];
        let head: Vec<String> = sec
            .head
            .iter()
            .map(|h| h.trim_start_matches('>').to_string())
            .collect();
        for r in std::iter::once(&head).chain(rows.iter()) {
            for (i, c) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        for r in std::iter::once(&head).chain(rows.iter()) {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .take(cols)
                .map(|(i, c)| {
                    if sec.head[i].starts_with('>') {
                        format!("{c:>w$}", w = width[i])
                    } else {
                        format!("{c:<w$}", w = width[i])
                    }
                })
                .collect();
            let _ = writeln!(t, "{}", line.join("  ").trim_end());
        }
        if let Some(more) = &sec.more {
            let _ = writeln!(t, "{more}");
        }
        t.push('\n');
    }
    t
}

/// The interactive page: every chart and the same tables (which need no script). It
/// works offline and loads nothing: ECharts is inlined from the copy in the binary
/// (about 1 MB) and a Content-Security-Policy forbids any request, so the LAN inventory
/// in the page stays on the reader's machine.
#[must_use]
pub fn index_html(s: &Summary, defs: &[ChartDef], opts: &ReportOptions) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
{csp}<title>netdigest {night}</title>{echarts}\
<style>body{{font-family:Helvetica,Arial,sans-serif;max-width:960px;margin:0 auto;padding:16px;color:#111827}}\
table{{border-collapse:collapse}}td,th{{padding:4px 8px;border-bottom:1px solid #e5e7eb}}.chart{{width:100%;height:380px}}</style></head><body>\
<h1>Your network overnight</h1><p>Night of {night} &middot; {headline}</p>",
        csp = crate::chart::OFFLINE_CSP,
        echarts = crate::chart::echarts_script_tag(),
        night = esc(&s.night),
        headline = esc(&headline(s)),
    );
    h.push_str(&findings::findings_page(s));
    html_sections(&mut h, s, opts, &PAGE_TAGS, |h, sec| {
        if let Some(id) = sec.chart
            && defs.iter().any(|d| d.id == id)
        {
            let _ = write!(h, "<div class=\"chart\" id=\"chart-{id}\"></div>");
        }
        h.push_str(&table(&sec.head, &sec.rows));
        if let Some(more) = &sec.more {
            let _ = write!(h, "<p>{}</p>", esc(more));
        }
    });
    h.push_str("<script>if (window.echarts) {\n");
    for d in defs {
        // JSON inside <script>: keep "</" from closing the element.
        let option = crate::chart::script_json(&d.chart.to_string());
        let _ = writeln!(
            h,
            "(function(){{var el=document.getElementById('chart-{id}');if(el){{echarts.init(el).setOption({option});}}}})();",
            id = d.id
        );
    }
    h.push_str("}</script></body></html>\n");
    h
}

mod findings;

/// An address in a table: a local device by its label ([`named`]), else a remote by the
/// name its client used ([`remote_named`]), else the address alone.
fn shown(s: &Summary, remote: Option<&str>, addr: &str) -> String {
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

/// The "what each device talked to" section's key.
const TALKED_TO: &str = "talked-to";
/// Devices and names per device in the email's compact view (the page shows all the
/// summary holds: at most `report.max_rows` of each).
const EMAIL_DEVICES: usize = 5;
const EMAIL_NAMES: usize = 3;

/// A device of the view: its name (the device's label, by MAC or by its first address;
/// else its MAC or address) and its first address.
fn device_label(s: &Summary, d: &crate::analyse::DeviceRemotes) -> String {
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
fn remote_label(s: &Summary, r: &crate::analyse::RemoteRow) -> String {
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
fn more_remotes(d: &crate::analyse::DeviceRemotes) -> Option<String> {
    (d.more > 0).then(|| format!("{} more, {}", thousands(d.more), human_bytes(d.more_bytes)))
}

/// What each device talked to (all the summary holds; the email parts show the
/// first [`EMAIL_DEVICES`] devices with [`EMAIL_NAMES`] names each).
fn talked_to_section(s: &Summary) -> Section {
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
        key: TALKED_TO,
        title: "What each device talked to",
        head: vec!["Device", "Talked to", ">Bytes", ">Packets"],
        rows,
        more: more_line(s.omitted.talked_to, "devices"),
        empty: "No device talked to anything tonight.",
        chart: None,
    }
}

/// The email's compact view: per device (most bytes first) a line with its total and
/// a two-column table of its first names, narrow enough for a phone.
fn talked_to_email_html(h: &mut String, s: &Summary) {
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
fn remote_cell_html(s: &Summary, r: &crate::analyse::RemoteRow) -> String {
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
fn email_more(d: &crate::analyse::DeviceRemotes) -> Option<String> {
    let hidden = d.remotes.get(EMAIL_NAMES..).unwrap_or_default();
    let more = d.more + u64::try_from(hidden.len()).unwrap_or(u64::MAX);
    let bytes = d.more_bytes + hidden.iter().map(|r| r.bytes).sum::<u64>();
    (more > 0).then(|| format!("{} more, {}", thousands(more), human_bytes(bytes)))
}

/// Devices the email leaves out: "N more devices (see index.html)".
fn more_devices(s: &Summary) -> Option<String> {
    let more = more_than_shown(s.talked_to.len(), EMAIL_DEVICES, s.omitted.talked_to);
    (more > 0).then(|| format!("{} more devices (see index.html)", thousands(more)))
}

/// The plain-text compact view: a line per device, its first names indented.
fn talked_to_text(t: &mut String, s: &Summary) {
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

#[cfg(test)]
mod tests;
