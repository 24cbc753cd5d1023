//! What each chart of the report shows: one function per chart kind, turning the
//! analysis' rows into a [`ChartDef`] (an ECharts option, its id and its title).
//!
//! Which charts a report has, and in which order, is the report's decision
//! (`report::chart_defs`); these functions only define the charts.
//!
//! Invariants: pure (the same rows give the same option, so the same image bytes);
//! counts beyond `i64::MAX` are drawn as `i64::MAX`, never wrapped; animation is off.

use charming::Chart;
use charming::component::{Axis, Grid, Legend, Title};
use charming::element::{AxisLabel, AxisType, Formatter, JsFunction, Tooltip, Trigger};
use charming::series::{Bar, Line, Pie, Scatter};

use crate::analyse::{PingRow, ProtocolRow, Talker, Timeline};
use crate::config::ReportSection;

/// An axis label for a byte count, as the tables write it ("120 MB"): raw counts such as
/// 120,000,000 are too wide for the talkers chart's ticks and ran into each other.
const BYTES_LABEL_JS: &str = "var u = ['B', 'kB', 'MB', 'GB', 'TB'], i = 0; \
    while (Math.abs(v) >= 1000 && i < u.length - 1) { v /= 1000; i++; } \
    return (Math.round(v * 10) / 10) + ' ' + u[i];";

/// The protocol pie shows this many protocols (the largest).
const PROTOCOL_SLICES: usize = 8;

/// A chart of the report: its definition and where it goes.
pub struct ChartDef {
    /// The report section that shows the chart above its table.
    pub section: ReportSection,
    pub chart: Chart,
    /// Whether it calls addresses by their names (pings, talkers): such a chart can be
    /// drawn only once the night's devices and remotes are named; the others (timeline,
    /// protocols) as soon as the traffic is summed.
    pub names: bool,
}

impl ChartDef {
    /// Short id: file name stem and `cid:` (`pings`, `timeline`, ...), its section's word.
    #[must_use]
    pub fn id(&self) -> &'static str {
        self.section.word()
    }

    /// Its section's title.
    #[must_use]
    pub fn title(&self) -> &'static str {
        self.section.title()
    }
}

/// What a chart calls an address: its short name (`kitchen-tv`), the address when it
/// has none.
pub type Namer<'a> = &'a dyn Fn(&str) -> String;

/// Category names for addresses: each address's short name, made unique (a device's
/// IPv4 and IPv6 addresses have the same name: the second shows its address too).
fn category_names<'a>(addrs: impl Iterator<Item = &'a str>, name: Namer<'_>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    addrs
        .map(|a| {
            let n = name(a);
            if n == a || seen.insert(n.clone()) {
                n
            } else {
                format!("{n} ({a})")
            }
        })
        .collect()
}

/// Pings per source: answered and unanswered echo requests stacked, for the first
/// `limit` sources of `rows`, each called by `name`.
#[must_use]
pub fn pings(rows: &[PingRow], limit: usize, name: Namer<'_>) -> ChartDef {
    let rows: Vec<_> = rows.iter().take(limit).collect();
    let names = category_names(rows.iter().map(|p| p.src.as_str()), name);
    let answered: Vec<i64> = rows
        .iter()
        .map(|p| to_i64(p.requests - p.unanswered.min(p.requests)))
        .collect();
    let unanswered: Vec<i64> = rows
        .iter()
        .map(|p| to_i64(p.unanswered.min(p.requests)))
        .collect();
    let chart = chart("Pings (echo requests) per source", Trigger::Axis)
        .legend(Legend::new().top("bottom"))
        .grid(Grid::new().left(60).right(20).bottom(110).top(50))
        .x_axis(
            Axis::new()
                .type_(AxisType::Category)
                .data(names)
                .axis_label(AxisLabel::new().rotate(30)),
        )
        .y_axis(Axis::new().type_(AxisType::Value))
        .series(Bar::new().name("answered").stack("req").data(answered))
        .series(Bar::new().name("unanswered").stack("req").data(unanswered));
    ChartDef {
        section: ReportSection::Pings,
        chart,
        names: true,
    }
}

/// Packets per timeline bin through the night, labelled with the bins' local `HH:MM`.
#[must_use]
pub fn timeline(t: &Timeline) -> ChartDef {
    let names: Vec<String> = t.bins.iter().map(|b| hhmm(&b.start)).collect();
    let packets: Vec<i64> = t.bins.iter().map(|b| to_i64(b.packets)).collect();
    let chart = chart(
        format!("Packets per {} min", t.interval_s / 60),
        Trigger::Axis,
    )
    .grid(Grid::new().left(70).right(20).bottom(40).top(50))
    .x_axis(Axis::new().type_(AxisType::Category).data(names))
    .y_axis(Axis::new().type_(AxisType::Value))
    .series(Line::new().name("packets").data(packets));
    ChartDef {
        section: ReportSection::Timeline,
        chart,
        names: false,
    }
}

