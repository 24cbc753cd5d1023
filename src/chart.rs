//! Chart images for the morning email, and chart fragments for the interactive page.
//!
//! Email clients run no JavaScript, so each chart of the report is drawn into a
//! static image; the interactive `index.html` runs the very same chart definition
//! ([`charming::Chart`], i.e. an ECharts option) in the browser. For the images the
//! chart is drawn by ECharts itself, with its server-side SVG renderer
//! (`renderer: 'svg', ssr: true`), running inside an embedded QuickJS engine
//! ([`rquickjs`]); the SVG is then rasterised by [`resvg`] and encoded as PNG or
//! JPEG by [`image`]. So the email shows what the browser shows, minus interaction.
//!
//! The ECharts script (5.5.1, ~1 MB) is the one the `charming` crate ships in its
//! source; `build.rs` finds it and it is compiled into the binary, nothing is read
//! at run time. Loading it into QuickJS takes a while, so a [`ChartRenderer`] loads
//! it once and is reused for all charts of a report.
//!
//! Text is laid out by resvg with the system fonts (fontconfig's directories, plus
//! `NETDIGEST_FONT_DIR` if set). ECharts asks for `sans-serif` (sometimes
//! "Microsoft YaHei"); generic families map to DejaVu Sans when present (Debian:
//! `fonts-dejavu-core`, Nix: `dejavu_fonts`), else to another common sans font, and
//! unknown families fall back to that sans font. Characters the font lacks (CJK,
//! emoji) come from any other installed font that has them.
//!
//! Raster images have a white background (email dark modes would otherwise put
//! black axis text on a dark background; JPEG has no alpha anyway) and are
//! `width`x`height` pixels; the `*_scaled` variants draw the same layout at an
//! integer pixel density (2 = crisp on high-DPI screens, shown at `width` CSS px).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use charming::Chart;
use image::{ImageEncoder as _, RgbaImage};
use resvg::tiny_skia::{Color, Pixmap};
use resvg::usvg::{self, fontdb};
use rquickjs::{CatchResultExt as _, CaughtError, Context, Runtime};

/// The ECharts script embedded in the binary (see `build.rs`).
static ECHARTS_JS: &str = include_str!(env!("NETDIGEST_ECHARTS_JS"));

/// The same script compiled by `build.rs` into QuickJS bytecode, as a module (empty
/// when the build could not make it: then the script is parsed at start).
static ECHARTS_BYTECODE: &[u8] = include_bytes!(env!("NETDIGEST_ECHARTS_BYTECODE"));

/// Where the interactive page loads ECharts from (the version embedded here).
pub const ECHARTS_CDN_URL: &str = "https://cdn.jsdelivr.net/npm/echarts@5.5.1/dist/echarts.min.js";

/// Largest chart side accepted, in CSS pixels.
pub const MAX_SIDE: u32 = 4096;
/// Largest pixel density accepted by the `*_scaled` functions.
pub const MAX_SCALE: u32 = 4;
/// Largest raster image accepted, in pixels (64 MB of RGBA).
pub const MAX_PIXELS: u64 = 4096 * 4096;
/// A chart whose script runs longer than this is abandoned.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(60);
/// Memory the JavaScript engine may use (ECharts itself takes ~30 MB).
const JS_MEMORY_LIMIT: usize = 1 << 30;

/// Shims for what ECharts expects of a browser or Node (as charming's `runtime.js`
/// does for V8), and the function that renders one chart.
const RUNTIME_JS: &str = r#"
(function (g) {
    var noop = function () {};
    g.console = { log: noop, info: noop, warn: noop, error: noop, debug: noop, trace: noop };
    g.global = {};
    g.setTimeout = function () { return 0; };
    g.clearTimeout = noop;
    g.setInterval = function () { return 0; };
    g.clearInterval = noop;
})(globalThis);
"#;

const RENDER_FN_JS: &str = r#"
globalThis.__netdigestRender = function (option, width, height) {
    if (option === null || typeof option !== 'object' || Array.isArray(option)) {
        throw new TypeError('the chart option is not an object');
    }
    // Static image: no animation (SSR would otherwise catch the first frame).
    option.animation = false;
    var series = option.series;
    if (Array.isArray(series)) {
        for (var i = 0; i < series.length; i++) {
            if (series[i] !== null && typeof series[i] === 'object') series[i].animation = false;
        }
    } else if (series !== null && typeof series === 'object') {
        series.animation = false;
    }
    var chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: width, height: height });
    try {
        chart.setOption(option);
        return chart.renderToSVGString();
    } finally {
        chart.dispose();
    }
};
"#;

/// Sans-serif families tried, in order, for ECharts' `sans-serif`.
const SANS_FAMILIES: &[&str] = &[
    "DejaVu Sans",
    "Liberation Sans",
    "Noto Sans",
    "FreeSans",
    "Arimo",
    "Nimbus Sans",
    "Cantarell",
    "Arial",
    "Helvetica",
];
const SERIF_FAMILIES: &[&str] = &[
    "DejaVu Serif",
    "Liberation Serif",
    "Noto Serif",
    "FreeSerif",
    "Tinos",
    "Nimbus Roman",
];
const MONO_FAMILIES: &[&str] = &[
    "DejaVu Sans Mono",
    "Liberation Mono",
    "Noto Sans Mono",
    "FreeMono",
    "Nimbus Mono PS",
];

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

