//! The study's configuration: a preset, then a TOML file, then flags.

use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;
use transfer_data::SubsetRule;
use transfer_records::{ClaimSpec, Protocol, Sources, StudyConfig, TrainingSettings};

use crate::error::{Result, StudyError};
use crate::sweep::{Axis, Sweep};

/// The named starting points of a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The published protocol exactly (docs/protocol.md): 10 repetitions of 1000 iterations, test accuracy every 10.
    Paper,
    /// About a minute on a 2-core CPU: 2 repetitions of 100 iterations, every 50.
    Quick,
    /// Seconds: 2 repetitions of 5 iterations, for CI and trying the pipeline.
    Smoke,
}

impl Preset {
    /// Every preset, the published protocol first.
    pub const ALL: [Preset; 3] = [Preset::Paper, Preset::Quick, Preset::Smoke];

    /// The preset's name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Paper => "paper",
            Preset::Quick => "quick",
            Preset::Smoke => "smoke",
        }
    }

    /// The preset's configuration. Its training settings name canonical MNIST and no backend
    /// until [`Workspace::new`](crate::Workspace::new) binds them to the dataset and device
    /// it is given.
    pub fn config(self) -> StudyConfig {
        let mut training = TrainingSettings::paper("");
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
            equivalence_margin: None,
            claims: Vec::new(),
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = StudyError;

    /// A preset by name, in any case.
    fn from_str(name: &str) -> Result<Preset> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                StudyError::Config(format!(
                    "unknown preset '{name}' (accepted: paper, quick, smoke)"
                ))
            })
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
    /// The sources of randomness that change between repetitions (`["init", "order"]`, or
    /// `["all"]`, the default: every source the settings can vary).
    pub vary: Option<Vec<String>>,
    /// Source digits.
    pub source_classes: Option<Vec<u8>>,
    /// Target digits.
    pub target_classes: Option<Vec<u8>>,
    /// The margin of the report's equivalence tests, in accuracy (default 0.002).
    pub equivalence_margin: Option<f64>,
    /// Claims the report tests instead of the published four.
    #[serde(default)]
    pub claim: Vec<ClaimSpec>,
    /// Protocols defined by the file.
    #[serde(default)]
    pub protocol: Vec<Protocol>,
    /// The axes of a sweep (`cargo xtask sweep`).
    pub sweep: Option<SweepTable>,
}

/// The `[sweep]` table of a configuration file.
///
/// ```toml
/// [sweep]
/// axes = ["pretrain-iters=100,300,1000", "finetune.learning-rate=1e-4,3e-4"]
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepTable {
    /// Each axis as `NAME=V1,V2,...`, the syntax of `--axis`.
    pub axes: Vec<String>,
}

