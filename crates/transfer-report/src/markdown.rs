//! `report.md`: the reproduction in words and numbers.

use std::fmt::Write;

use transfer_records::ClaimTest;

use crate::analysis::{Analysis, Comparison, Completeness, Verdict};
use crate::tables::table_md;
use crate::{ReportContext, StudyResults};

/// The written report.
/// The written report: what it holds, the configuration, the results, the claims checked,
/// the figures. Every number comes from `analysis`; these functions only write.
pub fn report_md(results: &StudyResults, analysis: &Analysis, ctx: &ReportContext) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Transfer learning on MNIST digits: reproduction report\n"
    );
    let _ = writeln!(out, "{}\n", ctx.label);
    let _ = writeln!(out, "{}\n", analysis.randomness.describe());
    completeness(&mut out, &analysis.completeness);
    configuration(&mut out, results, ctx);
    results_section(&mut out, results, analysis);
    claims_section(&mut out, analysis, &study_command(results, ctx));
    figures_section(&mut out, analysis);
    out
}

/// What the report is made from, first: a study with planned runs missing says so before
/// any number.
fn completeness(out: &mut String, c: &Completeness) {
    let Some(planned) = c.planned_runs else {
        let _ = writeln!(
            out,
            "Made from {} runs; the directory holds no study configuration, so nothing says how many were planned.\n",
            c.runs
        );
        return;
    };
    if c.complete {
        let _ = writeln!(
            out,
            "Made from all {} of the {planned} planned runs.\n",
            c.runs
        );
        return;
    }
    let _ = writeln!(
        out,
        "**Incomplete: made from {} of the {planned} planned runs.** The study has not finished (shards still running, or a stopped study): these numbers are provisional, and the cells and claims that lack runs are marked.\n",
        c.runs
    );
    for (protocol, proportion, have, planned) in &c.short_cells {
        let _ = writeln!(
            out,
            "- {protocol} at p = {proportion}: {have} of {planned} runs"
        );
    }
    out.push('\n');
}

/// The configuration, machine, compute time and provenance.
fn configuration(out: &mut String, results: &StudyResults, ctx: &ReportContext) {
    let s = &results.settings;
    let runs = results.runs.len();
    let _ = writeln!(out, "## Configuration\n");
    if let Some(config) = &results.config {
        let _ = writeln!(
            out,
            "- preset: `{}`; repetitions: {}",
            config.preset, config.repetitions
        );
    }
    let _ = writeln!(
        out,
        "- {} iterations per run at batch {}, test accuracy every {} iterations; pretraining {} iterations (Adam {}); subset rule `{}`",
        s.iterations,
        s.batch_size,
        s.eval_every,
        s.pretrain_iterations,
        s.pretrain_learning_rate,
        s.subset
    );
    let _ = writeln!(
        out,
        "- source digits {:?}, target digits {:?}; master seed {}",
        s.source_classes, s.target_classes, s.seed
    );
    let _ = writeln!(out, "- protocols:");
    let protocols: Vec<_> = match &results.config {
        Some(c) => c.protocols.clone(),
        None => results
            .runs
            .iter()
            .map(|r| r.protocol.clone())
            .fold(Vec::new(), |mut v, p| {
                if !v
                    .iter()
                    .any(|q: &transfer_records::Protocol| q.name == p.name)
                {
                    v.push(p);
                }
                v
            }),
    };
    for p in &protocols {
        let _ = writeln!(
            out,
            "  - `{}`: backbone {}{}, dropout {}, learning rate {}",
            p.name,
            match p.backbone {
                transfer_records::BackboneStart::Fresh => "fresh",
                transfer_records::BackboneStart::Pretrained => "pretrained",
            },
            if p.freeze_backbone { " (frozen)" } else { "" },
            p.dropout,
            p.learning_rate
        );
    }
    let _ = writeln!(out, "- trained on: {}", results.machines().join("; "));
    let run_seconds: f64 = results.runs.iter().map(|r| r.wall_seconds).sum::<f64>()
        + results
            .pretrains
            .iter()
            .map(|p| p.wall_seconds)
            .sum::<f64>();
    let _ = writeln!(
        out,
        "- {runs} runs and {} pretrainings; compute time {} (sum over runs){}",
        results.pretrains.len(),
        duration(run_seconds),
        ctx.wall_seconds
            .map(|w| format!(", wall time of the last invocation {}", duration(w)))
            .unwrap_or_default()
    );
    if !ctx.command.is_empty() {
        let _ = writeln!(out, "- command: `{}`", ctx.command);
    }
    provenance(out, results);
}