/// Draws charts to SVG, PNG and JPEG. Holds a QuickJS runtime with ECharts loaded
/// (once, in [`ChartRenderer::new`]) and the font database; reuse it for all charts.
///
/// Not `Send`: the JavaScript engine belongs to the thread that created it.
pub struct ChartRenderer {
    // Field order = drop order: the context before its runtime.
    context: Context,
    runtime: Runtime,
    /// When the chart being rendered must be done (read by the interrupt handler).
    deadline: Arc<Mutex<Option<Instant>>>,
    timeout: Duration,
    fontdb: Arc<fontdb::Database>,
    /// The family `sans-serif` resolves to.
    sans_family: String,
}

impl std::fmt::Debug for ChartRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChartRenderer")
            .field("font_faces", &self.fontdb.len())
            .field("sans_family", &self.sans_family)
            .finish_non_exhaustive()
    }
}

impl ChartRenderer {
    /// Loads the fonts and starts QuickJS with ECharts (~25 ms in release builds).
    ///
    /// # Errors
    /// [`ChartError::NoFonts`] when no font is installed; the engine failing to start
    /// or to run ECharts.
    pub fn new() -> Result<Self, ChartError> {
        let fonts = Fonts::load()?;
        Self::with_fonts(move || Ok(fonts))
    }

    /// Starts QuickJS with ECharts, then takes the fonts from `fonts` (which may wait
    /// for another thread loading them meanwhile: [`Fonts`] are shared by renderers).
    ///
    /// # Errors
    /// As [`new`](Self::new); `fonts`' error.
    pub fn with_fonts(
        fonts: impl FnOnce() -> Result<Fonts, ChartError>,
    ) -> Result<Self, ChartError> {
        let t = Instant::now();
        let runtime = Runtime::new().map_err(|e| ChartError::Engine(one_line(&e.to_string())))?;
        runtime.set_memory_limit(JS_MEMORY_LIMIT);
        let deadline: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
        let watch = Arc::clone(&deadline);
        runtime.set_interrupt_handler(Some(Box::new(move || {
            // A poisoned lock only means a panic elsewhere: keep reading the value.
            let d = match watch.lock() {
                Ok(g) => *g,
                Err(p) => *p.into_inner(),
            };
            d.is_some_and(|d| Instant::now() > d)
        })));
        let context =
            Context::full(&runtime).map_err(|e| ChartError::Engine(one_line(&e.to_string())))?;
        context.with(|ctx| {
            let mut opts = rquickjs::context::EvalOptions::default();
            // ECharts' UMD bundle is written for sloppy-mode script evaluation.
            opts.strict = false;
            opts.filename = Some("echarts.min.js".into());
            let load = || -> rquickjs::Result<()> {
                ctx.eval::<(), _>(RUNTIME_JS)?;
                if !load_echarts_bytecode(&ctx)? {
                    ctx.eval_with_options::<(), _>(ECHARTS_JS, opts)?;
                }
                ctx.eval::<(), _>(RENDER_FN_JS)?;
                Ok(())
            };
            load()
                .catch(&ctx)
                .map_err(|e| ChartError::LoadEcharts(caught_message(&e)))
        })?;
        runtime.run_gc();
        tracing::debug!(ms = t.elapsed().as_millis(), "charts: ECharts loaded");
        let Fonts { db, sans } = fonts()?;
        Ok(Self {
            context,
            runtime,
            deadline,
            timeout: RENDER_TIMEOUT,
            fontdb: db,
            sans_family: sans,
        })
    }

    /// The font family ECharts' `sans-serif` text is drawn with (e.g. "DejaVu Sans").
    #[must_use]
    pub fn sans_family(&self) -> &str {
        &self.sans_family
    }

    /// The chart as an SVG document of `width`x`height` CSS pixels, as ECharts draws
    /// it (animation off).
    ///
    /// # Errors
    /// A size out of range, or ECharts throwing (the message says what it said).
    pub fn render_svg(&self, chart: &Chart, width: u32, height: u32) -> Result<String, ChartError> {
        // `Chart`'s Display is its ECharts option: JSON, plus raw JS for `JsFunction`s.
        self.render_option_svg(&chart.to_string(), width, height)
    }

    /// How long one chart's script may run before it is abandoned
    /// ([`RENDER_TIMEOUT`] unless set).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// [`render_svg`](Self::render_svg) for an ECharts option given as a JavaScript
    /// expression (JSON is one).
    fn render_option_svg(
        &self,
        option: &str,
        width: u32,
        height: u32,
    ) -> Result<String, ChartError> {
        check_size(width, height, 1)?;
        // The newline ends a trailing `//` comment, if any.
        let code = format!("__netdigestRender(({option}\n), {width}, {height})");
        self.set_deadline(Instant::now().checked_add(self.timeout));
        let result = self.context.with(|ctx| {
            ctx.eval::<String, _>(code)
                .catch(&ctx)
                .map_err(|e| caught_message(&e))
        });
        let timed_out = self.deadline_passed();
        self.set_deadline(None);
        self.runtime.run_gc();
        match result {
            Ok(svg) => Ok(svg),
            Err(_) if timed_out => Err(ChartError::Timeout(self.timeout)),
            Err(msg) => Err(ChartError::Script(msg)),
        }
    }

