//! The "Tonight" section: at most [`TONIGHT_MAX`] findings above the lowest rank at the
//! top of the email (one sentence each, "All quiet" when none), and every finding with
//! its numbers and id in index.html (anchor `finding-<id>`).

use std::fmt::Write as _;

use super::esc;
use crate::analyse::Summary;
use crate::analyse::findings::{Finding, LOWEST_RANK};

/// Findings shown in the email at most.
pub const TONIGHT_MAX: usize = 5;

/// Text without control or bidi-override characters (for the plain-text part).
fn plain(s: &str) -> String {
    s.chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

/// The findings the email shows, and how many minor ones it leaves to index.html.
fn tonight(s: &Summary) -> (Vec<&Finding>, usize) {
    let shown: Vec<&Finding> = s
        .findings
        .iter()
        .filter(|f| f.rank > LOWEST_RANK)
        .take(TONIGHT_MAX)
        .collect();
    (shown.clone(), s.findings.len() - shown.len())
}

fn quiet_line(rest: usize) -> String {
    if rest == 0 {
        "All quiet: nothing stood out tonight.".to_string()
    } else {
        format!("All quiet: nothing stood out tonight ({rest} minor notes in index.html).")
    }
}

/// "Baseline learning: 2 of 7 nights ..." while the baseline is learning.
fn learning_line(s: &Summary) -> Option<String> {
    let b = s.baseline.as_ref().filter(|b| b.learning)?;
    Some(format!(
        "Baseline {}: new devices, unusual hours, new destinations, volume spikes and devices gone quiet are reported once it has {} earlier nights.",
        b.message(),
        b.needed
    ))
}

fn more_line(rest: usize) -> String {
    format!("{rest} more in index.html.")
}

/// The email's "Tonight" section (HTML, inline styles).
pub(super) fn tonight_html(s: &Summary) -> String {
    let mut h = String::from(
        "<h2 style=\"font-size:18px;margin:16px 0 8px 0;color:#111827;\">Tonight</h2>",
    );
    if let Some(l) = learning_line(s) {
        let _ = write!(
            h,
            "<p style=\"margin:4px 0;color:#6b7280;font-size:13px;\">{}</p>",
            esc(&l)
        );
    }
    let (shown, rest) = tonight(s);
    if shown.is_empty() {
        let _ = write!(
            h,
            "<p style=\"margin:4px 0;color:#166534;font-size:14px;\">{}</p>",
            esc(&quiet_line(rest))
        );
        return h;
    }
    h.push_str("<ul style=\"margin:4px 0;padding-left:20px;font-size:14px;\">");
    for f in shown {
        let _ = write!(
            h,
            "<li style=\"margin:4px 0;\">{} <span style=\"color:#6b7280;font-size:12px;\">[{}]</span></li>",
            esc(&f.sentence),
            esc(&f.id)
        );
    }
    h.push_str("</ul>");
    if rest > 0 {
        let _ = write!(
            h,
            "<p style=\"margin:4px 0;color:#6b7280;font-size:13px;\">{}</p>",
            esc(&more_line(rest))
        );
    }
    h
}

/// The plain-text part's "Tonight" section.
pub(super) fn tonight_text(s: &Summary) -> String {
    let mut t = String::from("Tonight\n-------\n");
    if let Some(l) = learning_line(s) {
        let _ = writeln!(t, "{l}");
    }
    let (shown, rest) = tonight(s);
    if shown.is_empty() {
        let _ = writeln!(t, "{}\n", quiet_line(rest));
        return t;
    }
    for f in shown {
        let _ = writeln!(t, "* {} [{}]", plain(&f.sentence), plain(&f.id));
    }
    if rest > 0 {
        let _ = writeln!(t, "{}", more_line(rest));
    }
    t.push('\n');
    t
}

/// index.html's list of every finding, with its numbers and id.
pub(super) fn findings_page(s: &Summary) -> String {
    let mut h = String::from("<h2>Tonight</h2>");
    if let Some(l) = learning_line(s) {
        let _ = write!(h, "<p>{}</p>", esc(&l));
    }
    if s.findings.is_empty() {
        h.push_str("<p>All quiet: nothing stood out tonight.</p>");
        return h;
    }
    for f in &s.findings {
        let _ = write!(
            h,
            "<div class=\"finding\" id=\"finding-{id}\"><p><strong>{kind}</strong> (rank {rank}): {sentence}<br><small>id {id}</small></p>",
            id = esc(&f.id),
            kind = esc(&f.kind),
            rank = f.rank,
            sentence = esc(&f.sentence),
        );
        if !f.numbers.is_empty() {
            h.push_str("<table>");
            for (k, v) in &f.numbers {
                let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(k), v);
            }
            h.push_str("</table>");
        }
        if let Some(c) = f.chart.as_ref().filter(|c| !c.points.is_empty()) {
            let chart = crate::chart::defs::finding_points(&c.value, &c.points);
            h.push_str(&crate::chart::html_fragment(
                &format!("finding-chart-{}", f.id),
                &chart,
                220,
            ));
        }
        h.push_str("</div>");
    }
    h
}
