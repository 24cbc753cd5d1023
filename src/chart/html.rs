//! Charts for web pages: the interactive fragment or page that runs a chart's
//! definition with ECharts in the browser, and the embedded ECharts script.
//!
//! Pages are self-contained: ECharts is inlined from the copy embedded in the binary
//! (the one the image renderer runs: the parts of Apache ECharts 5.5.1 the report
//! uses, `src/chart/echarts/`, Apache-2.0, its licence header kept), never loaded from the network, and
//! [`OFFLINE_CSP`] forbids the page any network access: the LAN inventory in it goes
//! nowhere.
//!
//! Invariant: a chart's option inside `<script>` never ends the element early.

use charming::Chart;

use super::ChartError;
use super::render::ECHARTS_JS;

/// A `<meta>` Content-Security-Policy for an offline page: inline scripts and styles
/// and `data:`/`blob:` images only; no request to any host (no fetch, no image, no font,
/// no form, no frame).
pub const OFFLINE_CSP: &str = "<meta http-equiv=\"Content-Security-Policy\" \
content=\"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
img-src data: blob:; base-uri 'none'; form-action 'none'\">";

/// ECharts as an inline `<script>` element (about 550 kB), for a page's `<head>`.
#[must_use]
pub fn echarts_script_tag() -> String {
    // The script has no "</script" today; should a later copy have one, keep it from
    // ending the element (inside a string or a comment `<\/` reads the same).
    let js = ECHARTS_JS.replace("</script", "<\\/script");
    let mut s = String::with_capacity(js.len() + 20);
    s.push_str("<script>");
    s.push_str(&js);
    s.push_str("</script>");
    s
}

/// A whole HTML page showing one interactive chart, offline ([`echarts_script_tag`],
/// [`OFFLINE_CSP`]).
///
/// # Errors
/// None today (the page is built from strings); the `Result` is kept for callers of
/// the former template-based page.
pub fn html_page(
    title: &str,
    chart: &Chart,
    width: u32,
    height: u32,
) -> Result<String, ChartError> {
    let title: String = title
        .chars()
        .map(|c| match c {
            '<' | '>' | '&' | '"' => '_',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    Ok(format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">{OFFLINE_CSP}<title>{title}</title>{}\
         </head><body><div style=\"width:{width}px\">{}</div></body></html>\n",
        echarts_script_tag(),
        html_fragment("chart", chart, height)
    ))
}

/// The interactive-page fragment for one chart: a `<div>` (full width, `height` px)
/// and a `<script>` that draws the chart into it with the page's ECharts (put
/// [`echarts_script_tag`] once in the page's `<head>`).
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
    let option = script_json(&chart.to_string());
    format!(
        "<div class=\"chart\" id=\"{id}\" style=\"width:100%;height:{height}px\"></div>\n\
         <script>(function(){{var el=document.getElementById('{id}');\
         if(window.echarts&&el){{var c=echarts.init(el);c.setOption({option});\
         window.addEventListener('resize',function(){{c.resize();}});}}}})();</script>\n"
    )
}

/// A chart option (JSON) for inside `<script>`: `</` and `<!--` cannot end the element
/// early or open a comment.
#[must_use]
pub fn script_json(option: &str) -> String {
    option.replace("</", "<\\/").replace("<!--", "<\\!--")
}

/// The embedded ECharts script, for a page that must work offline (~550 kB).
#[must_use]
pub fn echarts_js() -> &'static str {
    ECHARTS_JS
}
