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

mod findings;
mod sections;
mod talked_to;
use sections::*;
pub use talked_to::remote_named;
use talked_to::*;

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

impl From<&crate::config::ReportConfig> for ReportOptions {
    fn from(cfg: &crate::config::ReportConfig) -> Self {
        ReportOptions {
            sections: cfg.sections.clone(),
            top_n: cfg.top_n,
        }
    }
}

impl Default for ReportOptions {
    /// The config's defaults.
    fn default() -> Self {
        Self::from(&crate::config::ReportConfig::default())
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

/// Bytes as `12.3 MB` ([`crate::human::bytes`]).
#[must_use]
#[expect(clippy::cast_precision_loss, reason = "display only")]
pub fn human_bytes(n: u64) -> String {
    crate::human::bytes(n as f64)
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
    mut body: impl FnMut(&mut String, ReportSection, Section),
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
    for (key, sec) in sections(s, opts) {
        let _ = write!(h, "{}{}</h2>", tags.h2, esc(key.title()));
        if sec.rows.is_empty() {
            let _ = write!(h, "{}{}</p>", tags.empty, esc(sec.empty));
        } else {
            body(h, key, sec);
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
    html_sections(&mut h, s, opts, &EMAIL_TAGS, |h, key, sec| {
        if key == ReportSection::TalkedTo {
            talked_to_email_html(h, s);
            return;
        }
        if let Some(img) = charts.iter().find(|c| c.id == key.word()) {
            let _ = write!(
                h,
                "<img src=\"cid:{}\" alt=\"{}\" width=\"600\" style=\"display:block;width:100%;max-width:600px;height:auto;border:0;margin:0 0 8px 0;\">",
                esc(&img.cid()),
                esc(&img.title)
            );
        }
        let (rows, more) = if key == ReportSection::Pings && s.pings.len() > opts.top_n * 2 {
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
    for (key, sec) in sections(s, opts) {
        let title = key.title();
        let _ = writeln!(t, "{title}\n{}", "-".repeat(title.len()));
        if sec.rows.is_empty() {
            let _ = writeln!(t, "{}\n", sec.empty);
            continue;
        }
        if key == ReportSection::TalkedTo {
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
    html_sections(&mut h, s, opts, &PAGE_TAGS, |h, key, sec| {
        if defs.iter().any(|d| d.section == key) {
            let _ = write!(h, "<div class=\"chart\" id=\"chart-{}\"></div>", key.word());
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
            id = d.id()
        );
    }
    h.push_str("}</script></body></html>\n");
    h
}

#[cfg(test)]
mod tests;