impl ConfigFile {
    /// Reads and parses a TOML file; errors name the file and the offending key.
    pub fn read(path: &Path) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|e| StudyError::Io {
            path: path.to_owned(),
            source: e,
        })?;
        ConfigFile::parse(&text).map_err(|what| StudyError::ConfigFile {
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
    /// The sources of randomness that change between repetitions (`init,order,...` or `all`).
    pub vary: Option<String>,
}

/// `vary` as written: source names joined by commas or `+`, or `all` (every source the
/// settings can vary).
pub fn parse_vary(text: &str) -> Result<Option<Sources>> {
    if text.trim() == "all" {
        return Ok(None);
    }
    Ok(Some(text.parse()?))
}

/// Builds the effective configuration: the preset (from the flag, else the file, else
/// `paper`), then the file, then the flags.
pub fn build_config(
    preset: Option<Preset>,
    file: Option<&ConfigFile>,
    flags: &Overrides,
) -> Result<StudyConfig> {
    let empty = ConfigFile::default();
    let file = file.unwrap_or(&empty);
    let preset = match (preset, &file.preset) {
        (Some(p), _) => p,
        (None, Some(name)) => name.parse()?,
        (None, None) => Preset::Paper,
    };
    let mut config = preset.config();
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
    match (&flags.vary, &file.vary) {
        (Some(text), _) => t.vary = parse_vary(text)?,
        (None, Some(names)) => t.vary = parse_vary(&names.join(","))?,
        (None, None) => {}
    }
    config.training = config.training.canonical();
    config.equivalence_margin = file.equivalence_margin;
    config.claims = file.claim.clone();
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

/// The sweep of `config` over the file's `[sweep]` axes and the command line's (`--axis`),
/// the latter replacing a file's axis of the same setting.
pub fn build_sweep(
    config: StudyConfig,
    file: Option<&ConfigFile>,
    flag_axes: &[String],
) -> Result<Sweep> {
    let from_file: Vec<Axis> = file
        .and_then(|f| f.sweep.as_ref())
        .map(|t| t.axes.iter().map(|a| a.parse()).collect::<Result<_>>())
        .transpose()?
        .unwrap_or_default();
    let from_flags: Vec<Axis> = flag_axes.iter().map(|a| a.parse()).collect::<Result<_>>()?;
    for (i, flag) in from_flags.iter().enumerate() {
        if from_flags[..i]
            .iter()
            .any(|f| f.setting() == flag.setting())
        {
            return Err(StudyError::Config(format!(
                "--axis {}: the setting has two axes",
                flag.setting()
            )));
        }
    }
    // A flag's axis takes the place of the file's axis of its setting.
    let mut axes = Vec::with_capacity(from_file.len() + from_flags.len());
    for axis in from_file {
        match from_flags.iter().find(|f| f.setting() == axis.setting()) {
            Some(flag) => axes.push(flag.clone()),
            None => axes.push(axis),
        }
    }
    for flag in from_flags {
        if !axes.iter().any(|a| a.setting() == flag.setting()) {
            axes.push(flag);
        }
    }
    Sweep::new(config, axes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_the_preset() {
        let file: ConfigFile = toml::from_str("preset = \"quick\"\nreps = 7\niters = 50").unwrap();
        let flags = Overrides {
            iters: Some(20),
            ..Overrides::default()
        };
        let config = build_config(None, Some(&file), &flags).unwrap();
        assert_eq!(config.preset, "quick");
        assert_eq!(config.repetitions, 7);
        assert_eq!(config.training.iterations, 20);
        assert_eq!(config.training.eval_every, 50);
    }

    #[test]
    fn the_equivalence_margin_is_the_files_and_checked() {
        let file: ConfigFile = toml::from_str("equivalence_margin = 0.005").unwrap();
        let config = build_config(None, Some(&file), &Overrides::default()).unwrap();
        assert_eq!(config.equivalence_margin, Some(0.005));
        let default = build_config(None, None, &Overrides::default()).unwrap();
        assert_eq!(default.equivalence_margin, None);
        let file: ConfigFile = toml::from_str("equivalence_margin = 1.5").unwrap();
        let err = build_config(None, Some(&file), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("equivalence-margin 1.5"), "{err}");
    }

    #[test]
    fn claims_are_configuration_entries_checked_against_the_study() {
        let text = "protocols = [\"raw\", \"frozen\"]\n[[claim]]\nstatement = \"frozen ties raw at p = 1\"\ntest = \"equivalent\"\nbetter = [\"frozen\"]\nthan = [\"raw\"]\nproportions = [1.0]\nmargin = 0.003\n";
        let file: ConfigFile = toml::from_str(text).unwrap();
        let config = build_config(None, Some(&file), &Overrides::default()).unwrap();
        assert_eq!(config.claims().len(), 1);
        assert_eq!(config.claims()[0].margin, Some(0.003));
        let default = build_config(None, None, &Overrides::default()).unwrap();
        assert_eq!(default.claims(), transfer_records::ClaimSpec::published());
        // A claim about a protocol or proportion the study does not run stops it at once.
        let bad = text.replace("[\"frozen\"]\nthan", "[\"finetune\"]\nthan");
        let file: ConfigFile = toml::from_str(&bad).unwrap();
        let err = build_config(None, Some(&file), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("protocol 'finetune' is not in the study (raw, frozen)"),
            "{err}"
        );
        let bad = text.replace("proportions = [1.0]", "proportions = [0.5]");
        let file: ConfigFile = toml::from_str(&bad).unwrap();
        let err = build_config(None, Some(&file), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("proportion 0.5 is not in the study"), "{err}");
        let err = toml::from_str::<ConfigFile>(&text.replace("equivalent", "similar"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("similar"), "{err}");
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
        let err = build_config(None, None, &flags).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("raw"), "{err}");
    }

    #[test]
    fn vary_is_read_from_the_file_and_the_flag_and_checked() {
        let file: ConfigFile =
            toml::from_str("subset = \"drawn\"\nvary = [\"subset\", \"order\"]").unwrap();
        let config = build_config(None, Some(&file), &Overrides::default()).unwrap();
        assert_eq!(config.training.vary, Some("order,subset".parse().unwrap()));
        let flags = Overrides {
            vary: Some("all".into()),
            ..Overrides::default()
        };
        let config = build_config(None, Some(&file), &flags).unwrap();
        assert_eq!(config.training.vary, None);
        // Every source the prefix rule can vary, spelled out, is the default.
        let flags = Overrides {
            vary: Some("pretraining,dropout,order,init".into()),
            ..Overrides::default()
        };
        let config = build_config(None, None, &flags).unwrap();
        assert_eq!(config.training, Preset::Paper.config().training);
        for (vary, expected) in [
            ("init,seed", "unknown source 'seed'"),
            ("order,order", "order is listed twice"),
            ("init,subset", "subset cannot vary under the prefix rule"),
        ] {
            let flags = Overrides {
                vary: Some(vary.into()),
                ..Overrides::default()
            };
            let err = build_config(None, None, &flags).unwrap_err().to_string();
            assert!(err.contains(expected), "{vary}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn a_claim_comparing_a_protocol_with_itself_is_refused() {
        let text = "[[claim]]\nstatement = \"raw beats raw\"\ntest = \"better\"\nbetter = [\"raw\"]\nthan = [\"raw\"]\n";
        let file: ConfigFile = toml::from_str(text).unwrap();
        let err = build_config(None, Some(&file), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("compares raw with itself"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        // Against every other protocol is fine.
        let file: ConfigFile =
            toml::from_str(&text.replace("than = [\"raw\"]", "than = [\"*\"]")).unwrap();
        assert!(build_config(None, Some(&file), &Overrides::default()).is_ok());
    }

    #[test]
    fn a_new_protocol_is_a_config_entry() {
        let file: ConfigFile = toml::from_str(
            "protocols = [\"raw\", \"ft-drop\"]\n[[protocol]]\nname = \"ft-drop\"\nbackbone = \"pretrained\"\nfreeze_backbone = false\ndropout = 0.5\nlearning_rate = 0.0003\n",
        )
        .unwrap();
        let config = build_config(None, Some(&file), &Overrides::default()).unwrap();
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
                "vary",
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
                "[\"init\", \"subset\"]",
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
                    Ok(file) => match build_config(None, Some(&file), &Overrides::default()) {
                        Ok(config) => prop_assert!(config.validate().is_ok()),
                        Err(e) => prop_assert!(!e.to_string().contains('\n'), "{}", e),
                    },
                }
            }
        }
    }
}
