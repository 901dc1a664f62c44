//! A sweep's analysis: every point's cells side by side, each axis's effect tested between
//! neighbouring values, where the spread comes from along a `vary` axis, `sweep.csv`, and the
//! tables its pages show (`sweep_md`, `sweep_html` write them; `sweep_figures` draws it).

use std::fmt::Write;

use serde::Serialize;
use transfer_records::RunRecord;

use crate::StudyResults;
use crate::analysis::{Analysis, Cell, Gain};
use crate::stats::{Difference, holm, paired, unpaired};
use crate::tidy::{RUNS_HEADER, runs_csv};
use transfer_stats::{Decomposition, Spread, decompose, repetitions_for_half_width, spread};

/// One axis of a sweep, as its report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepAxis {
    /// The setting's name (`pretrain-iters`, `finetune.learning-rate`).
    pub name: String,
    /// Its values as written in the points' names, in the axis's order.
    pub labels: Vec<String>,
    /// The values as numbers, where every one is.
    pub values: Option<Vec<f64>>,
    /// Whether its figures use a log scale (numbers spanning decades).
    pub log_scale: bool,
}

/// One point of a sweep and its results.
#[derive(Debug, Clone)]
pub struct SweepPointResults {
    /// Its directory's name.
    pub name: String,
    /// The index of its value on each axis.
    pub at: Vec<usize>,
    /// What its directory holds (`None`: no results directory yet).
    pub results: Option<StudyResults>,
    /// The runs its study plans.
    pub planned_runs: usize,
}

/// A sweep's axes and every point's results: what its report is made from.
#[derive(Debug, Clone)]
pub struct SweepResults {
    /// The axes, in order.
    pub axes: Vec<SweepAxis>,
    /// The points, the first axis varying slowest.
    pub points: Vec<SweepPointResults>,
    /// The protocols of the sweep's study, in table order.
    pub protocols: Vec<String>,
    /// Its proportions.
    pub proportions: Vec<f64>,
}

/// A point's numbers in the sweep's report.
#[derive(Debug, Clone, Serialize)]
pub struct PointSummary {
    /// Its directory's name.
    pub name: String,
    /// Its value on each axis, as written.
    pub values: Vec<String>,
    /// Runs its records hold.
    pub runs: usize,
    /// Runs its study plans.
    pub planned_runs: usize,
    /// Repetitions its study plans in every cell (absent without its configuration).
    pub planned_repetitions: Option<u32>,
    /// Its cells (protocol-major), as its own report gives them.
    pub cells: Vec<Cell>,
    /// Each protocol's gain over raw there.
    pub gains: Vec<Gain>,
}

/// The change of one protocol's final accuracy at one proportion between two neighbouring
/// values of an axis, the other axes held where `context` says.
#[derive(Debug, Clone, Serialize)]
pub struct AxisStep {
    /// The protocol.
    pub protocol: String,
    /// The proportion.
    pub proportion: f64,
    /// The other axes' values (`NAME=V`, joined by commas; empty for a one-axis sweep).
    pub context: String,
    /// The axis's value compared from.
    pub from: String,
    /// The next value.
    pub to: String,
    /// Repetitions compared (pairs where paired).
    pub n: usize,
    /// Whether the runs are paired by design (same repetitions, same seeds).
    pub paired: bool,
    /// Whether both values hold the very same runs (the setting is not read by them): no test.
    pub same_runs: bool,
    /// Mean final accuracy at `to` minus at `from` (paired: the mean of the differences).
    pub difference: Option<f64>,
    /// Its 95% interval (paired, or Welch's).
    pub ci95_low: Option<f64>,
    /// Upper end.
    pub ci95_high: Option<f64>,
    /// Two-sided p-value of the difference, before correction.
    pub p: Option<f64>,
    /// Holm-adjusted over the axis's tested steps.
    pub p_holm: Option<f64>,
}

/// One axis's effect: every step between neighbouring values, Holm-corrected together.
#[derive(Debug, Clone, Serialize)]
pub struct AxisEffect {
    /// The axis.
    pub axis: String,
    /// Its steps, by context, protocol, proportion and value.
    pub steps: Vec<AxisStep>,
}

