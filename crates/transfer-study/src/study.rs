//! A whole study: every run of the configuration into one results directory, resumable,
//! sharded, in parallel, then the report. Progress goes to [`StudyEvents`]; nothing prints.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use transfer_model::Backbone;
use transfer_protocols::{Observer, Silent};
use transfer_records::{BackboneStart, PretrainRecord, RunRecord, SetAside, StudyConfig};
use transfer_report::{ReportContext, StudyResults, write_report};

use crate::cost::{Costs, Sizes, Timing, study_seconds};
use crate::error::{Result, StudyError};
use crate::plan::{PlannedRun, Shard, plan, stack_label, stacks};
use crate::split::{Jobs, Split};
use crate::workspace::Workspace;

/// How to execute a study.
#[derive(Debug, Clone)]
pub struct Execution {
    /// Stacks trained at once, each on its own thread, and the threads each spreads its work
    /// over: given, or the fastest split the cost model finds.
    pub jobs: Jobs,
    /// Runs of one protocol and proportion trained together as one computation (1: alone).
    pub stack: usize,
    /// The slice of the plan this process runs (`None`: all of it).
    pub shard: Option<Shard>,
    /// Measure a few steps and estimate the study's time before training.
    pub estimate: bool,
}

impl Default for Execution {
    fn default() -> Execution {
        Execution {
            jobs: Jobs::Given(Split::shared(1)),
            stack: 1,
            shard: None,
            estimate: false,
        }
    }
}

/// What this process will do, decided before anything trains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSummary {
    /// Runs in this process's part of the plan (all of it without a shard).
    pub runs: usize,
    /// Of those, runs already finished in the results directory.
    pub finished: usize,
    /// Pretrained backbones to train.
    pub pretrainings: usize,
    /// Runs trained together at most.
    pub stack: usize,
    /// The slice of the plan, if any.
    pub shard: Option<Shard>,
    /// Studies the plan spans: 1, or a sweep's points.
    pub points: usize,
    /// Runs of a sweep's points that are another point's runs too (the settings they read
    /// are the same there), trained once and copied: not counted in `runs`.
    pub shared: usize,
}

impl PlanSummary {
    /// Runs still to train.
    pub fn to_run(&self) -> usize {
        self.runs - self.finished
    }
}

/// The study's expected time, from steps measured on the device.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Seconds for everything still to train: with every job of `split` at once where they
    /// were measured at once ([`Split::measured_at_once`]), else one job's.
    pub seconds: f64,
    /// The split the study trains with, measured.
    pub split: Split,
    /// The other splits measured and their seconds, where the split was chosen among them.
    pub others: Vec<(Split, f64)>,
    /// Seconds per training step of the whole network.
    pub step: f64,
    /// Seconds per training step of a frozen backbone's classifier.
    pub frozen_step: f64,
    /// Test images scored per second.
    pub eval_images_per_s: f64,
    /// Whether other work on the machine disturbed the measurement (the step times are
    /// upper bounds then).
    pub disturbed: bool,
}

impl Estimate {
    /// One job's estimate ([`estimate_with`]) as the study's with `split`: divided by its
    /// jobs where they were measured at once.
    pub(crate) fn for_split(self, split: Split) -> Estimate {
        let at_once = if split.measured_at_once() {
            split.jobs
        } else {
            1
        };
        Estimate {
            seconds: self.seconds / at_once as f64,
            split,
            ..self
        }
    }
}