    /// The chart as RGBA pixels on white, `width*scale`x`height*scale` pixels.
    ///
    /// # Errors
    /// As [`render_svg`](Self::render_svg); a scale out of 1..=[`MAX_SCALE`].
    pub fn render_rgba(
        &self,
        chart: &Chart,
        width: u32,
        height: u32,
        scale: u32,
    ) -> Result<RgbaImage, ChartError> {
        check_size(width, height, scale)?;
        let t = Instant::now();
        let svg = self.render_svg(chart, width, height)?;
        let svg_ms = t.elapsed().as_secs_f64() * 1e3;
        let img = self.rasterize(&svg, width, height, scale);
        tracing::debug!(
            svg_ms,
            raster_ms = t.elapsed().as_secs_f64() * 1e3 - svg_ms,
            "charts: drawn"
        );
        img
    }

    /// The chart as a PNG of `width`x`height` pixels on white.
    ///
    /// # Errors
    /// As [`render_svg`](Self::render_svg); the encoder failing.
    pub fn render_png(
        &self,
        chart: &Chart,
        width: u32,
        height: u32,
    ) -> Result<Vec<u8>, ChartError> {
        self.render_png_scaled(chart, width, height, 1)
    }

    /// The chart as a PNG drawn at `scale` pixels per CSS pixel (show it at `width`
    /// CSS px): `width*scale`x`height*scale` pixels.
    ///
    /// # Errors
    /// As [`render_rgba`](Self::render_rgba); the encoder failing.
    pub fn render_png_scaled(
        &self,
        chart: &Chart,
        width: u32,
        height: u32,
        scale: u32,
    ) -> Result<Vec<u8>, ChartError> {
        let img = self.render_rgba(chart, width, height, scale)?;
        encode_png(&img)
    }

    /// The chart as a JPEG of `width`x`height` pixels on white; `quality` 1..=100
    /// (clamped; ~85 keeps text clean).
    ///
    /// # Errors
    /// As [`render_svg`](Self::render_svg); the encoder failing.
    pub fn render_jpeg(
        &self,
        chart: &Chart,
        width: u32,
        height: u32,
        quality: u8,
    ) -> Result<Vec<u8>, ChartError> {
        self.render_jpeg_scaled(chart, width, height, quality, 1)
    }

    /// [`render_jpeg`](Self::render_jpeg) at `scale` pixels per CSS pixel.
    ///
    /// # Errors
    /// As [`render_rgba`](Self::render_rgba); the encoder failing.
    pub fn render_jpeg_scaled(
        &self,
        chart: &Chart,
        width: u32,
        height: u32,
        quality: u8,
        scale: u32,
    ) -> Result<Vec<u8>, ChartError> {
        let img = self.render_rgba(chart, width, height, scale)?;
        encode_jpeg(&img, quality)
    }

    /// Rasterises an SVG (e.g. from [`render_svg`](Self::render_svg)) whose size is
    /// `width`x`height`, at `scale`, on white.
    ///
    /// # Errors
    /// A size out of range, or an SVG usvg cannot read.
    pub fn rasterize(
        &self,
        svg: &str,
        width: u32,
        height: u32,
        scale: u32,
    ) -> Result<RgbaImage, ChartError> {
        check_size(width, height, scale)?;
        let sans = self.sans_family.clone();
        let options = usvg::Options {
            font_family: self.sans_family.clone(),
            fontdb: Arc::clone(&self.fontdb),
            font_resolver: usvg::FontResolver {
                select_font: font_selector(sans),
                select_fallback: usvg::FontResolver::default_fallback_selector(),
            },
            ..usvg::Options::default()
        };
        let tree = usvg::Tree::from_str(svg, &options)
            .map_err(|e| ChartError::Svg(one_line(&e.to_string())))?;
        let (pw, ph) = (width * scale, height * scale);
        let size_err = || ChartError::Size {
            width,
            height,
            scale,
        };
        let mut pixmap = Pixmap::new(pw, ph).ok_or_else(size_err)?;
        pixmap.fill(Color::WHITE);
        // Fit the SVG's own size (ECharts' width/height) to the requested pixels.
        let ts = tree.size();
        let (sx, sy) = (pw as f32 / ts.width(), ph as f32 / ts.height());
        let transform = if sx.is_finite() && sy.is_finite() && sx > 0.0 && sy > 0.0 {
            usvg::Transform::from_scale(sx, sy)
        } else {
            usvg::Transform::from_scale(scale as f32, scale as f32)
        };
        resvg::render(&tree, transform, &mut pixmap.as_mut());
        // Opaque everywhere (white fill), so premultiplied RGBA equals straight RGBA.
        RgbaImage::from_raw(pw, ph, pixmap.take()).ok_or_else(size_err)
    }

    fn set_deadline(&self, d: Option<Instant>) {
        match self.deadline.lock() {
            Ok(mut g) => *g = d,
            Err(p) => *p.into_inner() = d,
        }
    }

