//! A sweep's figures, as SVG and PNG: final accuracy and the gain over raw against each axis
//! (a panel per proportion, a line per protocol, 95% intervals, the published values as
//! dashed reference lines), and for two axes heat maps of the mean and of the gain.

use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::ReportError;
use crate::analysis::report_value;
use crate::figures::{
    Area, Drawing, LEGEND_WIDTH, PALETTE, ProportionPoint, XScale, colour_of, draw_legend,
    draw_marks, write_drawing, y_range,
};
use crate::sweep::SweepAnalysis;

/// A value at an axis position: (position, value, its 95% interval if known, the runs
/// behind it).
pub(crate) type Point = (f64, f64, Option<(f64, f64)>, usize);

/// One line of a panel.
pub(crate) struct Line {
    pub(crate) label: String,
    pub(crate) colour: RGBColor,
    pub(crate) points: Vec<Point>,
    /// A published value, drawn as a dashed horizontal line.
    pub(crate) reference: Option<f64>,
}

/// The x axis of a line figure: the swept values at their positions (the value, or its
/// place for values that are not numbers).
pub(crate) struct XAxis {
    pub(crate) description: String,
    pub(crate) labels: Vec<String>,
    pub(crate) positions: Vec<f64>,
    pub(crate) log: bool,
}

impl XAxis {
    /// The label of the value nearest `x`.
    fn label_at(&self, x: f64) -> String {
        let distance = |p: f64| {
            if self.log {
                (p.ln() - x.ln()).abs()
            } else {
                (p - x).abs()
            }
        };
        self.positions
            .iter()
            .zip(&self.labels)
            .min_by(|a, b| distance(*a.0).total_cmp(&distance(*b.0)))
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
    }

    /// The range shown: every position, with a margin.
    fn range(&self) -> (f64, f64) {
        let (lo, hi) = self
            .positions
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &p| {
                (lo.min(p), hi.max(p))
            });
        if self.log {
            (lo / 1.4, hi * 1.4)
        } else {
            let pad = ((hi - lo) * 0.08).max(0.5);
            (lo - pad, hi + pad)
        }
    }

    /// Where series `i` of `n` is drawn at `x`: side by side, so intervals do not overlap.
    fn shifted(&self, x: f64, i: usize, n: usize) -> f64 {
        let offset = i as f64 - (n as f64 - 1.0) / 2.0;
        if self.log {
            x * (offset * 0.035).exp()
        } else {
            let (lo, hi) = self.range();
            x + offset * 0.012 * (hi - lo)
        }
    }
}

/// A plot axis, linear or logarithmic, whose ticks are exactly the given values.
#[derive(Clone)]
struct KeyedAxis {
    low: f64,
    high: f64,
    log: bool,
    keys: Vec<f64>,
}

impl Ranged for KeyedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let scale = |v: f64| if self.log { v.ln() } else { v };
        let t = (scale(*value) - scale(self.low)) / (scale(self.high) - scale(self.low));
        limit.0 + (f64::from(limit.1 - limit.0) * t).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.low..self.high
    }
}

pub(crate) enum SweepPlot {
    /// A value against an axis: a panel per proportion, a line per protocol.
    Lines {
        x: XAxis,
        panels: Vec<(String, Vec<Line>)>,
        y_label: &'static str,
        zero_line: bool,
    },
    /// A value over two axes (rows: the first, columns: the second): a panel per proportion,
    /// `[row][column]`, diverging colours around 0 for differences.
    Heat {
        rows: (String, Vec<String>),
        columns: (String, Vec<String>),
        panels: Vec<(String, Vec<Vec<Option<f64>>>)>,
        diverging: bool,
    },
    /// Where the spread comes from at one proportion: a row per protocol, a mark per value of
    /// the vary axis (the standard deviation with its 95% interval), the test set's error as
    /// a grey tick on each row.
    Spreads {
        rows: Vec<String>,
        series: Vec<SpreadSeries>,
        floors: Vec<Option<f64>>,
    },
}

/// One value of the vary axis across the protocols: `(sd, low, high)` per row.
pub(crate) struct SpreadSeries {
    pub(crate) label: String,
    pub(crate) colour: RGBColor,
    pub(crate) values: Vec<Option<(f64, f64, f64)>>,
}

/// Where a spread chart's standard-deviation axis ends: past the highest interval or floor.
pub(crate) fn spread_extent(series: &[SpreadSeries], floors: &[Option<f64>]) -> f64 {
    let high = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().map(|v| v.2))
        .chain(floors.iter().flatten().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    if high > 0.0 { high * 1.08 } else { 0.01 }
}

