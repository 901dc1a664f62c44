//! Figures, as SVG and PNG: final accuracy and gain over raw against the proportion of
//! training data, and mean test accuracy (95% bands) and training loss against iterations.
//! Values outside an axis are clipped, never moved onto it; legends sit beside the plots.
//! Text uses the embedded DejaVu Sans, so PNGs render on machines without fonts.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use transfer_records::write_atomic;

use crate::ReportError;
use crate::analysis::{Analysis, MeanCurve};

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Colour-blind-safe palette (Okabe and Ito).
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

pub(crate) fn register_embedded_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid font shipped with the crate; registration only fails on an
        // unparsable font, which the figure test would catch.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Width of the legend column at a figure's right, outside every plot.
pub(crate) const LEGEND_WIDTH: u32 = 250;

/// What a figure plots.
pub(crate) enum Plot<'a> {
    /// Mean test accuracy with 95% bands (left) and mean training loss (right) against
    /// iterations, a line per curve: its label, colour and curve.
    Curves(Vec<(String, RGBColor, &'a MeanCurve)>),
    /// A value against the proportion of training data, a line per series with 95% intervals,
    /// published values marked.
    ByProportion {
        series: Vec<Series>,
        y_label: &'static str,
        /// Draw the line y = 0 (differences).
        zero_line: bool,
    },
}

/// A value at a proportion: (proportion, value, its 95% interval if known).
pub(crate) type ProportionPoint = (f64, f64, Option<(f64, f64)>);

/// One line of a by-proportion figure.
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) colour: RGBColor,
    pub(crate) points: Vec<ProportionPoint>,
    /// (proportion, published value).
    pub(crate) published: Vec<(f64, f64)>,
}

/// One figure: a title, its file stem and what it plots.
pub(crate) struct Figure<'a> {
    pub(crate) title: String,
    pub(crate) stem: String,
    pub(crate) plot: Plot<'a>,
}

/// The colour of `item` by its place in `items` (the study's protocols, or its proportions):
/// the same in every figure, whatever else a figure leaves out.
pub(crate) fn colour_of<T: PartialEq>(items: &[T], item: &T) -> RGBColor {
    let place = items.iter().position(|x| x == item).unwrap_or(0);
    PALETTE[place % PALETTE.len()]
}

/// A label with the number of diverged runs of its cell, where there are any.
fn with_diverged(analysis: &Analysis, curve: &MeanCurve, label: String) -> String {
    match analysis.cell(&curve.protocol, curve.proportion) {
        Some(cell) if cell.diverged > 0 => format!(
            "{label} ({} of {} diverged, left out)",
            cell.diverged,
            cell.diverged + cell.finals.len()
        ),
        _ => label,
    }
}

/// The study's figures: final accuracy against the proportion of training data, each
/// protocol's gain over raw, one figure of curves per protocol and per proportion, and the
/// pretraining's curves; each as SVG and PNG. Returns the files written.
pub fn write_figures(analysis: &Analysis, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    for figure in &figures(analysis) {
        written.extend(write_drawing(dir, figure)?);
    }
    Ok(written)
}

/// Something drawn as a figure: its file stem, its size in pixels, and how it is drawn on
/// any backend.
pub(crate) trait Drawing {
    /// The file name without extension.
    fn stem(&self) -> &str;
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws it on `root`.
    fn draw_on<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), String>
    where
        DB::ErrorType: 'static;
}

impl Drawing for Figure<'_> {
    fn stem(&self) -> &str {
        &self.stem
    }

    fn size(&self) -> (u32, u32) {
        match self.plot {
            Plot::Curves(_) => (1400, 560),
            Plot::ByProportion { .. } => (1050, 620),
        }
    }

    fn draw_on<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        draw(root, self)
    }
}