/// The name of the axis whose values are sources of randomness.
pub const VARY_AXIS: &str = "vary";
/// The value of that axis that varies every source the settings can vary.
pub const ALL_SOURCES: &str = "all";

/// Where one protocol's spread at one proportion comes from: the standard deviation of its
/// final accuracy at every value of the `vary` axis, each source alone against all together.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSpread {
    /// The protocol.
    pub protocol: String,
    /// The proportion.
    pub proportion: f64,
    /// The other axes' values (`NAME=V`, joined by commas; empty for a one-axis sweep).
    pub context: String,
    /// Each value of the axis (`init`, `init+order`, `all`) with the spread of its runs
    /// (absent below 2 runs).
    pub values: Vec<(String, Option<Spread>)>,
    /// The values that name one source, set against `all`.
    pub decomposition: Decomposition,
    /// The test set's binomial standard error at the mean accuracy: the floor no number of
    /// repetitions removes (absent where the test set's size is unknown).
    pub test_se: Option<f64>,
    /// Each value of the axis with the repetitions whose 95% t-interval of the mean would be
    /// ±[`HALF_WIDTH_GOAL`] at its standard deviation (absent below 2 runs, or past
    /// [`MOST_REPETITIONS`]).
    pub repetitions_for_goal: Vec<(String, Option<u32>)>,
}

/// The half-width of a 95% interval of the mean final accuracy that the sweep's report sizes
/// repetitions for: half a point of accuracy.
pub const HALF_WIDTH_GOAL: f64 = 0.005;
/// The most repetitions the report sizes; past it, "more".
pub const MOST_REPETITIONS: u32 = 10_000;

/// Everything the sweep's report states.
#[derive(Debug, Clone, Serialize)]
pub struct SweepAnalysis {
    /// The axes.
    pub axes: Vec<SweepAxis>,
    /// The protocols, in table order.
    pub protocols: Vec<String>,
    /// The proportions.
    pub proportions: Vec<f64>,
    /// Every point, in the grid's order.
    pub points: Vec<PointSummary>,
    /// Each axis's effect.
    pub effects: Vec<AxisEffect>,
    /// Runs the records of all points hold, and that their studies plan.
    pub runs: usize,
    /// Planned runs of all points.
    pub planned_runs: usize,
    /// Whether every point holds every planned run.
    pub complete: bool,
    /// Whether every point poses the published task (its values are the reference lines).
    pub published: bool,
    /// Where the spread comes from, where an axis is `vary`: by context, protocol and
    /// proportion.
    pub spreads: Vec<SourceSpread>,
}

impl SweepAnalysis {
    /// The cell of `protocol` at `proportion` in point `p`.
    pub fn cell(&self, p: usize, protocol: &str, proportion: f64) -> Option<&Cell> {
        self.points[p]
            .cells
            .iter()
            .find(|c| c.protocol == protocol && c.proportion == proportion)
    }

    /// The gain of `protocol` over raw at `proportion` in point `p`.
    pub fn gain(&self, p: usize, protocol: &str, proportion: f64) -> Option<&Gain> {
        self.points[p]
            .gains
            .iter()
            .find(|g| g.protocol == protocol && g.proportion == proportion)
    }

    /// The index of the point at `at` on every axis.
    pub fn point_at(&self, at: &[usize]) -> Option<usize> {
        let mut index = 0;
        for (axis, &i) in self.axes.iter().zip(at) {
            if i >= axis.labels.len() {
                return None;
            }
            index = index * axis.labels.len() + i;
        }
        (index < self.points.len()).then_some(index)
    }

    /// The spreads by context and proportion, in the order they were found: each context's
    /// and proportion's, protocol by protocol.
    pub fn spread_groups(&self) -> Vec<(String, f64, Vec<&SourceSpread>)> {
        let mut groups: Vec<(String, f64, Vec<&SourceSpread>)> = Vec::new();
        for s in &self.spreads {
            match groups
                .iter_mut()
                .find(|(c, p, _)| *c == s.context && *p == s.proportion)
            {
                Some((_, _, members)) => members.push(s),
                None => groups.push((s.context.clone(), s.proportion, vec![s])),
            }
        }
        groups
    }