/// The table against the published one, diverged runs and differences from the published
/// values.
fn results_section(out: &mut String, results: &StudyResults, analysis: &Analysis) {
    if let Some(p) = &analysis.pretraining {
        let _ = writeln!(
            out,
            "\nPretraining on the source digits reached a source-test accuracy of {:.4}{} (mean ± 95% CI half-width, {} models).",
            p.mean,
            crate::tables::plus_minus(p.half_width()),
            p.n
        );
    }
    if analysis.published {
        let _ = writeln!(out, "\n## Results against the published table\n");
        let _ = writeln!(
            out,
            "![final test accuracy by proportion of training data, published values as hollow squares](figures/accuracy-vs-proportion.png)\n"
        );
    } else {
        let _ = writeln!(out, "\n## Results\n");
        let _ = writeln!(
            out,
            "The published table is of canonical MNIST, pretrained on digits 0-5 and transferred to 6-9; this study poses another task, so no published value is set against it.\n"
        );
        let _ = writeln!(
            out,
            "![final test accuracy by proportion of training data](figures/accuracy-vs-proportion.png)\n"
        );
    }
    out.push_str(&table_md(analysis));
    bootstrap_table(out, analysis);
    test_error_table(out, analysis);
    let diverged: Vec<String> = results
        .runs
        .iter()
        .filter_map(|r| {
            r.diverged_at.map(|at| {
                format!(
                    "{} p = {} rep {} (by iteration {at})",
                    r.protocol.name, r.proportion, r.repetition
                )
            })
        })
        .collect();
    if !diverged.is_empty() {
        let _ = writeln!(
            out,
            "\nDiverged runs, whose training loss became infinite or NaN: {}.",
            diverged.join(", ")
        );
    }
    let diverged_pretrainings: Vec<String> = results
        .pretrains
        .iter()
        .filter_map(|p| {
            p.diverged_at
                .map(|at| format!("rep {} (by iteration {at})", p.repetition))
        })
        .collect();
    if !diverged_pretrainings.is_empty() {
        let _ = writeln!(
            out,
            "\nDiverged pretrainings: {}; the runs that start from them train on a diverged backbone.",
            diverged_pretrainings.join(", ")
        );
    }
    if analysis.published {
        let _ = writeln!(
            out,
            "\nDifferences from the published values (mean minus report):\n"
        );
    }
    for c in &analysis.cells {
        if let Some(d) = c.delta {
            let inside = c.report_value.is_some_and(|v| c.summary.contains(v));
            let _ = writeln!(
                out,
                "- {} at p = {}: {d:+.4}{}",
                c.protocol,
                c.proportion,
                if inside {
                    " (published value inside our 95% CI)"
                } else {
                    ""
                }
            );
        }
    }
}