/// The grey of the test set's error.
pub(crate) const FLOOR_COLOUR: RGBColor = RGBColor(110, 110, 110);

/// One figure of a sweep, drawn to SVG and PNG and into `report.html`.
pub(crate) struct SweepFigure {
    pub(crate) title: String,
    pub(crate) stem: String,
    pub(crate) plot: SweepPlot,
}

/// A name fit for a file: the context's commas become underscores.
fn file_part(text: &str) -> String {
    text.replace(',', "_")
}

fn x_axis(analysis: &SweepAnalysis, k: usize) -> XAxis {
    let axis = &analysis.axes[k];
    let numbers = axis.values.clone();
    let (positions, log, description) = match numbers {
        Some(values) if axis.log_scale => (values, true, format!("{} (log scale)", axis.name)),
        Some(values) => (values, false, axis.name.clone()),
        None => (
            (0..axis.labels.len()).map(|i| i as f64).collect(),
            false,
            axis.name.clone(),
        ),
    };
    XAxis {
        description,
        labels: axis.labels.clone(),
        positions,
        log,
    }
}

/// Every figure of the sweep, in the order they are written.
pub(crate) fn figures(analysis: &SweepAnalysis) -> Vec<SweepFigure> {
    let mut figures = Vec::new();
    let protocols = &analysis.protocols;
    for (k, axis) in analysis.axes.iter().enumerate() {
        for (at, context) in analysis.contexts(k) {
            let suffix = if context.is_empty() {
                String::new()
            } else {
                format!("-{}", file_part(&context))
            };
            let where_ = if context.is_empty() {
                String::new()
            } else {
                format!(" at {context}")
            };
            let point = |i: usize| {
                let mut at = at.clone();
                at[k] = i;
                analysis.point_at(&at)
            };
            let positions = x_axis(analysis, k).positions;
            let panels = |gain: bool| -> Vec<(String, Vec<Line>)> {
                analysis
                    .proportions
                    .iter()
                    .map(|&proportion| {
                        let lines = protocols
                            .iter()
                            .filter(|protocol| !gain || protocol.as_str() != "raw")
                            .map(|protocol| {
                                let points = (0..axis.labels.len())
                                    .filter_map(|i| {
                                        let p = point(i)?;
                                        let position = positions[i];
                                        let runs = |protocol: &str| {
                                            analysis
                                                .cell(p, protocol, proportion)
                                                .map_or(0, |c| c.finals.len())
                                        };
                                        if gain {
                                            let g = analysis.gain(p, protocol, proportion)?;
                                            Some((
                                                position,
                                                g.difference,
                                                g.ci95_low.zip(g.ci95_high),
                                                runs(protocol).min(runs("raw")),
                                            ))
                                        } else {
                                            let c = analysis.cell(p, protocol, proportion)?;
                                            (!c.finals.is_empty()).then(|| {
                                                let ci = c.summary.interval();
                                                (position, c.summary.mean, ci, c.finals.len())
                                            })
                                        }
                                    })
                                    .collect();
                                let reference = analysis.published.then_some(()).and_then(|()| {
                                    let value = report_value(protocol, proportion)?;
                                    if gain {
                                        Some(value - report_value("raw", proportion)?)
                                    } else {
                                        Some(value)
                                    }
                                });
                                Line {
                                    label: protocol.clone(),
                                    colour: colour_of(protocols, protocol),
                                    points,
                                    reference,
                                }
                            })
                            .collect();
                        (format!("p = {proportion}"), lines)
                    })
                    .collect()
            };
            figures.push(SweepFigure {
                title: format!(
                    "Final test accuracy against {}{where_} (95% intervals)",
                    axis.name
                ),
                stem: format!("sweep-accuracy-by-{}{suffix}", axis.name),
                plot: SweepPlot::Lines {
                    panels: panels(false),
                    x: x_axis(analysis, k),
                    y_label: "final test accuracy",
                    zero_line: false,
                },
            });
            if protocols.iter().any(|p| p == "raw") && protocols.len() > 1 {
                figures.push(SweepFigure {
                    title: format!(
                        "Gain over raw against {}{where_}: final accuracy minus raw's (95% intervals)",
                        axis.name
                    ),
                    stem: format!("sweep-gain-by-{}{suffix}", axis.name),
                    plot: SweepPlot::Lines {
                        x: x_axis(analysis, k),
                        panels: panels(true),
                        y_label: "difference in final test accuracy",
                        zero_line: true,
                    },
                });
            }
        }
    }
    if let [rows, columns] = analysis.axes.as_slice() {
        let grid = |protocol: &str, proportion: f64, gain: bool| -> Vec<Vec<Option<f64>>> {
            (0..rows.labels.len())
                .map(|r| {
                    (0..columns.labels.len())
                        .map(|c| {
                            let p = analysis.point_at(&[r, c])?;
                            if gain {
                                analysis.gain(p, protocol, proportion).map(|g| g.difference)
                            } else {
                                analysis
                                    .cell(p, protocol, proportion)
                                    .filter(|c| !c.finals.is_empty())
                                    .map(|c| c.summary.mean)
                            }
                        })
                        .collect()
                })
                .collect()
        };
        for protocol in protocols {
            for gain in [false, true] {
                if gain && (protocol == "raw" || !protocols.iter().any(|p| p == "raw")) {
                    continue;
                }
                let panels = analysis
                    .proportions
                    .iter()
                    .map(|&p| (format!("p = {p}"), grid(protocol, p, gain)))
                    .collect();
                let (what, stem) = if gain {
                    ("gain over raw", "gain")
                } else {
                    ("mean final test accuracy", "mean")
                };
                figures.push(SweepFigure {
                    title: format!("{protocol}: {what} over {} and {}", rows.name, columns.name),
                    stem: format!("sweep-heatmap-{stem}-{protocol}"),
                    plot: SweepPlot::Heat {
                        rows: (rows.name.clone(), rows.labels.clone()),
                        columns: (columns.name.clone(), columns.labels.clone()),
                        panels,
                        diverging: gain,
                    },
                });
            }
        }
    }
    figures.extend(spread_figures(analysis));
    figures
}

