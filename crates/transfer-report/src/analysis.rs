//! From run records to cells, mean curves and the report's claims checked.

use std::collections::BTreeMap;

use serde::Serialize;
use transfer_records::{
    ALL, ClaimSpec, ClaimTest, CurvePoint, LossPoint, PretrainRecord, RunRecord,
};

use crate::power::{Design, Equivalence, Planning, equivalence, planning};
use crate::robust::{
    Improvement, Interval, difference_interval, improvement, mean_interval, stream,
};
use crate::stats::{Difference, Summary, holm, paired, summarize, unpaired};

/// The equivalence margin unless a study sets its own: 0.002 in accuracy, about 8 of the
/// 3,969 target test images.
pub const DEFAULT_EQUIVALENCE_MARGIN: f64 = 0.002;

/// How to analyse a set of records.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisOptions {
    /// These protocols come first, in this order (the configuration's); others follow by
    /// name.
    pub protocol_order: Vec<String>,
    /// Whether every run at one proportion trains on the same images (the prefix rule):
    /// they are then compared as pairs.
    pub shared_subsets: bool,
    /// Whether the runs pose the published study's task, so that cells and gains carry the
    /// published values.
    pub published: bool,
    /// The margin of every comparison's equivalence test, in accuracy.
    pub equivalence_margin: f64,
    /// What the study planned: its protocols, proportions and repetitions (absent when the
    /// directory has no configuration).
    pub planned: Option<PlannedCells>,
    /// The study's master seed, from which every bootstrap's resamples are drawn.
    pub seed: u64,
    /// The claims to test (the published four: [`ClaimSpec::published`]).
    pub claims: Vec<ClaimSpec>,
    /// What the repetitions vary.
    pub randomness: Randomness,
}

/// What a study's repetitions vary, and so what its intervals include.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Randomness {
    /// The sources of randomness that change between repetitions (`init`, `order`, ...).
    pub varied: Vec<String>,
    /// The sources held at repetition 0's draw (the subset under the prefix rule, whose
    /// images are the file's first).
    pub held: Vec<String>,
    /// The subset rule's name.
    pub subset_rule: String,
    /// Whether every repetition of a cell trains on the same images.
    pub same_images: bool,
    /// Test images each evaluation scores, where known: the binomial floor of every cell.
    pub test_samples: Option<usize>,
}

impl Randomness {
    /// What the settings vary; `test_samples` where known.
    pub fn of(
        settings: &transfer_records::TrainingSettings,
        test_samples: Option<usize>,
    ) -> Randomness {
        let varied = settings.varied();
        let names = |keep: bool| {
            transfer_records::Source::ALL
                .into_iter()
                .filter(|&s| varied.contains(s) == keep)
                .map(|s| s.name().to_owned())
                .collect()
        };
        Randomness {
            varied: names(true),
            held: names(false),
            subset_rule: settings.subset.name().to_owned(),
            same_images: !varied.contains(transfer_records::Source::Subset),
            test_samples,
        }
    }

    /// What the intervals include, in plain sentences (no markup): which sources the
    /// repetitions vary, which they hold, and whether every repetition trains on the same
    /// images.
    pub fn describe(&self) -> String {
        let list = |names: &[String]| match names {
            [] => String::new(),
            [one] => one.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        };
        let mut text = format!("The repetitions vary {}", list(&self.varied));
        let held: Vec<String> = self
            .held
            .iter()
            .filter(|s| *s != "subset" || self.subset_rule != "prefix")
            .cloned()
            .collect();
        if !held.is_empty() {
            text.push_str(&format!(
                "; they hold {} at repetition 0's draw",
                list(&held)
            ));
        }
        text.push_str(". ");
        text.push_str(&if !self.same_images {
            let count = if self.subset_rule == "drawn" {
                " at the prefix rule's counts"
            } else {
                ""
            };
            format!(
                "Images drawn afresh: every repetition trains on its own draw of the training images (the {} rule{count}, stratified by class, one draw for every protocol of a repetition), so the intervals and the claims hold beyond one draw of the data.",
                self.subset_rule
            )
        } else if self.subset_rule == "prefix" {
            "Every repetition trains on the same images, the first of the file (the prefix rule): the intervals and the claims describe that one set of training images, not a fresh draw of as many.".to_owned()
        } else {
            format!(
                "Every repetition trains on repetition 0's draw of the images (the {} rule, the subset held): the intervals and the claims describe that one draw.",
                self.subset_rule
            )
        });
        if let Some(n) = self.test_samples {
            text.push_str(&format!(
                " Every accuracy is measured on the same {n} test images; another test sample of that size would move it by about its binomial standard error, which no number of repetitions removes."
            ));
        }
        text
    }