    fn deadline_passed(&self) -> bool {
        let d = match self.deadline.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        };
        d.is_some_and(|d| Instant::now() > d)
    }
}

/// Runs the ECharts bytecode `build.rs` compiled (sets `globalThis.echarts`). False
/// when there is none, or QuickJS refuses it: the caller then parses the script.
fn load_echarts_bytecode(ctx: &rquickjs::Ctx<'_>) -> rquickjs::Result<bool> {
    if ECHARTS_BYTECODE.is_empty() {
        return Ok(false);
    }
    // SAFETY: `Module::load` trusts its bytes to be bytecode QuickJS wrote (malformed
    // bytecode is undefined behaviour, as in QuickJS's own JS_ReadObject). These bytes
    // are compiled into the binary: build.rs wrote them with `Module::write` from the
    // ECharts script, with the QuickJS of the same rquickjs version (one entry in
    // Cargo.lock), in native builds only (host = target). They are never read
    // from a file or the network at run time. A version mismatch is an error, handled.
    #[allow(unsafe_code)]
    let module = unsafe { rquickjs::Module::load(ctx.clone(), ECHARTS_BYTECODE) };
    let Ok(module) = module else {
        tracing::debug!("charts: ECharts bytecode refused, parsing the script");
        return Ok(false);
    };
    let (_, done) = module.eval()?;
    done.finish::<()>()?;
    Ok(true)
}

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

fn check_size(width: u32, height: u32, scale: u32) -> Result<(), ChartError> {
    let ok = |s: u32| (1..=MAX_SIDE).contains(&s);
    let pixels = u64::from(width) * u64::from(height) * u64::from(scale) * u64::from(scale);
    if ok(width) && ok(height) && (1..=MAX_SCALE).contains(&scale) && pixels <= MAX_PIXELS {
        Ok(())
    } else {
        Err(ChartError::Size {
            width,
            height,
            scale,
        })
    }
}

fn encode_png(img: &RgbaImage) -> Result<Vec<u8>, ChartError> {
    let mut buf = Vec::new();
    image::codecs::png::PngEncoder::new(&mut buf)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgba8,
        )
        .map_err(|e| ChartError::Encode {
            format: "PNG",
            reason: one_line(&e.to_string()),
        })?;
    Ok(buf)
}

fn encode_jpeg(img: &RgbaImage, quality: u8) -> Result<Vec<u8>, ChartError> {
    // JPEG has no alpha: the background is already white and opaque, drop the channel.
    let rgb: Vec<u8> = img
        .as_raw()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality.clamp(1, 100))
        .write_image(
            &rgb,
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| ChartError::Encode {
            format: "JPEG",
            reason: one_line(&e.to_string()),
        })?;
    Ok(buf)
}

/// System fonts (plus `NETDIGEST_FONT_DIR`), with generic families set; the sans
/// family's name.
/// The installed fonts, as the renderers draw text with them: loaded once, shared by
/// every renderer (cloning is cheap).
#[derive(Clone)]
pub struct Fonts {
    db: Arc<fontdb::Database>,
    /// The family `sans-serif` resolves to.
    sans: String,
}

impl std::fmt::Debug for Fonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fonts")
            .field("faces", &self.db.len())
            .field("sans", &self.sans)
            .finish()
    }
}

impl Fonts {
    /// The system's fonts (plus `NETDIGEST_FONT_DIR`'s).
    ///
    /// # Errors
    /// [`ChartError::NoFonts`] when no font is installed.
    pub fn load() -> Result<Self, ChartError> {
        let t = Instant::now();
        let (db, sans) = load_fonts()?;
        tracing::debug!(
            ms = t.elapsed().as_millis(),
            faces = db.len(),
            "charts: fonts loaded"
        );
        Ok(Fonts {
            db: Arc::new(db),
            sans,
        })
    }
}

fn load_fonts() -> Result<(fontdb::Database, String), ChartError> {
    let mut db = fontdb::Database::new();
    db.load_system_fonts();
    if let Some(dir) = std::env::var_os("NETDIGEST_FONT_DIR").filter(|d| !d.is_empty()) {
        db.load_fonts_dir(dir);
    }
    let first_family = db
        .faces()
        .find_map(|f| f.families.first().map(|(name, _)| name.clone()))
        .ok_or(ChartError::NoFonts)?;
    let pick = |db: &fontdb::Database, names: &[&str]| {
        names
            .iter()
            .find(|n| has_family(db, n))
            .map(|n| (*n).to_string())
    };
    let sans = pick(&db, SANS_FAMILIES).unwrap_or(first_family);
    let serif = pick(&db, SERIF_FAMILIES).unwrap_or_else(|| sans.clone());
    let mono = pick(&db, MONO_FAMILIES).unwrap_or_else(|| sans.clone());
    db.set_sans_serif_family(sans.clone());
    db.set_serif_family(serif);
    db.set_monospace_family(mono);
    db.set_cursive_family(sans.clone());
    db.set_fantasy_family(sans.clone());
    Ok((db, sans))
}

