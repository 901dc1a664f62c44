#![doc = include_str!("../README.md")]

mod analysis;
mod figures;
mod html;
mod markdown;
mod sweep;
mod sweep_figures;
mod sweep_html;
mod sweep_md;
mod tables;
mod tidy;

/// Summaries, t-tests and Holm's correction, from `transfer-stats`.
pub use transfer_stats::summary as stats;
pub use transfer_stats::{power, robust};

use std::path::{Path, PathBuf};

use serde::Serialize;
use transfer_records::{
    PretrainRecord, ResultsDir, RunRecord, StoreError, StudyConfig, TrainingSettings, write_atomic,
};

pub use analysis::{
    Analysis, AnalysisOptions, Cell, Claim, Comparison, Completeness, DEFAULT_EQUIVALENCE_MARGIN,
    Gain, MeanCurve, PlannedCells, REPORT_PROPORTIONS, REPORT_TABLE, Randomness, Verdict, analyse,
    report_value,
};
pub use figures::write_figures;
pub use html::report_html;
pub use markdown::{duration, report_md};
pub use sweep::{
    ALL_SOURCES, AxisEffect, AxisStep, HALF_WIDTH_GOAL, MOST_REPETITIONS, PointSummary,
    SourceSpread, SweepAnalysis, SweepAxis, SweepPointResults, SweepResults, VARY_AXIS,
    analyse_sweep, sweep_csv, sweep_csv_header,
};
pub use sweep_html::sweep_html;
pub use sweep_md::{sweep_md, write_sweep_report};
pub use tables::{CSV_HEADER, ROBUST_CSV_HEADER, table_csv, table_md, table_robust_csv, table_tex};
pub use tidy::{CURVES_HEADER, RUNS_HEADER, curves_csv, runs_csv};

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The results could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A figure could not be drawn.
    #[error("{path}: cannot draw the figure: {what}")]
    Figure {
        /// The figure file.
        path: PathBuf,
        /// What the plotting library said.
        what: String,
    },
    /// There is nothing to report.
    #[error("{0} holds no finished run")]
    Empty(PathBuf),
}

impl ReportError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn figure(path: &Path, what: String) -> Self {
        ReportError::Figure {
            path: path.to_owned(),
            what,
        }
    }
}

/// Everything a results directory holds.
#[derive(Debug, Clone)]
pub struct StudyResults {
    /// The study configuration last run into the directory, if stored.
    pub config: Option<StudyConfig>,
    /// The settings every record was made with.
    pub settings: TrainingSettings,
    /// The finished runs.
    pub runs: Vec<RunRecord>,
    /// The finished pretrainings.
    pub pretrains: Vec<PretrainRecord>,
}

impl StudyResults {
    /// Reads every record under a results directory.
    pub fn read(dir: &Path) -> Result<StudyResults, ReportError> {
        let store = ResultsDir::open(dir)?;
        Ok(StudyResults {
            config: store.study()?,
            settings: store.settings().clone(),
            runs: store.runs()?,
            pretrains: store.pretrains()?,
        })
    }

    /// The machines and backends the records were trained on, as their records name them,
    /// each with how many runs and pretrainings it trained (most first).
    pub fn machines(&self) -> Vec<String> {
        let mut machines: Vec<((String, String, usize), usize, usize)> = Vec::new();
        let backends = self
            .runs
            .iter()
            .map(|r| (&r.backend, true))
            .chain(self.pretrains.iter().map(|p| (&p.backend, false)));
        for (b, is_run) in backends {
            let key = (b.device.clone(), b.backend.clone(), b.threads);
            let at = match machines.iter().position(|(k, _, _)| *k == key) {
                Some(at) => at,
                None => {
                    machines.push((key, 0, 0));
                    machines.len() - 1
                }
            };
            if is_run {
                machines[at].1 += 1;
            } else {
                machines[at].2 += 1;
            }
        }
        machines.sort_by_key(|m| std::cmp::Reverse(m.1 + m.2));
        machines
            .into_iter()
            .map(|((device, backend, threads), runs, pretrains)| {
                let what = match pretrains {
                    0 => format!("{runs} runs"),
                    _ => format!("{runs} runs and {pretrains} pretrainings"),
                };
                format!("{device}, backend `{backend}`, {threads} CPU threads ({what})")
            })
            .collect()
    }

    /// Test images each evaluation scored: as the records say, else, for canonical MNIST,
    /// those of the target digits.
    pub fn test_samples(&self) -> Option<usize> {
        if let Some(n) = self.runs.iter().find_map(|r| r.test_samples) {
            return Some(n);
        }
        self.settings.mnist_test_samples()
    }