    /// The binomial standard error of an accuracy `accuracy` measured on the test set:
    /// `sqrt(a (1 - a) / n)`, the spread another test sample of the same size would show.
    pub fn test_se(&self, accuracy: f64) -> Option<f64> {
        let n = self.test_samples.filter(|&n| n > 0)?;
        Some(transfer_stats::binomial_se(accuracy, n))
    }
}

/// The cells a study planned and the repetitions of each.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedCells {
    /// Protocol names.
    pub protocols: Vec<String>,
    /// Proportions.
    pub proportions: Vec<f64>,
    /// Repetitions of every cell.
    pub repetitions: u32,
}

/// How much of the planned study the records hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completeness {
    /// Runs the study planned (absent without a configuration).
    pub planned_runs: Option<usize>,
    /// Runs the records hold.
    pub runs: usize,
    /// Whether every planned run is there.
    pub complete: bool,
    /// The planned cells that lack runs: protocol, proportion, runs there, runs planned.
    pub short_cells: Vec<(String, f64, usize, u32)>,
}

/// Proportions of the published table, in its column order.
pub const REPORT_PROPORTIONS: [f64; 4] = [0.005, 0.01, 0.1, 1.0];

/// The published table (docs/protocol.md section 6): mean final test accuracy of 10 repetitions.
pub const REPORT_TABLE: [(&str, [f64; 4]); 4] = [
    ("raw", [0.8559, 0.9016, 0.9806, 0.9919]),
    ("frozen", [0.8846, 0.9203, 0.9814, 0.9926]),
    ("finetune", [0.8750, 0.9194, 0.9821, 0.9932]),
    ("dropout", [0.8778, 0.9194, 0.9845, 0.9927]),
];

/// The published value for a protocol and proportion, if the report has one.
pub fn report_value(protocol: &str, proportion: f64) -> Option<f64> {
    let column = REPORT_PROPORTIONS.iter().position(|&p| p == proportion)?;
    REPORT_TABLE
        .iter()
        .find(|(name, _)| *name == protocol)
        .map(|(_, values)| values[column])
}

/// One (protocol, proportion) of the results table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Protocol name.
    pub protocol: String,
    /// Proportion of the target training set.
    pub proportion: f64,
    /// Training images the runs used (the smallest, if they differ).
    pub train_samples: usize,
    /// Final accuracies of the repetitions whose training loss stayed finite, by repetition.
    pub finals: Vec<f64>,
    /// Those repetitions, in the same order.
    pub repetitions: Vec<u32>,
    /// Their summary.
    pub summary: Summary,
    /// Repetitions that diverged (their loss became infinite or NaN): left out of `finals`.
    pub diverged: usize,
    /// The published value.
    pub report_value: Option<f64>,
    /// `mean - report_value`.
    pub delta: Option<f64>,
    /// The mean's 95% percentile-bootstrap interval (absent with fewer than two runs).
    pub bootstrap: Option<Interval>,
    /// The test set's binomial standard error at the mean, where the test set's size is
    /// known: no number of repetitions removes it.
    pub test_se: Option<f64>,
}

/// The mean test-accuracy curve of one (protocol, proportion) over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeanCurve {
    /// Protocol name.
    pub protocol: String,
    /// Proportion.
    pub proportion: f64,
    /// Iterations of the evaluation points.
    pub iterations: Vec<u32>,
    /// Mean accuracy at each point.
    pub mean: Vec<f64>,
    /// Lower end of the 95% confidence interval at each point.
    pub ci95_low: Vec<f64>,
    /// Upper end.
    pub ci95_high: Vec<f64>,
    /// Mean training loss at each point (over the iterations since the previous one).
    pub loss: Vec<f64>,
}

