//! Running a sweep: one plan over every point at once (resumable, in parallel, sharded), no
//! run trained twice, then each point's report and the sweep's.
//!
//! ```text
//! DIR/sweep-config.json          the sweep last run into DIR (its base study and axes)
//! DIR/pretrain-iters=300/        a point: an ordinary results directory
//! DIR/sweep.csv, sweep.md, sweep.json, report.html, figures/sweep-*   the sweep's report
//! ```
//!
//! A run whose settings give it the same numbers in several points (the settings it reads
//! are the same there: [`TrainingSettings::shared_key`](transfer_records::TrainingSettings::shared_key))
//! is trained once, in the first of them in the grid's order, and copied, verified, into the
//! others ([`ResultsDir::adopt_run`](transfer_records::ResultsDir::adopt_run)); so is a
//! pretraining. Each point stays a study of its own.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use transfer_data::Dataset;
use transfer_model::Backbone;
use transfer_records::{
    BackboneStart, PretrainRecord, RecordKind, ResultsDir, RunRecord, StoreError, StudyConfig,
};
use transfer_report::{
    ReportContext, StudyResults, SweepResults, write_report, write_sweep_report,
};

use crate::backend::BackendDevice;
use crate::cost::Costs;
use crate::error::{Result, StudyError};
use crate::plan::{PlannedRun, plan, stack_label, stacks};
use crate::split::Split;
use crate::study::{
    Estimate, Execution, PlanSummary, StudyEvents, estimate_with, measure_costs, parallel,
    pretrain_stacks, report_context, settle_split,
};
use crate::sweep::{Sweep, SweepPoint};
use crate::workspace::{Workspace, bind_settings, feasible_tasks};

/// The file in a sweep's directory that holds the sweep last run into it.
pub const SWEEP_FILE: &str = "sweep-config.json";

/// A point of a sweep and the workspace of its results directory.
pub struct PointWorkspace {
    /// The point.
    pub point: SweepPoint,
    /// Its workspace (`DIR/NAME`).
    pub ws: Workspace,
}

/// A sweep bound to a dataset, a device and a directory: a workspace per point.
pub struct SweepWorkspace {
    root: PathBuf,
    sweep: Sweep,
    /// The points, in the grid's order. Their workspaces' `compute`, `save_models` and
    /// provenance are the caller's to set, as a study's.
    pub points: Vec<PointWorkspace>,
}

