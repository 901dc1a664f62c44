//! The study's configuration (presets, a TOML file, flags) and its plan of runs.

use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;
use transfer_data::SubsetRule;
use transfer_records::{Protocol, StudyConfig, TrainingSettings};

use crate::error::{Result, XtaskError};

/// The named starting points of a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The published protocol exactly (docs/protocol.md): 10 repetitions of 1000 iterations, test accuracy every 10.
    Paper,
    /// About a minute on a 2-core CPU: 2 repetitions of 100 iterations, every 50.
    Quick,
    /// Seconds: 2 repetitions of 5 iterations, for CI and trying the pipeline.
    Smoke,
}

impl Preset {
    /// The preset's name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Paper => "paper",
            Preset::Quick => "quick",
            Preset::Smoke => "smoke",
        }
    }

    /// The preset's configuration for `backend`.
    pub fn config(self, backend: &str) -> StudyConfig {
        let mut training = TrainingSettings::paper(backend);
        let repetitions = match self {
            Preset::Paper => 10,
            Preset::Quick => {
                (
                    training.iterations,
                    training.eval_every,
                    training.pretrain_iterations,
                ) = (100, 50, 200);
                2
            }
            Preset::Smoke => {
                (
                    training.iterations,
                    training.eval_every,
                    training.pretrain_iterations,
                ) = (5, 5, 10);
                2
            }
        };
        StudyConfig {
            preset: self.name().to_owned(),
            repetitions,
            protocols: Protocol::presets(),
            proportions: vec![0.005, 0.01, 0.1, 1.0],
            training,
        }
    }
}

/// A study configuration file: every key optional, unknown keys refused.
///
/// ```toml
/// preset = "quick"
/// reps = 5
/// protocols = ["raw", "frozen", "finetune-dropout"]
///
/// [[protocol]]
/// name = "finetune-dropout"
/// backbone = "pretrained"
/// freeze_backbone = false
/// dropout = 0.5
/// learning_rate = 0.0003
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Preset to start from.
    pub preset: Option<String>,
    /// Repetitions.
    pub reps: Option<u32>,
    /// Iterations per run.
    pub iters: Option<u32>,
    /// Evaluation interval.
    pub eval_every: Option<u32>,
    /// Pretraining iterations.
    pub pretrain_iters: Option<u32>,
    /// Batch size.
    pub batch: Option<usize>,
    /// Protocols to run, by name.
    pub protocols: Option<Vec<String>>,
    /// Proportions.
    pub props: Option<Vec<f64>>,
    /// Subset rule.
    pub subset: Option<String>,
    /// Master seed.
    pub seed: Option<u64>,
    /// Source digits.
    pub source_classes: Option<Vec<u8>>,
    /// Target digits.
    pub target_classes: Option<Vec<u8>>,
    /// Protocols defined by the file.
    #[serde(default)]
    pub protocol: Vec<Protocol>,
}

impl ConfigFile {
    /// Reads and parses a TOML file; errors name the file and the offending key.
    pub fn read(path: &Path) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|e| XtaskError::io(path, e))?;
        ConfigFile::parse(&text).map_err(|what| XtaskError::ConfigFile {
            path: path.to_owned(),
            what,
        })
    }

    /// Parses TOML text; the error is one line saying what is wrong and where.
    pub fn parse(text: &str) -> std::result::Result<ConfigFile, String> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            let message = if message.is_empty() {
                "not valid TOML".to_owned()
            } else {
                message
            };
            match e.span() {
                Some(span) => {
                    let before = &text.as_bytes()[..span.start.min(text.len())];
                    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
                    format!("line {line}: {message}")
                }
                None => message,
            }
        })
    }
}

/// Overrides from the command line (all optional).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// Repetitions.
    pub reps: Option<u32>,
    /// Iterations per run.
    pub iters: Option<u32>,
    /// Evaluation interval.
    pub eval_every: Option<u32>,
    /// Pretraining iterations.
    pub pretrain_iters: Option<u32>,
    /// Protocol names.
    pub protocols: Option<Vec<String>>,
    /// Proportions.
    pub props: Option<Vec<f64>>,
    /// Subset rule.
    pub subset: Option<SubsetRule>,
    /// Master seed.
    pub seed: Option<u64>,
}