/// A protocol's final accuracy minus raw's at one proportion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gain {
    /// The protocol compared with `raw`.
    pub protocol: String,
    /// The proportion.
    pub proportion: f64,
    /// Difference of mean final accuracies, protocol minus raw (paired: the mean of the
    /// repetitions' differences).
    pub difference: f64,
    /// Whether the runs are paired by design and the interval is the paired one.
    pub paired: bool,
    /// Lower end of its 95% interval (paired, or Welch's; absent with fewer than two runs).
    pub ci95_low: Option<f64>,
    /// Upper end.
    pub ci95_high: Option<f64>,
    /// The published difference, where the published table has both cells.
    pub published: Option<f64>,
    /// The difference's 95% percentile-bootstrap interval (over pairs where paired).
    pub bootstrap: Option<Interval>,
}

/// Whether one of the report's claims holds in these results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every comparison goes the claimed way and is significant (p < 0.05).
    Holds,
    /// Every comparison goes the claimed way, but not all are significant.
    DirectionOnly,
    /// At least one comparison goes the other way.
    DoesNotHold,
    /// The results lack the protocols or proportions the claim needs.
    NotTested,
    /// An equivalence claim with a comparison not shown within its margin.
    NotEquivalent,
    /// A comparison could not be tested: a side has fewer than 2 repetitions.
    Undecided,
}

impl Verdict {
    /// The verdict in words.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Holds => {
                "holds (every comparison significant at the 5% level, Holm-corrected)"
            }
            Verdict::DirectionOnly => {
                "holds in direction only (not every comparison is significant at the 5% level after Holm's correction)"
            }
            Verdict::DoesNotHold => "does not hold (at least one comparison goes the other way)",
            Verdict::NotTested => "not tested (the needed protocols or proportions were not run)",
            Verdict::NotEquivalent => {
                "not shown (at least one comparison is not shown within the margin at the 5% level after Holm's correction)"
            }
            Verdict::Undecided => "undecided (fewer than 2 repetitions)",
        }
    }
}

/// One comparison behind a claim: `a` against `b`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// What is compared, in words.
    pub label: String,
    /// Mean of the side claimed to be higher.
    pub mean_a: f64,
    /// Mean of the other side.
    pub mean_b: f64,
    /// Whether the runs are paired by design, repetition by repetition (they share the
    /// repetition's pretrained backbone, or its training subset), and so tested as pairs;
    /// otherwise Welch's unequal-variance test.
    pub paired: bool,
    /// The test of `a > b` with the difference's 95% interval (absent with fewer than two
    /// repetitions, or pairs).
    pub test: Option<Difference>,
    /// The one-sided p-value after Holm's correction over the claim's comparisons.
    pub p_holm: Option<f64>,
    /// What the test could find: power at the observed effect, the smallest detectable
    /// difference, the repetitions for 80% power (absent without a test).
    pub planning: Option<Planning>,
    /// The two one-sided tests of equivalence within the study's margin (absent without a
    /// test).
    pub equivalence: Option<Equivalence>,
    /// Whether both cells hold every repetition the study planned.
    pub complete: bool,
    /// The difference's 95% percentile-bootstrap interval (over pairs where paired).
    pub bootstrap: Option<Interval>,
    /// The probability that a run of `a` ends above a run of `b`, with its interval.
    pub improvement: Option<Improvement>,
}

impl Comparison {
    fn goes_the_claimed_way(&self) -> bool {
        self.mean_a > self.mean_b
    }

    fn significant(&self) -> bool {
        self.p_holm.is_some_and(|p| p < 0.05)
    }
}

/// A claim of the report, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    /// The claim as the report makes it.
    pub statement: String,
    /// What it tests: for `equivalent`, each comparison's `p_holm` is its TOST p-value after
    /// Holm's correction.
    pub test: ClaimTest,
    /// The comparisons that test it.
    pub comparisons: Vec<Comparison>,
    /// The verdict.
    pub verdict: Verdict,
    /// Whether every comparison's cells hold every planned repetition; a verdict on an
    /// incomplete claim is provisional.
    pub complete: bool,
}

