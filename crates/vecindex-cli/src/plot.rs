//! The bench charts, drawn with plotters to SVG and PNG: recall against QPS (log QPS over
//! recall, one line per run, like ann-benchmarks) and, with `--sizes`, the cost curve (build
//! time and QPS against the number of items).

use crate::report::ResultRow;
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

const SIZE: (u32, u32) = (960, 640);

/// Registers a system TrueType font once; text is drawn only when one was found
/// (`VECINDEX_FONT` names a .ttf; else common Debian locations are tried).
fn have_font() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let candidates = std::env::var("VECINDEX_FONT").into_iter().chain([
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".to_string(),
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf".to_string(),
            "/usr/share/fonts/truetype/freefont/FreeSans.ttf".to_string(),
        ]);
        for c in candidates {
            if let Ok(bytes) = std::fs::read(&c) {
                let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, leaked).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// Writes `recall_qps.svg` and `recall_qps.png` into `out`.
pub fn recall_qps(out: &Path, title: &str, k: usize, rows: &[ResultRow]) -> Result<()> {
    // With several sizes (`--sizes`), one line per run and size.
    let sized = rows.iter().any(|r| r.n_items != rows[0].n_items);
    let mut series: Series = BTreeMap::new();
    for r in rows {
        if r.qps.is_finite() && r.qps > 0.0 {
            let name = if sized {
                format!("{} (n={})", r.label, r.n_items)
            } else {
                r.label.clone()
            };
            series.entry(name).or_default().push((r.recall, r.qps));
        }
    }
    for pts in series.values_mut() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let text = have_font();
    let svg_path = out.join("recall_qps.svg");
    let svg = SVGBackend::new(&svg_path, SIZE).into_drawing_area();
    draw(svg, title, k, &series, text)?;
    let png_path = out.join("recall_qps.png");
    let png = BitMapBackend::new(&png_path, SIZE).into_drawing_area();
    draw(png, title, k, &series, text)?;
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    k: usize,
    series: &Series,
    text: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the chart: {e}");
    root.fill(&WHITE).map_err(err)?;
    let qps: Vec<f64> = series.values().flatten().map(|p| p.1).collect();
    let lo = qps.iter().copied().fold(f64::MAX, f64::min).max(1e-3);
    let hi = qps.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let mut builder = ChartBuilder::on(&root);
    builder
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70);
    if text {
        builder.caption(title, ("sans-serif", 22));
    }
    let mut chart = builder
        .build_cartesian_2d(0f64..1.0f64, (lo / 1.5..hi * 1.5).log_scale())
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc(format!("recall@{k}"))
            .y_desc("queries per second (log)")
            .y_label_formatter(&|v| format!("{v:.0}"));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(err)?;
    draw_lines(&mut chart, series, SeriesLabelPosition::LowerLeft, text)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Writes `cost_curve.svg` and `cost_curve.png` into `out`: build seconds (left) and queries
/// per second (right) against the number of items, both log-log, one line per run (and sweep
/// value).
pub fn cost_curve(out: &Path, title: &str, rows: &[ResultRow]) -> Result<()> {
    let mut build: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut qps: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows {
        let name = if r.sweep.is_empty() {
            r.label.clone()
        } else {
            format!("{} {}", r.label, r.sweep)
        };
        let n = r.n_items as f64;
        let b = build.entry(r.label.clone()).or_default();
        if r.build_s > 0.0 && !b.iter().any(|p| p.0 == n) {
            b.push((n, r.build_s));
        }
        if r.qps.is_finite() && r.qps > 0.0 {
            qps.entry(name).or_default().push((n, r.qps));
        }
    }
    for pts in build.values_mut().chain(qps.values_mut()) {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let text = have_font();
    let svg_path = out.join("cost_curve.svg");
    let svg = SVGBackend::new(&svg_path, (SIZE.0 * 2, SIZE.1)).into_drawing_area();
    draw_cost(svg, title, &build, &qps, text)?;
    let png_path = out.join("cost_curve.png");
    let png = BitMapBackend::new(&png_path, (SIZE.0 * 2, SIZE.1)).into_drawing_area();
    draw_cost(png, title, &build, &qps, text)?;
    Ok(())
}

type Series = BTreeMap<String, Vec<(f64, f64)>>;

fn draw_cost<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    build: &Series,
    qps: &Series,
    text: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the chart: {e}");
    root.fill(&WHITE).map_err(err)?;
    let root = if text {
        root.titled(title, ("sans-serif", 22)).map_err(err)?
    } else {
        root
    };
    let (left, right) = root.split_horizontally(SIZE.0);
    // Build time rises with n and QPS falls: each legend goes where its lines are not.
    let upper_left = SeriesLabelPosition::UpperLeft;
    log_log_panel(&left, build, "build seconds (log)", upper_left, text)?;
    let upper_right = SeriesLabelPosition::UpperRight;
    log_log_panel(&right, qps, "queries per second (log)", upper_right, text)?;
    root.present().map_err(err)?;
    Ok(())
}

/// One log-log panel: x = items, y as named, a line and dots per series.
fn log_log_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    series: &Series,
    y_desc: &str,
    legend: SeriesLabelPosition,
    text: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the chart: {e}");
    let pts: Vec<(f64, f64)> = series.values().flatten().copied().collect();
    let range = |f: fn(&(f64, f64)) -> f64| {
        let lo = pts.iter().map(f).fold(f64::MAX, f64::min).max(1e-6);
        let hi = pts.iter().map(f).fold(0.0, f64::max).max(lo * 10.0);
        (lo / 1.5)..(hi * 1.5)
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70);
    let mut chart = builder
        .build_cartesian_2d(range(|p| p.0).log_scale(), range(|p| p.1).log_scale())
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("items indexed (log)")
            .y_desc(y_desc)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| {
                if *v >= 100.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.3}")
                }
            });
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(err)?;
    draw_lines(&mut chart, series, legend, text)
}

/// One line with dots per series, in the palette's colours, and (with text) the legend.
fn draw_lines<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    series: &Series,
    legend: SeriesLabelPosition,
    text: bool,
) -> Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing the chart: {e}");
    for (i, (label, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let s = chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(err)?;
        if text {
            s.label(label.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(err)?;
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(legend)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}
