//! `table.csv` and `table.md`.

use crate::analysis::Analysis;

/// The exact header of `table.csv`.
pub const CSV_HEADER: &str =
    "protocol,proportion,train_samples,reps,mean,std,ci95_low,ci95_high,report_value,delta";

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.6}")).unwrap_or_default()
}

/// What a table says, once beneath it, of a cell of one run.
pub(crate) const NO_INTERVAL: &str = "n/a: a cell of 1 repetition has no confidence interval (its spread cannot be estimated from one run); run 2 or more for one.";

/// ` ± H` for an interval's half-width `H`, ` ± n/a` without one.
pub(crate) fn plus_minus(half: Option<f64>) -> String {
    half.map_or_else(|| " ± n/a".to_owned(), |h| format!(" ± {h:.4}"))
}

/// One row per (protocol, proportion), protocol-major. `reps` counts the runs in the mean:
/// diverged runs are left out, and a cell whose every run diverged has empty statistics.
pub fn table_csv(analysis: &Analysis) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for c in &analysis.cells {
        if c.finals.is_empty() {
            out.push_str(&format!(
                "{},{},{},0,,,,,{},\n",
                c.protocol,
                c.proportion,
                c.train_samples,
                opt(c.report_value)
            ));
            continue;
        }
        // One run has no spread and no interval: those columns stay empty.
        out.push_str(&format!(
            "{},{},{},{},{:.6},{},{},{},{},{}\n",
            c.protocol,
            c.proportion,
            c.train_samples,
            c.summary.n,
            c.summary.mean,
            opt(c.summary.has_spread().then_some(c.summary.std)),
            opt(c.summary.ci95_low),
            opt(c.summary.ci95_high),
            opt(c.report_value),
            opt(c.delta),
        ));
    }
    out
}

/// The report's table laid out as in docs/protocol.md section 6: a row per protocol, a column per
/// proportion, each cell `mean ± half-width of the 95% CI`, with the published value beside it.
pub fn table_md(analysis: &Analysis) -> String {
    let mut out = String::from("| protocol |");
    for p in &analysis.proportions {
        out.push_str(&format!(" p = {p} |"));
    }
    out.push_str("\n| --- |");
    for _ in &analysis.proportions {
        out.push_str(" --- |");
    }
    out.push('\n');
    for protocol in &analysis.protocols {
        out.push_str(&format!("| {protocol} |"));
        for &p in &analysis.proportions {
            match analysis.cell(protocol, p) {
                Some(c) if c.finals.is_empty() => {
                    out.push_str(&format!(" diverged ({} of {}) |", c.diverged, c.diverged));
                }
                Some(c) => {
                    let half = plus_minus(c.summary.half_width());
                    let report = c
                        .report_value
                        .map(|v| format!(" (report {v:.4})"))
                        .unwrap_or_default();
                    let diverged = if c.diverged > 0 {
                        format!(", {} of {} diverged", c.diverged, c.diverged + c.summary.n)
                    } else {
                        String::new()
                    };
                    let short = match analysis.planned_repetitions {
                        Some(planned) if c.runs() < planned as usize => {
                            format!(", only {} of {planned} runs", c.runs())
                        }
                        _ => String::new(),
                    };
                    out.push_str(&format!(
                        " {:.4}{half}{report}{diverged}{short} |",
                        c.summary.mean
                    ));
                }
                None => out.push_str(" - |"),
            }
        }
        out.push('\n');
    }
    let reps: Vec<usize> = analysis.cells.iter().map(|c| c.summary.n).collect();
    let (min, max) = (
        reps.iter().min().copied().unwrap_or(0),
        reps.iter().max().copied().unwrap_or(0),
    );
    let reps = match (min, max) {
        (1, 1) => "1 repetition".to_owned(),
        _ if min == max => format!("{min} repetitions"),
        _ => format!("{min} to {max} repetitions"),
    };
    let published = if analysis.published {
        "; the published value in brackets"
    } else {
        ""
    };
    out.push_str(&format!(
        "\nMean final test accuracy on the target test set over {reps}, ± the half-width of its 95% confidence interval (Student's t){published}.\n"
    ));
    if analysis.cells.iter().any(|c| c.summary.n == 1) {
        out.push_str(NO_INTERVAL);
        out.push('\n');
    }
    let diverged: usize = analysis.cells.iter().map(|c| c.diverged).sum();
    if diverged > 0 {
        out.push_str(&format!(
            "{diverged} run(s) diverged (training loss infinite or NaN) and are left out of the means; their cells say how many.\n"
        ));
    }
    out
}