/// A figure of where the spread comes from per context and proportion of a vary sweep.
fn spread_figures(analysis: &SweepAnalysis) -> Vec<SweepFigure> {
    analysis
        .spread_groups()
        .into_iter()
        .map(|(context, proportion, spreads)| {
            let labels: Vec<String> = spreads
                .first()
                .map(|s| s.values.iter().map(|(l, _)| l.clone()).collect())
                .unwrap_or_default();
            let series = labels
                .iter()
                .enumerate()
                .map(|(j, label)| SpreadSeries {
                    label: label.clone(),
                    colour: PALETTE[j % PALETTE.len()],
                    values: spreads
                        .iter()
                        .map(|s| {
                            s.values
                                .get(j)
                                .and_then(|(_, v)| v.map(|v| (v.sd, v.sd_low, v.sd_high)))
                        })
                        .collect(),
                })
                .collect();
            let (suffix, where_) = if context.is_empty() {
                (String::new(), String::new())
            } else {
                (format!("-{}", file_part(&context)), format!(", {context}"))
            };
            SweepFigure {
                title: format!(
                    "Spread by source at p = {proportion}{where_} (sd, 95% intervals; grey: test set's error)"
                ),
                stem: format!("sweep-spread-p{proportion}{suffix}"),
                plot: SweepPlot::Spreads {
                    rows: spreads.iter().map(|s| s.protocol.clone()).collect(),
                    series,
                    floors: spreads.iter().map(|s| s.test_se).collect(),
                },
            }
        })
        .collect()
}

/// The stems of the sweep's figures, in the order they are written.
pub(crate) fn stems(analysis: &SweepAnalysis) -> Vec<String> {
    figures(analysis).into_iter().map(|f| f.stem).collect()
}

/// Writes every figure of the sweep into `dir`, SVG and PNG; returns the files written.
pub(crate) fn write(analysis: &SweepAnalysis, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    for figure in &figures(analysis) {
        written.extend(write_drawing(dir, figure)?);
    }
    Ok(written)
}

impl Drawing for SweepFigure {
    fn stem(&self) -> &str {
        &self.stem
    }

    fn size(&self) -> (u32, u32) {
        let panels = match &self.plot {
            SweepPlot::Lines { panels, .. } => panels.len(),
            SweepPlot::Heat { panels, .. } => panels.len(),
            SweepPlot::Spreads { .. } => 2,
        } as u32;
        (LEGEND_WIDTH + 430 * panels.max(1), 560)
    }