impl Claim {
    fn new(spec: &ClaimSpec, comparisons: Vec<Comparison>, verdict: Verdict) -> Claim {
        Claim {
            statement: spec.statement.clone(),
            test: spec.test,
            complete: comparisons.iter().all(|c| c.complete),
            comparisons,
            verdict,
        }
    }
}

fn verdict(comparisons: &[Comparison]) -> Verdict {
    if comparisons.is_empty() {
        Verdict::NotTested
    } else if comparisons.iter().any(|c| c.test.is_none()) {
        Verdict::Undecided
    } else if !comparisons.iter().all(Comparison::goes_the_claimed_way) {
        Verdict::DoesNotHold
    } else if comparisons.iter().all(Comparison::significant) {
        Verdict::Holds
    } else {
        Verdict::DirectionOnly
    }
}

/// Everything computed from the records.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// Protocols in table order.
    pub protocols: Vec<String>,
    /// Proportions, ascending.
    pub proportions: Vec<f64>,
    /// One cell per (protocol, proportion) that has runs, protocol-major.
    pub cells: Vec<Cell>,
    /// Mean curves, in the order of `cells` (none for a cell whose every run diverged).
    pub curves: Vec<MeanCurve>,
    /// Source-test accuracy of the pretrained models.
    pub pretraining: Option<Summary>,
    /// Their mean source-test accuracy and training loss curves.
    pub pretraining_curve: Option<MeanCurve>,
    /// Every protocol's final accuracy against raw's, by proportion.
    pub gains: Vec<Gain>,
    /// Protocols that start from the repetition's pretrained backbone.
    pub pretrained: Vec<String>,
    /// Whether every run at one proportion trains on the same subset (the prefix rule).
    pub shared_subsets: bool,
    /// Whether the runs pose the published study's task (and cells carry its values).
    pub published: bool,
    /// The report's claims, checked.
    pub claims: Vec<Claim>,
    /// How much of the planned study the records hold.
    pub completeness: Completeness,
    /// The margin of the equivalence tests.
    pub equivalence_margin: f64,
    /// Repetitions each planned cell should hold (absent without a configuration).
    pub planned_repetitions: Option<u32>,
    /// What the repetitions vary.
    pub randomness: Randomness,
    /// The master seed of the bootstraps.
    pub seed: u64,
}

impl Cell {
    /// The runs the cell holds, diverged ones included.
    pub fn runs(&self) -> usize {
        self.finals.len() + self.diverged
    }
}

impl Analysis {
    /// Whether a cell holds every repetition the study planned (true where none is known).
    fn holds_planned(&self, cell: &Cell) -> bool {
        self.planned_repetitions
            .is_none_or(|reps| cell.runs() >= reps as usize)
    }

    /// The highest mean final accuracy at `proportion` (over cells with a finished run).
    pub fn best_mean(&self, proportion: f64) -> Option<f64> {
        self.cells
            .iter()
            .filter(|c| c.proportion == proportion && !c.finals.is_empty())
            .map(|c| c.summary.mean)
            .max_by(f64::total_cmp)
    }

    /// The cell of a protocol and proportion.
    pub fn cell(&self, protocol: &str, proportion: f64) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.protocol == protocol && c.proportion == proportion)
    }
}

