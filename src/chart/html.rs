//! Charts for web pages: the interactive fragment or page that runs a chart's
//! definition with ECharts in the browser, and the embedded ECharts script.
//!
//! Invariant: a chart's option inside `<script>` never ends the element early.

use charming::Chart;

use super::render::ECHARTS_JS;
use super::{ChartError, one_line};

/// Where the interactive page loads ECharts from (the version embedded here).
pub const ECHARTS_CDN_URL: &str = "https://cdn.jsdelivr.net/npm/echarts@5.5.1/dist/echarts.min.js";

/// A whole HTML page showing one interactive chart, by charming's `HtmlRenderer`
/// (loads ECharts from its CDN).
///
/// # Errors
/// The page template failing.
pub fn html_page(
    title: &str,
    chart: &Chart,
    width: u32,
    height: u32,
) -> Result<String, ChartError> {
    charming::HtmlRenderer::new(title, u64::from(width), u64::from(height))
        .render(chart)
        .map_err(|e| ChartError::Html(one_line(&e.to_string())))
}

/// The interactive-page fragment for one chart: a `<div>` (full width, `height` px)
/// and a `<script>` that draws the chart into it with the page's ECharts (load
/// [`ECHARTS_CDN_URL`] or inline [`echarts_js`] once in the page's `<head>`).
/// Characters other than `[A-Za-z0-9_-]` in `element_id` become `_`.
#[must_use]
pub fn html_fragment(element_id: &str, chart: &Chart, height: u32) -> String {
    let id: String = element_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // The option inside <script>: keep "</script>" and "<!--" from ending it early.
    let option = chart
        .to_string()
        .replace("</", "<\\/")
        .replace("<!--", "<\\!--");
    format!(
        "<div class=\"chart\" id=\"{id}\" style=\"width:100%;height:{height}px\"></div>\n\
         <script>(function(){{var el=document.getElementById('{id}');\
         if(window.echarts&&el){{var c=echarts.init(el);c.setOption({option});\
         window.addEventListener('resize',function(){{c.resize();}});}}}})();</script>\n"
    )
}

/// The embedded ECharts script, for a page that must work offline (~1 MB).
#[must_use]
pub fn echarts_js() -> &'static str {
    ECHARTS_JS
}