/// The table in LaTeX for `\input` (booktabs: `\usepackage{booktabs}`): a row per protocol,
/// a column per proportion, each cell `mean ± half-width of the 95% CI`, the best mean of
/// each proportion in bold and, where the task is the published one, the published values
/// as rows of their own below a rule.
pub fn table_tex(analysis: &Analysis) -> String {
    let columns = analysis.proportions.len();
    let mut out = String::from("% Generated by transfer-report from the study's run records.\n");
    out.push_str(&format!(
        "\\begin{{tabular}}{{l{}}}\n\\toprule\n",
        "c".repeat(columns)
    ));
    out.push_str("protocol");
    for p in &analysis.proportions {
        out.push_str(&format!(" & $p = {p}$"));
    }
    out.push_str(" \\\\\n\\midrule\n");
    let best: Vec<Option<f64>> = analysis
        .proportions
        .iter()
        .map(|&p| analysis.best_mean(p))
        .collect();
    for protocol in &analysis.protocols {
        out.push_str(&tex_escape(protocol));
        for (&p, best) in analysis.proportions.iter().zip(&best) {
            let cell = match analysis.cell(protocol, p) {
                Some(c) if !c.finals.is_empty() => {
                    let (value, note) = match c.summary.half_width() {
                        Some(half) => (format!("{:.4} \\pm {half:.4}", c.summary.mean), ""),
                        None => (format!("{:.4}", c.summary.mean), " (n/a)"),
                    };
                    if Some(c.summary.mean) == *best {
                        format!("$\\mathbf{{{value}}}${note}")
                    } else {
                        format!("${value}${note}")
                    }
                }
                Some(_) => "diverged".to_owned(),
                None => "--".to_owned(),
            };
            out.push_str(&format!(" & {cell}"));
        }
        out.push_str(" \\\\\n");
    }
    let published: Vec<&String> = analysis
        .protocols
        .iter()
        .filter(|protocol| {
            analysis
                .cells
                .iter()
                .any(|c| &c.protocol == *protocol && c.report_value.is_some())
        })
        .collect();
    if analysis.published && !published.is_empty() {
        out.push_str("\\midrule\n");
        for protocol in published {
            out.push_str(&format!("{} (published)", tex_escape(protocol)));
            for &p in &analysis.proportions {
                match analysis.cell(protocol, p).and_then(|c| c.report_value) {
                    Some(v) => out.push_str(&format!(" & ${v:.4}$")),
                    None => out.push_str(" & --"),
                }
            }
            out.push_str(" \\\\\n");
        }
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n");
    if analysis.cells.iter().any(|c| c.summary.n == 1) {
        out.push_str(&format!("% {NO_INTERVAL}\n"));
    }
    out
}

/// `text` with LaTeX's special characters escaped (protocol names are letters, digits, `-`
/// and `_`).
fn tex_escape(text: &str) -> String {
    text.replace('_', "\\_")
}

/// The exact header of `table-robust.csv`.
pub const ROBUST_CSV_HEADER: &str =
    "protocol,proportion,reps,mean,ci95_low,ci95_high,boot95_low,boot95_high";

/// `table.csv`'s cells with the mean's 95% percentile-bootstrap interval beside its
/// t-interval (`crate::robust::BOOTSTRAP_RESAMPLES` resamples; empty with fewer than two
/// runs).
pub fn table_robust_csv(analysis: &Analysis) -> String {
    let mut out = String::from(ROBUST_CSV_HEADER);
    out.push('\n');
    for c in &analysis.cells {
        let stats = if c.finals.is_empty() {
            ",,,".to_owned()
        } else {
            format!(
                "{:.6},{},{}",
                c.summary.mean,
                opt(c.summary.ci95_low),
                opt(c.summary.ci95_high)
            )
        };
        out.push_str(&format!(
            "{},{},{},{stats},{},{}\n",
            c.protocol,
            c.proportion,
            c.summary.n,
            opt(c.bootstrap.map(|b| b.low)),
            opt(c.bootstrap.map(|b| b.high)),
        ));
    }
    out
}
