//! Chart unit tests: rendering, odd input, fonts, bytecode, HTML fragments.

use std::time::{Duration, Instant};

use charming::Chart;
use rquickjs::{Context, Runtime};

use super::fonts::has_family;
use super::render::{ECHARTS_BYTECODE, RUNTIME_JS, encode_jpeg, encode_png, load_echarts_bytecode};
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
    if has_family(&r.fonts.db, "DejaVu Sans") {
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
    let page = html_page("net<digest>", &chart, W, H).unwrap_or_else(|e| panic!("{e}"));
    assert!(echarts_js().len() > 500_000);
    // Self-contained: ECharts inline, no script or resource from anywhere else.
    assert!(page.contains(&format!("<script>{}</script>", echarts_js())));
    let rest = page.replace(echarts_js(), "");
    assert!(
        !rest.contains("http://") && !rest.contains("https://"),
        "{rest}"
    );
    assert!(rest.contains("default-src 'none'") && rest.contains("<title>net_digest_</title>"));
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

#[test]
fn report_chart_defs_take_their_rows() {
    use crate::analyse::{PingRow, Talker};
    let pings: Vec<PingRow> = (0..5)
        .map(|i| PingRow {
            src: format!("10.0.0.{i}"),
            requests: 10,
            replies: 5,
            unanswered: 20,
        })
        .collect();
    let d = defs::pings(&pings, 3, &|a| a.to_string());
    let option = d.chart.to_string();
    assert_eq!(d.id(), "pings");
    assert!(
        option.contains("10.0.0.2") && !option.contains("10.0.0.3"),
        "only the first 3 sources: {option}"
    );
    assert!(option.contains("\"animation\": false"), "{option}");

    let talker = |addr: &str, tx_bytes| Talker {
        addr: addr.into(),
        tx_bytes,
        ..Talker::default()
    };
    let d = defs::talkers(
        &[talker("big", 3_000_000), talker("small", 1_000)],
        10,
        &|a| a.to_string(),
    );
    let option = d.chart.to_string();
    // The biggest talker last on the category axis: drawn at the top.
    assert!(option.find("small") < option.find("big"), "{option}");
    // The byte axis is labelled as the tables write sizes.
    let svg = renderer()
        .render_svg(&d.chart, W, H)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(svg.contains("3 MB"), "byte labels on the axis");
}

/// Every kind of chart the report and index.html draw, drawn by the embedded bundle
/// (which holds only the chart kinds and components src/chart/echarts/entry.js lists):
/// each shows its title, its legend and its marks, not an empty frame.
#[test]
fn the_bundle_draws_every_chart_the_report_defines() {
    use crate::analyse::{PingRow, ProtocolRow, Talker, TimeBin, Timeline};
    let r = renderer();
    let name = |a: &str| a.to_string();
    let pings = [PingRow {
        src: "10.0.0.1".into(),
        requests: 10,
        replies: 5,
        unanswered: 5,
    }];
    let timeline = Timeline {
        interval_s: 600,
        bins: (0..6)
            .map(|i| TimeBin {
                start: format!("2024-11-15T0{i}:00:00+01:00"),
                packets: 100 * (i + 1),
                ..TimeBin::default()
            })
            .collect(),
    };
    let protocols: Vec<ProtocolRow> = ["TCP", "UDP", "ICMP"]
        .iter()
        .map(|p| ProtocolRow {
            protocol: (*p).into(),
            packets: 10,
            bytes: 100,
        })
        .collect();
    let talkers = [Talker {
        addr: "10.0.0.9".into(),
        tx_bytes: 5_000,
        rx_bytes: 7_000,
        ..Talker::default()
    }];
    let points: Vec<(String, f64)> = (0..5)
        .map(|i| (format!("2024-11-15 0{i}:10:00"), 180.0))
        .collect();
    // Each chart, the same chart without rows, and how many marks (bars, slices,
    // lines, dots) the rows add at least.
    let charts = [
        (
            "pings",
            defs::pings(&pings, 10, &name).chart,
            defs::pings(&[], 10, &name).chart,
            2,
            &["Pings", "answered", "unanswered"][..],
        ),
        (
            "timeline",
            defs::timeline(&timeline).chart,
            defs::timeline(&Timeline::default()).chart,
            1,
            &["Packets per 10 min", "03:00"][..],
        ),
        (
            "protocols",
            defs::protocols(&protocols).chart,
            defs::protocols(&[]).chart,
            2,
            &["Protocol mix", "ICMP"][..],
        ),
        (
            "talkers",
            defs::talkers(&talkers, 10, &name).chart,
            defs::talkers(&[], 10, &name).chart,
            2,
            &["Top talkers", "received"][..],
        ),
        (
            "finding",
            defs::finding_points("bytes", &points),
            defs::finding_points("bytes", &[]),
            5,
            &["bytes", "03:00"][..],
        ),
    ];
    let paths = |what: &str, chart: &Chart| {
        let svg = r
            .render_svg(chart, W, H)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        (svg.matches("<path").count(), svg)
    };
    for (what, chart, empty, marks, texts) in charts {
        let (n, svg) = paths(what, &chart);
        for t in texts {
            assert!(svg.contains(t), "{what}: no {t:?} in the SVG");
        }
        let (n0, _) = paths(what, &empty);
        assert!(
            n >= n0 + marks,
            "{what}: {n} paths, {n0} without rows: the marks are missing"
        );
    }
}

/// Charts queued in two batches, out of order, come back at their places, each the
/// image a renderer of its own draws; a place nothing was queued for is an error, not
/// a wait.
#[test]
fn engines_answer_queued_charts_at_their_places() {
    let charts = [bar_chart(Some("a"), true), line_time_chart(), pie_chart()];
    let job = |i: usize| (i, (charts[i].to_string(), W, H, 85u8));
    let mut engines = Engines::start(2);
    engines.queue(vec![job(2)]);
    engines.queue(vec![job(0), job(1)]);
    let got = engines.drawing(3).wait();
    assert_eq!(got.len(), 3);
    let r = renderer();
    for (i, img) in got.iter().enumerate() {
        let want = r.render_jpeg(&charts[i], W, H, 85).expect("render");
        assert_eq!(img.as_ref().expect("an image"), &want, "chart {i}");
    }

    let mut engines = Engines::start_alongside(1);
    engines.queue(vec![job(1)]);
    let got = engines.drawing(2).wait();
    assert!(got[0].is_err(), "place 0 was never queued");
    assert!(got[1].is_ok());
}