/// Analyses the records as `options` say.
pub fn analyse(
    runs: &[RunRecord],
    pretrains: &[PretrainRecord],
    options: &AnalysisOptions,
) -> Analysis {
    let (protocol_order, shared_subsets, published) = (
        &options.protocol_order,
        options.shared_subsets,
        options.published,
    );
    let report_value = |protocol: &str, proportion: f64| {
        published
            .then(|| report_value(protocol, proportion))
            .flatten()
    };
    let mut groups: BTreeMap<(String, u64), Vec<&RunRecord>> = BTreeMap::new();
    for run in runs {
        groups
            .entry((run.protocol.name.clone(), run.proportion.to_bits()))
            .or_default()
            .push(run);
    }
    let mut protocols: Vec<String> = protocol_order
        .iter()
        .filter(|p| groups.keys().any(|(name, _)| name == *p))
        .cloned()
        .collect();
    for (name, _) in groups.keys() {
        if !protocols.contains(name) {
            protocols.push(name.clone());
        }
    }
    let mut proportions: Vec<f64> = groups.keys().map(|(_, p)| f64::from_bits(*p)).collect();
    proportions.sort_by(f64::total_cmp);
    proportions.dedup();
    let mut cells = Vec::new();
    let mut curves = Vec::new();
    for protocol in &protocols {
        for &proportion in &proportions {
            let Some(group) = groups.get(&(protocol.clone(), proportion.to_bits())) else {
                continue;
            };
            let mut group = group.clone();
            group.sort_by_key(|r| r.repetition);
            let train_samples = group.iter().map(|r| r.train_samples).min().unwrap_or(0);
            let diverged = group.iter().filter(|r| r.diverged_at.is_some()).count();
            group.retain(|r| r.diverged_at.is_none());
            let finals: Vec<f64> = group.iter().map(|r| r.final_accuracy).collect();
            let repetitions: Vec<u32> = group.iter().map(|r| r.repetition).collect();
            let summary = summarize(&finals);
            let report = report_value(protocol, proportion);
            let label = format!("cell {protocol} p={proportion}");
            let bootstrap = mean_interval(&finals, &mut stream(options.seed, &label));
            cells.push(Cell {
                bootstrap,
                test_se: options.randomness.test_se(summary.mean),
                protocol: protocol.clone(),
                proportion,
                train_samples,
                summary,
                delta: report.map(|v| summary.mean - v),
                report_value: report,
                finals,
                repetitions,
                diverged,
            });
            if !group.is_empty() {
                let runs: Vec<(&[CurvePoint], &[LossPoint])> = group
                    .iter()
                    .map(|r| (r.curve.as_slice(), r.loss_curve.as_slice()))
                    .collect();
                curves.push(mean_curve(protocol, proportion, &runs));
            }
        }
    }
    let pretraining = (!pretrains.is_empty()).then(|| {
        summarize(
            &pretrains
                .iter()
                .map(|p| p.source_test_accuracy)
                .collect::<Vec<_>>(),
        )
    });
    let mut pretrained: Vec<String> = runs
        .iter()
        .filter(|r| r.protocol.needs_pretraining())
        .map(|r| r.protocol.name.clone())
        .collect();
    pretrained.sort();
    pretrained.dedup();
    let converged: Vec<(&[CurvePoint], &[LossPoint])> = pretrains
        .iter()
        .filter(|p| p.diverged_at.is_none())
        .map(|p| (p.curve.as_slice(), p.loss_curve.as_slice()))
        .collect();
    let pretraining_curve =
        (!converged.is_empty()).then(|| mean_curve("pretraining", 1.0, &converged));
    let completeness = completeness(runs.len(), &cells, options.planned.as_ref());
    let mut analysis = Analysis {
        protocols,
        proportions,
        cells,
        curves,
        pretraining,
        pretraining_curve,
        gains: Vec::new(),
        pretrained,
        shared_subsets,
        published,
        claims: Vec::new(),
        completeness,
        equivalence_margin: options.equivalence_margin,
        planned_repetitions: options.planned.as_ref().map(|p| p.repetitions),
        seed: options.seed,
        randomness: options.randomness.clone(),
    };
    analysis.gains = gains(&analysis);
    analysis.claims = claims(&analysis, &options.claims);
    analysis
}

/// How many of the planned runs `cells` hold, and which planned cells are short.
fn completeness(runs: usize, cells: &[Cell], planned: Option<&PlannedCells>) -> Completeness {
    let Some(planned) = planned else {
        return Completeness {
            planned_runs: None,
            runs,
            complete: true,
            short_cells: Vec::new(),
        };
    };
    let mut short_cells = Vec::new();
    for protocol in &planned.protocols {
        for &proportion in &planned.proportions {
            let have = cells
                .iter()
                .find(|c| &c.protocol == protocol && c.proportion == proportion)
                .map_or(0, Cell::runs);
            if have < planned.repetitions as usize {
                short_cells.push((protocol.clone(), proportion, have, planned.repetitions));
            }
        }
    }
    Completeness {
        planned_runs: Some(
            planned.protocols.len() * planned.proportions.len() * planned.repetitions as usize,
        ),
        runs,
        complete: short_cells.is_empty(),
        short_cells,
    }
}