/// Writes `drawing` into `dir` as `STEM.svg` and `STEM.png`, atomically; returns both paths.
pub(crate) fn write_drawing(
    dir: &Path,
    drawing: &impl Drawing,
) -> Result<Vec<PathBuf>, ReportError> {
    register_embedded_font();
    std::fs::create_dir_all(dir).map_err(|e| ReportError::io(dir, e))?;
    let svg = dir.join(format!("{}.svg", drawing.stem()));
    let mut text = String::new();
    drawing
        .draw_on(&SVGBackend::with_string(&mut text, drawing.size()).into_drawing_area())
        .map_err(|e| ReportError::figure(&svg, e))?;
    write_atomic(&svg, text.as_bytes()).map_err(|e| ReportError::io(&svg, e))?;
    let png = dir.join(format!("{}.png", drawing.stem()));
    write_png(&png, drawing)?;
    Ok(vec![svg, png])
}

/// The study's figures, in the order they are written.
pub(crate) fn figures(analysis: &Analysis) -> Vec<Figure<'_>> {
    let mut figures: Vec<Figure<'_>> = vec![Figure {
        title: "Final test accuracy by proportion of target training data (95% intervals)".into(),
        stem: "accuracy-vs-proportion".into(),
        plot: Plot::ByProportion {
            series: analysis
                .protocols
                .iter()
                .map(|protocol| Series {
                    label: protocol.clone(),
                    colour: colour_of(&analysis.protocols, protocol),
                    points: analysis
                        .cells
                        .iter()
                        .filter(|c| &c.protocol == protocol && !c.finals.is_empty())
                        .map(|c| {
                            let interval = c.summary.interval();
                            (c.proportion, c.summary.mean, interval)
                        })
                        .collect(),
                    published: analysis
                        .cells
                        .iter()
                        .filter(|c| &c.protocol == protocol)
                        .filter_map(|c| c.report_value.map(|v| (c.proportion, v)))
                        .collect(),
                })
                .collect(),
            y_label: "final test accuracy",
            zero_line: false,
        },
    }];
    if !analysis.gains.is_empty() {
        let mut series: Vec<Series> = Vec::new();
        for gain in &analysis.gains {
            if series.last().is_none_or(|s| s.label != gain.protocol) {
                series.push(Series {
                    label: gain.protocol.clone(),
                    colour: colour_of(&analysis.protocols, &gain.protocol),
                    points: Vec::new(),
                    published: Vec::new(),
                });
            }
            if let Some(s) = series.last_mut() {
                let interval = gain.ci95_low.zip(gain.ci95_high);
                s.points.push((gain.proportion, gain.difference, interval));
                s.published
                    .extend(gain.published.map(|v| (gain.proportion, v)));
            }
        }
        figures.push(Figure {
            title: "Gain over raw training: final accuracy minus raw's (95% intervals)".into(),
            stem: "gain-over-raw".into(),
            plot: Plot::ByProportion {
                series,
                y_label: "difference in final test accuracy",
                zero_line: true,
            },
        });
    }
    for protocol in &analysis.protocols {
        figures.push(Figure {
            title: format!("{protocol}: mean test accuracy (95% band) and training loss"),
            stem: format!("protocol-{protocol}"),
            plot: Plot::Curves(
                analysis
                    .curves
                    .iter()
                    .filter(|c| &c.protocol == protocol)
                    .map(|c| {
                        (
                            with_diverged(analysis, c, format!("p = {}", c.proportion)),
                            colour_of(&analysis.proportions, &c.proportion),
                            c,
                        )
                    })
                    .collect(),
            ),
        });
    }
    for &p in &analysis.proportions {
        figures.push(Figure {
            title: format!("p = {p}: mean test accuracy (95% band) and training loss"),
            stem: format!("proportion-{p}"),
            plot: Plot::Curves(
                analysis
                    .curves
                    .iter()
                    .filter(|c| c.proportion == p)
                    .map(|c| {
                        (
                            with_diverged(analysis, c, c.protocol.clone()),
                            colour_of(&analysis.protocols, &c.protocol),
                            c,
                        )
                    })
                    .collect(),
            ),
        });
    }
    if let Some(curve) = &analysis.pretraining_curve {
        figures.push(Figure {
            title: "Pretraining on the source digits: source test accuracy and training loss"
                .into(),
            stem: "pretraining".into(),
            plot: Plot::Curves(vec![("mean of the pretrainings".into(), PALETTE[0], curve)]),
        });
    }
    figures
}

