//! `cargo xtask study`: the study library's runner, shown as progress bars (or plain lines)
//! and printed summaries.

use std::path::Path;
use std::sync::OnceLock;

use transfer_protocols::{Observer, Silent};
use transfer_records::{PretrainRecord, RunRecord, SetAside, StudyConfig};
use transfer_study::{
    Axis, Estimate, Execution, Outcome, PlanSummary, StudyEvents, Sweep, SweepOutcome,
    SweepWorkspace, Workspace, run_study,
};

use crate::backend::Backend;
use crate::error::Result;
use crate::progress::Progress;

/// Runs the study and prints what it did: the report's table when the study is complete.
pub fn run(ws: &Workspace, config: &StudyConfig, exec: &Execution, quiet: bool) -> Result<()> {
    let printer = Printer {
        config,
        stack: exec.stack,
        quiet,
        progress: OnceLock::new(),
    };
    let root = ws.store.root();
    match run_study(ws, config, exec, &printer)? {
        Outcome::Complete(files) => {
            println!(
                "study complete: {} files written to {} (table.md, report.md, figures/)",
                files.len(),
                root.display()
            );
            if let Ok(table) = std::fs::read_to_string(root.join("table.md")) {
                println!("\n{table}");
            }
        }
        Outcome::ShardDone => println!(
            "this shard is done; when every shard has finished, `cargo xtask report --out {}` writes the report",
            root.display()
        ),
    }
    Ok(())
}

/// Runs the sweep and prints what it did: where the sweep's report is once it is complete.
pub fn run_sweep(sw: &SweepWorkspace, exec: &Execution, quiet: bool) -> Result<()> {
    let printer = Printer {
        config: sw.sweep().base(),
        stack: exec.stack,
        quiet,
        progress: OnceLock::new(),
    };
    let root = sw.root();
    match transfer_study::run_sweep(sw, exec, &printer)? {
        SweepOutcome::Complete(files) => {
            println!(
                "sweep complete: {} files written to {} (sweep.md, report.html, sweep.csv, sweep.json, figures/); each point's own report is in its directory",
                files.len(),
                root.display()
            );
        }
        SweepOutcome::Incomplete { complete, points } => println!(
            "{complete} of {points} points are complete (their reports are written); when every shard has finished, `cargo xtask sweep` with the same flags, or `cargo xtask report --out {}`, completes the rest",
            root.display()
        ),
    }
    Ok(())
}

/// Writes the report of every point of the sweep in `dir` that holds runs, and the sweep's.
pub fn report_sweep(dir: &Path) -> Result<()> {
    let results = transfer_study::sweep_results(dir)?;
    let mut files = 0;
    for point in &results.points {
        let Some(point_results) = point.results.as_ref().filter(|r| !r.runs.is_empty()) else {
            continue;
        };
        let ctx = match &point_results.config {
            Some(config) => transfer_study::report_context(config, "", None),
            None => transfer_report::ReportContext::default(),
        };
        files += transfer_report::write_report(&dir.join(&point.name), point_results, &ctx)?.len();
    }
    // The command that ran the sweep: its newest record's.
    let command = results
        .points
        .iter()
        .filter_map(|p| p.results.as_ref())
        .flat_map(|r| &r.runs)
        .map(|r| &r.provenance)
        .filter(|p| p.command.starts_with("sweep"))
        .max_by(|a, b| a.date.cmp(&b.date))
        .map_or("", |p| p.command.as_str());
    let sweep = transfer_study::read_sweep(dir)?;
    let ctx = transfer_study::sweep_report_context(&sweep, command);
    files += transfer_report::write_sweep_report(dir, &results, &ctx)?.len();
    let analysis = transfer_report::analyse_sweep(&results);
    println!(
        "sweep of {} points: {} of {} planned runs reported{}; {files} files written under {}",
        analysis.points.len(),
        analysis.runs,
        analysis.planned_runs,
        if analysis.complete {
            ""
        } else {
            " (INCOMPLETE: sweep.md says which points lack runs)"
        },
        dir.display()
    );
    Ok(())
}

/// Prints the sweep's grid and base configuration before it starts.
pub fn print_sweep(sweep: &Sweep, backend: &str, out: &Path) {
    println!(
        "sweep of {} points into {} (each a study of its own, {}/NAME):",
        sweep.len(),
        out.display(),
        out.display()
    );
    for axis in sweep.axes() {
        println!("  axis {axis}");
    }
    print_configuration(sweep.base(), backend, &out.join("NAME"), sweep.axes());
}

/// The line that says a record was not trusted and moved aside.
pub fn set_aside_line(moved: &SetAside) -> String {
    format!(
        "{}: not trusted ({}); moved to {} and run again",
        moved.from.display(),
        moved.why,
        moved.to.display()
    )
}

/// Prints the effective configuration before a study starts; a setting one of `axes` sweeps
/// shows the axis's values rather than the base's.
pub fn print_configuration(config: &StudyConfig, backend: &str, out: &Path, axes: &[Axis]) {
    let show = |name: &str, base: String| match axes.iter().find(|a| a.setting().name() == name) {
        Some(axis) => {
            let values: Vec<String> = axis.values().iter().map(ToString::to_string).collect();
            format!("{{{}}}", values.join(", "))
        }
        None => base,
    };
    println!(
        "effective configuration (stored in {}/study.json):",
        out.display()
    );
    let names: Vec<&str> = config.protocols.iter().map(|p| p.name.as_str()).collect();
    println!(
        "  preset {}, {} repetitions x {} protocols ({}) x {} proportions ({:?})",
        config.preset,
        config.repetitions,
        config.protocols.len(),
        names.join(", "),
        config.proportions.len(),
        config.proportions
    );
    let t = &config.training;
    println!(
        "  {} iterations (eval every {}), pretraining {} iterations, batch {}, subset {}, seed {}, backend {}",
        show("iters", t.iterations.to_string()),
        show("eval-every", t.eval_every.to_string()),
        show("pretrain-iters", t.pretrain_iterations.to_string()),
        show("batch", t.batch_size.to_string()),
        show("subset", t.subset.to_string()),
        show("seed", t.seed.to_string()),
        backend
    );
    let vary = t
        .vary
        .as_ref()
        .map_or_else(|| "all".to_owned(), |v| v.to_string());
    let vary = show("vary", vary);
    if vary != "all" {
        println!("  repetitions vary {vary}; the other sources are held at repetition 0's draw");
    }
}