/// Each protocol's difference from raw at each proportion where both have runs.
fn gains(analysis: &Analysis) -> Vec<Gain> {
    let mut out = Vec::new();
    for protocol in analysis.protocols.iter().filter(|p| *p != "raw") {
        for &p in &analysis.proportions {
            let (Some(a), Some(b)) = (analysis.cell(protocol, p), analysis.cell("raw", p)) else {
                continue;
            };
            if a.finals.is_empty() || b.finals.is_empty() {
                continue;
            }
            let sample = samples(analysis, a, b);
            let test = difference(&sample);
            let (xs, ys, paired) = &sample;
            let label = format!("gain {protocol} p={p}");
            let bootstrap =
                difference_interval(xs, ys, *paired, &mut stream(analysis.seed, &label));
            out.push(Gain {
                bootstrap,
                protocol: protocol.clone(),
                proportion: p,
                difference: test.map_or(a.summary.mean - b.summary.mean, |t| t.difference),
                paired: test.is_some() && *paired,
                ci95_low: test.map(|t| t.ci95_low),
                ci95_high: test.map(|t| t.ci95_high),
                published: a.report_value.zip(b.report_value).map(|(x, raw)| x - raw),
            });
        }
    }
    out
}

/// The mean curves of runs given as (accuracy curve, loss curve): at the points every run
/// has, the mean accuracy with its 95% interval and the mean loss (over the runs whose loss
/// curve reaches the point).
fn mean_curve(
    protocol: &str,
    proportion: f64,
    runs: &[(&[CurvePoint], &[LossPoint])],
) -> MeanCurve {
    // Points present in every run, by iteration.
    let mut iterations: Vec<u32> = runs
        .first()
        .map(|(curve, _)| curve.iter().map(|p| p.iteration).collect())
        .unwrap_or_default();
    iterations.retain(|it| {
        runs.iter()
            .all(|(curve, _)| curve.iter().any(|p| p.iteration == *it))
    });
    let (mut mean, mut low, mut high, mut loss) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for it in &iterations {
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|(curve, _)| {
                curve
                    .iter()
                    .find(|p| p.iteration == *it)
                    .map(|p| p.accuracy)
            })
            .collect();
        let s = summarize(&values);
        mean.push(s.mean);
        // One run: a band of no width (no interval to draw).
        low.push(s.ci95_low.unwrap_or(s.mean));
        high.push(s.ci95_high.unwrap_or(s.mean));
        let losses: Vec<f64> = runs
            .iter()
            .filter_map(|(_, l)| l.iter().find(|p| p.iteration == *it).map(|p| p.loss))
            .collect();
        loss.push(summarize(&losses).mean);
    }
    MeanCurve {
        protocol: protocol.to_owned(),
        proportion,
        iterations,
        loss,
        mean,
        ci95_low: low,
        ci95_high: high,
    }
}

/// Whether two cells' runs are paired by design, repetition by repetition: both start from
/// the repetition's pretrained backbone, or both train on the same subset (one proportion
/// under the prefix rule, where every repetition and protocol sees the same images).
fn paired_by_design(analysis: &Analysis, a: &Cell, b: &Cell) -> bool {
    let pretrained = |c: &Cell| analysis.pretrained.contains(&c.protocol);
    (pretrained(a) && pretrained(b)) || (a.proportion == b.proportion && analysis.shared_subsets)
}

/// The two cells' final accuracies as they are compared: matched by repetition where the
/// runs are paired by design (the third value true), whole otherwise.
fn samples(analysis: &Analysis, a: &Cell, b: &Cell) -> (Vec<f64>, Vec<f64>, bool) {
    if !paired_by_design(analysis, a, b) {
        return (a.finals.clone(), b.finals.clone(), false);
    }
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (x, rep) in a.finals.iter().zip(&a.repetitions) {
        if let Some(i) = b.repetitions.iter().position(|r| r == rep) {
            xs.push(*x);
            ys.push(b.finals[i]);
        }
    }
    (xs, ys, true)
}