/// Builds the effective configuration: the preset (from the flag, else the file, else
/// `paper`), then the file, then the flags.
pub fn build_config(
    preset: Option<Preset>,
    file: Option<&ConfigFile>,
    flags: &Overrides,
    backend: &str,
) -> Result<StudyConfig> {
    let empty = ConfigFile::default();
    let file = file.unwrap_or(&empty);
    let preset = match (preset, &file.preset) {
        (Some(p), _) => p,
        (None, Some(name)) => <Preset as clap::ValueEnum>::from_str(name, true).map_err(|_| {
            XtaskError::Usage(format!(
                "unknown preset '{name}' (accepted: paper, quick, smoke)"
            ))
        })?,
        (None, None) => Preset::Paper,
    };
    let mut config = preset.config(backend);
    let t = &mut config.training;
    if let Some(v) = flags.reps.or(file.reps) {
        config.repetitions = v;
    }
    if let Some(v) = flags.iters.or(file.iters) {
        t.iterations = v;
    }
    if let Some(v) = flags.eval_every.or(file.eval_every) {
        t.eval_every = v;
    }
    if let Some(v) = flags.pretrain_iters.or(file.pretrain_iters) {
        t.pretrain_iterations = v;
    }
    if let Some(v) = file.batch {
        t.batch_size = v;
    }
    if let Some(v) = flags.seed.or(file.seed) {
        t.seed = v;
    }
    match (flags.subset, &file.subset) {
        (Some(rule), _) => t.subset = rule,
        (None, Some(name)) => t.subset = SubsetRule::from_str(name)?,
        (None, None) => {}
    }
    if let Some(v) = &file.source_classes {
        t.source_classes = v.clone();
    }
    if let Some(v) = &file.target_classes {
        t.target_classes = v.clone();
    }
    if let Some(v) = flags.props.clone().or_else(|| file.props.clone()) {
        config.proportions = v;
    }
    for p in &file.protocol {
        p.validate()?;
    }
    let names = flags
        .protocols
        .clone()
        .or_else(|| file.protocols.clone())
        .unwrap_or_else(|| {
            let mut names: Vec<String> = Protocol::PRESET_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect();
            names.extend(file.protocol.iter().map(|p| p.name.clone()));
            names
        });
    config.protocols = names
        .iter()
        .map(|name| Protocol::resolve(name, &file.protocol))
        .collect::<std::result::Result<_, _>>()?;
    config.validate()?;
    Ok(config)
}

/// One target-task run of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    /// The protocol.
    pub protocol: Protocol,
    /// The proportion.
    pub proportion: f64,
    /// The repetition.
    pub repetition: u32,
}

impl PlannedRun {
    /// A short label: `frozen p=0.01 rep 3`.
    pub fn label(&self) -> String {
        format!(
            "{} p={} rep {}",
            self.protocol.name, self.proportion, self.repetition
        )
    }
}

/// Every run of the study in canonical order: repetition-major, so that an interrupted
/// study has complete repetitions rather than complete protocols, then protocol, then
/// proportion.
pub fn plan(config: &StudyConfig) -> Vec<PlannedRun> {
    let mut runs = Vec::with_capacity(config.num_runs());
    for repetition in 0..config.repetitions {
        for protocol in &config.protocols {
            for &proportion in &config.proportions {
                runs.push(PlannedRun {
                    protocol: protocol.clone(),
                    proportion,
                    repetition,
                });
            }
        }
    }
    runs
}

/// Runs trained together, in the plan's order: runs of one protocol and proportion whose
/// repetitions fall in the same block of `size` (`0..size`, `size..2 * size`, ...). A stack's
/// members depend only on the plan and `size`, never on what is already finished. With
/// `size` 1 every run is a stack of its own.
pub fn stacks(runs: &[PlannedRun], size: usize) -> Vec<Vec<PlannedRun>> {
    let size = size.max(1) as u32;
    let mut stacks: Vec<Vec<PlannedRun>> = Vec::new();
    for run in runs {
        let block = run.repetition / size;
        let same = |s: &&mut Vec<PlannedRun>| {
            s.first().is_some_and(|f| {
                f.protocol == run.protocol
                    && f.proportion.to_bits() == run.proportion.to_bits()
                    && f.repetition / size == block
            })
        };
        match stacks.iter_mut().find(same) {
            Some(stack) => stack.push(run.clone()),
            None => stacks.push(vec![run.clone()]),
        }
    }
    stacks
}

