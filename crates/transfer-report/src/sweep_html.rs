//! A sweep's `report.html`: what the sweep holds, every point's table, each axis's tested
//! steps and every figure, self-contained like a study's page (inline SVG whose points show
//! their values on hover, series shown or hidden by their legend, no request of any kind).

use std::fmt::Write;

use crate::ReportContext;
use crate::html::{
    ACCURACY, Axes, DIFFERENCE, Line, SCRIPT, STYLE, chart, escape, hex, inline_code, nice_ticks,
};
use crate::sweep::{
    Column, SPREAD_METHOD, SweepAnalysis, completeness, effect_table, point_table, spread_tables,
};
use crate::sweep_figures::{
    FLOOR_COLOUR, SpreadSeries, SweepFigure, SweepPlot, figures, heat_colour, spread_extent,
};

/// The whole page.
pub fn sweep_html(analysis: &SweepAnalysis, ctx: &ReportContext) -> String {
    let mut out =
        String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let axes: Vec<String> = analysis
        .axes
        .iter()
        .map(|a| format!("{} = {}", a.name, a.labels.join(", ")))
        .collect();
    let axes = escape(&axes.join("; "));
    let _ = writeln!(out, "<title>Sweep: {axes}</title>");
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(out, "<h1>Sweep: {axes}</h1>");
    if !ctx.label.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", inline_code(&ctx.label));
    }
    match completeness(analysis, str::to_owned) {
        (sentence, None) => {
            let _ = writeln!(out, "<p>{}</p>", escape(&sentence));
        }
        (sentence, Some(which)) => {
            let _ = writeln!(
                out,
                "<p class=\"notice\"><strong>{}</strong> {}</p>",
                escape(&sentence),
                escape(&which)
            );
        }
    }
    if !ctx.command.is_empty() {
        let _ = writeln!(out, "<p>Command: <code>{}</code></p>", escape(&ctx.command));
    }
    out.push_str("<h2>Mean final test accuracy at every point</h2>\n<p>Mean of the repetitions ± the half-width of its 95% t-interval (n runs where fewer than planned).</p>\n");
    let (columns, rows) = point_table(analysis).with_names(str::to_owned);
    html_table(&mut out, &columns, rows);
    for effect in &analysis.effects {
        let table = effect_table(analysis, effect);
        let _ = writeln!(
            out,
            "<h2>Effect of {}</h2>\n<p>{}</p>\n<p>{}</p>",
            escape(&effect.axis),
            escape(&table.method),
            escape(&table.findings)
        );
        html_table(&mut out, &table.columns, table.rows);
    }
    let spreads = spread_tables(analysis);
    if !spreads.is_empty() {
        let _ = writeln!(
            out,
            "<h2>Where the spread comes from</h2>\n<p>{}</p>",
            escape(SPREAD_METHOD)
        );
        for table in spreads {
            let _ = writeln!(out, "<h3>{}</h3>", escape(&table.title));
            html_table(&mut out, &table.columns, table.rows);
            out.push_str("<ul>\n");
            for finding in &table.findings {
                let _ = writeln!(out, "<li>{}</li>", escape(finding));
            }
            out.push_str("</ul>\n");
        }
    }
    let _ = writeln!(
        out,
        "<h2>Figures</h2>\n<p>Hover over a point or a cell for its values; tick a series to show or hide it.</p>"
    );
    for (i, figure) in figures(analysis).iter().enumerate() {
        figure_html(&mut out, &format!("figure-{i}"), figure);
    }
    let _ = writeln!(
        out,
        "<p>Every point is an ordinary study: its own directory holds its records and its own report.html.</p>"
    );
    let _ = writeln!(out, "<script>{SCRIPT}</script>\n</body>\n</html>");
    out
}

