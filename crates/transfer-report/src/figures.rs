//! Figures: mean test accuracy against iterations with shaded 95% bands, as SVG and PNG.
//! Text uses the embedded DejaVu Sans, so PNGs render on machines without fonts.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::ReportError;
use crate::analysis::{Analysis, MeanCurve};

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (900, 600);

/// Colour-blind-safe palette (Okabe and Ito).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

fn register_embedded_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid font shipped with the crate; registration only fails on an
        // unparsable font, which the figure test would catch.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One figure: a title and the curves to draw, each with its legend label.
struct Figure<'a> {
    title: String,
    stem: String,
    lines: Vec<(String, &'a MeanCurve)>,
}

/// Writes one figure per protocol (a line per proportion) and one per proportion (a line
/// per protocol), each as SVG and PNG. Returns the files written.
pub fn write_figures(analysis: &Analysis, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    register_embedded_font();
    std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
    let mut figures = Vec::new();
    for protocol in &analysis.protocols {
        figures.push(Figure {
            title: format!("{protocol}: mean test accuracy (95% band) by proportion"),
            stem: format!("protocol-{protocol}"),
            lines: analysis
                .curves
                .iter()
                .filter(|c| &c.protocol == protocol)
                .map(|c| (format!("p = {}", c.proportion), c))
                .collect(),
        });
    }
    for &p in &analysis.proportions {
        figures.push(Figure {
            title: format!("p = {p}: mean test accuracy (95% band) by protocol"),
            stem: format!("proportion-{p}"),
            lines: analysis
                .curves
                .iter()
                .filter(|c| c.proportion == p)
                .map(|c| (c.protocol.clone(), c))
                .collect(),
        });
    }
    let mut written = Vec::new();
    for figure in &figures {
        let svg = dir.join(format!("{}.svg", figure.stem));
        draw(&figure_backend_svg(&svg), figure).map_err(|e| ReportError::figure(&svg, e))?;
        let png = dir.join(format!("{}.png", figure.stem));
        draw(&figure_backend_png(&png), figure).map_err(|e| ReportError::figure(&png, e))?;
        written.extend([svg, png]);
    }
    Ok(written)
}

fn figure_backend_svg(path: &Path) -> DrawingArea<SVGBackend<'_>, plotters::coord::Shift> {
    SVGBackend::new(path, SIZE).into_drawing_area()
}

fn figure_backend_png(path: &Path) -> DrawingArea<BitMapBackend<'_>, plotters::coord::Shift> {
    BitMapBackend::new(path, SIZE).into_drawing_area()
}

/// A y range that shows the differences: from just below the lowest band value after the
/// first tenth of training (early points are far lower and would flatten everything) to 1.
fn y_range(lines: &[(String, &MeanCurve)]) -> (f64, f64) {
    let mut low = f64::INFINITY;
    for (_, c) in lines {
        let last = c.iterations.last().copied().unwrap_or(0);
        for (i, it) in c.iterations.iter().enumerate() {
            if *it * 10 >= last || c.iterations.len() <= 2 {
                low = low.min(c.ci95_low[i].min(c.mean[i]));
            }
        }
    }
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    let low = ((low - 0.01) * 50.0).floor() / 50.0;
    (low.clamp(0.0, 0.98), 1.0)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    figure: &Figure<'_>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let max_it = figure
        .lines
        .iter()
        .filter_map(|(_, c)| c.iterations.last().copied())
        .max()
        .unwrap_or(1);
    let (y0, y1) = y_range(&figure.lines);
    let mut chart = ChartBuilder::on(root)
        .caption(&figure.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0u32..max_it, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("training iteration")
        .y_desc("test accuracy")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .light_line_style(RGBColor(246, 246, 246))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (label, curve)) in figure.lines.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let clamp = |v: f64| v.clamp(y0, y1);
        let band: Vec<(u32, f64)> = curve
            .iterations
            .iter()
            .zip(&curve.ci95_high)
            .map(|(&x, &y)| (x, clamp(y)))
            .chain(
                curve
                    .iterations
                    .iter()
                    .zip(&curve.ci95_low)
                    .rev()
                    .map(|(&x, &y)| (x, clamp(y))),
            )
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                band,
                colour.mix(0.18).filled(),
            )))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                curve
                    .iterations
                    .iter()
                    .zip(&curve.mean)
                    .map(|(&x, &y)| (x, clamp(y))),
                colour.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], colour.stroke_width(3))
            });
        // Sparse curves (short runs) also get a marker per point, so a single point shows.
        if curve.iterations.len() <= 25 {
            chart
                .draw_series(
                    curve
                        .iterations
                        .iter()
                        .zip(&curve.mean)
                        .map(|(&x, &y)| Circle::new((x, clamp(y)), 4, colour.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
