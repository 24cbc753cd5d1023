//! Charts of the report: what each chart shows ([`defs`]), drawing them into images
//! for the morning email ([`render`], with the fonts of [`fonts`], on renderers started
//! ahead by [`engines`]), and chart fragments for the interactive page ([`html`]).
//!
//! Email clients run no JavaScript, so each chart of the report is drawn into a
//! static image; the interactive `index.html` runs the very same chart definition
//! ([`charming::Chart`], i.e. an ECharts option) in the browser. For the images the
//! chart is drawn by ECharts itself, with its server-side SVG renderer
//! (`renderer: 'svg', ssr: true`), running inside an embedded QuickJS engine
//! ([`rquickjs`]); the SVG is then rasterised by [`resvg`] and encoded as PNG or
//! JPEG by [`image`]. So the email shows what the browser shows, minus interaction.
//!
//! Invariants: a chart definition is pure data (the same summary gives the same
//! option, so the same image bytes); every error is a [`ChartError`] whose message is
//! one line; sizes out of range are errors, never panics.

pub mod defs;
pub mod engines;
pub mod fonts;
pub mod html;
pub mod render;

#[cfg(test)]
mod tests;

pub use defs::ChartDef;
pub use engines::{Drawing, Engines};
pub use fonts::Fonts;
pub use html::{
    OFFLINE_CSP, echarts_js, echarts_script_tag, html_fragment, html_page, script_json,
};
pub use render::{ChartRenderer, RENDER_TIMEOUT};

use std::time::Duration;

/// Largest chart side accepted, in CSS pixels.
pub const MAX_SIDE: u32 = 4096;
/// Largest pixel density accepted by the `*_scaled` functions.
pub const MAX_SCALE: u32 = 4;
/// Largest raster image accepted, in pixels (64 MB of RGBA).
pub const MAX_PIXELS: u64 = 4096 * 4096;

/// Why a chart could not be drawn. Messages are one line.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("no fonts found for chart text: install fonts-dejavu-core")]
    NoFonts,
    #[error("starting the JavaScript engine: {0}")]
    Engine(String),
    #[error("loading ECharts into the JavaScript engine: {0}")]
    LoadEcharts(String),
    #[error("ECharts could not render the chart: {0}")]
    Script(String),
    #[error("rendering the chart took longer than {0:?}")]
    Timeout(Duration),
    #[error(
        "chart size {width}x{height} at scale {scale}: each side must be 1..={MAX_SIDE} px, the scale 1..={MAX_SCALE} and the image at most {MAX_PIXELS} pixels"
    )]
    Size { width: u32, height: u32, scale: u32 },
    #[error("reading the chart SVG: {0}")]
    Svg(String),
    #[error("encoding the chart as {format}: {reason}")]
    Encode {
        format: &'static str,
        reason: String,
    },
    #[error("building the chart page: {0}")]
    Html(String),
}

/// Whitespace runs (newlines included) as single spaces, at most 300 characters.
fn one_line(s: &str) -> String {
    let mut out: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > 300 {
        out = out.chars().take(299).collect();
        out.push('…');
    }
    out
}