/// An HTML table: the header from `columns`, then `rows`.
fn html_table(out: &mut String, columns: &[Column], rows: impl IntoIterator<Item = Vec<String>>) {
    out.push_str("<table>\n<tr>");
    for (name, _) in columns {
        let _ = write!(out, "<th>{}</th>", escape(name));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(&cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn figure_html(out: &mut String, id: &str, figure: &SweepFigure) {
    let _ = writeln!(
        out,
        "<div class=\"figure\" id=\"{id}\">\n<h3>{}</h3>\n<div class=\"panels\">",
        escape(&figure.title)
    );
    match &figure.plot {
        SweepPlot::Lines {
            x,
            panels,
            y_label,
            zero_line,
        } => {
            let axes = Axes {
                x_log: x.log,
                x_label: &x.description,
                x_ticks: x.positions.iter().copied().zip(x.labels.clone()).collect(),
                y_label,
                zero_line: *zero_line,
                y_limits: if *zero_line { DIFFERENCE } else { ACCURACY },
            };
            for (title, lines) in panels {
                let lines: Vec<Line> = lines
                    .iter()
                    .map(|l| Line {
                        label: l.label.clone(),
                        colour: l.colour,
                        points: l.points.clone(),
                        published: Vec::new(),
                        reference: l.reference,
                        band: false,
                    })
                    .collect();
                let _ = writeln!(out, "<div><h4>{}</h4>", escape(title));
                chart(out, &lines, &axes);
                out.push_str("</div>\n");
            }
            out.push_str("</div>\n<div class=\"legend\">");
            let legend = panels
                .first()
                .map(|(_, lines)| lines.as_slice())
                .unwrap_or_default();
            for (k, line) in legend.iter().enumerate() {
                let _ = write!(
                    out,
                    "<label><input type=\"checkbox\" checked data-figure=\"{id}\" data-series=\"{k}\"><span style=\"color:{}\">■</span> {}</label>",
                    hex(line.colour),
                    escape(&line.label)
                );
            }
            if legend.iter().any(|l| l.reference.is_some()) {
                out.push_str(" dashed: published (2016)");
            }
        }
        SweepPlot::Heat {
            rows,
            columns,
            panels,
            diverging,
        } => {
            for (title, grid) in panels {
                heat_table(out, title, rows, columns, grid, *diverging);
            }
            out.push_str("</div>\n<div class=\"legend\">");
            out.push_str(if *diverging {
                "orange: above raw; blue: below (each panel its own scale)"
            } else {
                "darker: higher accuracy (each panel its own scale)"
            });
        }
        SweepPlot::Spreads {
            rows,
            series,
            floors,
        } => {
            spread_chart(out, rows, series, floors);
            out.push_str("</div>\n<div class=\"legend\">");
            for (k, s) in series.iter().enumerate() {
                let _ = write!(
                    out,
                    "<label><input type=\"checkbox\" checked data-figure=\"{id}\" data-series=\"{k}\"><span style=\"color:{}\">■</span> {}</label>",
                    hex(s.colour),
                    escape(&s.label)
                );
            }
            let _ = write!(
                out,
                " <span style=\"color:{}\">|</span> the test set's error",
                hex(FLOOR_COLOUR)
            );
        }
    }
    out.push_str("</div>\n</div>\n");
}

/// Where the spread comes from as an SVG: a row per protocol, each series' standard deviation
/// as a dot with its 95% interval (values on hover), the test set's error as a grey tick.
fn spread_chart(
    out: &mut String,
    rows: &[String],
    series: &[SpreadSeries],
    floors: &[Option<f64>],
) {
    const WIDTH: f64 = 720.0;
    const LEFT: f64 = 100.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 10.0;
    const ROW: f64 = 56.0;
    const BOTTOM: f64 = 44.0;
    let height = TOP + ROW * rows.len().max(1) as f64 + BOTTOM;
    let x1 = spread_extent(series, floors);
    let px = |x: f64| LEFT + x.clamp(0.0, x1) / x1 * (WIDTH - LEFT - RIGHT);
    let row_y = |r: usize| TOP + ROW * (r as f64 + 0.5);
    let bottom = height - BOTTOM;
    let _ = writeln!(
        out,
        "<svg width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\">"
    );
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{0}\" y2=\"{bottom}\" stroke=\"#333\"/>",
        WIDTH - RIGHT
    );
    for (x, label) in nice_ticks(0.0, x1, 6) {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" y1=\"{TOP}\" x2=\"{0:.1}\" y2=\"{bottom}\" stroke=\"#eee\"/><text x=\"{0:.1}\" y=\"{1:.1}\" text-anchor=\"middle\">{label}</text>",
            px(x),
            bottom + 14.0
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">standard deviation of the final test accuracy</text>",
        (LEFT + WIDTH - RIGHT) / 2.0,
        height - 8.0
    );
    for (r, (name, floor)) in rows.iter().zip(floors).enumerate() {
        let y = row_y(r);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            escape(name)
        );
        if let Some(se) = floor {
            let _ = writeln!(
                out,
                "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"{3}\" stroke-width=\"3\"><title>{4}: the test set's error {se:.4}</title></line>",
                px(*se),
                y - ROW * 0.45,
                y + ROW * 0.45,
                hex(FLOOR_COLOUR),
                escape(name)
            );
        }
    }
    let m = series.len().max(1) as f64;
    for (k, s) in series.iter().enumerate() {
        let colour = hex(s.colour);
        let offset = (k as f64 - (m - 1.0) / 2.0) * (0.7 / m) * ROW;
        let _ = writeln!(out, "<g data-series=\"{k}\">");
        for (r, value) in s.values.iter().enumerate() {
            let Some((sd, low, high)) = value else {
                continue;
            };
            let y = row_y(r) + offset;
            let _ = writeln!(
                out,
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/><circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{colour}\"><title>{}, {}: sd {sd:.4}, 95% interval [{low:.4}, {high:.4}]</title></circle>",
                px(*low),
                px(*high),
                px(*sd),
                escape(&rows[r]),
                escape(&s.label)
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
}

/// One panel of a heat map as a table of coloured cells, rows the first axis's values.
fn heat_table(
    out: &mut String,
    title: &str,
    rows: &(String, Vec<String>),
    columns: &(String, Vec<String>),
    grid: &[Vec<Option<f64>>],
    diverging: bool,
) {
    let values = grid.iter().flatten().flatten().copied();
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let _ = writeln!(
        out,
        "<div><h4>{}</h4>\n<table>\n<tr><th>{} \\ {}</th>",
        escape(title),
        escape(&rows.0),
        escape(&columns.0)
    );
    for label in &columns.1 {
        let _ = write!(out, "<th>{}</th>", escape(label));
    }
    out.push_str("</tr>\n");
    for (label, cells) in rows.1.iter().zip(grid) {
        let _ = write!(out, "<tr><th>{}</th>", escape(label));
        for (column, value) in columns.1.iter().zip(cells) {
            let Some(value) = value else {
                out.push_str("<td>no runs</td>");
                continue;
            };
            let fill = heat_colour(*value, low, high, diverging);
            let dark = u32::from(fill.0) + u32::from(fill.1) + u32::from(fill.2) < 330;
            let text = if diverging {
                format!("{value:+.4}")
            } else {
                format!("{value:.4}")
            };
            let _ = write!(
                out,
                "<td style=\"background:{};color:{}\" title=\"{}={}, {}={}: {text}\">{text}</td>",
                hex(fill),
                if dark { "#fff" } else { "#000" },
                escape(&rows.0),
                escape(label),
                escape(&columns.0),
                escape(column)
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
}
