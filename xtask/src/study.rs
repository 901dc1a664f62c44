//! `cargo xtask study`: every run of the configuration, resumable, sharded, in parallel,
//! then the report.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use transfer_model::Backbone;
use transfer_records::{BackboneStart, Protocol, StudyConfig};
use transfer_report::{ReportContext, StudyResults, write_report};

use crate::backend::Backend;
use crate::error::{Result, XtaskError};
use crate::plan::{PlannedRun, Shard, plan, stack_label, stacks};
use crate::progress::Progress;
use crate::runner::Workspace;
use crate::timing::{
    Costs, Sizes, seconds_per_eval_image, seconds_per_step, stand_in_backbone, study_seconds,
};

/// How to execute a study.
pub struct Execution {
    /// Runs at once.
    pub jobs: usize,
    /// Runs of one protocol and proportion trained together as one computation (1: alone).
    pub stack: usize,
    /// The slice of the plan this process runs.
    pub shard: Option<Shard>,
    /// Plain log lines instead of bars.
    pub quiet: bool,
    /// Skip the up-front time estimate.
    pub no_estimate: bool,
    /// The command line, for the report.
    pub command: String,
}

/// Runs the study into the workspace's results directory and writes the report when the
/// whole plan is finished.
pub fn run_study(ws: &Workspace, config: &StudyConfig, exec: &Execution) -> Result<()> {
    let started = Instant::now();
    ws.set_aside_untrusted(|line| println!("{line}"))?;
    ws.store.write_study(config)?;
    let all = plan(config);
    let every_stack = stacks(&all, exec.stack);
    let mine = match exec.shard {
        Some(shard) => shard.select(&every_stack),
        None => every_stack,
    };
    // Stacks with an unfinished run, and those runs.
    let mut todo = Vec::new();
    let mut todo_runs = Vec::new();
    for stack in &mine {
        let before = todo_runs.len();
        for run in stack {
            if ws
                .finished_run(&run.protocol, run.proportion, run.repetition)?
                .is_none()
            {
                todo_runs.push(run.clone());
            }
        }
        if todo_runs.len() > before {
            todo.push(stack.clone());
        }
    }
    let runs: usize = mine.iter().map(Vec::len).sum();
    // Pretrainings are stacked like runs: repetitions in blocks of `exec.stack`, whole blocks.
    let block = exec.stack.max(1) as u32;
    let mut blocks: Vec<u32> = todo
        .iter()
        .flatten()
        .filter(|r| r.protocol.needs_pretraining())
        .map(|r| r.repetition / block)
        .collect();
    blocks.sort_unstable();
    blocks.dedup();
    let pretrain_stacks: Vec<Vec<u32>> = blocks
        .iter()
        .map(|b| (b * block..((b + 1) * block).min(config.repetitions)).collect())
        .collect();
    let missing_pretrain: Vec<u32> = pretrain_stacks
        .iter()
        .flatten()
        .copied()
        .filter(|&r| ws.store.finished_pretrain(r).ok().flatten().is_none())
        .collect();
    println!(
        "{runs} runs in this {}; {} already finished, {} to run; {} pretrained models to train{}",
        if exec.shard.is_some() {
            "shard"
        } else {
            "study"
        },
        runs - todo_runs.len(),
        todo_runs.len(),
        missing_pretrain.len(),
        if exec.stack > 1 {
            format!("; up to {} runs trained together", exec.stack)
        } else {
            String::new()
        }
    );
    if !todo.is_empty() && !exec.no_estimate {
        estimate(ws, config, &todo_runs, missing_pretrain.len(), exec)?;
    }

    let progress = Progress::new(
        (missing_pretrain.len() + todo_runs.len()) as u64,
        exec.quiet,
        "runs",
    );
    // Pretrained backbones, by repetition: loaded or trained (in parallel across jobs).
    let backbones: Mutex<Vec<(u32, Backbone, u64)>> = Mutex::new(Vec::new());
    parallel(&pretrain_stacks, exec.jobs, |reps: &Vec<u32>| {
        let label = match reps.as_slice() {
            [rep] => format!("pretrain rep {rep}"),
            [first, .., last] => format!("pretrain reps {first}-{last}"),
            [] => return Ok(()),
        };
        let mut observer = progress.run(&label, ws.store.settings().pretrain_iterations);
        let pretrained = ws.pretrained_stack(reps, &mut observer)?;
        drop(observer);
        for (rep, (backbone, finished)) in reps.iter().zip(pretrained) {
            if !finished.reused {
                progress.advance();
                progress.line(&format!(
                    "pretrained rep {rep}: source test accuracy {:.4} ({:.1} s)",
                    finished.record.source_test_accuracy, finished.record.wall_seconds
                ));
            }
            lock(&backbones)?.push((*rep, backbone, finished.record.seed));
        }
        Ok(())
    })?;
    let backbones = backbones
        .into_inner()
        .map_err(|_| XtaskError::Usage("a pretraining thread failed".into()))?;
    let done = AtomicUsize::new(0);
    parallel(&todo, exec.jobs, |stack: &Vec<PlannedRun>| {
        let Some(first) = stack.first() else {
            return Ok(());
        };
        let members: Vec<_> = stack
            .iter()
            .map(|run| {
                let pretrained = match run.protocol.backbone {
                    BackboneStart::Pretrained => backbones
                        .iter()
                        .find(|(rep, _, _)| *rep == run.repetition)
                        .map(|(_, b, seed)| (b, *seed)),
                    BackboneStart::Fresh => None,
                };
                (run.repetition, pretrained)
            })
            .collect();
        let mut observer = progress.run(&stack_label(stack), ws.store.settings().iterations);
        let records = ws.run_stack(&first.protocol, first.proportion, &members, &mut observer)?;
        drop(observer);
        for (run, finished) in stack.iter().zip(records) {
            if finished.reused {
                continue;
            }
            progress.advance();
            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
            progress.line(&format!(
                "[{n}/{}] {}: final test accuracy {:.4} ({:.1} s)",
                todo_runs.len(),
                run.label(),
                finished.record.final_accuracy,
                finished.record.wall_seconds
            ));
        }
        Ok(())
    })?;
    progress.finish();

    // Every run of this process is stored by now (a failure returned above); a shard's
    // study is complete only once the other shards' runs are stored too.
    let complete = exec.shard.is_none()
        || all.iter().all(|r| {
            matches!(
                ws.finished_run(&r.protocol, r.proportion, r.repetition),
                Ok(Some(_))
            )
        });
    if complete {
        let results = StudyResults::read(ws.store.root())?;
        let ctx = report_context(config, &exec.command, Some(started.elapsed().as_secs_f64()));
        let files = write_report(ws.store.root(), &results, &ctx)?;
        println!(
            "study complete: {} files written to {} (table.md, report.md, figures/)",
            files.len(),
            ws.store.root().display()
        );
        if let Ok(table) = std::fs::read_to_string(ws.store.root().join("table.md")) {
            println!("\n{table}");
        }
    } else {
        println!(
            "this shard is done; when every shard has finished, `cargo xtask report --out {}` writes the report",
            ws.store.root().display()
        );
    }
    Ok(())
}

