//! `report.html`: the report in one self-contained page. The table, the claims and every
//! figure as inline SVG whose points show their values on hover (mean, 95% interval, n) and
//! whose series can be shown or hidden. Styles and the one script are inline; the page makes
//! no request of any kind, so it opens from `file://` with the network off.

use std::fmt::Write;

use plotters::style::RGBColor;

use crate::analysis::{Analysis, Verdict};
use crate::figures::{Figure, Plot, figures};
use crate::markdown::p_value;
use crate::{ReportContext, StudyResults};

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;

pub(crate) const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}.best{font-weight:bold}.published{color:#777}\
.notice{background:#fff3cd;border:1px solid #e0c36c;padding:8px}.figure{margin:1.5em 0}\
.panels{display:flex;flex-wrap:wrap;gap:12px}svg{background:#fff;border:1px solid #ddd}\
.legend label{margin-right:1em;white-space:nowrap}svg text{font-size:11px;fill:#333}";

pub(crate) const SCRIPT: &str = "document.querySelectorAll('input[data-series]').forEach(function(box){\
box.addEventListener('change',function(){\
document.querySelectorAll('#'+box.dataset.figure+' g[data-series=\"'+box.dataset.series+'\"]')\
.forEach(function(g){g.style.display=box.checked?'':'none';});});});\
document.body.setAttribute('data-rendered','yes');";

/// The whole page.
pub fn report_html(results: &StudyResults, analysis: &Analysis, ctx: &ReportContext) -> String {
    let mut out =
        String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        out,
        "<title>Transfer learning on MNIST digits: report</title>"
    );
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(
        out,
        "<h1>Transfer learning on MNIST digits: reproduction report</h1>"
    );
    let _ = writeln!(out, "<p>{}</p>", inline_code(&ctx.label));
    let _ = writeln!(
        out,
        "<p>Trained on {}.</p>",
        inline_code(&results.machines().join("; "))
    );
    let _ = writeln!(
        out,
        "<p class=\"randomness\">{}</p>",
        escape(&analysis.randomness.describe())
    );
    completeness(&mut out, analysis);
    table(&mut out, analysis);
    claims(&mut out, analysis);
    let _ = writeln!(
        out,
        "<h2>Figures</h2>\n<p>Hover over a point for its values; tick a series to show or hide it.</p>"
    );
    for (i, figure) in figures(analysis).iter().enumerate() {
        figure_html(&mut out, &format!("figure-{i}"), figure, analysis);
    }
    let _ = writeln!(
        out,
        "<p>Made from {} runs and {} pretrainings.</p>",
        results.runs.len(),
        results.pretrains.len()
    );
    let _ = writeln!(out, "<script>{SCRIPT}</script>\n</body>\n</html>");
    out
}

/// Text as HTML.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn completeness(out: &mut String, analysis: &Analysis) {
    let c = &analysis.completeness;
    match c.planned_runs {
        Some(planned) if !c.complete => {
            let short: Vec<String> = c
                .short_cells
                .iter()
                .map(|(protocol, p, have, want)| {
                    format!("{} at p = {p}: {have} of {want}", escape(protocol))
                })
                .collect();
            let _ = writeln!(
                out,
                "<p class=\"notice\"><strong>Incomplete: made from {} of the {planned} planned runs.</strong> These numbers are provisional. Short cells: {}.</p>",
                c.runs,
                short.join("; ")
            );
        }
        Some(planned) => {
            let _ = writeln!(
                out,
                "<p>Made from all {} of the {planned} planned runs.</p>",
                c.runs
            );
        }
        None => {
            let _ = writeln!(
                out,
                "<p>Made from {} runs (no study configuration says how many were planned).</p>",
                c.runs
            );
        }
    }
}

/// The table: mean ± half-width of the 95% interval, the best of each proportion in bold,
/// the published values in rows of their own.
fn table(out: &mut String, analysis: &Analysis) {
    let _ = writeln!(
        out,
        "<h2>Final test accuracy</h2>\n<table id=\"results\">\n<tr><th>protocol</th>"
    );
    for p in &analysis.proportions {
        let _ = write!(out, "<th>p = {p}</th>");
    }
    out.push_str("</tr>\n");
    for protocol in &analysis.protocols {
        let _ = write!(out, "<tr><td>{}</td>", escape(protocol));
        for &p in &analysis.proportions {
            match analysis.cell(protocol, p) {
                Some(c) if !c.finals.is_empty() => {
                    let half = crate::tables::plus_minus(c.summary.half_width());
                    let mut interval = match c.summary.interval() {
                        Some((low, high)) => format!("95% interval [{low:.4}, {high:.4}]"),
                        None => "no interval (1 repetition)".to_owned(),
                    };
                    if let Some(se) = c.test_se {
                        interval.push_str(&format!(", test-set standard error {se:.4}"));
                    }
                    let class = if analysis.best_mean(p) == Some(c.summary.mean) {
                        " class=\"best\""
                    } else {
                        ""
                    };
                    let _ = write!(
                        out,
                        "<td{class} title=\"n = {}, {interval}\">{:.4}{half}</td>",
                        c.summary.n, c.summary.mean
                    );
                }
                Some(_) => out.push_str("<td>diverged</td>"),
                None => out.push_str("<td>-</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    if analysis.published {
        for protocol in &analysis.protocols {
            let values: Vec<Option<f64>> = analysis
                .proportions
                .iter()
                .map(|&p| analysis.cell(protocol, p).and_then(|c| c.report_value))
                .collect();
            if values.iter().all(Option::is_none) {
                continue;
            }
            let _ = write!(
                out,
                "<tr class=\"published\"><td>{} (published)</td>",
                escape(protocol)
            );
            for v in values {
                match v {
                    Some(v) => {
                        let _ = write!(out, "<td>{v:.4}</td>");
                    }
                    None => out.push_str("<td>-</td>"),
                }
            }
            out.push_str("</tr>\n");
        }
    }
    out.push_str("</table>\n");
    if analysis.cells.iter().any(|c| c.summary.n == 1) {
        let _ = writeln!(out, "<p>{}</p>", escape(crate::tables::NO_INTERVAL));
    }
    if let Some(n) = analysis.randomness.test_samples {
        let _ = writeln!(
            out,
            "<p>Hover over a mean for its interval and the test set's binomial standard error, sqrt(a (1 - a) / {n}): the spread another sample of {n} test images would add, which no number of repetitions removes.</p>"
        );
    }
}

fn claims(out: &mut String, analysis: &Analysis) {
    let _ = writeln!(out, "<h2>Claims</h2>");
    for claim in &analysis.claims {
        let mark = match claim.verdict {
            Verdict::Holds => "✔",
            Verdict::DirectionOnly => "~",
            Verdict::NotTested | Verdict::Undecided => "–",
            Verdict::DoesNotHold | Verdict::NotEquivalent => "✘",
        };
        let provisional = if claim.complete { "" } else { " (provisional)" };
        let _ = writeln!(
            out,
            "<h3>{mark} {}</h3>\n<p><strong>Verdict: {}{provisional}.</strong></p>\n<ul>",
            escape(&claim.statement),
            escape(claim.verdict.words())
        );
        for c in &claim.comparisons {
            let test = match (c.test, c.p_holm) {
                (Some(t), Some(holm)) => format!(
                    "{:+.4} [{:+.4}, {:+.4}], {}, Holm {}",
                    t.difference,
                    t.ci95_low,
                    t.ci95_high,
                    p_value(t.p_greater),
                    p_value(holm)
                ),
                _ => format!("{:+.4} (no test)", c.mean_a - c.mean_b),
            };
            let extra = match (c.planning, c.equivalence) {
                (Some(plan), Some(eq)) => format!(
                    "; power {:.2}, detects {:.4}; {}",
                    plan.power_at_observed,
                    plan.detectable_difference,
                    if eq.equivalent {
                        format!("tie within ±{}", eq.margin)
                    } else {
                        format!("not shown equal within ±{}", eq.margin)
                    }
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "<li>{}: {}{}</li>",
                escape(&c.label),
                escape(&test),
                escape(&extra)
            );
        }
        out.push_str("</ul>\n");
    }
}

/// A point of a chart: x, value, its 95% interval if known, and the runs behind it.
pub(crate) type Point = (f64, f64, Option<(f64, f64)>, usize);

/// One line of a chart: its points, published markers (at an x) and a published value drawn
/// as a dashed line across the chart.
pub(crate) struct Line {
    pub(crate) label: String,
    pub(crate) colour: RGBColor,
    pub(crate) points: Vec<Point>,
    pub(crate) published: Vec<(f64, f64)>,
    pub(crate) reference: Option<f64>,
    pub(crate) band: bool,
}

/// A chart's axes. The x ticks are `x_ticks` where given, else every x of the points.
pub(crate) struct Axes<'a> {
    pub(crate) x_log: bool,
    pub(crate) x_label: &'a str,
    pub(crate) x_ticks: Vec<(f64, String)>,
    pub(crate) y_label: &'a str,
    pub(crate) zero_line: bool,
    /// Where the plotted quantity can lie (accuracies in [0, 1], their differences in
    /// [-1, 1]): intervals are clipped to it, as in the PNG and SVG figures.
    pub(crate) y_limits: Option<(f64, f64)>,
}

/// Where an accuracy lies.
pub(crate) const ACCURACY: Option<(f64, f64)> = Some((0.0, 1.0));
/// Where a difference of accuracies lies.
pub(crate) const DIFFERENCE: Option<(f64, f64)> = Some((-1.0, 1.0));

/// Ticks at round values between `low` and `high`: multiples of the smallest step of 1, 2 or
/// 5 times a power of ten that gives at most `most` of them, each with its label.
pub(crate) fn nice_ticks(low: f64, high: f64, most: usize) -> Vec<(f64, String)> {
    if !(low.is_finite() && high.is_finite() && high > low) || most == 0 {
        return Vec::new();
    }
    let span = high - low;
    let mut power = 10f64.powf(span.log10().floor() - 1.0);
    let step = loop {
        if let Some(step) = [1.0, 2.0, 5.0]
            .iter()
            .map(|m| m * power)
            .find(|step| ((span / step).floor() as usize) < most)
        {
            break step;
        }
        power *= 10.0;
    };
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let first = (low / step).ceil() as i64;
    let last = (high / step).floor() as i64;
    (first..=last)
        .map(|k| {
            let value = k as f64 * step;
            (value, format!("{value:.decimals$}"))
        })
        .collect()
}

/// `text` escaped for HTML, with Markdown's `code` spans as `<code>` elements.
pub(crate) fn inline_code(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", escape(part));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

fn figure_html(out: &mut String, id: &str, figure: &Figure<'_>, analysis: &Analysis) {
    let _ = writeln!(
        out,
        "<div class=\"figure\" id=\"{id}\">\n<h3>{}</h3>",
        escape(&figure.title)
    );
    let lines_of = |lines: &[Line]| {
        lines
            .iter()
            .map(|l| (l.label.clone(), l.colour))
            .collect::<Vec<_>>()
    };
    out.push_str("<div class=\"panels\">\n");
    let legend: Vec<(String, RGBColor)> = match &figure.plot {
        Plot::ByProportion {
            series,
            y_label,
            zero_line,
        } => {
            let lines: Vec<Line> = series
                .iter()
                .map(|s| Line {
                    label: s.label.clone(),
                    colour: s.colour,
                    points: s
                        .points
                        .iter()
                        .map(|&(x, y, ci)| (x, y, ci, runs_at(analysis, &s.label, x)))
                        .collect(),
                    published: s.published.clone(),
                    reference: None,
                    band: false,
                })
                .collect();
            let axes = Axes {
                x_log: true,
                x_label: "proportion of target training data",
                x_ticks: Vec::new(),
                y_label,
                zero_line: *zero_line,
                y_limits: if *zero_line { DIFFERENCE } else { ACCURACY },
            };
            chart(out, &lines, &axes);
            lines_of(&lines)
        }
        Plot::Curves(curves) => {
            // A curve's runs: its cell's, or the pretrainings' for the pretraining curve.
            let n_of = |c: &crate::analysis::MeanCurve| {
                analysis.cell(&c.protocol, c.proportion).map_or_else(
                    || analysis.pretraining.map_or(0, |p| p.n),
                    |cell| cell.finals.len(),
                )
            };
            let accuracy: Vec<Line> = curves
                .iter()
                .map(|(label, colour, c)| Line {
                    label: label.clone(),
                    colour: *colour,
                    points: (0..c.iterations.len())
                        .map(|i| {
                            (
                                f64::from(c.iterations[i]),
                                c.mean[i],
                                Some((c.ci95_low[i], c.ci95_high[i])),
                                n_of(c),
                            )
                        })
                        .collect(),
                    published: Vec::new(),
                    reference: None,
                    band: true,
                })
                .collect();
            let loss: Vec<Line> = curves
                .iter()
                .map(|(label, colour, c)| Line {
                    label: label.clone(),
                    colour: *colour,
                    points: (0..c.iterations.len())
                        .filter(|&i| c.loss[i].is_finite())
                        .map(|i| (f64::from(c.iterations[i]), c.loss[i], None, n_of(c)))
                        .collect(),
                    published: Vec::new(),
                    reference: None,
                    band: false,
                })
                .collect();
            let axes = Axes {
                x_log: false,
                x_label: "iteration",
                x_ticks: Vec::new(),
                y_label: "mean test accuracy",
                zero_line: false,
                y_limits: ACCURACY,
            };
            chart(out, &accuracy, &axes);
            let axes = Axes {
                y_label: "mean training loss",
                y_limits: None,
                ..axes
            };
            chart(out, &loss, &axes);
            lines_of(&accuracy)
        }
    };
    out.push_str("</div>\n<div class=\"legend\">");
    for (k, (label, colour)) in legend.iter().enumerate() {
        let _ = write!(
            out,
            "<label><input type=\"checkbox\" checked data-figure=\"{id}\" data-series=\"{k}\"><span style=\"color:{}\">■</span> {}</label>",
            hex(*colour),
            escape(label)
        );
    }
    out.push_str("</div>\n</div>\n");
}

/// The runs behind a by-proportion point: the cell's (a gain: the smaller of its two cells').
fn runs_at(analysis: &Analysis, protocol: &str, proportion: f64) -> usize {
    let n = |name: &str| analysis.cell(name, proportion).map(|c| c.finals.len());
    match (n(protocol), n("raw")) {
        (Some(a), Some(raw)) if analysis.gains.iter().any(|g| g.protocol == protocol) => a.min(raw),
        (Some(a), _) => a,
        _ => 0,
    }
}

pub(crate) fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// One SVG chart of `lines`.
pub(crate) fn chart(out: &mut String, lines: &[Line], axes: &Axes) {
    let xs: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .collect();
    let clip = |v: f64| axes.y_limits.map_or(v, |(low, high)| v.clamp(low, high));
    let clipped = |ci: Option<(f64, f64)>| ci.map(|(low, high)| (clip(low), clip(high)));
    let ys: Vec<f64> = lines
        .iter()
        .flat_map(|l| {
            l.points
                .iter()
                .map(|&(_, y, ci, _)| (y, clipped(ci)))
                .flat_map(|(y, ci)| [Some(y), ci.map(|c| c.0), ci.map(|c| c.1)])
                .flatten()
                .chain(l.published.iter().map(|p| p.1))
                .chain(l.reference)
        })
        .filter(|v| v.is_finite())
        .chain(axes.zero_line.then_some(0.0))
        .collect();
    let tx = |x: f64| if axes.x_log { x.log10() } else { x };
    let (x0, x1) = bounds(xs.iter().map(|&x| tx(x)));
    let (y0, y1) = bounds(ys.iter().copied());
    let px = |x: f64| LEFT + (tx(x) - x0) / (x1 - x0) * (WIDTH - LEFT - RIGHT);
    let py = |y: f64| TOP + (y1 - y) / (y1 - y0) * (HEIGHT - TOP - BOTTOM);
    let _ = writeln!(
        out,
        "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\">"
    );
    let (bottom, right) = (HEIGHT - BOTTOM, WIDTH - RIGHT);
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"#333\"/><line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\" stroke=\"#333\"/>"
    );
    for (y, label) in nice_ticks(y0, y1, 6) {
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{right}\" y2=\"{0:.1}\" stroke=\"#eee\"/><text x=\"{1}\" y=\"{2:.1}\" text-anchor=\"end\">{label}</text>",
            py(y),
            LEFT - 4.0,
            py(y) + 4.0
        );
    }
    let ticks = if !axes.x_ticks.is_empty() {
        axes.x_ticks.clone()
    } else if axes.x_log {
        let mut ticks: Vec<f64> = xs.clone();
        ticks.sort_by(f64::total_cmp);
        ticks.dedup();
        ticks.into_iter().map(|x| (x, x.to_string())).collect()
    } else {
        nice_ticks(x0, x1, 6)
    };
    for (x, label) in ticks {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            px(x),
            bottom + 14.0,
            escape(&label)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        (LEFT + right) / 2.0,
        HEIGHT - 6.0,
        escape(axes.x_label)
    );
    let _ = writeln!(
        out,
        "<text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {0:.1})\" text-anchor=\"middle\">{}</text>",
        (TOP + bottom) / 2.0,
        axes.y_label
    );
    if axes.zero_line {
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{right}\" y2=\"{0:.1}\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>",
            py(0.0)
        );
    }
    for (k, line) in lines.iter().enumerate() {
        let colour = hex(line.colour);
        let _ = writeln!(out, "<g data-series=\"{k}\">");
        if line.band {
            let upper: Vec<String> = line
                .points
                .iter()
                .filter_map(|&(x, _, ci, _)| {
                    clipped(ci).map(|c| format!("{:.1},{:.1}", px(x), py(c.1)))
                })
                .collect();
            let lower: Vec<String> = line
                .points
                .iter()
                .rev()
                .filter_map(|&(x, _, ci, _)| {
                    clipped(ci).map(|c| format!("{:.1},{:.1}", px(x), py(c.0)))
                })
                .collect();
            let _ = writeln!(
                out,
                "<polygon points=\"{} {}\" fill=\"{colour}\" fill-opacity=\"0.15\" stroke=\"none\"/>",
                upper.join(" "),
                lower.join(" ")
            );
        }
        let path: Vec<String> = line
            .points
            .iter()
            .map(|&(x, y, _, _)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            path.join(" ")
        );
        for &(x, y, ci, n) in &line.points {
            let ci = clipped(ci);
            let interval = ci
                .map(|(lo, hi)| format!(", 95% interval [{lo:.4}, {hi:.4}]"))
                .unwrap_or_default();
            if let (Some((lo, hi)), false) = (ci, line.band) {
                let _ = writeln!(
                    out,
                    "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"{colour}\"/>",
                    px(x),
                    py(lo),
                    py(hi)
                );
            }
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\" fill=\"{colour}\"><title>{}: {x}: {y:.4}{interval}, n = {n}</title></circle>",
                px(x),
                py(y),
                if line.band { 2 } else { 4 },
                escape(&line.label)
            );
        }
        for &(x, v) in &line.published {
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"none\" stroke=\"{colour}\"><title>{} published: {x}: {v:.4}</title></rect>",
                px(x) - 4.0,
                py(v) - 4.0,
                escape(&line.label)
            );
        }
        if let Some(v) = line.reference {
            let _ = writeln!(
                out,
                "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{right}\" y2=\"{0:.1}\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"8 6\"><title>{1} published (2016): {v:.4}</title></line>",
                py(v),
                escape(&line.label)
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
}

/// The range of `values`, widened by 5% a side (and to a unit around a single value).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 0.5 };
    (lo - pad, hi + pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fall_on_round_values() {
        let values = |ticks: Vec<(f64, String)>| ticks.into_iter().map(|t| t.1).collect::<Vec<_>>();
        assert_eq!(
            values(nice_ticks(0.8372, 0.8659, 6)),
            ["0.840", "0.845", "0.850", "0.855", "0.860", "0.865"]
        );
        assert_eq!(
            values(nice_ticks(0.0, 1000.0, 6)),
            ["0", "200", "400", "600", "800", "1000"]
        );
        assert_eq!(
            values(nice_ticks(-0.013, 0.021, 6)),
            ["-0.01", "0.00", "0.01", "0.02"]
        );
        for (low, high) in [(0.8447, 0.8612), (0.91, 0.99), (1e-4, 7e-3), (3.0, 9000.0)] {
            let ticks = nice_ticks(low, high, 6);
            assert!((2..=6).contains(&ticks.len()), "{low}..{high}: {ticks:?}");
            let step = ticks[1].0 - ticks[0].0;
            let mantissa = step / 10f64.powf(step.log10().floor());
            assert!(
                [1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-6),
                "{low}..{high}: step {step}"
            );
            assert!(ticks.iter().all(|t| (low..=high).contains(&t.0)));
        }
        assert!(nice_ticks(1.0, 1.0, 6).is_empty());
    }

    #[test]
    fn markdown_code_spans_become_code_elements() {
        assert_eq!(
            inline_code("Preset `paper`, backend `flex` <x>"),
            "Preset <code>paper</code>, backend <code>flex</code> &lt;x&gt;"
        );
    }

    #[test]
    fn an_accuracys_interval_is_clipped_to_one() {
        let line = Line {
            label: "raw".into(),
            colour: RGBColor(0, 0, 0),
            points: vec![
                (0.01, 0.97, Some((0.34, 1.6)), 2),
                (0.1, 0.99, Some((0.98, 1.0)), 2),
            ],
            published: Vec::new(),
            reference: None,
            band: false,
        };
        let axes = Axes {
            x_log: true,
            x_label: "p",
            x_ticks: Vec::new(),
            y_label: "accuracy",
            zero_line: false,
            y_limits: ACCURACY,
        };
        let mut out = String::new();
        chart(&mut out, &[line], &axes);
        assert!(out.contains("95% interval [0.3400, 1.0000]"), "{out}");
        assert!(!out.contains("1.6"), "{out}");
        let labels: Vec<&str> = out
            .split("text-anchor=\"end\">")
            .skip(1)
            .filter_map(|s| s.split('<').next())
            .collect();
        assert!(
            labels
                .iter()
                .all(|l| l.parse::<f64>().is_ok_and(|v| v <= 1.0)),
            "{labels:?}"
        );
    }
}