/// Draws `figure` as a PNG at `path`: into a new hidden file beside it (the encoder names
/// the format by the extension), then renamed into place, so a link at `path` is replaced,
/// never followed.
fn write_png(path: &Path, figure: &impl Drawing) -> Result<(), ReportError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_file_name(format!(
        ".{}.{}.{}.tmp.png",
        figure.stem(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let drawn = figure
        .draw_on(&BitMapBackend::new(&tmp, figure.size()).into_drawing_area())
        .map_err(|e| ReportError::figure(path, e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| ReportError::io(path, e)));
    if drawn.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drawn
}

/// A y range that shows the differences: from just below the lowest band value after the
/// first tenth of training (early points are far lower and would flatten everything) to 1.
/// The parts of a polyline whose y lies in `[low, high]`, cut where it crosses a bound
/// (linear between points: callers pass coordinates in which the axes are linear).
pub(crate) fn clip_polyline(points: &[(f64, f64)], low: f64, high: f64) -> Vec<Vec<(f64, f64)>> {
    let inside = |y: f64| (low..=high).contains(&y);
    let cross = |a: (f64, f64), b: (f64, f64), y: f64| {
        let t = (y - a.1) / (b.1 - a.1);
        (a.0 + t * (b.0 - a.0), y)
    };
    let mut parts: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for (i, &point) in points.iter().enumerate() {
        if i > 0 {
            let previous = points[i - 1];
            // Entering, leaving or passing through the band between the two points.
            let mut crossings: Vec<(f64, f64)> = [low, high]
                .into_iter()
                .filter(|&y| (previous.1 - y) * (point.1 - y) < 0.0)
                .map(|y| cross(previous, point, y))
                .collect();
            crossings.sort_by(|a, b| {
                let (da, db) = ((a.0 - previous.0).abs(), (b.0 - previous.0).abs());
                da.total_cmp(&db)
            });
            for c in crossings {
                current.push(c);
                if !inside(previous.1) && current.len() == 1 {
                    continue;
                }
                parts.push(std::mem::take(&mut current));
                if inside(point.1) {
                    current.push(c);
                }
            }
        }
        if inside(point.1) {
            current.push(point);
        } else if !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
    }
    parts.push(current);
    parts.retain(|p| !p.is_empty());
    parts
}

/// A polygon cut to the horizontal band `y` in `[low, high]` (Sutherland-Hodgman, one bound at
/// a time; linear coordinates as for [`clip_polyline`]).
fn clip_polygon(points: &[(f64, f64)], low: f64, high: f64) -> Vec<(f64, f64)> {
    let mut polygon = points.to_vec();
    for (bound, keep_above) in [(low, true), (high, false)] {
        let inside = |p: &(f64, f64)| {
            if keep_above {
                p.1 >= bound
            } else {
                p.1 <= bound
            }
        };
        let input = std::mem::take(&mut polygon);
        for (i, point) in input.iter().enumerate() {
            let previous = input[(i + input.len() - 1) % input.len()];
            if inside(point) {
                if !inside(&previous) {
                    let t = (bound - previous.1) / (point.1 - previous.1);
                    polygon.push((previous.0 + t * (point.0 - previous.0), bound));
                }
                polygon.push(*point);
            } else if inside(&previous) {
                let t = (bound - previous.1) / (point.1 - previous.1);
                polygon.push((previous.0 + t * (point.0 - previous.0), bound));
            }
        }
    }
    polygon
}

pub(crate) type Area<DB> = DrawingArea<DB, plotters::coord::Shift>;

/// A tick label: at most three significant digits, no trailing zeros (`0.005`, `0.7`, `100`).
pub(crate) fn tick(value: &f64) -> String {
    if *value == 0.0 || !value.is_finite() {
        return "0".into();
    }
    let decimals = (2 - value.abs().log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

fn draw<DB: DrawingBackend>(root: &Area<DB>, figure: &Figure<'_>) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(&figure.title, ("sans-serif", 22))
        .map_err(|e| e.to_string())?;
    let width = root.dim_in_pixel().0;
    let (plots, legend) = root.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
    let entries: Vec<(String, RGBColor, bool)> = match &figure.plot {
        Plot::Curves(lines) => {
            let (left, right) = plots.split_horizontally(plots.dim_in_pixel().0 / 2);
            draw_accuracy_curves(&left, lines)?;
            draw_loss_curves(&right, lines)?;
            lines
                .iter()
                .map(|(label, colour, _)| (label.clone(), *colour, false))
                .collect()
        }
        Plot::ByProportion {
            series,
            y_label,
            zero_line,
        } => {
            draw_by_proportion(&plots, series, y_label, *zero_line)?;
            let mut entries: Vec<(String, RGBColor, bool)> = series
                .iter()
                .map(|s| (s.label.clone(), s.colour, false))
                .collect();
            if series.iter().any(|s| !s.published.is_empty()) {
                entries.push(("published (2016 report)".into(), RGBColor(90, 90, 90), true));
            }
            entries
        }
    };
    draw_legend(&legend, &entries)?;
    root.present().map_err(|e| e.to_string())
}

/// The legend, in its own column: a line (or a hollow square for published values) and a
/// label per entry.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &Area<DB>,
    entries: &[(String, RGBColor, bool)],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let style = ("sans-serif", 15).into_font().color(&BLACK);
    for (i, (label, colour, hollow)) in entries.iter().enumerate() {
        let y = 70 + 26 * i as i32;
        if *hollow {
            area.draw(&Rectangle::new(
                [(14, y - 5), (24, y + 5)],
                colour.stroke_width(2),
            ))
        } else {
            area.draw(&PathElement::new(
                vec![(6, y), (32, y)],
                colour.stroke_width(3),
            ))
        }
        .map_err(|e| e.to_string())?;
        area.draw(&Text::new(label.clone(), (40, y - 8), style.clone()))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A chart's grid, axes and their descriptions, with at most six readable ticks an axis.
pub(crate) fn draw_mesh<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
) -> Result<(), String>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(6)
        .y_labels(8)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(246, 246, 246))
        .draw()
        .map_err(|e| e.to_string())
}

/// The x range of iteration curves: every evaluation point, on a log axis (early training,
/// where protocols differ most, gets as much room as late training).
fn iteration_range(lines: &[(String, RGBColor, &MeanCurve)]) -> (f64, f64) {
    let its = lines
        .iter()
        .flat_map(|(_, _, c)| c.iterations.iter().copied());
    let (first, last) = its.fold((u32::MAX, 1), |(lo, hi), it| (lo.min(it), hi.max(it)));
    let first = f64::from(first.min(last).max(1));
    (first / 1.2, f64::from(last) * 1.2)
}

fn draw_accuracy_curves<DB: DrawingBackend>(
    area: &Area<DB>,
    lines: &[(String, RGBColor, &MeanCurve)],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = iteration_range(lines);
    // Every mean is shown; bands are clipped at the top (1) and bottom.
    let lowest = lines
        .iter()
        .flat_map(|(_, _, c)| c.mean.iter().copied())
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::min);
    let (y0, y1) = (((lowest - 0.02) * 20.0).floor().max(0.0) / 20.0, 1.0);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
        .map_err(|e| e.to_string())?;
    draw_mesh(
        &mut chart,
        "training iteration (log scale)",
        "test accuracy",
    )?;
    for &(_, colour, curve) in lines {
        let xs: Vec<f64> = curve
            .iterations
            .iter()
            .map(|&it| f64::from(it).ln())
            .collect();
        let band: Vec<(f64, f64)> = xs
            .iter()
            .zip(&curve.ci95_high)
            .chain(xs.iter().zip(&curve.ci95_low).rev())
            .map(|(&x, &y)| (x, y))
            .collect();
        let band = clip_polygon(&band, y0, y1);
        if band.len() >= 3 {
            let band: Vec<(f64, f64)> = band.into_iter().map(|(x, y)| (x.exp(), y)).collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    colour.mix(0.18).filled(),
                )))
                .map_err(|e| e.to_string())?;
        }
        let mean: Vec<(f64, f64)> = xs.iter().copied().zip(curve.mean.iter().copied()).collect();
        for part in clip_polyline(&mean, y0, y1) {
            let part: Vec<(f64, f64)> = part.into_iter().map(|(x, y)| (x.exp(), y)).collect();
            chart
                .draw_series(LineSeries::new(part, colour.stroke_width(2)))
                .map_err(|e| e.to_string())?;
        }
        // Sparse curves (short runs) also get a marker per point, so a single point shows.
        if curve.iterations.len() <= 25 {
            chart
                .draw_series(
                    curve
                        .iterations
                        .iter()
                        .zip(&curve.mean)
                        .filter(|(_, y)| (y0..=y1).contains(*y))
                        .map(|(&x, &y)| Circle::new((f64::from(x), y), 4, colour.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn draw_loss_curves<DB: DrawingBackend>(
    area: &Area<DB>,
    lines: &[(String, RGBColor, &MeanCurve)],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = iteration_range(lines);
    let losses = lines
        .iter()
        .flat_map(|(_, _, c)| c.loss.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0);
    let (low, high) = losses.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (y0, y1) = if low.is_finite() {
        (low / 1.5, high * 1.5)
    } else {
        (0.01, 10.0)
    };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
        .map_err(|e| e.to_string())?;
    draw_mesh(
        &mut chart,
        "training iteration (log scale)",
        "mean training loss (log scale)",
    )?;
    for &(_, colour, curve) in lines {
        let points: Vec<(f64, f64)> = curve
            .iterations
            .iter()
            .zip(&curve.loss)
            .filter(|(_, l)| l.is_finite() && **l > 0.0)
            .map(|(&it, &l)| (f64::from(it), l))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(|e| e.to_string())?;
        if points.len() <= 25 {
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 4, colour.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn draw_by_proportion<DB: DrawingBackend>(
    area: &Area<DB>,
    series: &[Series],
    y_label: &str,
    zero_line: bool,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let proportions = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (p0, p1) = proportions.fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
        (lo.min(p), hi.max(p))
    });
    let (x0, x1) = if p0.is_finite() {
        (p0 / 1.8, p1 * 1.8)
    } else {
        (0.001, 1.0)
    };
    let values = series.iter().flat_map(|s| {
        s.points
            .iter()
            .flat_map(|(_, v, ci)| [Some(*v), ci.map(|c| c.0), ci.map(|c| c.1)])
            .flatten()
            .chain(s.published.iter().map(|p| p.1))
    });
    let (y0, y1) = y_range(values, zero_line);
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .x_label_area_size(46)
        .y_label_area_size(72)
        .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
        .map_err(|e| e.to_string())?;
    draw_mesh(
        &mut chart,
        "proportion of the target training set (log scale)",
        y_label,
    )?;
    if zero_line {
        chart
            .draw_series(LineSeries::new(
                vec![(x0, 0.0), (x1, 0.0)],
                RGBColor(120, 120, 120).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
    }
    let n = series.len() as f64;
    for (i, s) in series.iter().enumerate() {
        let colour = s.colour;
        // Series side by side around each proportion, so intervals do not overlap.
        let shift = ((i as f64 - (n - 1.0) / 2.0) * 0.045).exp();
        let points: Vec<ProportionPoint> = s
            .points
            .iter()
            .map(|&(p, v, interval)| (p * shift, v, interval))
            .collect();
        draw_marks(&mut chart, &points, colour, (y0, y1), XScale::Log)?;
        chart
            .draw_series(
                s.published
                    .iter()
                    .filter(|(_, v)| (y0..=y1).contains(v))
                    .map(|&(p, v)| {
                        let at = (p * shift, v);
                        EmptyElement::at(at)
                            + Rectangle::new([(-6, -6), (6, 6)], colour.stroke_width(2))
                    }),
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// How an x axis maps values to positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XScale {
    /// Positions proportional to the values.
    Linear,
    /// Positions proportional to the values' logarithms.
    Log,
}

impl XScale {
    /// `x` where the axis is linear.
    fn linear(self, x: f64) -> f64 {
        match self {
            XScale::Linear => x,
            XScale::Log => x.ln(),
        }
    }

    /// The value at linear position `x`.
    fn value(self, x: f64) -> f64 {
        match self {
            XScale::Linear => x,
            XScale::Log => x.exp(),
        }
    }
}

/// A series drawn at `points` (x where they are drawn): its line, cut where it leaves
/// `y0..=y1` (where the x axis is linear, by `scale`), then each point's interval, clipped to
/// the plot, and a dot.
/// The y range of a chart of `values`: their span with a margin, taking in 0 where a zero
/// line is drawn; otherwise the values are accuracies, which stop at 0 and 1, and an interval
/// reaching past either is clipped there.
pub(crate) fn y_range(values: impl Iterator<Item = f64>, zero_line: bool) -> (f64, f64) {
    let (mut low, mut high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if zero_line {
        (low, high) = (low.min(0.0), high.max(0.0));
    }
    if !low.is_finite() {
        (low, high) = (0.0, 1.0);
    }
    let pad = ((high - low) * 0.06).max(1e-3);
    if zero_line {
        (low - pad, high + pad)
    } else {
        ((low - pad).max(0.0), (high + pad).min(1.0))
    }
}

pub(crate) fn draw_marks<DB, X>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, RangedCoordf64>>,
    points: &[ProportionPoint],
    colour: RGBColor,
    (y0, y1): (f64, f64),
    scale: XScale,
) -> Result<(), String>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
{
    let line: Vec<(f64, f64)> = points
        .iter()
        .map(|&(x, v, _)| (scale.linear(x), v))
        .collect();
    for part in clip_polyline(&line, y0, y1) {
        let part: Vec<(f64, f64)> = part.into_iter().map(|(x, y)| (scale.value(x), y)).collect();
        chart
            .draw_series(LineSeries::new(part, colour.stroke_width(2)))
            .map_err(|e| e.to_string())?;
    }
    for &(x, v, interval) in points {
        if let Some((lo, hi)) = interval {
            let (lo, hi) = (lo.max(y0), hi.min(y1));
            if lo <= hi {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, lo), (x, hi)],
                        colour.stroke_width(2),
                    )))
                    .map_err(|e| e.to_string())?;
            }
        }
        if (y0..=y1).contains(&v) {
            chart
                .draw_series(std::iter::once(Circle::new((x, v), 5, colour.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Gain;

    #[test]
    fn lines_are_cut_where_they_leave_the_band_not_moved_onto_it() {
        let parts = clip_polyline(&[(0.0, 0.5), (1.0, 1.5), (2.0, 0.5)], 0.0, 1.0);
        assert_eq!(
            parts,
            vec![vec![(0.0, 0.5), (0.5, 1.0)], vec![(1.5, 1.0), (2.0, 0.5)]]
        );
        let through = clip_polyline(&[(0.0, -1.0), (2.0, 3.0)], 0.0, 1.0);
        assert_eq!(through, vec![vec![(0.5, 0.0), (1.0, 1.0)]]);
        assert!(clip_polyline(&[(0.0, 2.0), (1.0, 3.0)], 0.0, 1.0).is_empty());
        let inside = [(0.0, 0.2), (1.0, 0.4)];
        assert_eq!(clip_polyline(&inside, 0.0, 1.0), vec![inside.to_vec()]);
    }

    #[test]
    fn ticks_read_as_numbers() {
        let ticks: Vec<String> = [0.005, 0.7000000000000001, 100.0, 0.35, 1.0, 0.0]
            .iter()
            .map(tick)
            .collect();
        assert_eq!(ticks, ["0.005", "0.7", "100", "0.35", "1", "0"]);
    }

    #[test]
    fn bands_are_cut_at_the_bounds() {
        let square = [(0.0, -1.0), (1.0, -1.0), (1.0, 2.0), (0.0, 2.0)];
        let clipped = clip_polygon(&square, 0.0, 1.0);
        assert!(
            clipped.iter().all(|p| (0.0..=1.0).contains(&p.1)),
            "{clipped:?}"
        );
        assert_eq!(clipped.len(), 4, "{clipped:?}");
    }

    fn curve(protocol: &str, proportion: f64) -> MeanCurve {
        MeanCurve {
            protocol: protocol.into(),
            proportion,
            iterations: vec![10, 20],
            mean: vec![0.8, 0.9],
            ci95_low: vec![0.7, 0.8],
            ci95_high: vec![0.9, 1.0],
            loss: vec![0.5, 0.2],
        }
    }

    #[test]
    fn a_protocol_and_a_proportion_keep_their_colour_in_every_figure() {
        let protocols = ["raw", "frozen", "finetune", "dropout"];
        let proportions = [0.01, 1.0];
        // Raw has no gain over itself, and frozen has no curve at p = 1 (every run diverged):
        // neither may shift the others' colours.
        let curves: Vec<MeanCurve> = protocols
            .iter()
            .flat_map(|&protocol| proportions.iter().map(move |&p| curve(protocol, p)))
            .filter(|c| !(c.protocol == "frozen" && c.proportion == 1.0))
            .collect();
        let gains = protocols[1..]
            .iter()
            .flat_map(|&protocol| {
                proportions.iter().map(move |&proportion| Gain {
                    protocol: protocol.into(),
                    proportion,
                    difference: 0.01,
                    paired: true,
                    ci95_low: Some(0.0),
                    ci95_high: Some(0.02),
                    published: None,
                    bootstrap: None,
                })
            })
            .collect();
        let analysis = Analysis {
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            proportions: proportions.to_vec(),
            cells: Vec::new(),
            curves,
            pretraining: None,
            pretraining_curve: None,
            gains,
            pretrained: vec!["frozen".into(), "finetune".into()],
            shared_subsets: true,
            published: false,
            claims: Vec::new(),
            completeness: crate::Completeness {
                planned_runs: None,
                runs: 0,
                complete: true,
                short_cells: Vec::new(),
            },
            equivalence_margin: crate::DEFAULT_EQUIVALENCE_MARGIN,
            planned_repetitions: None,
            seed: 0,
            randomness: crate::Randomness::of(
                &transfer_records::TrainingSettings::paper("flex"),
                None,
            ),
        };
        let mut checked = 0;
        for figure in figures(&analysis) {
            let lines: Vec<(String, RGBColor)> = match &figure.plot {
                Plot::Curves(lines) => lines.iter().map(|(l, c, _)| (l.clone(), *c)).collect(),
                Plot::ByProportion { series, .. } => {
                    series.iter().map(|s| (s.label.clone(), s.colour)).collect()
                }
            };
            for (label, colour) in lines {
                let expected = match protocols.iter().position(|&p| p == label) {
                    Some(i) => PALETTE[i],
                    None => {
                        let p: f64 = label.trim_start_matches("p = ").parse().unwrap();
                        PALETTE[proportions.iter().position(|&q| q == p).unwrap()]
                    }
                };
                assert_eq!(colour, expected, "{label} in {}", figure.stem);
                checked += 1;
            }
        }
        // 4 + 3 series by proportion, 7 lines per protocol, 7 per proportion.
        assert_eq!(checked, 4 + 3 + 7 + 7);
    }
}