    fn draw_on<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(&self.title, ("sans-serif", 22))
            .map_err(|e| e.to_string())?;
        let width = root.dim_in_pixel().0;
        let (plots, legend) = root.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
        match &self.plot {
            SweepPlot::Lines {
                x,
                panels,
                y_label,
                zero_line,
            } => {
                let areas = plots.split_evenly((1, panels.len().max(1)));
                for (area, (title, lines)) in areas.iter().zip(panels) {
                    draw_lines(area, title, x, lines, y_label, *zero_line)?;
                }
                let mut entries: Vec<(String, RGBColor, bool)> = panels
                    .first()
                    .map(|(_, lines)| {
                        lines
                            .iter()
                            .map(|l| (l.label.clone(), l.colour, false))
                            .collect()
                    })
                    .unwrap_or_default();
                if panels
                    .iter()
                    .flat_map(|(_, l)| l)
                    .any(|l| l.reference.is_some())
                {
                    entries.push((
                        "dashed: published (2016)".into(),
                        RGBColor(90, 90, 90),
                        false,
                    ));
                }
                draw_legend(&legend, &entries)?;
            }
            SweepPlot::Heat {
                rows,
                columns,
                panels,
                diverging,
            } => {
                let areas = plots.split_evenly((1, panels.len().max(1)));
                for (area, (title, grid)) in areas.iter().zip(panels) {
                    draw_heat(area, title, rows, columns, grid, *diverging)?;
                }
                let style = ("sans-serif", 15).into_font().color(&BLACK);
                let note = if *diverging {
                    "orange: above raw; blue: below"
                } else {
                    "darker: higher accuracy"
                };
                legend
                    .draw(&Text::new(note, (6, 70), style.clone()))
                    .map_err(|e| e.to_string())?;
                legend
                    .draw(&Text::new("(each panel its own scale)", (6, 94), style))
                    .map_err(|e| e.to_string())?;
            }
            SweepPlot::Spreads {
                rows,
                series,
                floors,
            } => {
                draw_spreads(&plots, rows, series, floors)?;
                let mut entries: Vec<(String, RGBColor, bool)> = series
                    .iter()
                    .map(|s| (s.label.clone(), s.colour, false))
                    .collect();
                entries.push(("test set's error".into(), FLOOR_COLOUR, false));
                draw_legend(&legend, &entries)?;
            }
        }
        root.present().map_err(|e| e.to_string())
    }
}

/// One panel of a line figure.
fn draw_lines<DB: DrawingBackend>(
    area: &Area<DB>,
    title: &str,
    x: &XAxis,
    lines: &[Line],
    y_label: &str,
    zero_line: bool,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let values = lines.iter().flat_map(|l| {
        l.points
            .iter()
            .flat_map(|(_, v, ci, _)| [Some(*v), ci.map(|c| c.0), ci.map(|c| c.1)])
            .flatten()
            .chain(l.reference)
    });
    let (y0, y1) = y_range(values, zero_line);
    let (x0, x1) = x.range();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(64)
        .build_cartesian_2d(
            KeyedAxis {
                low: x0,
                high: x1,
                log: x.log,
                keys: x.positions.clone(),
            },
            y0..y1,
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x.description.as_str())
        .y_desc(y_label)
        .y_labels(8)
        .x_label_formatter(&|v| x.label_at(*v))
        .y_label_formatter(&|v| crate::figures::tick(v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(246, 246, 246))
        .draw()
        .map_err(|e| e.to_string())?;
    if zero_line {
        chart
            .draw_series(LineSeries::new(
                vec![(x0, 0.0), (x1, 0.0)],
                RGBColor(120, 120, 120).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
    }
    let n = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let colour = line.colour;
        if let Some(reference) = line.reference.filter(|v| (y0..=y1).contains(v)) {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x0, reference), (x1, reference)],
                    8,
                    6,
                    colour.mix(0.8).stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
        }
        let points: Vec<ProportionPoint> = line
            .points
            .iter()
            .map(|&(p, v, interval, _)| (x.shifted(p, i, n), v, interval))
            .collect();
        let scale = if x.log { XScale::Log } else { XScale::Linear };
        draw_marks(&mut chart, &points, colour, (y0, y1), scale)?;
    }
    Ok(())
}