/// The report's context line for a configuration.
pub fn report_context(
    config: &StudyConfig,
    command: &str,
    wall_seconds: Option<f64>,
) -> ReportContext {
    ReportContext {
        label: format!(
            "Preset `{}`, backend `{}`, on {}.",
            config.preset,
            config.training.backend,
            crate::hardware::describe()
        ),
        hardware: crate::hardware::describe(),
        command: command.to_owned(),
        wall_seconds,
    }
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| XtaskError::Usage("a worker thread failed".into()))
}

/// Runs `work` over `items` on `jobs` threads, stopping at the first error (runs already
/// in flight finish and are stored; nothing computed is lost).
fn parallel<T: Sync>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<XtaskError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { return };
                    if let Err(e) = work(item)
                        && let Ok(mut slot) = failure.lock()
                    {
                        slot.get_or_insert(e);
                    }
                }
            });
        }
    });
    match failure.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(_) => Err(XtaskError::Usage("a worker thread failed".into())),
    }
}

/// Measures a few steps and prints the expected time, with faster alternatives when long.
fn estimate(
    ws: &Workspace,
    config: &StudyConfig,
    todo: &[PlannedRun],
    pretrainings: usize,
    exec: &Execution,
) -> Result<()> {
    let stand_in = stand_in_backbone(&ws.device);
    let step = |name: &str| -> Result<f64> {
        let protocol = Protocol::resolve(name, &[])?;
        seconds_per_step(
            &ws.device, &ws.target, &protocol, &stand_in, 3, exec.stack, ws.compute,
        )
    };
    let (full, frozen) = (step("raw")?, step("frozen")?);
    let eval_image =
        seconds_per_eval_image(&ws.device, &ws.target, 100, 1, exec.stack, ws.compute)?;
    let costs = Costs {
        step: full,
        frozen_step: frozen,
        eval_image,
        frozen_reuses_features: true,
    };
    let seconds = study_seconds(
        costs,
        Sizes::of(&ws.source, &ws.target),
        ws.settings(),
        pretrainings,
        todo.iter()
            .map(|r| (r.protocol.freeze_backbone, r.proportion)),
    );
    // Each run already spreads its work over the cores; more jobs at once gained only
    // 1.14x on a 2-core CPU, so the estimate is one job's time.
    let more_jobs = if exec.jobs > 1 {
        format!(" (somewhat less with {} jobs at once)", exec.jobs)
    } else {
        String::new()
    };
    println!(
        "estimated time: {} for one job{more_jobs} (measured: {:.3} s per training step, {:.4} s per frozen step, {:.0} test images/s)",
        transfer_report::duration(seconds),
        full,
        frozen,
        1.0 / eval_image
    );
    if seconds > 1800.0 {
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
            if exec.stack == 1 {
                println!(
                    "  --stack {reps:<17} train the repetitions of a protocol and proportion together"
                );
            }
        } else {
            println!("  --backend wgpu --stack {reps}  train on a GPU, {reps} runs at a time");
        }
        println!("  --reps R / --props LIST   fewer repetitions or proportions");
    }
    Ok(())
}