    /// Every combination of the other axes' values than `axis`, as value indices with
    /// `axis`'s left at 0, and its `NAME=V` description.
    pub fn contexts(&self, axis: usize) -> Vec<(Vec<usize>, String)> {
        let mut contexts = vec![(vec![0; self.axes.len()], Vec::new())];
        for (k, a) in self.axes.iter().enumerate() {
            if k == axis {
                continue;
            }
            contexts = contexts
                .into_iter()
                .flat_map(|(at, words): (Vec<usize>, Vec<String>)| {
                    (0..a.labels.len()).map(move |i| {
                        let mut at = at.clone();
                        at[k] = i;
                        let mut words = words.clone();
                        words.push(format!("{}={}", a.name, a.labels[i]));
                        (at, words)
                    })
                })
                .collect();
        }
        contexts
            .into_iter()
            .map(|(at, words)| (at, words.join(",")))
            .collect()
    }
}

/// A run's repetition, seed and final accuracy.
type Final = (u32, u64, f64);

/// The runs of a point that did not diverge, by repetition.
fn finals(runs: &[RunRecord], protocol: &str, proportion: f64) -> Vec<Final> {
    let mut out: Vec<Final> = runs
        .iter()
        .filter(|r| r.protocol.name == protocol && r.proportion == proportion)
        .filter(|r| r.diverged_at.is_none())
        .map(|r| (r.repetition, r.seed, r.final_accuracy))
        .collect();
    out.sort_by_key(|r| r.0);
    out
}

/// The step from `a` to `b`: paired over the repetitions both hold when every such pair has
/// the same seed, Welch's otherwise; no test when the runs are the same.
fn step(a: &[Final], b: &[Final]) -> (usize, bool, bool, Option<Difference>) {
    let pairs: Vec<(&Final, &Final)> = a
        .iter()
        .filter_map(|x| b.iter().find(|y| y.0 == x.0).map(|y| (x, y)))
        .collect();
    let is_paired = !pairs.is_empty()
        && pairs.len() == a.len().min(b.len())
        && pairs.iter().all(|(x, y)| x.1 == y.1);
    if is_paired {
        let same = a.len() == b.len() && pairs.iter().all(|(x, y)| x.2.to_bits() == y.2.to_bits());
        let (from, to): (Vec<f64>, Vec<f64>) = pairs.iter().map(|(x, y)| (x.2, y.2)).unzip();
        let test = if same { None } else { paired(&to, &from) };
        return (pairs.len(), true, same, test);
    }
    let from: Vec<f64> = a.iter().map(|x| x.2).collect();
    let to: Vec<f64> = b.iter().map(|x| x.2).collect();
    (from.len().min(to.len()), false, false, unpaired(&to, &from))
}