/// The test of `a > b` on [`samples`]: paired over the repetitions both have where the runs
/// are paired by design, Welch's otherwise.
fn difference((xs, ys, is_paired): &(Vec<f64>, Vec<f64>, bool)) -> Option<Difference> {
    if *is_paired {
        paired(xs, ys)
    } else {
        unpaired(xs, ys)
    }
}

fn compare(
    analysis: &Analysis,
    a: (&str, f64),
    b: (&str, f64),
    label: String,
) -> Option<Comparison> {
    let (ca, cb) = (analysis.cell(a.0, a.1)?, analysis.cell(b.0, b.1)?);
    if ca.finals.is_empty() || cb.finals.is_empty() {
        return None;
    }
    let means = (ca.summary.mean, cb.summary.mean);
    let complete = analysis.holds_planned(ca) && analysis.holds_planned(cb);
    Some(comparison(
        analysis,
        label,
        samples(analysis, ca, cb),
        means,
        complete,
    ))
}

/// The comparison of `a > b` on `sample` (as [`samples`] gives it) with the two sides' means:
/// its test, what the test could find, and the bootstrap interval and probability of
/// improvement drawn from the stream of its label.
fn comparison(
    analysis: &Analysis,
    label: String,
    sample: (Vec<f64>, Vec<f64>, bool),
    (mean_a, mean_b): (f64, f64),
    complete: bool,
) -> Comparison {
    let test = difference(&sample);
    let (xs, ys, paired) = sample;
    let design = if paired {
        Design::Paired(xs.len())
    } else {
        Design::TwoSample(xs.len(), ys.len())
    };
    let mut rng = stream(analysis.seed, &format!("comparison {label}"));
    let bootstrap = difference_interval(&xs, &ys, paired, &mut rng);
    let improvement = improvement(&xs, &ys, paired, &mut rng);
    Comparison {
        bootstrap,
        improvement,
        label,
        mean_a,
        mean_b,
        paired,
        test,
        p_holm: None,
        planning: test.map(|t| planning(&t, design)),
        equivalence: test.map(|t| equivalence(&t, analysis.equivalence_margin)),
        complete,
    }
}

/// Sets each comparison's Holm-corrected p-value over the claim's tested comparisons.
fn correct(mut comparisons: Vec<Comparison>) -> Vec<Comparison> {
    let tested: Vec<usize> = (0..comparisons.len())
        .filter(|&i| comparisons[i].test.is_some())
        .collect();
    let p: Vec<f64> = tested
        .iter()
        .filter_map(|&i| comparisons[i].test.map(|t| t.p_greater))
        .collect();
    for (&i, adjusted) in tested.iter().zip(holm(&p)) {
        comparisons[i].p_holm = Some(adjusted);
    }
    comparisons
}