/// The split to train with, and its estimate where one was measured: `exec`'s given split
/// (measured where the estimate is asked for), or every candidate measured by `estimate_at`
/// and the fastest, the others kept in its estimate. Nothing is measured without `work`.
pub(crate) fn settle_split(
    exec: &Execution,
    work: bool,
    estimate_at: impl Fn(Split) -> Result<Estimate>,
) -> Result<(Split, Option<Estimate>)> {
    match exec.jobs {
        Jobs::Given(split) if work && exec.estimate => Ok((split, Some(estimate_at(split)?))),
        Jobs::Given(split) => Ok((split, None)),
        Jobs::Fastest { .. } if !work => Ok((Split::shared(1), None)),
        Jobs::Fastest { .. } => {
            let mut measured = exec
                .jobs
                .splits()
                .into_iter()
                .map(&estimate_at)
                .collect::<Result<Vec<_>>>()?;
            let fastest = (0..measured.len())
                .min_by(|&a, &b| measured[a].seconds.total_cmp(&measured[b].seconds))
                .ok_or(StudyError::Internal("no split of the cores to measure"))?;
            let mut chosen = measured.remove(fastest);
            chosen.others = measured.iter().map(|e| (e.split, e.seconds)).collect();
            Ok((chosen.split, Some(chosen)))
        }
    }
}

/// How a study ended in this process.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every run of the plan is stored, and the report was written: these files.
    Complete(Vec<PathBuf>),
    /// This shard's runs are stored; others' are still missing, so there is no report yet.
    ShardDone,
}

/// What a study reports as it goes. Every method has a default that ignores the event, so an
/// implementation names only what it shows. Methods are called from the worker threads.
pub trait StudyEvents: Sync {
    /// A record failed verification and was moved aside; its run is trained again.
    fn set_aside(&self, _moved: &SetAside) {}
    /// What this process will do.
    fn planned(&self, _plan: &PlanSummary) {}
    /// The expected time (only when [`Execution::estimate`] is set and there is work).
    fn estimated(&self, _estimate: &Estimate) {}
    /// A pretraining or a stack of runs (`label`, e.g. `frozen p=0.01 reps 0-3`) starts
    /// `iterations` iterations: the observer of its steps and evaluations.
    fn started(&self, _label: &str, _iterations: u32) -> Box<dyn Observer + '_> {
        Box::new(Silent)
    }
    /// A repetition's backbone was pretrained and stored (`label`: `pretrain rep 3`, in a
    /// sweep with its point before it).
    fn pretrained(&self, _label: &str, _record: &PretrainRecord) {}
    /// A run (`label`: `frozen p=0.01 rep 3`, in a sweep with its point before it) was
    /// trained and stored: the `done`-th of `total` to train in this process.
    fn finished(&self, _label: &str, _record: &RunRecord, _done: usize, _total: usize) {}
    /// Every run of this process is trained and stored.
    fn trained(&self) {}
}

/// [`StudyEvents`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl StudyEvents for Quiet {}