/// Analyses a sweep: each point's own analysis, then each axis's steps.
pub fn analyse_sweep(results: &SweepResults) -> SweepAnalysis {
    let analyses: Vec<Option<Analysis>> = results
        .points
        .iter()
        .map(|p| p.results.as_ref().map(StudyResults::analysis))
        .collect();
    let points: Vec<PointSummary> = results
        .points
        .iter()
        .zip(&analyses)
        .map(|(p, analysis)| PointSummary {
            name: p.name.clone(),
            values: p
                .at
                .iter()
                .zip(&results.axes)
                .map(|(&i, a)| a.labels[i].clone())
                .collect(),
            runs: p.results.as_ref().map_or(0, |r| r.runs.len()),
            planned_runs: p.planned_runs,
            planned_repetitions: analysis.as_ref().and_then(|a| a.planned_repetitions),
            cells: analysis.as_ref().map_or_else(Vec::new, |a| a.cells.clone()),
            gains: analysis.as_ref().map_or_else(Vec::new, |a| a.gains.clone()),
        })
        .collect();
    let runs: usize = points.iter().map(|p| p.runs.min(p.planned_runs)).sum();
    let planned_runs: usize = points.iter().map(|p| p.planned_runs).sum();
    let mut sweep = SweepAnalysis {
        axes: results.axes.clone(),
        protocols: results.protocols.clone(),
        proportions: results.proportions.clone(),
        points,
        effects: Vec::new(),
        runs,
        planned_runs,
        complete: runs == planned_runs,
        published: results.points.iter().all(|p| {
            p.results
                .as_ref()
                .is_some_and(|r| r.settings.is_published_task())
        }),
        spreads: Vec::new(),
    };
    let empty = Vec::new();
    let runs_of = |p: usize| {
        results.points[p]
            .results
            .as_ref()
            .map_or(&empty, |r| &r.runs)
    };
    for (k, axis) in results.axes.iter().enumerate() {
        let mut steps = Vec::new();
        for (at, context) in sweep.contexts(k) {
            for protocol in &results.protocols {
                for &proportion in &results.proportions {
                    for i in 1..axis.labels.len() {
                        let (mut from, mut to) = (at.clone(), at.clone());
                        (from[k], to[k]) = (i - 1, i);
                        let (Some(a), Some(b)) = (sweep.point_at(&from), sweep.point_at(&to))
                        else {
                            continue;
                        };
                        let (fa, fb) = (
                            finals(runs_of(a), protocol, proportion),
                            finals(runs_of(b), protocol, proportion),
                        );
                        if fa.is_empty() || fb.is_empty() {
                            continue;
                        }
                        let (n, is_paired, same_runs, test) = step(&fa, &fb);
                        steps.push(AxisStep {
                            protocol: protocol.clone(),
                            proportion,
                            context: context.clone(),
                            from: axis.labels[i - 1].clone(),
                            to: axis.labels[i].clone(),
                            n,
                            paired: is_paired,
                            same_runs,
                            difference: if same_runs {
                                Some(0.0)
                            } else {
                                test.map(|t| t.difference)
                            },
                            ci95_low: test.map(|t| t.ci95_low),
                            ci95_high: test.map(|t| t.ci95_high),
                            p: test.map(|t| (2.0 * t.p_greater.min(1.0 - t.p_greater)).min(1.0)),
                            p_holm: None,
                        });
                    }
                }
            }
        }
        let tested: Vec<usize> = (0..steps.len())
            .filter(|&i| steps[i].p.is_some_and(f64::is_finite))
            .collect();
        let adjusted = holm(
            &tested
                .iter()
                .filter_map(|&i| steps[i].p)
                .collect::<Vec<_>>(),
        );
        for (&i, p) in tested.iter().zip(adjusted) {
            steps[i].p_holm = Some(p);
        }
        sweep.effects.push(AxisEffect {
            axis: axis.name.clone(),
            steps,
        });
    }
    if let Some(k) = results.axes.iter().position(|a| a.name == VARY_AXIS) {
        sweep.spreads = source_spreads(&sweep, k);
    }
    sweep
}

/// The spread at every value of the `vary` axis `k`, by context, protocol and proportion.
fn source_spreads(sweep: &SweepAnalysis, k: usize) -> Vec<SourceSpread> {
    let labels = &sweep.axes[k].labels;
    let mut out = Vec::new();
    for (at, context) in sweep.contexts(k) {
        for protocol in &sweep.protocols {
            for &proportion in &sweep.proportions {
                let cells: Vec<Option<&Cell>> = (0..labels.len())
                    .map(|i| {
                        let mut at = at.clone();
                        at[k] = i;
                        sweep.cell(sweep.point_at(&at)?, protocol, proportion)
                    })
                    .collect();
                if cells.iter().all(Option::is_none) {
                    continue;
                }
                let finals = |i: usize| cells[i].map_or(&[][..], |c| c.finals.as_slice());
                let single: Vec<(&str, &[f64])> = (0..labels.len())
                    .filter(|&i| !labels[i].contains('+') && labels[i] != ALL_SOURCES)
                    .map(|i| (labels[i].as_str(), finals(i)))
                    .collect();
                let all_at = labels.iter().position(|l| l == ALL_SOURCES);
                let all = all_at.map_or(&[][..], finals);
                let all_cell = all_at.and_then(|i| cells[i]);
                let values: Vec<(String, Option<Spread>)> = (0..labels.len())
                    .map(|i| (labels[i].clone(), spread(finals(i))))
                    .collect();
                let repetitions_for_goal = values
                    .iter()
                    .filter_map(|(label, spread)| {
                        let sd = spread.as_ref()?.sd;
                        let n = repetitions_for_half_width(sd, HALF_WIDTH_GOAL, MOST_REPETITIONS);
                        Some((label.clone(), n))
                    })
                    .collect();
                out.push(SourceSpread {
                    protocol: protocol.clone(),
                    proportion,
                    context: context.clone(),
                    values,
                    decomposition: decompose(&single, all),
                    test_se: all_cell
                        .or_else(|| cells.iter().flatten().next().copied())
                        .and_then(|c| c.test_se),
                    repetitions_for_goal,
                });
            }
        }
    }
    out
}