/// The protocols `names` stands for: itself, or for `"*"` every protocol of the analysis
/// but `except`, in table order.
fn expand(names: &[String], analysis: &Analysis, except: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let add: Vec<String> = if name == ALL {
            analysis
                .protocols
                .iter()
                .filter(|p| *p != except)
                .cloned()
                .collect()
        } else {
            vec![name.clone()]
        };
        for p in add {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Every claim of `specs`, checked against the analysis.
fn claims(analysis: &Analysis, specs: &[ClaimSpec]) -> Vec<Claim> {
    specs.iter().map(|spec| check(analysis, spec)).collect()
}

/// One claim: its comparisons, Holm-corrected together, and the verdict.
fn check(analysis: &Analysis, spec: &ClaimSpec) -> Claim {
    let props: Vec<f64> = if spec.proportions.is_empty() {
        analysis.proportions.clone()
    } else {
        spec.proportions
            .iter()
            .copied()
            .filter(|p| analysis.proportions.contains(p))
            .collect()
    };
    let mut comparisons = Vec::new();
    match spec.test {
        ClaimTest::MoreData => {
            for protocol in expand(&spec.better, analysis, "") {
                for w in props.windows(2) {
                    let label = format!("{protocol}: p = {} vs p = {}", w[1], w[0]);
                    comparisons.extend(compare(
                        analysis,
                        (&protocol, w[1]),
                        (&protocol, w[0]),
                        label,
                    ));
                }
            }
        }
        ClaimTest::Better | ClaimTest::Equivalent => {
            for a in expand(&spec.better, analysis, "") {
                for b in expand(&spec.than, analysis, &a)
                    .into_iter()
                    .filter(|b| *b != a)
                {
                    for &p in &props {
                        let label = format!("{a} vs {b} at p = {p}");
                        comparisons.extend(compare(analysis, (&a, p), (&b, p), label));
                    }
                }
            }
        }
    }
    if spec.test == ClaimTest::Equivalent {
        let margin = spec.margin.unwrap_or(analysis.equivalence_margin);
        return equivalence_claim(spec, comparisons, margin);
    }
    if spec.largest_at_smallest && !comparisons.is_empty() {
        comparisons.extend(gain_trend(analysis, spec, &props));
    }
    let comparisons = correct(comparisons);
    let v = verdict(&comparisons);
    Claim::new(spec, comparisons, v)
}

/// The test that the gain of the claim's first `better` protocol over its first `than`
/// protocol is largest at the smallest proportion: for each larger proportion, that gain at
/// the smallest against the gain there, paired over the repetitions all four cells have (each
/// repetition's gains come from its own draws, so repetitions are independent pairs whatever
/// the runs share within one).
fn gain_trend(analysis: &Analysis, spec: &ClaimSpec, props: &[f64]) -> Vec<Comparison> {
    let Some(a) = expand(&spec.better, analysis, "").into_iter().next() else {
        return Vec::new();
    };
    let Some(b) = expand(&spec.than, analysis, &a)
        .into_iter()
        .find(|b| *b != a)
    else {
        return Vec::new();
    };
    let Some((&smallest, larger)) = props.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &p in larger {
        let cells = [(&a, smallest), (&b, smallest), (&a, p), (&b, p)]
            .map(|(protocol, proportion)| analysis.cell(protocol, proportion));
        let [Some(a0), Some(b0), Some(a1), Some(b1)] = cells else {
            continue;
        };
        let final_of = |c: &Cell, rep: u32| {
            let i = c.repetitions.iter().position(|&r| r == rep)?;
            c.finals.get(i).copied()
        };
        let (mut at_smallest, mut at_p) = (Vec::new(), Vec::new());
        for &rep in &a0.repetitions {
            let four = [a0, b0, a1, b1].map(|c| final_of(c, rep));
            if let [Some(x0), Some(y0), Some(x1), Some(y1)] = four {
                at_smallest.push(x0 - y0);
                at_p.push(x1 - y1);
            }
        }
        if at_smallest.is_empty() {
            continue;
        }
        let label = format!("{a} - {b} gain at p = {smallest} vs at p = {p}");
        let means = (summarize(&at_smallest).mean, summarize(&at_p).mean);
        let complete = [a0, b0, a1, b1]
            .into_iter()
            .all(|c| analysis.holds_planned(c));
        out.push(comparison(
            analysis,
            label,
            (at_smallest, at_p, true),
            means,
            complete,
        ));
    }
    out
}

/// An equivalence claim: every comparison's TOST within `margin`, Holm-corrected; it holds
/// when every one is shown equivalent at 5%.
fn equivalence_claim(spec: &ClaimSpec, mut comparisons: Vec<Comparison>, margin: f64) -> Claim {
    let tested: Vec<usize> = (0..comparisons.len())
        .filter(|&i| comparisons[i].test.is_some())
        .collect();
    let p: Vec<f64> = tested
        .iter()
        .filter_map(|&i| {
            let t = comparisons[i].test?;
            let e = equivalence(&t, margin);
            comparisons[i].equivalence = Some(e);
            Some(e.p)
        })
        .collect();
    for (&i, adjusted) in tested.iter().zip(holm(&p)) {
        comparisons[i].p_holm = Some(adjusted);
    }
    let v = if comparisons.is_empty() {
        Verdict::NotTested
    } else if comparisons.iter().any(|c| c.test.is_none()) {
        Verdict::Undecided
    } else if comparisons.iter().all(Comparison::significant) {
        Verdict::Holds
    } else {
        Verdict::NotEquivalent
    };
    Claim::new(spec, comparisons, v)
}