/// The protocol mix by packets: a ring of the first [`PROTOCOL_SLICES`] protocols.
#[must_use]
pub fn protocols(rows: &[ProtocolRow]) -> ChartDef {
    let data: Vec<(i64, String)> = rows
        .iter()
        .take(PROTOCOL_SLICES)
        .map(|p| (to_i64(p.packets), p.protocol.clone()))
        .collect();
    let chart = chart("Protocol mix (packets)", Trigger::Item).series(
        Pie::new()
            .name("packets")
            .radius(vec!["30%", "62%"])
            .center(vec!["50%", "55%"])
            .data(data),
    );
    ChartDef {
        section: ReportSection::Protocols,
        chart,
        names: false,
    }
}

/// The first `top_n` talkers of `rows`: bytes sent and received as horizontal stacked
/// bars, the biggest at the top, the byte axis labelled as the tables write sizes; each
/// called by `name`.
#[must_use]
pub fn talkers(rows: &[Talker], top_n: usize, name: Namer<'_>) -> ChartDef {
    let rows: Vec<_> = rows.iter().take(top_n).collect();
    // A device by its label (the caller's `name`), else a remote by the name its
    // clients used, shortened; two addresses of one name show their addresses too.
    let remote: std::collections::HashMap<&str, Option<&str>> = rows
        .iter()
        .map(|t| (t.addr.as_str(), t.name.as_deref()))
        .collect();
    let either = |a: &str| {
        let n = name(a);
        if n != a {
            return n;
        }
        remote
            .get(a)
            .copied()
            .flatten()
            .and_then(crate::analyse::clean_name)
            .map_or(n, |r| short_name(&r))
    };
    let mut names = category_names(rows.iter().map(|t| t.addr.as_str()), &either);
    names.reverse();
    let sent: Vec<i64> = rows.iter().rev().map(|t| to_i64(t.tx_bytes)).collect();
    let recv: Vec<i64> = rows.iter().rev().map(|t| to_i64(t.rx_bytes)).collect();
    let chart = chart("Top talkers (bytes)", Trigger::Axis)
        .legend(Legend::new().top("bottom"))
        .grid(Grid::new().left(150).right(30).bottom(50).top(50))
        .x_axis(
            Axis::new()
                .type_(AxisType::Value)
                .axis_label(AxisLabel::new().formatter(Formatter::Function(
                    JsFunction::new_with_args("v", BYTES_LABEL_JS),
                ))),
        )
        .y_axis(Axis::new().type_(AxisType::Category).data(names))
        .series(Bar::new().name("sent").stack("b").data(sent))
        .series(Bar::new().name("received").stack("b").data(recv));
    ChartDef {
        section: ReportSection::Talkers,
        chart,
        names: true,
    }
}

/// Longest chart label, in characters: a name is shortened in the middle.
const LABEL_CHARS: usize = 28;

/// A remote name as a chart label: short names whole, longer ones as their start and
/// their end (which tells the service: "telemetry.tvv…ndor-example.com"). The table
/// beside the chart keeps the full name and the address.
#[must_use]
pub fn short_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    if chars.len() <= LABEL_CHARS {
        return name.to_string();
    }
    let tail = LABEL_CHARS * 2 / 3;
    let head = LABEL_CHARS - tail - 1;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// A chart with what every chart of the report has: animation off (a static image
/// would otherwise catch the first frame), `title`, and a tooltip on `trigger`.
/// A finding's points on a time axis (local times as `YYYY-MM-DD HH:MM:SS`, which
/// ECharts reads and shows as the same wall-clock time): one dot per event, its value
/// on the y axis, for index.html.
#[must_use]
pub fn finding_points(value: &str, points: &[(String, f64)]) -> Chart {
    use charming::datatype::CompositeValue;
    let data: Vec<CompositeValue> = points
        .iter()
        .map(|(t, v)| {
            CompositeValue::Array(vec![
                CompositeValue::from(t.as_str()),
                CompositeValue::from(*v),
            ])
        })
        .collect();
    Chart::new()
        .animation(false)
        .tooltip(Tooltip::new().trigger(Trigger::Item))
        .grid(Grid::new().left(70).right(20).bottom(30).top(36))
        .x_axis(Axis::new().type_(AxisType::Time))
        .y_axis(Axis::new().type_(AxisType::Value).name(value).axis_label(
            AxisLabel::new().formatter(Formatter::Function(JsFunction::new_with_args(
                "v",
                BYTES_LABEL_JS,
            ))),
        ))
        .series(Scatter::new().name(value).symbol_size(6).data(data))
}

fn chart(title: impl Into<String>, trigger: Trigger) -> Chart {
    Chart::new()
        .animation(false)
        .title(Title::new().text(title))
        .tooltip(Tooltip::new().trigger(trigger))
}

/// Local `HH:MM` of an RFC 3339 time (the label of a timeline bin).
fn hhmm(rfc3339: &str) -> String {
    rfc3339.get(11..16).unwrap_or(rfc3339).to_string()
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