/// The exact header of `sweep.csv`: one column per axis, then `runs.csv`'s.
pub fn sweep_csv_header(axes: &[SweepAxis]) -> String {
    let mut names: Vec<&str> = axes.iter().map(|a| a.name.as_str()).collect();
    names.push(RUNS_HEADER);
    names.join(",")
}

/// `sweep.csv`: every run of every point, a column per axis before `runs.csv`'s columns.
pub fn sweep_csv(results: &SweepResults) -> String {
    let mut out = sweep_csv_header(&results.axes);
    out.push('\n');
    for point in &results.points {
        let Some(r) = &point.results else { continue };
        let prefix: Vec<&str> = point
            .at
            .iter()
            .zip(&results.axes)
            .map(|(&i, a)| a.labels[i].as_str())
            .collect();
        let prefix = prefix.join(",");
        for line in runs_csv(&r.runs, &results.protocols).lines().skip(1) {
            let _ = writeln!(out, "{prefix},{line}");
        }
    }
    out
}

fn p_text(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.001 => "< 0.001".into(),
        Some(p) => format!("{p:.3}"),
        None => "-".into(),
    }
}

fn signed(v: f64) -> String {
    format!("{v:+.4}")
}

/// What the tables of where the spread comes from show, in words.
pub(crate) const SPREAD_METHOD: &str = "Each value of the vary axis trains the same repetitions with only the named sources of randomness changing between them (the others held at repetition 0's draw). A cell is the standard deviation of the final test accuracy over those repetitions with its 95% chi-square interval. sqrt(sum of single): the standard deviation the single sources would give together if their variances added up, beside all's. Sum/all: the single sources' variances added up over the variance with every source varied (near 1: they add up; near the largest single share: one source alone gives about all the spread). Test SE: the test set's binomial standard error at the mean accuracy, sqrt(a (1 - a) / n), a floor that no number of repetitions removes.";

/// The table of where the spread comes from at one context and proportion.
pub(crate) struct SpreadTable {
    /// `p = P` and the context, if any.
    pub(crate) title: String,
    /// The columns: protocol, each value of the axis, sum/all, test SE.
    pub(crate) columns: Vec<Column>,
    /// A row per protocol.
    pub(crate) rows: Vec<Vec<String>>,
    /// A sentence per protocol: which source gives the most spread, and whether they add up.
    pub(crate) findings: Vec<String>,
}

/// `sd [low, high]`, or `-` without a spread.
fn sd_text(s: Option<&Spread>) -> String {
    s.map_or_else(
        || "-".to_owned(),
        |s| format!("{:.4} [{:.4}, {:.4}]", s.sd, s.sd_low, s.sd_high),
    )
}