fn has_family(db: &fontdb::Database, name: &str) -> bool {
    db.faces()
        .any(|f| f.families.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
}

/// usvg's default font selection, except that families not installed fall back to
/// the sans font (usvg's falls back to serif), and that any installed face is used
/// rather than dropping the text when nothing matches.
fn font_selector(sans: String) -> usvg::FontSelectionFn<'static> {
    Box::new(move |font, db| {
        let mut families: Vec<fontdb::Family<'_>> = font
            .families()
            .iter()
            .map(|f| match f {
                usvg::FontFamily::Serif => fontdb::Family::Serif,
                usvg::FontFamily::SansSerif => fontdb::Family::SansSerif,
                usvg::FontFamily::Cursive => fontdb::Family::Cursive,
                usvg::FontFamily::Fantasy => fontdb::Family::Fantasy,
                usvg::FontFamily::Monospace => fontdb::Family::Monospace,
                usvg::FontFamily::Named(s) => fontdb::Family::Name(s),
            })
            .collect();
        families.push(fontdb::Family::Name(&sans));
        let stretch = match font.stretch() {
            usvg::FontStretch::UltraCondensed => fontdb::Stretch::UltraCondensed,
            usvg::FontStretch::ExtraCondensed => fontdb::Stretch::ExtraCondensed,
            usvg::FontStretch::Condensed => fontdb::Stretch::Condensed,
            usvg::FontStretch::SemiCondensed => fontdb::Stretch::SemiCondensed,
            usvg::FontStretch::Normal => fontdb::Stretch::Normal,
            usvg::FontStretch::SemiExpanded => fontdb::Stretch::SemiExpanded,
            usvg::FontStretch::Expanded => fontdb::Stretch::Expanded,
            usvg::FontStretch::ExtraExpanded => fontdb::Stretch::ExtraExpanded,
            usvg::FontStretch::UltraExpanded => fontdb::Stretch::UltraExpanded,
        };
        let style = match font.style() {
            usvg::FontStyle::Normal => fontdb::Style::Normal,
            usvg::FontStyle::Italic => fontdb::Style::Italic,
            usvg::FontStyle::Oblique => fontdb::Style::Oblique,
        };
        let query = fontdb::Query {
            families: &families,
            weight: fontdb::Weight(font.weight()),
            stretch,
            style,
        };
        db.query(&query).or_else(|| db.faces().next().map(|f| f.id))
    })
}

