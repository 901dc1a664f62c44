//! `table.csv` and `table.md`.

use crate::analysis::Analysis;

/// The exact header of `table.csv`.
pub const CSV_HEADER: &str =
    "protocol,proportion,train_samples,reps,mean,std,ci95_low,ci95_high,report_value,delta";

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.6}")).unwrap_or_default()
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
        out.push_str(&format!(
            "{},{},{},{},{:.6},{:.6},{:.6},{:.6},{},{}\n",
            c.protocol,
            c.proportion,
            c.train_samples,
            c.summary.n,
            c.summary.mean,
            c.summary.std,
            c.summary.ci95_low,
            c.summary.ci95_high,
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
                    let half = (c.summary.ci95_high - c.summary.ci95_low) / 2.0;
                    let report = c
                        .report_value
                        .map(|v| format!(" (report {v:.4})"))
                        .unwrap_or_default();
                    let diverged = if c.diverged > 0 {
                        format!(", {} of {} diverged", c.diverged, c.diverged + c.summary.n)
                    } else {
                        String::new()
                    };
                    out.push_str(&format!(
                        " {:.4} ± {half:.4}{report}{diverged} |",
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
    let diverged: usize = analysis.cells.iter().map(|c| c.diverged).sum();
    if diverged > 0 {
        out.push_str(&format!(
            "{diverged} run(s) diverged (training loss infinite or NaN) and are left out of the means; their cells say how many.\n"
        ));
    }
    out
}