/// The tables of where the spread comes from: one per context and proportion.
pub(crate) fn spread_tables(analysis: &SweepAnalysis) -> Vec<SpreadTable> {
    analysis
        .spread_groups()
        .into_iter()
        .map(|(context, proportion, spreads)| {
            let mut columns: Vec<Column> = vec![("protocol".into(), false)];
            if let Some(first) = spreads.first() {
                columns.extend(
                    first
                        .values
                        .iter()
                        .map(|(v, _)| (format!("{v}: sd [95%]"), true)),
                );
            }
            columns.push(("sqrt(sum of single)".into(), true));
            columns.push(("sum/all".into(), true));
            columns.push(("test SE".into(), true));
            let rows = spreads
                .iter()
                .map(|s| {
                    let mut row = vec![s.protocol.clone()];
                    row.extend(s.values.iter().map(|(_, spread)| sd_text(spread.as_ref())));
                    row.push(format!("{:.4}", s.decomposition.sum_of_single.sqrt()));
                    row.push(
                        s.decomposition
                            .sum_over_all
                            .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
                    );
                    row.push(
                        s.test_se
                            .map_or_else(|| "-".to_owned(), |se| format!("{se:.4}")),
                    );
                    row
                })
                .collect();
            let findings = spreads.iter().filter_map(|s| spread_finding(s)).collect();
            let title = if context.is_empty() {
                format!("p = {proportion}")
            } else {
                format!("p = {proportion}, {context}")
            };
            SpreadTable {
                title,
                columns,
                rows,
                findings,
            }
        })
        .collect()
}

/// Which single source gives a protocol the most spread, its share of all sources' variance,
/// and whether the single sources add up.
fn spread_finding(s: &SourceSpread) -> Option<String> {
    let d = &s.decomposition;
    let (name, share) = d.largest.as_ref()?;
    let sd = d
        .single
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, s)| s.map(|s| s.sd))?;
    let all = d.all.map(|a| a.sd)?;
    let adds = d.sum_over_all.map_or_else(String::new, |r| {
        let verdict = if r < 0.67 {
            "less than all sources give together"
        } else if r <= 1.5 {
            "about what all sources give together"
        } else {
            "more than all sources give together"
        };
        format!("; the single sources' variances add up to {r:.2} times all sources' ({verdict})")
    });
    let floor = s.test_se.map_or_else(String::new, |se| {
        format!("; the test set's error is {se:.4}")
    });
    let reps = |value: &str| {
        s.repetitions_for_goal
            .iter()
            .find(|(v, _)| v == value)
            .map(|(_, n)| {
                n.map_or_else(
                    || format!("more than {MOST_REPETITIONS}"),
                    |n| n.to_string(),
                )
            })
    };
    let sizing = reps(ALL_SOURCES).map_or_else(String::new, |all| {
        let alone = reps(name).map_or_else(String::new, |n| format!(", {n} varying {name} alone"));
        format!(
            "; a 95% interval of ±{HALF_WIDTH_GOAL} takes {all} repetitions varying every source{alone}"
        )
    });
    Some(format!(
        "{}: {name} alone gives the most spread (sd {sd:.4}, {:.0}% of the variance with every source varied, sd {all:.4}){adds}{floor}{sizing}.",
        s.protocol,
        share * 100.0
    ))
}

/// A column of a report's table: its heading and whether its numbers align right.
pub(crate) type Column = (String, bool);

/// The table of every point's mean final accuracies: a column per protocol and proportion,
/// the published values where the task is the published one, a row per point.
pub(crate) struct PointTable {
    /// The columns after the point's name.
    pub(crate) columns: Vec<Column>,
    /// The published values, a cell per column.
    pub(crate) published: Option<Vec<String>>,
    /// Each point's name and its cells.
    pub(crate) rows: Vec<(String, Vec<String>)>,
}

impl PointTable {
    /// The whole table: a first column of the points' names (each as `name` writes it), the
    /// published row first where there is one.
    pub(crate) fn with_names(
        self,
        name: impl Fn(&str) -> String,
    ) -> (Vec<Column>, Vec<Vec<String>>) {
        let mut columns = vec![("point".to_owned(), false)];
        columns.extend(self.columns);
        let published = self.published.map(|cells| {
            let mut row = vec!["published (2016)".to_owned()];
            row.extend(cells);
            row
        });
        let points = self.rows.into_iter().map(|(point, cells)| {
            let mut row = vec![name(&point)];
            row.extend(cells);
            row
        });
        (columns, published.into_iter().chain(points).collect())
    }
}

/// One axis's tested steps as a table, with the sentences that precede it.
pub(crate) struct EffectTable {
    /// What the table holds and how its steps were tested.
    pub(crate) method: String,
    /// Which steps are significant after correction.
    pub(crate) findings: String,
    /// The columns.
    pub(crate) columns: Vec<Column>,
    /// A row per step.
    pub(crate) rows: Vec<Vec<String>>,
}