/// A caught JavaScript error as one line: message and the innermost stack frame.
fn caught_message(e: &CaughtError<'_>) -> String {
    match e {
        CaughtError::Exception(ex) => {
            let mut s = ex.message().unwrap_or_else(|| "exception".to_string());
            if let Some(frame) = ex
                .stack()
                .as_deref()
                .and_then(|st| st.lines().map(str::trim).find(|l| !l.is_empty()))
            {
                let _ = write!(s, " ({frame})");
            }
            one_line(&s)
        }
        other => one_line(&other.to_string()),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use charming::component::{Axis, Grid, Legend, Title};
    use charming::element::{AxisLabel, AxisType, Tooltip, Trigger};
    use charming::series::{Bar, Line, Pie};

    const W: u32 = 600;
    const H: u32 = 300;

    /// The renderer is not `Send`: each test (thread) makes its own.
    fn renderer() -> ChartRenderer {
        match ChartRenderer::new() {
            Ok(r) => r,
            Err(e) => panic!("ChartRenderer::new: {e}"),
        }
    }

    fn bar_chart(title: Option<&str>, labels: bool) -> Chart {
        let ips: Vec<String> = (1..=8).map(|i| format!("192.168.1.{}", i * 11)).collect();
        let values: Vec<i64> = vec![120, 80, 300, 45, 0, 999, 15, 230];
        let mut chart = Chart::new()
            .animation(false)
            .grid(Grid::new().left(60).right(20).bottom(90).top(50))
            .x_axis(
                Axis::new()
                    .type_(AxisType::Category)
                    .data(ips)
                    .axis_label(AxisLabel::new().rotate(30).show(labels)),
            )
            .y_axis(
                Axis::new()
                    .type_(AxisType::Value)
                    .axis_label(AxisLabel::new().show(labels)),
            )
            .series(Bar::new().name("requests").data(values));
        if let Some(t) = title {
            chart = chart.title(Title::new().text(t));
        }
        chart
    }

    fn line_time_chart() -> Chart {
        let start: i64 = 1_714_521_600_000; // 2024-05-01T00:00:00Z
        let data: Vec<Vec<i64>> = (0..96)
            .map(|i| vec![start + i * 300_000, (i * 37 % 50) + 10])
            .collect();
        Chart::new()
            .title(Title::new().text("Packets per 5 min"))
            .tooltip(Tooltip::new().trigger(Trigger::Axis))
            .grid(Grid::new().left(70).right(20).bottom(40).top(50))
            .x_axis(Axis::new().type_(AxisType::Time))
            .y_axis(Axis::new().type_(AxisType::Value))
            .series(Line::new().name("packets").data(data))
    }

    fn pie_chart() -> Chart {
        Chart::new()
            .title(Title::new().text("Protocol mix (packets)"))
            .legend(Legend::new().top("bottom"))
            .series(
                Pie::new()
                    .name("packets")
                    .radius(vec!["30%", "62%"])
                    .center(vec!["50%", "55%"])
                    .data(vec![
                        (5000, "TCP"),
                        (2300, "UDP"),
                        (400, "ICMP"),
                        (120, "ARP"),
                        (30, "Ωther ünicode"),
                    ]),
            )
    }

    fn decode(bytes: &[u8], format: image::ImageFormat) -> image::RgbImage {
        match image::load_from_memory_with_format(bytes, format) {
            Ok(img) => img.to_rgb8(),
            Err(e) => panic!("decoding {format:?}: {e}"),
        }
    }

    fn luma(p: &image::Rgb<u8>) -> f64 {
        0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
    }

    fn variance(img: &image::RgbImage) -> f64 {
        let n = f64::from(img.width() * img.height());
        let mean = img.pixels().map(luma).sum::<f64>() / n;
        img.pixels().map(|p| (luma(p) - mean).powi(2)).sum::<f64>() / n
    }

    /// Grey pixels clearly darker than the background in the rectangle: ECharts'
    /// default theme draws text in greys (#464646 titles, #6E7079 axis labels,
    /// #333 legend), series in saturated colours.
    fn dark_pixels(img: &image::RgbImage, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
        let mut n = 0;
        for y in y0..y1.min(img.height()) {
            for x in x0..x1.min(img.width()) {
                let p = img.get_pixel(x, y);
                let chroma =
                    p.0.iter().max().copied().unwrap_or(0) - p.0.iter().min().copied().unwrap_or(0);
                if luma(p) < 150.0 && chroma < 40 {
                    n += 1;
                }
            }
        }
        n
    }

    fn differing_pixels(
        a: &image::RgbImage,
        b: &image::RgbImage,
        x0: u32,
        y0: u32,
        x1: u32,
        y1: u32,
    ) -> usize {
        let mut n = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
                if (0..3).any(|c| p[c].abs_diff(q[c]) > 40) {
                    n += 1;
                }
            }
        }
        n
    }

    fn check_image(img: &image::RgbImage, w: u32, h: u32, what: &str) {
        assert_eq!((img.width(), img.height()), (w, h), "{what}: size");
        let v = variance(img);
        assert!(v > 100.0, "{what}: looks blank (luma variance {v:.1})");
    }

    #[test]
    fn bar_chart_png_and_jpeg_with_text() {
        let r = renderer();
        let chart = bar_chart(Some("Pings per source"), true);
        let png = r.render_png(&chart, W, H).unwrap_or_else(|e| panic!("{e}"));
        let jpeg = r
            .render_jpeg(&chart, W, H, 85)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(png.starts_with(b"\x89PNG"), "PNG signature");
        assert!(jpeg.starts_with(&[0xFF, 0xD8]), "JPEG signature");
        let p = decode(&png, image::ImageFormat::Png);
        let j = decode(&jpeg, image::ImageFormat::Jpeg);
        check_image(&p, W, H, "bar png");
        check_image(&j, W, H, "bar jpeg");
        // White background.
        assert_eq!(p.get_pixel(1, H - 2), &image::Rgb([255, 255, 255]));

        // The same chart without title and axis labels: the title band and the
        // label bands must differ (the text is drawn, not dropped for want of fonts).
        let bare = decode(
            &r.render_png(&bar_chart(None, false), W, H)
                .unwrap_or_else(|e| panic!("{e}")),
            image::ImageFormat::Png,
        );
        let title_diff = differing_pixels(&p, &bare, 0, 0, W, 40);
        let x_labels_diff = differing_pixels(&p, &bare, 0, H - 90, W, H);
        let y_labels_diff = differing_pixels(&p, &bare, 0, 50, 55, H - 90);
        assert!(
            title_diff > 200,
            "title text not drawn ({title_diff} px differ)"
        );
        assert!(
            x_labels_diff > 300,
            "x axis labels not drawn ({x_labels_diff} px differ)"
        );
        assert!(
            y_labels_diff > 50,
            "y axis labels not drawn ({y_labels_diff} px differ)"
        );
        assert!(dark_pixels(&p, 0, 0, W, 40) > 150, "no dark title text");
        assert!(
            dark_pixels(&bare, 0, 0, W, 40) < 5,
            "dark pixels without a title"
        );
        assert!(
            dark_pixels(&j, 0, 0, W, 40) > 150,
            "no dark title text in the JPEG"
        );

        // A sample to look at (/tmp/chart-sample.png); not part of the test.
        let _ = std::fs::write(std::env::temp_dir().join("chart-sample.png"), &png);
        eprintln!(
            "600x300 bar chart: PNG {} bytes, JPEG(q85) {} bytes",
            png.len(),
            jpeg.len()
        );
    }

    #[test]
    fn line_time_chart_renders() {
        let r = renderer();
        let chart = line_time_chart();
        let svg = r.render_svg(&chart, W, H).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            svg.starts_with("<svg"),
            "SVG: {}",
            &svg[..svg.len().min(80)]
        );
        assert!(svg.contains("Packets per 5 min"), "title in the SVG");
        assert!(svg.contains("<path"), "a line path in the SVG");
        let jpeg = r
            .render_jpeg(&chart, W, H, 85)
            .unwrap_or_else(|e| panic!("{e}"));
        let j = decode(&jpeg, image::ImageFormat::Jpeg);
        check_image(&j, W, H, "line jpeg");
        assert!(dark_pixels(&j, 0, 0, W, 40) > 150, "no title text");
        // Time-axis labels along the bottom.
        assert!(
            dark_pixels(&j, 60, H - 32, W, H) > 100,
            "no time axis labels"
        );
    }

    #[test]
    fn pie_chart_renders() {
        let r = renderer();
        let chart = pie_chart();
        let png = r.render_png(&chart, W, H).unwrap_or_else(|e| panic!("{e}"));
        let p = decode(&png, image::ImageFormat::Png);
        check_image(&p, W, H, "pie png");
        assert!(dark_pixels(&p, 0, 0, W, 40) > 150, "no title text");
        // Legend text along the bottom.
        assert!(dark_pixels(&p, 0, H - 30, W, H) > 100, "no legend text");
        let j = decode(
            &r.render_jpeg(&chart, W, H, 90)
                .unwrap_or_else(|e| panic!("{e}")),
            image::ImageFormat::Jpeg,
        );
        check_image(&j, W, H, "pie jpeg");
    }

    #[test]
    fn scaled_png_has_double_pixels() {
        let r = renderer();
        let png = r
            .render_png_scaled(&bar_chart(Some("Hi-DPI"), true), 300, 200, 2)
            .unwrap_or_else(|e| panic!("{e}"));
        let img = decode(&png, image::ImageFormat::Png);
        check_image(&img, 600, 400, "2x png");
    }

    #[test]
    fn odd_input_does_not_panic() {
        let r = renderer();
        // Empty series.
        let empty = Chart::new()
            .title(Title::new().text("Nothing tonight"))
            .x_axis(
                Axis::new()
                    .type_(AxisType::Category)
                    .data(Vec::<String>::new()),
            )
            .y_axis(Axis::new().type_(AxisType::Value))
            .series(Bar::new().name("none").data(Vec::<i64>::new()));
        let img = decode(
            &r.render_jpeg(&empty, W, H, 80)
                .unwrap_or_else(|e| panic!("{e}")),
            image::ImageFormat::Jpeg,
        );
        assert_eq!((img.width(), img.height()), (W, H));
        // No series at all.
        assert!(r.render_png(&Chart::new(), W, H).is_ok());
        let empty_pie = Chart::new().series(Pie::new().data(Vec::<(i64, &str)>::new()));
        assert!(r.render_png(&empty_pie, W, H).is_ok());
        // Very long and non-ASCII labels (Cyrillic, CJK, emoji, RTL), markup characters.
        let long = "x".repeat(5000);
        let labels = vec![
            long.clone(),
            "Wohnzimmer-Fernseher äöü ß".to_string(),
            "принтер".to_string(),
            "客厅路由器".to_string(),
            "📺 tv".to_string(),
            "שלום".to_string(),
            "<b>&amp;\"'</b>".to_string(),
        ];
        let chart = Chart::new()
            .title(Title::new().text(format!("{long} ünïcødé 标题 </script>")))
            .x_axis(Axis::new().type_(AxisType::Category).data(labels))
            .y_axis(Axis::new().type_(AxisType::Value))
            .series(Bar::new().data(vec![1, 2, 3, 4, 5, 6, 7]));
        let png = r.render_png(&chart, W, H).unwrap_or_else(|e| panic!("{e}"));
        check_image(&decode(&png, image::ImageFormat::Png), W, H, "odd labels");
        let intl = Chart::new()
            .title(Title::new().text("Geräte – устройства – 设备"))
            .x_axis(Axis::new().type_(AxisType::Category).data(vec![
                "Wohnzimmer äöü ß",
                "принтер",
                "客厅路由器",
                "📺 tv",
                "שלום",
            ]))
            .y_axis(Axis::new().type_(AxisType::Value))
            .series(Bar::new().data(vec![1, 2, 3, 4, 5]));
        let png = r.render_png(&intl, W, H).unwrap_or_else(|e| panic!("{e}"));
        let img = decode(&png, image::ImageFormat::Png);
        check_image(&img, W, H, "non-ASCII labels");
        assert!(dark_pixels(&img, 0, 0, W, 40) > 150, "no title text");
        // Sizes out of range are errors, not panics.
        assert!(matches!(
            r.render_png(&chart, 0, H),
            Err(ChartError::Size { .. })
        ));
        assert!(matches!(
            r.render_jpeg(&chart, W, MAX_SIDE + 1, 80),
            Err(ChartError::Size { .. })
        ));
        assert!(matches!(
            r.render_png_scaled(&chart, MAX_SIDE, MAX_SIDE, 2),
            Err(ChartError::Size { .. })
        ));
        assert!(matches!(
            r.render_png_scaled(&chart, W, H, 0),
            Err(ChartError::Size { .. })
        ));
        assert!(matches!(
            r.render_png_scaled(&chart, W, H, 9),
            Err(ChartError::Size { .. })
        ));
        // Quality out of range is clamped.
        assert!(r.render_jpeg(&chart, W, H, 0).is_ok());
        assert!(r.render_jpeg(&chart, W, H, 255).is_ok());
        // The renderer still works after all that.
        assert!(r.render_png(&pie_chart(), W, H).is_ok());
    }

    #[test]
    fn script_errors_are_one_line_errors() {
        let mut r = renderer();
        let bad = r.rasterize("<svg", W, H, 1);
        assert!(matches!(bad, Err(ChartError::Svg(_))), "{bad:?}");
        for option in [
            "null",
            "42",
            "[1, 2]",
            "{series: [{type: 'bar', data: [1]}], xAxis: {type: 'category'}, yAxis: {}, get grid() { throw new Error('boom\\nsecond line'); }}",
        ] {
            match r.render_option_svg(option, W, H) {
                Err(ChartError::Script(msg)) => {
                    assert!(!msg.contains('\n') && !msg.is_empty(), "{option}: {msg}")
                }
                other => panic!("{option}: expected a script error, got {other:?}"),
            }
        }
        // A runaway script is stopped.
        r.set_timeout(Duration::from_millis(200));
        let t = Instant::now();
        let res = r.render_option_svg("{get series() { for (;;) {} }}", W, H);
        assert!(matches!(res, Err(ChartError::Timeout(_))), "{res:?}");
        assert!(t.elapsed() < Duration::from_secs(10));
        r.set_timeout(RENDER_TIMEOUT);
        // Still usable afterwards.
        assert!(r.render_png(&pie_chart(), W, H).is_ok());
        assert_eq!(one_line("  a \n\n b\tc "), "a b c");
    }

    #[test]
    fn echarts_bytecode_is_embedded_and_defines_echarts() {
        // Native builds (as tests are) embed the bytecode build.rs compiled.
        assert!(!ECHARTS_BYTECODE.is_empty(), "build.rs wrote no bytecode");
        let rt = Runtime::new().unwrap_or_else(|e| panic!("{e}"));
        let ctx = Context::full(&rt).unwrap_or_else(|e| panic!("{e}"));
        ctx.with(|ctx| {
            ctx.eval::<(), _>(RUNTIME_JS)
                .unwrap_or_else(|e| panic!("{e}"));
            let loaded = load_echarts_bytecode(&ctx).unwrap_or_else(|e| panic!("{e}"));
            assert!(loaded, "QuickJS refused the bytecode");
            let ok: bool = ctx
                .eval("typeof echarts.init === 'function' && typeof echarts.use === 'function'")
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(ok, "the bytecode did not define echarts");
        });
    }

    #[test]
    fn fonts_map_sans_serif_to_an_installed_sans() {
        let r = renderer();
        // This host has fonts-dejavu-core (scripts/install-deps installs it).
        assert!(!r.sans_family().is_empty());
        if has_family(&r.fontdb, "DejaVu Sans") {
            assert_eq!(r.sans_family(), "DejaVu Sans");
        }
    }

    #[test]
    fn html_fragment_and_page() {
        let chart = bar_chart(Some("a </script><!-- b"), true);
        let frag = html_fragment("chart-pings\"><x", &chart, 380);
        assert!(frag.contains("id=\"chart-pings___x\""), "{frag}");
        assert_eq!(frag.matches("</script>").count(), 1, "only the closing tag");
        assert!(!frag.contains("<!--"));
        assert!(frag.contains("192.168.1.11"));
        let page = html_page("netdigest", &chart, W, H).unwrap_or_else(|e| panic!("{e}"));
        assert!(page.contains("echarts"));
        assert!(echarts_js().len() > 500_000);
    }

    /// Time per chart (run with `--release -- --ignored --nocapture timing`).
    #[test]
    #[ignore = "timing; run in release mode"]
    fn timing() {
        let t0 = Instant::now();
        let r = renderer();
        eprintln!("ChartRenderer::new: {:?}", t0.elapsed());
        let charts = [
            ("bar", bar_chart(Some("Pings per source"), true)),
            ("line", line_time_chart()),
            ("pie", pie_chart()),
        ];
        for (name, chart) in &charts {
            let _ = r.render_jpeg(chart, W, H, 85);
            let n = 10;
            let mut svg_t = Duration::ZERO;
            let mut raster_t = Duration::ZERO;
            let mut jpeg_t = Duration::ZERO;
            let mut png_t = Duration::ZERO;
            let (mut jpeg_len, mut png_len) = (0, 0);
            for _ in 0..n {
                let t = Instant::now();
                let svg = r.render_svg(chart, W, H).unwrap_or_else(|e| panic!("{e}"));
                svg_t += t.elapsed();
                let t = Instant::now();
                let img = r.rasterize(&svg, W, H, 1).unwrap_or_else(|e| panic!("{e}"));
                raster_t += t.elapsed();
                let t = Instant::now();
                jpeg_len = encode_jpeg(&img, 85)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .len();
                jpeg_t += t.elapsed();
                let t = Instant::now();
                png_len = encode_png(&img).unwrap_or_else(|e| panic!("{e}")).len();
                png_t += t.elapsed();
            }
            let per = |d: Duration| d / n;
            eprintln!(
                "{name}: svg {:?} + raster {:?} + jpeg {:?} = {:?} per JPEG chart; png encode {:?}; JPEG {jpeg_len} B, PNG {png_len} B",
                per(svg_t),
                per(raster_t),
                per(jpeg_t),
                per(svg_t + raster_t + jpeg_t),
                per(png_t)
            );
        }
    }
}