/// The study's events as bars and lines on stdout.
struct Printer<'a> {
    config: &'a StudyConfig,
    stack: usize,
    quiet: bool,
    /// Made once the number of runs to train is known.
    progress: OnceLock<Progress>,
}

impl Printer<'_> {
    fn line(&self, text: &str) {
        match self.progress.get() {
            Some(progress) => progress.line(text),
            None => println!("{text}"),
        }
    }

    fn advance(&self) {
        if let Some(progress) = self.progress.get() {
            progress.advance();
        }
    }
}

impl StudyEvents for Printer<'_> {
    fn set_aside(&self, moved: &SetAside) {
        self.line(&set_aside_line(moved));
    }

    fn planned(&self, plan: &PlanSummary) {
        let scope = match (plan.points > 1, plan.shard.is_some()) {
            (_, true) => "shard",
            (true, false) => "sweep",
            (false, false) => "study",
        };
        let shared = if plan.points > 1 {
            format!(
                " ({} more runs of the {} points are the same runs as another point's: trained once and copied)",
                plan.shared, plan.points
            )
        } else {
            String::new()
        };
        println!(
            "{} runs in this {scope}{shared}; {} already finished, {} to run; {} pretrained models to train{}",
            plan.runs,
            plan.finished,
            plan.to_run(),
            plan.pretrainings,
            if plan.stack > 1 {
                format!("; up to {} runs trained together", plan.stack)
            } else {
                String::new()
            }
        );
        let total = (plan.pretrainings + plan.to_run()) as u64;
        let _ = self.progress.set(Progress::new(total, self.quiet, "runs"));
    }

    fn estimated(&self, estimate: &Estimate) {
        print_estimate(estimate, self.config, self.stack);
    }

    fn started(&self, label: &str, iterations: u32) -> Box<dyn Observer + '_> {
        crate::alloc::training(label);
        match self.progress.get() {
            Some(progress) => Box::new(progress.run(label, iterations)),
            None => Box::new(Silent),
        }
    }

    fn pretrained(&self, label: &str, record: &PretrainRecord) {
        self.advance();
        self.line(&format!(
            "{label}: pretrained, source test accuracy {:.4} ({:.1} s)",
            record.source_test_accuracy, record.wall_seconds
        ));
    }

    fn finished(&self, label: &str, record: &RunRecord, done: usize, total: usize) {
        self.advance();
        self.line(&format!(
            "[{done}/{total}] {label}: final test accuracy {:.4} ({:.1} s)",
            record.final_accuracy, record.wall_seconds
        ));
    }

    fn trained(&self) {
        if let Some(progress) = self.progress.get() {
            progress.finish();
        }
    }
}

/// Prints the expected time, with faster alternatives when it is long.
fn print_estimate(estimate: &Estimate, config: &StudyConfig, stack: usize) {
    let split = estimate.split;
    let with = if split.measured_at_once() {
        format!("with {split}")
    } else {
        // The jobs share the cores: each was measured alone, the estimate is one job's.
        format!("for one job (somewhat less with {split})")
    };
    println!(
        "estimated time: {} {with} (measured: {:.3} s per training step, {:.4} s per frozen step, {:.0} test images/s)",
        transfer_report::duration(estimate.seconds),
        estimate.step,
        estimate.frozen_step,
        estimate.eval_images_per_s
    );
    if !estimate.others.is_empty() {
        let others: Vec<String> = estimate
            .others
            .iter()
            .map(|(s, seconds)| format!("{s}: {}", transfer_report::duration(*seconds)))
            .collect();
        println!(
            "  the fastest split of this machine's cores, every split timed with all its jobs at once (others: {}; --jobs and --threads-per-job choose)",
            others.join(", ")
        );
    }
    if estimate.disturbed {
        println!(
            "  (other work on this machine disturbed the measurement: the step times are upper bounds from whole timed runs, and the estimate may be long)"
        );
    }
    if estimate.seconds <= 1800.0 {
        return;
    }
    println!("that is long; faster alternatives:");
    if config.preset == "paper" {
        println!(
            "  --preset quick            about a minute on 2 CPU cores, the same effects at fewer iterations"
        );
    }
    println!(
        "  --shard I/N               split the runs across N machines (Slurm array, Kubernetes Indexed Job)"
    );
    let reps = config.repetitions.max(2);
    let on_gpu = <Backend as clap::ValueEnum>::from_str(&config.training.backend, false)
        .is_ok_and(|b| !b.on_cpu());
    if on_gpu {
        if stack == 1 {
            println!(
                "  --stack {reps:<17} train the repetitions of a protocol and proportion together"
            );
        }
    } else {
        println!("  --backend wgpu --stack {reps}  train on a GPU, {reps} runs at a time");
    }
    println!("  --reps R / --props LIST   fewer repetitions or proportions");
}