impl SweepWorkspace {
    /// Binds every point of `sweep` to `dataset` and `backend` under `root`, after checking
    /// that every point can be trained on this data and that every point directory already
    /// there holds that point's settings: a sweep refused creates no directory.
    pub fn new(
        dataset: &Dataset,
        backend: BackendDevice,
        root: &Path,
        sweep: &Sweep,
    ) -> Result<SweepWorkspace> {
        let mut base = sweep.base().clone();
        base.training = bind_settings(&base.training, dataset, &backend);
        let sweep = sweep.with_base(base)?;
        let points = sweep.points();
        let in_point = |point: &SweepPoint| {
            let name = point.name.clone();
            move |e: StudyError| StudyError::Config(format!("sweep point {name}: {e}"))
        };
        for point in &points {
            let config = &point.config;
            feasible_tasks(dataset, &config.training, &config.proportions)
                .map_err(in_point(point))?;
            let dir = root.join(&point.name);
            if dir.join("settings.json").exists() {
                let existing = ResultsDir::open(&dir)?;
                if existing.settings() != &config.training {
                    // Names the settings that differ.
                    ResultsDir::create(&dir, &config.training)?;
                }
            }
        }
        let points = points
            .into_iter()
            .map(|point| {
                let config = &point.config;
                let ws = Workspace::new(
                    dataset,
                    backend.clone(),
                    &root.join(&point.name),
                    &config.training,
                    &config.proportions,
                )?;
                Ok(PointWorkspace { point, ws })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SweepWorkspace {
            root: root.to_owned(),
            sweep,
            points,
        })
    }

    /// Adopts into every point each verified record of the results directory `from` (or of
    /// each point of the sweep directory `from`) whose settings give it that point's numbers
    /// ([`ResultsDir::adopt_run`], provenance naming where it was trained): the runs a point
    /// plans and lacks, and the pretrainings its runs start from. Records made with other
    /// settings, and records that fail verification, are left where they are.
    pub fn reuse(&self, from: &Path) -> Result<Reused> {
        let dirs: Vec<PathBuf> = if from.join(SWEEP_FILE).exists() {
            read_sweep(from)?
                .points()
                .into_iter()
                .map(|p| from.join(p.name))
                .filter(|dir| dir.join("settings.json").exists())
                .collect()
        } else {
            vec![from.to_owned()]
        };
        let mut reused = Reused::default();
        for dir in dirs {
            let source = ResultsDir::open(&dir)?;
            for p in &self.points {
                reused.pretrainings += adopt_pretrainings(&p.ws, &p.point.config, &source)?;
                for run in plan(&p.point.config) {
                    let (protocol, proportion, rep) =
                        (&run.protocol, run.proportion, run.repetition);
                    if p.ws.finished_run(protocol, proportion, rep)?.is_some() {
                        continue;
                    }
                    let path = source.run_path(&protocol.name, proportion, rep);
                    let Ok(Some(record)) = source.finished_run(&path) else {
                        continue;
                    };
                    if record.protocol != *protocol {
                        continue;
                    }
                    match p.ws.store.adopt_run(&source, &record) {
                        Ok(_) => reused.runs += 1,
                        Err(StoreError::NotShared { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(reused)
    }

    /// The sweep's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The sweep, its settings bound to the dataset and device.
    pub fn sweep(&self) -> &Sweep {
        &self.sweep
    }
}

/// What [`SweepWorkspace::reuse`] adopted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reused {
    /// Run records copied into points.
    pub runs: usize,
    /// Pretrained backbones copied into points.
    pub pretrainings: usize,
}

/// Adopts into `ws` the pretrainings of `source` that the runs of `config` start from and `ws`
/// lacks, where their settings are the same; returns how many.
fn adopt_pretrainings(ws: &Workspace, config: &StudyConfig, source: &ResultsDir) -> Result<usize> {
    if !config.needs_pretraining() {
        return Ok(0);
    }
    let mut reps: Vec<u32> = (0..config.repetitions)
        .map(|r| config.training.pretraining_of(r))
        .collect();
    reps.dedup();
    let mut adopted = 0;
    for rep in reps {
        if ws.store.finished_pretrain(rep)?.is_some() {
            continue;
        }
        match ws.store.adopt_pretrain(source, rep) {
            Ok(Some(_)) => adopted += 1,
            Ok(None) => {}
            Err(StoreError::NotShared { .. }) => return Ok(adopted),
            // A record or weights there that fail verification stay there.
            Err(
                StoreError::Invalid { .. }
                | StoreError::Parse { .. }
                | StoreError::Untrusted { .. }
                | StoreError::Mismatch { .. },
            ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(adopted)
}

/// How a sweep ended in this process.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepOutcome {
    /// Every point is complete; the sweep's report was written: these files.
    Complete(Vec<PathBuf>),
    /// Some points lack runs (other shards' or a stopped process's): `complete` of `points`
    /// are complete, and have their reports.
    Incomplete {
        /// Points whose runs are all stored.
        complete: usize,
        /// Points in the grid.
        points: usize,
    },
}

/// A stack of runs of one point, trained in that point's directory.
#[derive(Debug, Clone)]
struct Unit {
    point: usize,
    stack: Vec<PlannedRun>,
}

/// Which points share which records.
struct Sharing<'a> {
    points: &'a [PointWorkspace],
}

impl Sharing<'_> {
    fn config(&self, p: usize) -> &StudyConfig {
        &self.points[p].point.config
    }

    fn store(&self, p: usize) -> &ResultsDir {
        &self.points[p].ws.store
    }

    /// The points holding the run `run` of point `p` with the same numbers, in the grid's
    /// order (`p` among them).
    fn run_peers(&self, p: usize, run: &PlannedRun) -> Vec<usize> {
        let kind = RecordKind::Run(&run.protocol, run.repetition);
        let key = |q: usize| self.points[q].ws.settings().shared_key(kind);
        let own = key(p);
        (0..self.points.len())
            .filter(|&q| {
                let config = self.config(q);
                config.protocols.contains(&run.protocol)
                    && config.proportions.contains(&run.proportion)
                    && run.repetition < config.repetitions
                    && key(q) == own
            })
            .collect()
    }

    /// The point whose directory trains the run `run` of point `p`: the first that holds it.
    fn run_owner(&self, p: usize, run: &PlannedRun) -> usize {
        self.run_peers(p, run).first().copied().unwrap_or(p)
    }

    /// Copies the run `record` of point `p`, just stored there, into every other point that
    /// holds it and lacks it; returns how many.
    fn share_run(&self, p: usize, run: &PlannedRun, record: &RunRecord) -> Result<usize> {
        let mut copied = 0;
        for q in self.run_peers(p, run) {
            let peer = &self.points[q].ws;
            if q != p
                && peer
                    .finished_run(&run.protocol, run.proportion, run.repetition)?
                    .is_none()
            {
                self.store(q).adopt_run(self.store(p), record)?;
                copied += 1;
            }
        }
        Ok(copied)
    }

    /// The points needing pretrainings whose numbers are point `p`'s, in order.
    fn pretrain_peers(&self, p: usize) -> Vec<usize> {
        let key = |q: usize| {
            self.points[q]
                .ws
                .settings()
                .shared_key(RecordKind::Pretraining)
        };
        let own = key(p);
        (0..self.points.len())
            .filter(|&q| self.config(q).needs_pretraining() && key(q) == own)
            .collect()
    }

    /// The point whose directory trains point `p`'s pretrainings.
    fn pretrain_owner(&self, p: usize) -> usize {
        self.pretrain_peers(p).first().copied().unwrap_or(p)
    }

    /// The record of a run of point `p`: stored there, else copied there from the first
    /// peer that holds it (and whether it was copied); `None` when no peer holds it.
    fn run_record(&self, p: usize, run: &PlannedRun) -> Result<Option<(RunRecord, bool)>> {
        let ws = &self.points[p].ws;
        if let Some(record) = ws.finished_run(&run.protocol, run.proportion, run.repetition)? {
            return Ok(Some((record, false)));
        }
        for q in self.run_peers(p, run) {
            if q == p {
                continue;
            }
            let peer = &self.points[q].ws;
            if let Some(record) =
                peer.finished_run(&run.protocol, run.proportion, run.repetition)?
            {
                let adopted = self.store(p).adopt_run(self.store(q), &record)?;
                return Ok(Some((adopted, true)));
            }
        }
        Ok(None)
    }

    /// The pretraining of `repetition` of point `p`: stored there, else copied there from
    /// the first peer that holds it (and whether it was copied).
    fn pretrain_record(&self, p: usize, repetition: u32) -> Result<Option<(PretrainRecord, bool)>> {
        if let Some(record) = self.store(p).finished_pretrain(repetition)? {
            return Ok(Some((record, false)));
        }
        for q in self.pretrain_peers(p) {
            if q == p {
                continue;
            }
            if let Some(record) = self.store(p).adopt_pretrain(self.store(q), repetition)? {
                return Ok(Some((record, true)));
            }
        }
        Ok(None)
    }

    /// Copies into every point each record a peer holds and it lacks; returns how many.
    fn spread(&self) -> Result<usize> {
        let mut copied = 0;
        for p in 0..self.points.len() {
            let config = self.config(p);
            if config.needs_pretraining() {
                for rep in 0..config.repetitions {
                    if let Some((_, true)) = self.pretrain_record(p, rep)? {
                        copied += 1;
                    }
                }
            }
            for run in plan(config) {
                if let Some((_, true)) = self.run_record(p, &run)? {
                    copied += 1;
                }
            }
        }
        Ok(copied)
    }

    /// Whether every planned run of point `p` is stored there.
    fn complete(&self, p: usize) -> Result<bool> {
        let ws = &self.points[p].ws;
        for run in plan(self.config(p)) {
            if ws
                .finished_run(&run.protocol, run.proportion, run.repetition)?
                .is_none()
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Runs the sweep: records that fail verification are set aside in every point, every
/// point's configuration is stored, the stacks of the whole grid form one plan (each stack
/// once, in the first point that holds its runs; `exec.shard` takes a slice of it), the
/// unfinished ones are trained, and every record is copied into each other point that holds
/// it. Each complete point gets its report; once all are complete, the sweep gets its own.
pub fn run_sweep(
    sw: &SweepWorkspace,
    exec: &Execution,
    events: &dyn StudyEvents,
) -> Result<SweepOutcome> {
    for p in &sw.points {
        for moved in p.ws.set_aside_untrusted()? {
            events.set_aside(&moved);
        }
        p.ws.store
            .write_study(&p.ws.study_config(&p.point.config)?)?;
    }
    transfer_records::write_json(&sw.root.join(SWEEP_FILE), &sw.sweep)?;
    let share = Sharing { points: &sw.points };

    // The whole grid's stacks, each in the point that trains it: the first to hold one of
    // its runs (a stack whose runs are all another point's is that point's to train).
    let mut units = Vec::new();
    let mut shared = 0;
    for (p, point) in sw.points.iter().enumerate() {
        for stack in stacks(&plan(&point.point.config), exec.stack) {
            let owned = stack.iter().filter(|run| share.run_owner(p, run) == p);
            if owned.count() > 0 {
                units.push(Unit { point: p, stack });
            } else {
                shared += stack.len();
            }
        }
    }
    let mine = match exec.shard {
        Some(shard) => shard.select(&units),
        None => units,
    };
    let mut todo = Vec::new();
    let (mut runs, mut todo_runs) = (0, 0);
    for unit in mine {
        runs += unit.stack.len();
        let mut missing = 0;
        for run in &unit.stack {
            if share.run_record(unit.point, run)?.is_none() {
                missing += 1;
            }
        }
        if missing > 0 {
            todo_runs += missing;
            todo.push(unit);
        }
    }

    // The pretrainings those stacks need, each block in the point that trains it.
    let mut blocks: Vec<(usize, Vec<u32>)> = Vec::new();
    for unit in &todo {
        let owner = share.pretrain_owner(unit.point);
        // The backbones the unit's own point starts from, trained in the owner's directory.
        let config = &sw.points[unit.point].point.config;
        for block in pretrain_stacks(std::slice::from_ref(&unit.stack), exec.stack, config) {
            if !blocks.contains(&(owner, block.clone())) {
                blocks.push((owner, block));
            }
        }
    }
    let mut pretrainings = 0;
    for (owner, block) in &blocks {
        for &rep in block {
            if share.pretrain_record(*owner, rep)?.is_none() {
                pretrainings += 1;
            }
        }
    }
    events.planned(&PlanSummary {
        runs,
        finished: runs - todo_runs,
        pretrainings,
        stack: exec.stack,
        shard: exec.shard,
        points: sw.points.len(),
        shared,
    });
    let (split, estimate) = settle_split(exec, !todo.is_empty(), |split| {
        estimate(sw, &todo, &blocks, exec.stack, split)
    })?;
    if let Some(estimate) = estimate.filter(|_| exec.estimate) {
        events.estimated(&estimate);
    }

    let backbones = pretrain(sw, &blocks, split, events)?;
    let done = AtomicUsize::new(0);
    parallel(&todo, split, |unit: &Unit| {
        let point = &sw.points[unit.point];
        let owner = share.pretrain_owner(unit.point);
        let members: Vec<_> = unit
            .stack
            .iter()
            .map(|run| {
                let pretrained = match run.protocol.backbone {
                    BackboneStart::Pretrained => {
                        let pretraining = point.ws.settings().pretraining_of(run.repetition);
                        backbones
                            .iter()
                            .find(|(q, rep, _, _)| *q == owner && *rep == pretraining)
                            .map(|(_, _, b, seed)| (b, *seed))
                    }
                    BackboneStart::Fresh => None,
                };
                (run.repetition, pretrained)
            })
            .collect();
        let label = format!("{}: {}", point.point.name, stack_label(&unit.stack));
        let mut observer = events.started(&label, point.ws.settings().iterations);
        let first = &unit.stack[0];
        let records =
            point
                .ws
                .run_stack(&first.protocol, first.proportion, &members, &mut *observer)?;
        drop(observer);
        for (run, finished) in unit.stack.iter().zip(records) {
            if !finished.reused {
                // Shared at once, so that an interrupted sweep's points hold what exists.
                share.share_run(unit.point, run, &finished.record)?;
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                let label = format!("{}: {}", point.point.name, run.label());
                events.finished(&label, &finished.record, n, todo_runs);
            }
        }
        Ok(())
    })?;
    events.trained();

    share.spread()?;
    let mut complete = 0;
    for (p, point) in sw.points.iter().enumerate() {
        if share.complete(p)? {
            complete += 1;
            let results = StudyResults::read(point.ws.store.root())?;
            let ctx = report_context(&point.point.config, &point.ws.provenance.command, None);
            write_report(point.ws.store.root(), &results, &ctx)?;
        }
    }
    if complete < sw.points.len() {
        return Ok(SweepOutcome::Incomplete {
            complete,
            points: sw.points.len(),
        });
    }
    let results = sweep_results(&sw.root)?;
    let command = sw
        .points
        .first()
        .map(|p| p.ws.provenance.command.as_str())
        .unwrap_or_default();
    let ctx = sweep_report_context(&sw.sweep, command);
    Ok(SweepOutcome::Complete(write_sweep_report(
        &sw.root, &results, &ctx,
    )?))
}

/// The sweep stored in `root` and every point's results, for its report: points missing
/// from the directory are read as empty (the report says they lack runs).
pub fn sweep_results(root: &Path) -> Result<SweepResults> {
    crate::sweep::results(&read_sweep(root)?, root)
}

/// The sweep last run into `root`, from its `sweep-config.json`.
pub fn read_sweep(root: &Path) -> Result<Sweep> {
    let path = root.join(SWEEP_FILE);
    if !path.exists() {
        return Err(StudyError::Config(format!(
            "{} is not a sweep's directory (no {SWEEP_FILE})",
            root.display()
        )));
    }
    Ok(transfer_records::read_json(&path)?)
}

/// What a sweep's report says of where it comes from: its preset, axes and backend, and the
/// command that ran it (empty when the report is regenerated from the records).
pub fn sweep_report_context(sweep: &Sweep, command: &str) -> ReportContext {
    let axes: Vec<String> = sweep
        .axes()
        .iter()
        .map(|a| format!("`{}`", a.setting()))
        .collect();
    ReportContext {
        label: format!(
            "Sweep of preset `{}` over {}, backend `{}`.",
            sweep.base().preset,
            axes.join(" and "),
            sweep.base().training.backend,
        ),
        command: command.to_owned(),
        wall_seconds: None,
    }
}

/// The pretrained backbones of `blocks`, each with its point, repetition and seed: loaded,
/// or trained in parallel by `exec`'s jobs.
fn pretrain(
    sw: &SweepWorkspace,
    blocks: &[(usize, Vec<u32>)],
    split: Split,
    events: &dyn StudyEvents,
) -> Result<Vec<(usize, u32, Backbone, u64)>> {
    let backbones = Mutex::new(Vec::new());
    parallel(blocks, split, |(p, reps): &(usize, Vec<u32>)| {
        let point = &sw.points[*p];
        let label = match reps.as_slice() {
            [rep] => format!("{}: pretrain rep {rep}", point.point.name),
            [first, .., last] => format!("{}: pretrain reps {first}-{last}", point.point.name),
            [] => return Ok(()),
        };
        let mut observer = events.started(&label, point.ws.settings().pretrain_iterations);
        let pretrained = point.ws.pretrained_stack(reps, &mut *observer)?;
        drop(observer);
        for (rep, (backbone, finished)) in reps.iter().zip(pretrained) {
            if !finished.reused {
                let label = format!("{}: pretrain rep {rep}", point.point.name);
                events.pretrained(&label, &finished.record);
            }
            backbones
                .lock()
                .map_err(|_| StudyError::WorkerFailed)?
                .push((*p, *rep, backbone, finished.record.seed));
        }
        Ok(())
    })?;
    backbones.into_inner().map_err(|_| StudyError::WorkerFailed)
}

/// The time the stacks and pretrainings to train need with `split`, its costs measured once
/// per network shape and target task.
fn estimate(
    sw: &SweepWorkspace,
    todo: &[Unit],
    blocks: &[(usize, Vec<u32>)],
    stack: usize,
    split: Split,
) -> Result<Estimate> {
    let mut measured: Vec<(String, Costs)> = Vec::new();
    let mut total: Option<Estimate> = None;
    for (p, point) in sw.points.iter().enumerate() {
        let runs: Vec<&PlannedRun> = todo
            .iter()
            .filter(|u| u.point == p)
            .flat_map(|u| &u.stack)
            .collect();
        let pretrainings: usize = blocks
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, b)| b.len())
            .sum();
        if runs.is_empty() && pretrainings == 0 {
            continue;
        }
        let s = point.ws.settings();
        let shape = format!("{:?} {:?}", s.network, s.target_classes);
        let costs = match measured.iter().find(|(k, _)| *k == shape) {
            Some((_, costs)) => *costs,
            None => {
                let costs = split.costs_at_once(|| measure_costs(&point.ws, stack))?;
                measured.push((shape, costs));
                costs
            }
        };
        let one = estimate_with(costs, &point.ws, &runs, pretrainings);
        total = Some(match total {
            None => one,
            Some(t) => Estimate {
                seconds: t.seconds + one.seconds,
                disturbed: t.disturbed || one.disturbed,
                ..t
            },
        });
    }
    total
        .map(|t| t.for_split(split))
        .ok_or(StudyError::Internal("an estimate of no work"))
}