/// Runs the study into the workspace's results directory: records that fail verification
/// are set aside, finished runs are kept, the rest is trained and stored as each finishes,
/// and the report is written once the whole plan is stored.
///
/// `config`'s training settings must be the workspace's but for the dataset and backend,
/// which are the workspace's ([`Workspace::study_config`]).
pub fn run_study(
    ws: &Workspace,
    config: &StudyConfig,
    exec: &Execution,
    events: &dyn StudyEvents,
) -> Result<Outcome> {
    let started = Instant::now();
    let config = &ws.study_config(config)?;
    for moved in ws.set_aside_untrusted()? {
        events.set_aside(&moved);
    }
    ws.store.write_study(config)?;
    let all = plan(config);
    let every_stack = stacks(&all, exec.stack);
    let mine = match exec.shard {
        Some(shard) => shard.select(&every_stack),
        None => every_stack,
    };
    let (todo, todo_runs) = unfinished(ws, &mine)?;
    let pretrain_stacks = pretrain_stacks(&todo, exec.stack, config);
    let pretrainings = pretrain_stacks
        .iter()
        .flatten()
        .filter(|&&r| ws.store.finished_pretrain(r).ok().flatten().is_none())
        .count();
    let runs: usize = mine.iter().map(Vec::len).sum();
    events.planned(&PlanSummary {
        runs,
        finished: runs - todo_runs,
        pretrainings,
        stack: exec.stack,
        shard: exec.shard,
        points: 1,
        shared: 0,
    });
    let flat: Vec<&PlannedRun> = todo.iter().flatten().collect();
    let (split, estimate) = settle_split(exec, !flat.is_empty(), |split| {
        let costs = split.costs_at_once(|| measure_costs(ws, exec.stack))?;
        Ok(estimate_with(costs, ws, &flat, pretrainings).for_split(split))
    })?;
    if let Some(estimate) = estimate.filter(|_| exec.estimate) {
        events.estimated(&estimate);
    }

    let backbones = pretrain(ws, &pretrain_stacks, split, events)?;
    let done = AtomicUsize::new(0);
    parallel(&todo, split, |stack: &Vec<PlannedRun>| {
        let Some(first) = stack.first() else {
            return Ok(());
        };
        let members: Vec<_> = stack
            .iter()
            .map(|run| {
                let pretrained = match run.protocol.backbone {
                    BackboneStart::Pretrained => backbones
                        .iter()
                        .find(|(rep, _, _)| *rep == config.training.pretraining_of(run.repetition))
                        .map(|(_, b, seed)| (b, *seed)),
                    BackboneStart::Fresh => None,
                };
                (run.repetition, pretrained)
            })
            .collect();
        let mut observer = events.started(&stack_label(stack), ws.settings().iterations);
        let records = ws.run_stack(&first.protocol, first.proportion, &members, &mut *observer)?;
        drop(observer);
        for (run, finished) in stack.iter().zip(records) {
            if !finished.reused {
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                events.finished(&run.label(), &finished.record, n, todo_runs);
            }
        }
        Ok(())
    })?;
    events.trained();

    // Every run of this process is stored by now (a failure returned above); a shard's
    // study is complete only once the other shards' runs are stored too.
    let complete = exec.shard.is_none()
        || all.iter().all(|r| {
            matches!(
                ws.finished_run(&r.protocol, r.proportion, r.repetition),
                Ok(Some(_))
            )
        });
    if !complete {
        return Ok(Outcome::ShardDone);
    }
    let results = StudyResults::read(ws.store.root())?;
    let wall = Some(started.elapsed().as_secs_f64());
    let command = &ws.provenance.command;
    let ctx = report_context(config, command, wall);
    Ok(Outcome::Complete(write_report(
        ws.store.root(),
        &results,
        &ctx,
    )?))
}

/// The report's context for a configuration run by `command` (the machines that trained its
/// records are the records' to say).
pub fn report_context(
    config: &StudyConfig,
    command: &str,
    wall_seconds: Option<f64>,
) -> ReportContext {
    ReportContext {
        label: format!(
            "Preset `{}`, backend `{}`.",
            config.preset, config.training.backend
        ),
        command: command.to_owned(),
        wall_seconds,
    }
}

/// The stacks with an unfinished run, and how many runs are unfinished.
fn unfinished(ws: &Workspace, stacks: &[Vec<PlannedRun>]) -> Result<(Vec<Vec<PlannedRun>>, usize)> {
    let mut todo = Vec::new();
    let mut runs = 0;
    for stack in stacks {
        let mut missing = 0;
        for run in stack {
            if ws
                .finished_run(&run.protocol, run.proportion, run.repetition)?
                .is_none()
            {
                missing += 1;
            }
        }
        if missing > 0 {
            todo.push(stack.clone());
            runs += missing;
        }
    }
    Ok((todo, runs))
}

/// The pretrainings the unfinished stacks of `config` need (each run's, as
/// [`transfer_records::TrainingSettings::pretraining_of`] says), stacked like runs: repetitions in blocks of
/// `stack`, whole blocks.
pub(crate) fn pretrain_stacks(
    todo: &[Vec<PlannedRun>],
    stack: usize,
    config: &StudyConfig,
) -> Vec<Vec<u32>> {
    let (block, repetitions) = (stack.max(1) as u32, config.repetitions);
    let mut blocks: Vec<u32> = todo
        .iter()
        .flatten()
        .filter(|r| r.protocol.needs_pretraining())
        .map(|r| config.training.pretraining_of(r.repetition) / block)
        .collect();
    blocks.sort_unstable();
    blocks.dedup();
    blocks
        .iter()
        .map(|b| (b * block..((b + 1) * block).min(repetitions)).collect())
        .collect()
}