/// The claims: each comparison with its test, power and equivalence, and for an undecided
/// claim the repetitions that would decide it.
fn claims_section(out: &mut String, analysis: &Analysis, study_command: &str) {
    let _ = writeln!(out, "\n## The report's claims, checked\n");
    let _ = writeln!(
        out,
        "Each comparison gives the difference in final accuracy with its 95% confidence interval, the one-sided t-test's p-value for the claimed direction and the same p-value after Holm's correction over the claim's comparisons (which the verdict uses), and the standardised effect size with its approximate 95% interval (the normal approximation of its sampling variance). Runs that are paired by design (sharing a repetition's pretrained backbone, or its training subset under the prefix rule) are compared repetition by repetition (paired t-test, Cohen's d_z); others with Welch's unequal-variance test (Cohen's d).\n"
    );
    let _ = writeln!(
        out,
        "Below each comparison: its difference's 95% percentile-bootstrap interval and the probability that a run of the first side ends above one of the second, P(A > B) (over pairs where paired, the Mann-Whitney estimate otherwise), with its bootstrap interval; the power of its own one-sided 5% test at the effect it observed (before Holm's correction; paired comparisons as a one-sample t-test of the differences, the others as the pooled two-sample t-test), the smallest difference that test finds with 80% power at these repetitions, the repetitions at which it would find the observed effect with 80% power, and two one-sided tests (TOST) of whether the two sides are equal within ±{} in accuracy.\n",
        analysis.equivalence_margin
    );
    for claim in &analysis.claims {
        let _ = writeln!(out, "### {}\n", claim.statement);
        let provisional = if claim.complete {
            ""
        } else {
            " (provisional: some of its cells lack planned runs)"
        };
        let _ = writeln!(
            out,
            "**Verdict: {}{provisional}.**\n",
            claim.verdict.words()
        );
        for c in &claim.comparisons {
            comparison(out, c, claim.test == ClaimTest::Equivalent);
        }
        if claim.verdict == Verdict::NotTested {
            let _ = writeln!(out, "- (no comparison possible with these runs)");
        }
        if claim.verdict == Verdict::DirectionOnly {
            deciding_repetitions(out, claim, study_command);
        }
        out.push('\n');
    }
}

/// One comparison: its test on the first line (for an equivalence claim, the TOST p-value
/// and its Holm correction), what the test could find on the next.
fn comparison(out: &mut String, c: &Comparison, equivalence_claim: bool) {
    let (Some(t), Some(holm)) = (c.test, c.p_holm) else {
        let _ = writeln!(
            out,
            "- {}: {:+.4} (no test: fewer than 2 repetitions)",
            c.label,
            c.mean_a - c.mean_b
        );
        return;
    };
    let _ = writeln!(
        out,
        "- {}: {:+.4} [{:+.4}, {:+.4}] ({}, {}, Holm {}, effect size {:.2} [{:.2}, {:.2}])",
        c.label,
        t.difference,
        t.ci95_low,
        t.ci95_high,
        if c.paired { "paired" } else { "Welch" },
        match (equivalence_claim, c.equivalence) {
            (true, Some(e)) => format!("TOST {}", p_value(e.p)),
            _ => p_value(t.p_greater),
        },
        p_value(holm),
        t.effect_size,
        t.effect_ci95_low,
        t.effect_ci95_high
    );
    let (Some(plan), Some(eq)) = (c.planning, c.equivalence) else {
        return;
    };
    let needed = match (plan.repetitions_for_80, plan.more_than_max) {
        (None, _) => "no number of repetitions finds the claimed direction (the difference goes the other way)".to_owned(),
        (Some(n), true) => format!("more than {n} repetitions for 80% power at the observed effect"),
        (Some(n), false) => format!("{n} repetitions for 80% power at the observed effect"),
    };
    let tie = if eq.equivalent {
        format!("tie within ±{} (TOST {})", eq.margin, p_value(eq.p))
    } else {
        format!(
            "not shown equal within ±{} (TOST {})",
            eq.margin,
            p_value(eq.p)
        )
    };
    let _ = writeln!(
        out,
        "  - power {:.2} at the observed effect; detects {:.4} with 80% power; {needed}; {tie}",
        plan.power_at_observed, plan.detectable_difference
    );
    if let (Some(b), Some(i)) = (c.bootstrap, c.improvement) {
        let _ = writeln!(
            out,
            "  - bootstrap 95% interval [{:+.4}, {:+.4}]; P(A > B) = {:.2} [{:.2}, {:.2}]",
            b.low, b.high, i.probability, i.interval.low, i.interval.high
        );
    }
}

