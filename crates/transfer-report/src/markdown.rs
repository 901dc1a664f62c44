//! `report.md`: the reproduction in words and numbers.

use std::fmt::Write;

use crate::analysis::{Analysis, Verdict};
use crate::tables::table_md;
use crate::{ReportContext, StudyResults};

/// The written report.
pub fn report_md(results: &StudyResults, analysis: &Analysis, ctx: &ReportContext) -> String {
    let mut out = String::new();
    let s = &results.settings;
    let runs = results.runs.len();
    let _ = writeln!(
        out,
        "# Transfer learning on MNIST digits: reproduction report\n"
    );
    let _ = writeln!(out, "{}\n", ctx.label);
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
    let backend = results.runs.first().map(|r| &r.backend);
    if let Some(b) = backend {
        let driver = if b.driver.is_empty() {
            String::new()
        } else {
            format!(", driver {}", b.driver)
        };
        let _ = writeln!(
            out,
            "- backend `{}` on {}{driver}, {} CPU threads",
            b.backend, b.device, b.threads
        );
    }
    let _ = writeln!(out, "- hardware: {}", ctx.hardware);
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
    provenance(&mut out, results);
    if let Some(p) = &analysis.pretraining {
        let _ = writeln!(
            out,
            "\nPretraining on the source digits reached a source-test accuracy of {:.4} ± {:.4} (mean ± 95% CI half-width, {} models).",
            p.mean,
            (p.ci95_high - p.ci95_low) / 2.0,
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
            let inside = c
                .report_value
                .is_some_and(|v| v >= c.summary.ci95_low && v <= c.summary.ci95_high);
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
    let _ = writeln!(out, "\n## The report's claims, checked\n");
    let _ = writeln!(
        out,
        "Each comparison gives the difference in final accuracy with its 95% confidence interval, the one-sided t-test's p-value for the claimed direction and the same p-value after Holm's correction over the claim's comparisons (which the verdict uses), and the standardised effect size with its approximate 95% interval (the normal approximation of its sampling variance). Runs that are paired by design (sharing a repetition's pretrained backbone, or its training subset under the prefix rule) are compared repetition by repetition (paired t-test, Cohen's d_z); others with Welch's unequal-variance test (Cohen's d).\n"
    );
    for claim in &analysis.claims {
        let _ = writeln!(out, "### {}\n", claim.statement);
        let _ = writeln!(out, "**Verdict: {}.**\n", claim.verdict.words());
        for c in &claim.comparisons {
            match (c.test, c.p_holm) {
                (Some(t), Some(holm)) => {
                    let _ = writeln!(
                        out,
                        "- {}: {:+.4} [{:+.4}, {:+.4}] ({}, {}, Holm {}, effect size {:.2} [{:.2}, {:.2}])",
                        c.label,
                        t.difference,
                        t.ci95_low,
                        t.ci95_high,
                        if c.paired { "paired" } else { "Welch" },
                        p_value(t.p_greater),
                        p_value(holm),
                        t.effect_size,
                        t.effect_ci95_low,
                        t.effect_ci95_high
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "- {}: {:+.4} (no test: fewer than 2 repetitions)",
                        c.label,
                        c.mean_a - c.mean_b
                    );
                }
            }
        }
        if claim.verdict == Verdict::NotTested {
            let _ = writeln!(out, "- (no comparison possible with these runs)");
        }
        out.push('\n');
    }
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
    out
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
fn p_value(p: f64) -> String {
    if p < 1e-4 {
        "p < 0.0001".into()
    } else if p < 0.01 {
        format!("p = {p:.4}")
    } else {
        format!("p = {p:.3}")
    }
}