/// Whether the sweep is complete, in a sentence, and for an incomplete sweep a second one
/// naming the points lacking runs (each as `name` writes it).
pub(crate) fn completeness(
    analysis: &SweepAnalysis,
    name: impl Fn(&str) -> String,
) -> (String, Option<String>) {
    if analysis.complete {
        let sentence = format!(
            "Complete: {} points, every one of their {} planned runs.",
            analysis.points.len(),
            analysis.planned_runs
        );
        return (sentence, None);
    }
    let short: Vec<String> = analysis
        .points
        .iter()
        .filter(|p| p.runs < p.planned_runs)
        .map(|p| format!("{} ({} of {})", name(&p.name), p.runs, p.planned_runs))
        .collect();
    let sentence = format!(
        "INCOMPLETE: made from {} of the {} planned runs.",
        analysis.runs, analysis.planned_runs
    );
    let which = format!(
        "Points lacking runs: {}. Nothing below is a finished sweep's result.",
        short.join(", ")
    );
    (sentence, Some(which))
}

/// Every point's cells: mean ± the half-width of its 95% t-interval, `(n=K)` where fewer runs
/// than planned, `-` where none.
pub(crate) fn point_table(analysis: &SweepAnalysis) -> PointTable {
    let mut columns = Vec::new();
    for protocol in &analysis.protocols {
        for p in &analysis.proportions {
            columns.push((format!("{protocol} p={p}"), true));
        }
    }
    let cells = |cell: &dyn Fn(&str, f64) -> String| -> Vec<String> {
        analysis
            .protocols
            .iter()
            .flat_map(|protocol| analysis.proportions.iter().map(|&p| cell(protocol, p)))
            .collect()
    };
    let published = analysis.published.then(|| {
        cells(&|protocol, p| {
            crate::analysis::report_value(protocol, p)
                .map_or_else(|| "-".into(), |v| format!("{v:.4}"))
        })
    });
    let rows = analysis
        .points
        .iter()
        .enumerate()
        .map(|(i, point)| {
            let row = cells(&|protocol, p| match analysis.cell(i, protocol, p) {
                Some(c) if !c.finals.is_empty() => {
                    let half = crate::tables::plus_minus(c.summary.half_width());
                    let mut text = format!("{:.4}{half}", c.summary.mean);
                    if point
                        .planned_repetitions
                        .is_some_and(|n| c.finals.len() < n as usize)
                    {
                        let _ = write!(text, " (n={})", c.finals.len());
                    }
                    text
                }
                _ => "-".into(),
            });
            (point.name.clone(), row)
        })
        .collect();
    PointTable {
        columns,
        published,
        rows,
    }
}