/// The cells' bootstrap intervals beside the t-intervals of the table.
fn bootstrap_table(out: &mut String, analysis: &Analysis) {
    let intro = format!(
        "The same means with 95% percentile-bootstrap intervals ({} resamples drawn from the master seed; they stay within [0, 1], where a t-interval of few repetitions may not; also in `table-robust.csv`):",
        crate::robust::BOOTSTRAP_RESAMPLES
    );
    cell_table(out, analysis, &intro, |c| {
        c.bootstrap
            .map(|b| format!("{:.4} [{:.4}, {:.4}]", c.summary.mean, b.low, b.high))
    });
}

/// Each cell's mean with its interval's half-width and the test set's standard error.
fn test_error_table(out: &mut String, analysis: &Analysis) {
    let Some(n) = analysis.randomness.test_samples else {
        return;
    };
    let intro = format!(
        "Each mean ± its 95% CI half-width, and beside it the test set's binomial standard error, sqrt(a (1 - a) / {n}): the spread another sample of {n} test images would add, which no number of repetitions removes:"
    );
    cell_table(out, analysis, &intro, |c| {
        let half = c
            .summary
            .half_width()
            .map_or_else(|| "n/a".to_owned(), |h| format!("{h:.4}"));
        c.test_se
            .map(|se| format!("{:.4} ± {half} (test SE {se:.4})", c.summary.mean))
    });
}

/// A table of one entry per cell, after `intro`; `entry` gives a cell's text (`-` where
/// none).
fn cell_table(
    out: &mut String,
    analysis: &Analysis,
    intro: &str,
    entry: impl Fn(&crate::analysis::Cell) -> Option<String>,
) {
    let _ = writeln!(out, "\n{intro}\n");
    let mut header = String::from("| protocol |");
    let mut rule = String::from("| --- |");
    for p in &analysis.proportions {
        header.push_str(&format!(" p = {p} |"));
        rule.push_str(" --- |");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for protocol in &analysis.protocols {
        let mut row = format!("| {protocol} |");
        for &p in &analysis.proportions {
            match analysis.cell(protocol, p).and_then(&entry) {
                Some(text) => row.push_str(&format!(" {text} |")),
                None => row.push_str(" - |"),
            }
        }
        let _ = writeln!(out, "{row}");
    }
}

/// For a claim that holds in direction only: the repetitions at which every comparison not
/// yet significant reaches 80% power at its observed effect, and the command that adds them
/// (finished runs are kept).
fn deciding_repetitions(out: &mut String, claim: &crate::analysis::Claim, study_command: &str) {
    let undecided = claim
        .comparisons
        .iter()
        .filter(|c| !c.p_holm.is_some_and(|p| p < 0.05));
    let mut needed = 0;
    for c in undecided {
        match c.planning {
            Some(plan) if !plan.more_than_max => {
                needed = needed.max(plan.repetitions_for_80.unwrap_or(0));
            }
            _ => {
                let _ = writeln!(
                    out,
                    "\nMore than {} repetitions would be needed to decide it at 80% power.",
                    crate::power::MAX_REPETITIONS
                );
                return;
            }
        }
    }
    if needed == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "\nTo decide it: {needed} repetitions give every comparison not yet significant 80% power at its observed effect (before Holm's correction, which asks a little more). Adding repetitions keeps every finished run:\n\n```sh\n{}\n```",
        with_repetitions(study_command, needed)
    );
}

/// The command that ran the study: the report's own when a study wrote it, else the newest
/// record's (a report regenerated by `report` is not the study's command).
fn study_command(results: &StudyResults, ctx: &ReportContext) -> String {
    if ctx.command.starts_with("study") {
        return ctx.command.clone();
    }
    results
        .runs
        .iter()
        .filter(|r| r.provenance.command.starts_with("study"))
        .max_by(|a, b| a.provenance.date.cmp(&b.provenance.date))
        .map_or_else(|| "study".to_owned(), |r| r.provenance.command.clone())
}