/// A short label for a stack: `frozen p=0.01 rep 3`, or `frozen p=0.01 reps 0-9`.
pub fn stack_label(stack: &[PlannedRun]) -> String {
    match stack {
        [] => String::new(),
        [run] => run.label(),
        [first, .., last] => format!(
            "{} p={} reps {}-{}",
            first.protocol.name, first.proportion, first.repetition, last.repetition
        ),
    }
}

/// A slice `index` of `count` of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based slice index.
    pub index: usize,
    /// Number of slices.
    pub count: usize,
}

impl Shard {
    /// Parses `I/N`, or `auto/N` taking I from `SLURM_ARRAY_TASK_ID` (Slurm job arrays) or
    /// `JOB_COMPLETION_INDEX` (Kubernetes Indexed Jobs). `env` looks variables up.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard> {
        let bad = |why: &str| {
            XtaskError::Usage(format!(
                "--shard {text}: {why} (expected I/N with 0 <= I < N, or auto/N)"
            ))
        };
        let (i, n) = text.split_once('/').ok_or_else(|| bad("no '/'"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        let index: usize = if i.trim() == "auto" {
            let (var, value) = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"]
                .iter()
                .find_map(|v| env(v).map(|value| (*v, value)))
                .ok_or_else(|| {
                    bad("neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set")
                })?;
            value
                .trim()
                .parse()
                .map_err(|_| bad(&format!("{var}={value} is not a number")))?
        } else {
            i.trim().parse().map_err(|_| bad("I is not a number"))?
        };
        if count == 0 || index >= count {
            return Err(bad("out of range"));
        }
        Ok(Shard { index, count })
    }

    /// The runs (or stacks) of this slice: every `count`-th of them, starting at `index`, so
    /// each slice gets a similar mix of protocols and proportions.
    pub fn select<T: Clone>(&self, runs: &[T]) -> Vec<T> {
        runs.iter()
            .skip(self.index)
            .step_by(self.count)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_plan() {
        let config = Preset::Paper.config("flex");
        let runs = plan(&config);
        assert_eq!(runs.len(), 160);
        let mut seen = Vec::new();
        for index in 0..7 {
            let shard = Shard { index, count: 7 };
            let part = shard.select(&runs);
            assert!(part.len() == 22 || part.len() == 23);
            seen.extend(part.into_iter().map(|r| r.label()));
        }
        seen.sort();
        let mut all: Vec<String> = runs.iter().map(PlannedRun::label).collect();
        all.sort();
        assert_eq!(seen, all);
    }

    #[test]
    fn stacks_hold_blocks_of_repetitions_of_one_protocol_and_proportion() {
        let config = Preset::Paper.config("flex");
        let runs = plan(&config);
        let alone = stacks(&runs, 1);
        assert_eq!(alone.len(), 160);
        assert!(
            alone
                .iter()
                .zip(&runs)
                .all(|(s, r)| s.len() == 1 && s[0] == *r)
        );
        let by_four = stacks(&runs, 4);
        // Repetitions 0-3, 4-7 and 8-9 of each of the 16 protocol-proportion pairs.
        assert_eq!(by_four.len(), 48);
        for stack in &by_four {
            let first = &stack[0];
            assert!(stack.iter().all(|r| r.protocol == first.protocol
                && r.proportion == first.proportion
                && r.repetition / 4 == first.repetition / 4));
            assert_eq!(stack.len(), if first.repetition == 8 { 2 } else { 4 });
        }
        assert_eq!(stack_label(&by_four[0]), "raw p=0.005 reps 0-3");
        assert_eq!(by_four.iter().map(Vec::len).sum::<usize>(), 160);
    }

    #[test]
    fn shard_indices_come_from_slurm_or_kubernetes() {
        let slurm = |v: &str| (v == "SLURM_ARRAY_TASK_ID").then(|| "3".to_string());
        assert_eq!(
            Shard::parse("auto/4", slurm).unwrap(),
            Shard { index: 3, count: 4 }
        );
        let k8s = |v: &str| (v == "JOB_COMPLETION_INDEX").then(|| "0".to_string());
        assert_eq!(
            Shard::parse("auto/2", k8s).unwrap(),
            Shard { index: 0, count: 2 }
        );
        assert!(
            Shard::parse("auto/2", |_| None)
                .unwrap_err()
                .to_string()
                .contains("SLURM_ARRAY_TASK_ID")
        );
        assert!(Shard::parse("4/4", |_| None).is_err());
        assert!(Shard::parse("1/0", |_| None).is_err());
        assert_eq!(
            Shard::parse("1/3", |_| None).unwrap(),
            Shard { index: 1, count: 3 }
        );
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_preset() {
        let file: ConfigFile = toml::from_str("preset = \"quick\"\nreps = 7\niters = 50").unwrap();
        let flags = Overrides {
            iters: Some(20),
            ..Overrides::default()
        };
        let config = build_config(None, Some(&file), &flags, "flex").unwrap();
        assert_eq!(config.preset, "quick");
        assert_eq!(config.repetitions, 7);
        assert_eq!(config.training.iterations, 20);
        assert_eq!(config.training.eval_every, 50);
    }

    #[test]
    fn unknown_keys_and_protocols_are_refused_by_name() {
        let err = toml::from_str::<ConfigFile>("repz = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("repz"), "{err}");
        let flags = Overrides {
            protocols: Some(vec!["nope".into()]),
            ..Overrides::default()
        };
        let err = build_config(None, None, &flags, "flex")
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope") && err.contains("raw"), "{err}");
    }

    #[test]
    fn a_new_protocol_is_a_config_entry() {
        let file: ConfigFile = toml::from_str(
            "protocols = [\"raw\", \"ft-drop\"]\n[[protocol]]\nname = \"ft-drop\"\nbackbone = \"pretrained\"\nfreeze_backbone = false\ndropout = 0.5\nlearning_rate = 0.0003\n",
        )
        .unwrap();
        let config = build_config(None, Some(&file), &Overrides::default(), "flex").unwrap();
        assert_eq!(config.protocols.len(), 2);
        assert!(config.protocols[1].needs_pretraining() && config.protocols[1].dropout == 0.5);
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        /// TOML that often parses: known keys with values of any type, mixed with noise.
        fn config_text() -> impl Strategy<Value = String> {
            let key = prop::sample::select(vec![
                "preset",
                "reps",
                "iters",
                "eval_every",
                "pretrain_iters",
                "batch",
                "protocols",
                "props",
                "subset",
                "seed",
                "source_classes",
                "target_classes",
                "nope",
            ]);
            let value = prop::sample::select(vec![
                "0",
                "1",
                "-3",
                "4294967296",
                "1e400",
                "nan",
                "\"quick\"",
                "\"x\"",
                "[]",
                "[0.5, 2.0]",
                "[6, 7]",
                "[\"raw\", \"zz\"]",
                "[[1]]",
                "true",
                "{}",
            ]);
            prop_oneof![
                prop::collection::vec((key, value), 0..6).prop_map(|pairs| {
                    pairs
                        .iter()
                        .map(|(k, v)| format!("{k} = {v}\n"))
                        .collect::<String>()
                }),
                ".{0,120}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any configuration text gives a valid study or a one-line refusal.
            #[test]
            fn any_config_text_is_a_valid_study_or_a_refusal(text in config_text()) {
                match ConfigFile::parse(&text) {
                    Err(e) => prop_assert!(!e.is_empty() && !e.contains('\n'), "{}", e),
                    Ok(file) => match build_config(None, Some(&file), &Overrides::default(), "flex") {
                        Ok(config) => prop_assert!(config.validate().is_ok()),
                        Err(e) => prop_assert!(!e.to_string().contains('\n'), "{}", e),
                    },
                }
            }
        }
    }
}
