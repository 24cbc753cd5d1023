//! Drawing a chart: ECharts' server-side SVG renderer inside QuickJS, the SVG
//! rasterised by resvg, encoded as PNG or JPEG.
//!
//! The ECharts script is the parts of ECharts 5.5.1 the report uses
//! (`src/chart/echarts/`, ~550 kB); `build.rs` compiles it into QuickJS bytecode and
//! both go into the binary, nothing is read at run time. Loading it into QuickJS
//! still takes a while, so a [`ChartRenderer`] loads it once and is reused for all
//! charts of a report.
//!
//! Text is laid out with the fonts of [`Fonts`](super::Fonts) (loaded once, shared by
//! all renderers).
//!
//! Raster images have a white background (email dark modes would otherwise put
//! black axis text on a dark background; JPEG has no alpha anyway) and are
//! `width`x`height` pixels; the `*_scaled` variants draw the same layout at an
//! integer pixel density (2 = crisp on high-DPI screens, shown at `width` CSS px).
//!
//! Invariant: the one `unsafe` block loads the ECharts bytecode `build.rs` compiled
//! into the binary (see [`load_echarts_bytecode`]); nothing is loaded at run time.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use charming::Chart;
use image::{ImageEncoder, RgbaImage};
use resvg::tiny_skia::{Color, Pixmap};
use resvg::usvg;
use rquickjs::{CatchResultExt as _, CaughtError, Context, Runtime};

use super::fonts::{Fonts, font_selector};
use super::{ChartError, MAX_PIXELS, MAX_SCALE, MAX_SIDE, one_line};

/// The ECharts script embedded in the binary (see `build.rs`).
pub(super) static ECHARTS_JS: &str = include_str!(env!("NETDIGEST_ECHARTS_JS"));

/// The same script compiled by `build.rs` into QuickJS bytecode, as a module (empty
/// when the build could not make it: then the script is parsed at start).
pub(super) static ECHARTS_BYTECODE: &[u8] = include_bytes!(env!("NETDIGEST_ECHARTS_BYTECODE"));

/// A chart whose script runs longer than this is abandoned.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(60);
/// Memory the JavaScript engine may use (ECharts itself takes ~30 MB).
const JS_MEMORY_LIMIT: usize = 1 << 30;

/// Shims for what ECharts expects of a browser or Node (as charming's `runtime.js`
/// does for V8), and the function that renders one chart.
pub(super) const RUNTIME_JS: &str = r#"
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
    pub(super) fonts: Fonts,
}

impl std::fmt::Debug for ChartRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChartRenderer")
            .field("fonts", &self.fonts)
            .finish_non_exhaustive()
    }
}

impl ChartRenderer {
    /// Loads the fonts and starts QuickJS with ECharts (10-16 ms in release builds).
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
        let fonts = fonts()?;
        Ok(Self {
            context,
            runtime,
            deadline,
            timeout: RENDER_TIMEOUT,
            fonts,
        })
    }

    /// The font family ECharts' `sans-serif` text is drawn with (e.g. "DejaVu Sans").
    #[must_use]
    pub fn sans_family(&self) -> &str {
        &self.fonts.sans
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
    pub(super) fn render_option_svg(
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
        self.option_rgba(&chart.to_string(), width, height, scale)
    }

    /// [`render_jpeg`](Self::render_jpeg) for a chart's ECharts option, serialised
    /// (`Chart`'s Display) by a caller that already has it.
    ///
    /// # Errors
    /// As [`render_jpeg`](Self::render_jpeg).
    pub(super) fn option_jpeg(
        &self,
        option: &str,
        width: u32,
        height: u32,
        quality: u8,
    ) -> Result<Vec<u8>, ChartError> {
        encode_jpeg(&self.option_rgba(option, width, height, 1)?, quality)
    }

    /// [`render_rgba`](Self::render_rgba) for a serialised option.
    fn option_rgba(
        &self,
        option: &str,
        width: u32,
        height: u32,
        scale: u32,
    ) -> Result<RgbaImage, ChartError> {
        let t = Instant::now();
        // Before drawing: a bad scale is refused without running the script.
        check_size(width, height, scale)?;
        let svg = self.render_option_svg(option, width, height)?;
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
        let sans = self.fonts.sans.clone();
        let options = usvg::Options {
            font_family: self.fonts.sans.clone(),
            fontdb: Arc::clone(&self.fonts.db),
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
pub(super) fn load_echarts_bytecode(ctx: &rquickjs::Ctx<'_>) -> rquickjs::Result<bool> {
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

pub(super) fn encode_png(img: &RgbaImage) -> Result<Vec<u8>, ChartError> {
    let mut buf = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut buf);
    encode(
        encoder,
        "PNG",
        img,
        img.as_raw(),
        image::ExtendedColorType::Rgba8,
    )?;
    Ok(buf)
}

pub(super) fn encode_jpeg(img: &RgbaImage, quality: u8) -> Result<Vec<u8>, ChartError> {
    // JPEG has no alpha: the background is already white and opaque, drop the channel.
    let rgb: Vec<u8> = img
        .as_raw()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let mut buf = Vec::new();
    let encoder =
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality.clamp(1, 100));
    encode(encoder, "JPEG", img, &rgb, image::ExtendedColorType::Rgb8)?;
    Ok(buf)
}

/// Writes `pixels` (`img`'s size, in `color`'s layout) with `encoder`; an error names
/// the `format`.
fn encode(
    encoder: impl ImageEncoder,
    format: &'static str,
    img: &RgbaImage,
    pixels: &[u8],
    color: image::ExtendedColorType,
) -> Result<(), ChartError> {
    encoder
        .write_image(pixels, img.width(), img.height(), color)
        .map_err(|e| ChartError::Encode {
            format,
            reason: one_line(&e.to_string()),
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