/// `cargo xtask` with the study's command and `--reps n` in place of any it had.
fn with_repetitions(command: &str, n: u32) -> String {
    let mut words: Vec<&str> = Vec::new();
    let mut parts = command.split_whitespace();
    while let Some(w) = parts.next() {
        if w == "--reps" {
            parts.next();
        } else if !w.starts_with("--reps=") {
            words.push(w);
        }
    }
    if words.is_empty() {
        words.push("study");
    }
    format!("cargo xtask {} --reps {n}", words.join(" "))
}

/// The figures.
fn figures_section(out: &mut String, analysis: &Analysis) {
    let _ = writeln!(out, "## Figures\n");
    if !analysis.gains.is_empty() {
        let _ = writeln!(out, "![gain over raw](figures/gain-over-raw.png)\n");
    }
    for protocol in &analysis.protocols {
        let _ = writeln!(out, "![{protocol}](figures/protocol-{protocol}.png)\n");
    }
    for p in &analysis.proportions {
        let _ = writeln!(out, "![p = {p}](figures/proportion-{p}.png)\n");
    }
    if analysis.pretraining_curve.is_some() {
        let _ = writeln!(out, "![pretraining](figures/pretraining.png)\n");
    }
}

/// The provenance of the records: programs and commits, the dataset, dates, commands.
fn provenance(out: &mut String, results: &StudyResults) {
    let all: Vec<&transfer_records::Provenance> = results
        .runs
        .iter()
        .map(|r| &r.provenance)
        .chain(results.pretrains.iter().map(|p| &p.provenance))
        .collect();
    let distinct = |field: fn(&transfer_records::Provenance) -> &str| {
        let mut values: Vec<&str> = all.iter().map(|p| field(p)).collect();
        values.sort_unstable();
        values.dedup();
        values
    };
    let _ = writeln!(out, "\n## Provenance\n");
    let d = &results.settings.dataset;
    let _ = writeln!(
        out,
        "- dataset `{}`: SHA-256 of the train images, train labels, test images, test labels `{}`",
        d.name,
        d.sha256.join("`, `")
    );
    let programs: Vec<String> = distinct(|p| &p.program)
        .iter()
        .map(|program| format!("`{program}`"))
        .collect();
    let commits: Vec<String> = distinct(|p| &p.commit)
        .iter()
        .map(|c| {
            if c.is_empty() {
                "not from a checkout".to_owned()
            } else {
                format!("`{c}`")
            }
        })
        .collect();
    let _ = writeln!(
        out,
        "- written by {} (commit {})",
        programs.join(", "),
        commits.join(", ")
    );
    let dates = distinct(|p| &p.date);
    if let (Some(first), Some(last)) = (dates.first(), dates.last()) {
        let _ = writeln!(out, "- records written from {first} to {last}");
    }
    let commands = distinct(|p| &p.command);
    let shown: Vec<String> = commands.iter().take(5).map(|c| format!("`{c}`")).collect();
    let more = commands.len().saturating_sub(shown.len());
    let _ = writeln!(
        out,
        "- by the command{} {}{}",
        if commands.len() == 1 { "" } else { "s" },
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
}

/// A duration in seconds, minutes or hours, whichever reads best.
pub fn duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.1} s")
    } else if seconds < 7200.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.2} h", seconds / 3600.0)
    }
}

/// A p-value as `p = 0.0123`, or `p < 0.0001` when tiny.
pub(crate) fn p_value(p: f64) -> String {
    if p < 1e-4 {
        "p < 0.0001".into()
    } else if p < 0.01 {
        format!("p = {p:.4}")
    } else {
        format!("p = {p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::with_repetitions;

    #[test]
    fn the_deciding_command_replaces_the_repetitions() {
        assert_eq!(
            with_repetitions("study --preset quick --reps 2 --out results/quick", 9),
            "cargo xtask study --preset quick --out results/quick --reps 9"
        );
        assert_eq!(
            with_repetitions("study --reps=3", 12),
            "cargo xtask study --reps 12"
        );
        assert_eq!(with_repetitions("", 4), "cargo xtask study --reps 4");
    }
}