/// Where the spread comes from: a row per protocol, each series' standard deviation as a dot
/// with its interval, offset within the row, and the test set's error as a grey tick.
fn draw_spreads<DB: DrawingBackend>(
    area: &Area<DB>,
    rows: &[String],
    series: &[SpreadSeries],
    floors: &[Option<f64>],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let x1 = spread_extent(series, floors);
    let n = rows.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..x1, -0.5..n - 0.5)
        .map_err(|e| e.to_string())?;
    let name = |y: f64| {
        let i = y.round();
        if (y - i).abs() < 1e-6 && i >= 0.0 {
            rows.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc("standard deviation of the final test accuracy")
        .y_labels(rows.len() * 2 + 1)
        .y_label_formatter(&|y| name(*y))
        .x_label_formatter(&|v| crate::figures::tick(v))
        .disable_y_mesh()
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(246, 246, 246))
        .draw()
        .map_err(|e| e.to_string())?;
    let m = series.len().max(1) as f64;
    for (r, floor) in floors.iter().enumerate() {
        if let Some(se) = floor {
            let y = r as f64;
            chart
                .draw_series(LineSeries::new(
                    vec![(*se, y - 0.45), (*se, y + 0.45)],
                    FLOOR_COLOUR.stroke_width(3),
                ))
                .map_err(|e| e.to_string())?;
        }
    }
    for (j, s) in series.iter().enumerate() {
        // The first series on top of its row.
        let offset = ((m - 1.0) / 2.0 - j as f64) * (0.7 / m);
        for (r, value) in s.values.iter().enumerate() {
            let Some((sd, low, high)) = value else {
                continue;
            };
            let y = r as f64 + offset;
            chart
                .draw_series(LineSeries::new(
                    vec![(*low, y), (high.min(x1), y)],
                    s.colour.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?;
            chart
                .draw_series(std::iter::once(Circle::new((*sd, y), 5, s.colour.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The colour of `value` on a panel whose values span `low..=high`.
pub(crate) fn heat_colour(value: f64, low: f64, high: f64, diverging: bool) -> RGBColor {
    let mix = |a: RGBColor, b: RGBColor, t: f64| {
        let t = t.clamp(0.0, 1.0);
        let channel = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t) as u8;
        RGBColor(channel(a.0, b.0), channel(a.1, b.1), channel(a.2, b.2))
    };
    let white = RGBColor(255, 255, 255);
    if diverging {
        let scale = low.abs().max(high.abs()).max(1e-12);
        if value >= 0.0 {
            mix(white, PALETTE[1], value / scale)
        } else {
            mix(white, PALETTE[0], -value / scale)
        }
    } else {
        let t = if high > low {
            (value - low) / (high - low)
        } else {
            1.0
        };
        mix(RGBColor(222, 235, 247), RGBColor(8, 69, 148), t)
    }
}

/// One panel of a heat map: a cell per (row, column) value, its number written in it.
fn draw_heat<DB: DrawingBackend>(
    area: &Area<DB>,
    title: &str,
    rows: &(String, Vec<String>),
    columns: &(String, Vec<String>),
    grid: &[Vec<Option<f64>>],
    diverging: bool,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let (nr, nc) = (rows.1.len(), columns.1.len());
    let positions = |n: usize| (0..n).map(|i| i as f64).collect::<Vec<f64>>();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(
            KeyedAxis {
                low: -0.5,
                high: nc as f64 - 0.5,
                log: false,
                keys: positions(nc),
            },
            KeyedAxis {
                low: -0.5,
                high: nr as f64 - 0.5,
                log: false,
                keys: positions(nr),
            },
        )
        .map_err(|e| e.to_string())?;
    let label = |labels: &[String], v: f64| {
        let i = v.round();
        if i >= 0.0 && (i as usize) < labels.len() && (v - i).abs() < 1e-6 {
            labels[i as usize].clone()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(columns.0.as_str())
        .y_desc(rows.0.as_str())
        .x_label_formatter(&|v| label(&columns.1, *v))
        .y_label_formatter(&|v| label(&rows.1, *v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(|e| e.to_string())?;
    let values = grid.iter().flatten().flatten().copied();
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let font = ("sans-serif", 15)
        .into_text_style(area)
        .pos(Pos::new(HPos::Center, VPos::Center));
    for (r, row) in grid.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            let (x, y) = (c as f64, r as f64);
            let Some(value) = value else {
                chart
                    .draw_series(std::iter::once(Text::new(
                        "no runs",
                        (x, y),
                        font.clone().color(&RGBColor(120, 120, 120)),
                    )))
                    .map_err(|e| e.to_string())?;
                continue;
            };
            let fill = heat_colour(*value, low, high, diverging);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                    fill.filled(),
                )))
                .map_err(|e| e.to_string())?;
            let dark = u32::from(fill.0) + u32::from(fill.1) + u32::from(fill.2) < 330;
            let text = if diverging {
                format!("{value:+.4}")
            } else {
                format!("{value:.4}")
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (x, y),
                    font.clone().color(if dark { &WHITE } else { &BLACK }),
                )))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