/// The pretrained backbones of `stacks`, with their repetitions and seeds: loaded, or trained
/// in parallel by `split`'s jobs.
fn pretrain(
    ws: &Workspace,
    stacks: &[Vec<u32>],
    split: Split,
    events: &dyn StudyEvents,
) -> Result<Vec<(u32, Backbone, u64)>> {
    let backbones: Mutex<Vec<(u32, Backbone, u64)>> = Mutex::new(Vec::new());
    parallel(stacks, split, |reps: &Vec<u32>| {
        let label = match reps.as_slice() {
            [rep] => format!("pretrain rep {rep}"),
            [first, .., last] => format!("pretrain reps {first}-{last}"),
            [] => return Ok(()),
        };
        let mut observer = events.started(&label, ws.settings().pretrain_iterations);
        let pretrained = ws.pretrained_stack(reps, &mut *observer)?;
        drop(observer);
        for (rep, (backbone, finished)) in reps.iter().zip(pretrained) {
            if !finished.reused {
                events.pretrained(&format!("pretrain rep {rep}"), &finished.record);
            }
            backbones
                .lock()
                .map_err(|_| StudyError::WorkerFailed)?
                .push((*rep, backbone, finished.record.seed));
        }
        Ok(())
    })?;
    backbones.into_inner().map_err(|_| StudyError::WorkerFailed)
}

/// Runs `work` on every item, `split.jobs` items at a time, each job on a thread of its own
/// and, where the split gives jobs pools of their own, in its pool (the kernels and burn's
/// operations spread their work over the pool they run in). The first error stops the jobs
/// from starting new items and is returned.
pub(crate) fn parallel<T: Sync>(
    items: &[T],
    split: Split,
    work: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<StudyError>> = Mutex::new(None);
    let fail = |e: StudyError| {
        if let Ok(mut slot) = failure.lock() {
            slot.get_or_insert(e);
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..split.jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                let pool = match split.job_pool() {
                    Ok(pool) => pool,
                    Err(e) => return fail(e),
                };
                loop {
                    if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { return };
                    let result = match &pool {
                        Some(pool) => pool.install(|| work(item)),
                        None => work(item),
                    };
                    if let Err(e) = result {
                        fail(e);
                    }
                }
            });
        }
    });
    match failure.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(_) => Err(StudyError::WorkerFailed),
    }
}

/// Measures a few steps on the workspace's device: the costs of its runs, stacked `stack`
/// at a time.
pub(crate) fn measure_costs(ws: &Workspace, stack: usize) -> Result<Costs> {
    let timing = Timing {
        steps: 3,
        eval_chunk: 100,
        eval_passes: 1,
    };
    Costs::measure(
        &ws.device,
        &ws.target,
        &ws.settings().network,
        stack,
        ws.compute,
        timing,
    )
}

/// The time one job needs for `todo` and `pretrainings` of the workspace's settings at
/// `costs`.
pub(crate) fn estimate_with(
    costs: Costs,
    ws: &Workspace,
    todo: &[&PlannedRun],
    pretrainings: usize,
) -> Estimate {
    let seconds = study_seconds(
        costs,
        Sizes::of(&ws.source, &ws.target),
        ws.settings(),
        pretrainings,
        todo.iter()
            .map(|r| (r.protocol.freeze_backbone, r.proportion)),
    );
    Estimate {
        seconds,
        split: Split::shared(1),
        others: Vec::new(),
        step: costs.step,
        frozen_step: costs.frozen_step,
        eval_images_per_s: 1.0 / costs.eval_image,
        disturbed: costs.disturbed,
    }
}