    /// The statistics of these results, as the report states them: cells, mean curves, gains
    /// over raw and the published claims checked. Protocols keep the study's order; runs are
    /// paired by subset under the prefix rule; published values appear only for the published
    /// task.
    pub fn analysis(&self) -> Analysis {
        let order: Vec<String> = match &self.config {
            Some(c) => c.protocols.iter().map(|p| p.name.clone()).collect(),
            None => transfer_records::Protocol::PRESET_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let planned = self.config.as_ref().map(|c| PlannedCells {
            protocols: c.protocols.iter().map(|p| p.name.clone()).collect(),
            proportions: c.proportions.clone(),
            repetitions: c.repetitions,
        });
        let options = AnalysisOptions {
            protocol_order: order,
            // Under prefix every run at a proportion sees the same images; under drawn every
            // protocol of a repetition sees that repetition's draw.
            shared_subsets: self.settings.subset != transfer_records::SubsetRule::Stratified,
            published: self.settings.is_published_task(),
            equivalence_margin: self
                .config
                .as_ref()
                .and_then(|c| c.equivalence_margin)
                .unwrap_or(DEFAULT_EQUIVALENCE_MARGIN),
            planned,
            seed: self.settings.seed,
            claims: self
                .config
                .as_ref()
                .map_or_else(transfer_records::ClaimSpec::published, StudyConfig::claims),
            randomness: Randomness::of(&self.settings, self.test_samples()),
        };
        analyse(&self.runs, &self.pretrains, &options)
    }
}

/// What the records cannot know: where and how the study ran.
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// A line naming the study (preset, backend), shown under the title.
    pub label: String,
    /// The command that produced the results.
    pub command: String,
    /// Wall time of the invocation that finished the study, if known.
    pub wall_seconds: Option<f64>,
}

#[derive(Serialize)]
struct Summary<'a> {
    config: &'a Option<StudyConfig>,
    settings: &'a TrainingSettings,
    settings_hash: String,
    pretraining: Vec<PretrainSummary>,
    analysis: &'a Analysis,
}

#[derive(Serialize)]
struct PretrainSummary {
    repetition: u32,
    seed: u64,
    source_test_accuracy: f64,
}

/// Writes `text` into `dir/name` atomically and adds the path to `written`.
pub(crate) fn put_text(
    dir: &Path,
    name: &str,
    text: &str,
    written: &mut Vec<PathBuf>,
) -> Result<(), ReportError> {
    let path = dir.join(name);
    write_atomic(&path, text.as_bytes()).map_err(|e| ReportError::io(&path, e))?;
    written.push(path);
    Ok(())
}

/// Writes `table.csv`, `table.md`, `table.tex`, `table-robust.csv`, `runs.csv`, `curves.csv`,
/// `summary.json`, `report.md`, `report.html` and
/// `figures/` into `dir`.
/// Returns the files written. Every file is written atomically.
pub fn write_report(
    dir: &Path,
    results: &StudyResults,
    ctx: &ReportContext,
) -> Result<Vec<PathBuf>, ReportError> {
    if results.runs.is_empty() {
        return Err(ReportError::Empty(dir.to_owned()));
    }
    let analysis = results.analysis();
    // The analysis's protocols: the study's order, then any others by name, as the table's.
    let order = &analysis.protocols;
    let mut written = Vec::new();
    let mut put = |name: &str, text: String| put_text(dir, name, &text, &mut written);
    put("table.csv", table_csv(&analysis))?;
    put("table.md", table_md(&analysis))?;
    put("table.tex", table_tex(&analysis))?;
    put("table-robust.csv", table_robust_csv(&analysis))?;
    put("runs.csv", runs_csv(&results.runs, order))?;
    put("curves.csv", curves_csv(&results.runs, order))?;
    let summary = Summary {
        config: &results.config,
        settings: &results.settings,
        settings_hash: results.settings.hash(),
        pretraining: results
            .pretrains
            .iter()
            .map(|p| PretrainSummary {
                repetition: p.repetition,
                seed: p.seed,
                source_test_accuracy: p.source_test_accuracy,
            })
            .collect(),
        analysis: &analysis,
    };
    let json = serde_json::to_string_pretty(&summary).unwrap_or_default();
    put("summary.json", json)?;
    put("report.md", report_md(results, &analysis, ctx))?;
    put("report.html", report_html(results, &analysis, ctx))?;
    written.extend(write_figures(&analysis, &dir.join("figures"))?);
    Ok(written)
}