/// The table of `effect`'s steps, with a column naming the other axes' values where the
/// sweep has more than one axis.
pub(crate) fn effect_table(analysis: &SweepAnalysis, effect: &AxisEffect) -> EffectTable {
    let tested = effect.steps.iter().filter(|s| s.p_holm.is_some()).count();
    let same = effect.steps.iter().filter(|s| s.same_runs).count();
    let method = format!(
        "Each step from one value to the next, per protocol and proportion: the difference in mean final accuracy (later value minus earlier), its 95% interval, and the two-sided p-value, paired over repetitions where the runs are paired by design (same repetitions, same seeds), Welch's otherwise; Holm-corrected over this axis's {tested} tested steps.{}",
        if same > 0 {
            format!(
                " {same} steps compare the very same runs (the setting is not one those runs read): no difference by construction, not tested."
            )
        } else {
            String::new()
        }
    );
    let significant: Vec<String> = effect
        .steps
        .iter()
        .filter(|s| s.p_holm.is_some_and(|p| p < 0.05))
        .map(|s| {
            format!(
                "{} p={}{} {} → {} ({})",
                s.protocol,
                s.proportion,
                if s.context.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", s.context)
                },
                s.from,
                s.to,
                signed(s.difference.unwrap_or(f64::NAN))
            )
        })
        .collect();
    let findings = if significant.is_empty() {
        "No step is significant at the 5% level after Holm's correction.".to_owned()
    } else {
        format!(
            "Significant after correction ({} of {tested}): {}.",
            significant.len(),
            significant.join("; ")
        )
    };
    let context_column = analysis.axes.len() > 1;
    let mut columns: Vec<Column> = Vec::new();
    if context_column {
        columns.push(("other axes".into(), false));
    }
    for (name, right) in [
        ("protocol", false),
        ("p", true),
        ("step", false),
        ("n", true),
        ("difference", true),
        ("95% interval", false),
        ("p", true),
        ("Holm p", true),
    ] {
        columns.push((name.into(), right));
    }
    let rows = effect
        .steps
        .iter()
        .map(|s| {
            let interval = match (s.ci95_low, s.ci95_high) {
                (Some(lo), Some(hi)) => format!("[{}, {}]", signed(lo), signed(hi)),
                _ if s.same_runs => "same runs".into(),
                _ => "-".into(),
            };
            let mut row = Vec::new();
            if context_column {
                row.push(s.context.clone());
            }
            row.extend([
                s.protocol.clone(),
                s.proportion.to_string(),
                format!("{} → {}", s.from, s.to),
                format!("{}{}", s.n, if s.paired { " pairs" } else { "" }),
                s.difference.map_or_else(|| "-".into(), signed),
                interval,
                p_text(s.p),
                p_text(s.p_holm),
            ]);
            row
        })
        .collect();
    EffectTable {
        method,
        findings,
        columns,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(name: &str, labels: &[&str]) -> SweepAxis {
        SweepAxis {
            name: name.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            values: None,
            log_scale: false,
        }
    }

    #[test]
    fn steps_pair_runs_with_the_same_seeds_and_skip_the_same_runs() {
        let a = [(0, 11, 0.80), (1, 12, 0.82), (2, 13, 0.81)];
        let b = [(0, 11, 0.84), (1, 12, 0.85), (2, 13, 0.86)];
        let (n, is_paired, same, test) = step(&a, &b);
        assert_eq!((n, is_paired, same), (3, true, false));
        let test = test.unwrap();
        // The paired difference of the later value minus the earlier.
        assert!((test.difference - (0.04 + 0.03 + 0.05) / 3.0).abs() < 1e-12);
        assert_eq!(test.df, 2.0);
        // The very same runs: no test.
        assert_eq!(step(&a, &a), (3, true, true, None));
        // Other seeds (a seed axis): Welch's test of the two samples.
        let c = [(0, 21, 0.84), (1, 22, 0.85), (2, 23, 0.86)];
        let (n, is_paired, same, test) = step(&a, &c);
        assert_eq!((n, is_paired, same), (3, false, false));
        assert!(test.unwrap().df > 2.0);
    }

    #[test]
    fn points_and_contexts_follow_the_grid() {
        let analysis = SweepAnalysis {
            axes: vec![axis("a", &["1", "2"]), axis("b", &["x", "y", "z"])],
            protocols: vec!["raw".into()],
            proportions: vec![0.1],
            points: Vec::new(),
            effects: Vec::new(),
            runs: 0,
            planned_runs: 0,
            complete: true,
            published: false,
            spreads: Vec::new(),
        };
        let mut points = Vec::new();
        for a in ["1", "2"] {
            for b in ["x", "y", "z"] {
                points.push(PointSummary {
                    name: format!("a={a},b={b}"),
                    values: vec![a.into(), b.into()],
                    runs: 0,
                    planned_runs: 0,
                    planned_repetitions: None,
                    cells: Vec::new(),
                    gains: Vec::new(),
                });
            }
        }
        let analysis = SweepAnalysis { points, ..analysis };
        assert_eq!(analysis.point_at(&[1, 2]), Some(5));
        assert_eq!(analysis.points[5].name, "a=2,b=z");
        assert_eq!(analysis.point_at(&[0, 3]), None);
        let along_b: Vec<String> = analysis.contexts(1).into_iter().map(|c| c.1).collect();
        assert_eq!(along_b, ["a=1", "a=2"]);
        let along_a = analysis.contexts(0);
        assert_eq!(along_a.len(), 3);
        assert_eq!(along_a[2], (vec![0, 2], "b=z".to_owned()));
    }
}
