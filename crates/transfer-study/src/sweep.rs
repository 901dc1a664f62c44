//! A sweep: settings varied over a grid of values, each point of the grid an ordinary study.
//!
//! An axis is written `NAME=V1,V2,...` (on the command line after `--axis`, in a configuration
//! file under `[sweep] axes`). Several axes form the full grid, the first axis varying
//! slowest. A point's directory is named by its values, `NAME=V` joined by commas
//! (`pretrain-iters=300`, `channels=16,fc-width=64`).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use transfer_data::SubsetRule;
use transfer_records::{Sources, StudyConfig};
use transfer_report::{StudyResults, SweepAxis, SweepPointResults, SweepResults};

use crate::error::{Result, StudyError};

/// A setting a sweep can vary: each one changes a run's numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// `iters`: training iterations of every target-task run.
    Iterations,
    /// `eval-every`: the evaluation interval.
    EvalEvery,
    /// `pretrain-iters`: iterations of each pretraining.
    PretrainIterations,
    /// `batch`: images per training batch.
    Batch,
    /// `subset`: how a proportion of the target training set is chosen.
    Subset,
    /// `source-classes`: the digits of the source task.
    SourceClasses,
    /// `target-classes`: the digits of the target task.
    TargetClasses,
    /// `pretrain-learning-rate`: Adam's learning rate in pretraining.
    PretrainLearningRate,
    /// `seed`: the master seed.
    Seed,
    /// `channels`: conv1's and conv2's output channels.
    Channels,
    /// `kernel-size`: the convolutions' square kernel.
    KernelSize,
    /// `fc-width`: fc1's width.
    FcWidth,
    /// `vary`: the sources of randomness that change between repetitions.
    Vary,
    /// `PROTOCOL.learning-rate`: a protocol's learning rate.
    LearningRate(String),
    /// `PROTOCOL.dropout`: a protocol's dropout probability.
    Dropout(String),
}

/// What kind of values a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Count,
    Rate,
    Rule,
    Digits,
    Widths,
    Sources,
}

impl Setting {
    /// The settings of the study itself (a protocol's are `PROTOCOL.learning-rate` and
    /// `PROTOCOL.dropout`).
    pub const STUDY: [Setting; 13] = [
        Setting::Iterations,
        Setting::EvalEvery,
        Setting::PretrainIterations,
        Setting::Batch,
        Setting::Subset,
        Setting::SourceClasses,
        Setting::TargetClasses,
        Setting::PretrainLearningRate,
        Setting::Seed,
        Setting::Channels,
        Setting::KernelSize,
        Setting::FcWidth,
        Setting::Vary,
    ];

    /// The setting called `name`.
    pub fn parse(name: &str) -> Result<Setting> {
        if let Some((protocol, field)) = name.split_once('.') {
            return match field {
                "learning-rate" => Ok(Setting::LearningRate(protocol.to_owned())),
                "dropout" => Ok(Setting::Dropout(protocol.to_owned())),
                _ => Err(StudyError::Config(format!(
                    "--axis {name}: a protocol's axis is PROTOCOL.learning-rate or PROTOCOL.dropout, not PROTOCOL.{field}"
                ))),
            };
        }
        Self::STUDY
            .iter()
            .find(|s| s.name() == name)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<String> = Self::STUDY.iter().map(Setting::name).collect();
                StudyError::Config(format!(
                    "--axis {name}: unknown setting (accepted: {}, PROTOCOL.learning-rate, PROTOCOL.dropout)",
                    names.join(", ")
                ))
            })
    }

    /// The setting's name, as [`Setting::parse`] reads it.
    pub fn name(&self) -> String {
        let name = match self {
            Setting::Iterations => "iters",
            Setting::EvalEvery => "eval-every",
            Setting::PretrainIterations => "pretrain-iters",
            Setting::Batch => "batch",
            Setting::Subset => "subset",
            Setting::SourceClasses => "source-classes",
            Setting::TargetClasses => "target-classes",
            Setting::PretrainLearningRate => "pretrain-learning-rate",
            Setting::Seed => "seed",
            Setting::Channels => "channels",
            Setting::KernelSize => "kernel-size",
            Setting::FcWidth => "fc-width",
            Setting::Vary => "vary",
            Setting::LearningRate(p) => return format!("{p}.learning-rate"),
            Setting::Dropout(p) => return format!("{p}.dropout"),
        };
        name.to_owned()
    }

    /// The protocol whose field this is, for a protocol's setting.
    pub fn protocol(&self) -> Option<&str> {
        match self {
            Setting::LearningRate(p) | Setting::Dropout(p) => Some(p),
            _ => None,
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Setting::Iterations
            | Setting::EvalEvery
            | Setting::PretrainIterations
            | Setting::Batch
            | Setting::Seed
            | Setting::KernelSize
            | Setting::FcWidth => Kind::Count,
            Setting::PretrainLearningRate | Setting::LearningRate(_) | Setting::Dropout(_) => {
                Kind::Rate
            }
            Setting::Subset => Kind::Rule,
            Setting::SourceClasses | Setting::TargetClasses => Kind::Digits,
            Setting::Channels => Kind::Widths,
            Setting::Vary => Kind::Sources,
        }
    }

    /// How its values are written, for messages.
    fn syntax(&self) -> &'static str {
        match self.kind() {
            Kind::Count => "a whole number",
            Kind::Rate => "a number such as 0.0003 or 3e-4",
            Kind::Rule => "prefix, stratified or drawn",
            Kind::Digits => "a set of digits written together, such as 012345",
            Kind::Widths => "a channel count for both convolutions (32) or one for each (16x32)",
            Kind::Sources => {
                "a source (init, order, dropout, subset, pretraining), several joined by + (init+order), or all"
            }
        }
    }

    /// Parses one value of this setting.
    pub fn value(&self, text: &str) -> Result<AxisValue> {
        let text = text.trim();
        let parsed = match self.kind() {
            Kind::Count => text.parse().ok().map(AxisValue::Count),
            Kind::Rate => text
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(AxisValue::Rate),
            Kind::Rule => SubsetRule::from_str(text).ok().map(AxisValue::Rule),
            Kind::Digits => (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| AxisValue::Digits(text.bytes().map(|b| b - b'0').collect())),
            Kind::Widths => match text.split_once('x') {
                Some((a, b)) => a
                    .parse()
                    .ok()
                    .zip(b.parse().ok())
                    .map(|(a, b)| AxisValue::Widths([a, b])),
                None => text.parse().ok().map(|c| AxisValue::Widths([c, c])),
            },
            Kind::Sources if text == "all" => Some(AxisValue::Sources(None)),
            Kind::Sources => text.parse().ok().map(|s| AxisValue::Sources(Some(s))),
        };
        parsed.ok_or_else(|| {
            StudyError::Config(format!(
                "--axis {}: '{text}' is not {}",
                self.name(),
                self.syntax()
            ))
        })
    }

    /// `config` with this setting at `value`.
    fn apply(&self, value: &AxisValue, config: &mut StudyConfig) -> Result<()> {
        let t = &mut config.training;
        match (self, value) {
            (Setting::Iterations, AxisValue::Count(v)) => t.iterations = count(self, *v)?,
            (Setting::EvalEvery, AxisValue::Count(v)) => t.eval_every = count(self, *v)?,
            (Setting::PretrainIterations, AxisValue::Count(v)) => {
                t.pretrain_iterations = count(self, *v)?;
            }
            (Setting::Batch, AxisValue::Count(v)) => t.batch_size = count(self, *v)?,
            (Setting::Seed, AxisValue::Count(v)) => t.seed = *v,
            (Setting::KernelSize, AxisValue::Count(v)) => t.network.kernel_size = count(self, *v)?,
            (Setting::FcWidth, AxisValue::Count(v)) => t.network.fc_width = count(self, *v)?,
            (Setting::Channels, AxisValue::Widths(v)) => t.network.channels = *v,
            (Setting::Subset, AxisValue::Rule(v)) => t.subset = *v,
            (Setting::Vary, AxisValue::Sources(v)) => t.vary = v.clone(),
            (Setting::SourceClasses, AxisValue::Digits(v)) => t.source_classes = v.clone(),
            (Setting::TargetClasses, AxisValue::Digits(v)) => t.target_classes = v.clone(),
            (Setting::PretrainLearningRate, AxisValue::Rate(v)) => t.pretrain_learning_rate = *v,
            (Setting::LearningRate(name) | Setting::Dropout(name), AxisValue::Rate(v)) => {
                let names: Vec<&str> = config.protocols.iter().map(|p| p.name.as_str()).collect();
                let names = names.join(", ");
                let protocol = config
                    .protocols
                    .iter_mut()
                    .find(|p| p.name == *name)
                    .ok_or_else(|| {
                        StudyError::Config(format!(
                            "--axis {}: protocol '{name}' is not in the study ({names})",
                            self.name()
                        ))
                    })?;
                match self {
                    Setting::LearningRate(_) => protocol.learning_rate = *v,
                    _ => protocol.dropout = *v,
                }
            }
            _ => {
                return Err(StudyError::Internal(
                    "an axis value of another setting's kind",
                ));
            }
        }
        Ok(())
    }
}

/// A count that fits the setting's type.
fn count<T: TryFrom<u64>>(setting: &Setting, value: u64) -> Result<T> {
    T::try_from(value)
        .map_err(|_| StudyError::Config(format!("--axis {}: {value} is too large", setting.name())))
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One value of an axis.
#[derive(Debug, Clone, PartialEq)]
pub enum AxisValue {
    /// A whole number (iterations, batch, seed, kernel, width).
    Count(u64),
    /// A rate or probability.
    Rate(f64),
    /// A subset rule.
    Rule(SubsetRule),
    /// A set of digits.
    Digits(Vec<u8>),
    /// conv1's and conv2's channels.
    Widths([usize; 2]),
    /// The sources of randomness varied; `None`: all the settings can vary (`all`).
    Sources(Option<Sources>),
}

impl AxisValue {
    /// The value as a number on a plot's axis, where it is one.
    pub fn number(&self) -> Option<f64> {
        match self {
            AxisValue::Count(v) => Some(*v as f64),
            AxisValue::Rate(v) => Some(*v),
            AxisValue::Widths([a, b]) if a == b => Some(*a as f64),
            _ => None,
        }
    }
}

impl fmt::Display for AxisValue {
    /// The canonical text, as in a point's directory name: `300`, `0.0003`, `012345`, `16x32`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AxisValue::Count(v) => write!(f, "{v}"),
            AxisValue::Rate(v) => write!(f, "{v}"),
            AxisValue::Rule(r) => write!(f, "{r}"),
            AxisValue::Digits(d) => d.iter().try_for_each(|d| write!(f, "{d}")),
            AxisValue::Widths([a, b]) if a == b => write!(f, "{a}"),
            AxisValue::Widths([a, b]) => write!(f, "{a}x{b}"),
            AxisValue::Sources(Some(s)) => write!(f, "{s}"),
            AxisValue::Sources(None) => f.write_str("all"),
        }
    }
}

/// One axis of a sweep: a setting and its values, in order, none repeated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Axis {
    setting: Setting,
    values: Vec<AxisValue>,
}

impl Axis {
    /// `setting` over `values`, refused when the list is empty or repeats a value.
    pub fn new(setting: Setting, values: Vec<AxisValue>) -> Result<Axis> {
        let bad = |what: String| StudyError::Config(format!("--axis {setting}: {what}"));
        if values.is_empty() {
            return Err(bad("no values".into()));
        }
        for (i, v) in values.iter().enumerate() {
            if values[..i].iter().any(|w| w.to_string() == v.to_string()) {
                return Err(bad(format!("{v} is listed twice")));
            }
        }
        Ok(Axis { setting, values })
    }

    /// The setting varied.
    pub fn setting(&self) -> &Setting {
        &self.setting
    }

    /// Its values, in the order given.
    pub fn values(&self) -> &[AxisValue] {
        &self.values
    }

    /// Whether every value is a number, and they span at least a factor of 30 (a plot of
    /// them reads best on a log axis).
    pub fn spans_decades(&self) -> bool {
        let numbers: Option<Vec<f64>> = self.values.iter().map(AxisValue::number).collect();
        numbers.is_some_and(|n| {
            let (lo, hi) = n.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
            lo > 0.0 && hi / lo >= 30.0
        })
    }
}

impl FromStr for Axis {
    type Err = StudyError;

    /// `NAME=V1,V2,...`.
    fn from_str(text: &str) -> Result<Axis> {
        let (name, values) = text.split_once('=').ok_or_else(|| {
            StudyError::Config(format!(
                "--axis {text}: expected NAME=V1,V2,... (such as pretrain-iters=100,300)"
            ))
        })?;
        let setting = Setting::parse(name.trim())?;
        let values = if values.trim().is_empty() {
            Vec::new()
        } else {
            values
                .split(',')
                .map(|v| setting.value(v))
                .collect::<Result<_>>()?
        };
        Axis::new(setting, values)
    }
}

impl TryFrom<String> for Axis {
    type Error = StudyError;

    fn try_from(text: String) -> Result<Axis> {
        text.parse()
    }
}

impl From<Axis> for String {
    fn from(axis: Axis) -> String {
        axis.to_string()
    }
}

impl fmt::Display for Axis {
    /// `NAME=V1,V2,...`, as [`Axis::from_str`] reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: Vec<String> = self.values.iter().map(ToString::to_string).collect();
        write!(f, "{}={}", self.setting, values.join(","))
    }
}

/// A sweep: a study and the axes whose grid of values gives its points. Every point is a
/// valid study ([`Sweep::new`] checks them all).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "SweepFields")]
pub struct Sweep {
    base: StudyConfig,
    axes: Vec<Axis>,
}

/// A sweep as stored, checked into a [`Sweep`] when read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFields {
    base: StudyConfig,
    axes: Vec<Axis>,
}

impl TryFrom<SweepFields> for Sweep {
    type Error = StudyError;

    fn try_from(fields: SweepFields) -> Result<Sweep> {
        Sweep::new(fields.base, fields.axes)
    }
}

/// One point of a sweep's grid.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    /// The index of its value on each axis.
    pub at: Vec<usize>,
    /// Each axis's value at this point, in the axes' order.
    pub values: Vec<AxisValue>,
    /// Its directory's name: `NAME=V` for each axis, joined by commas.
    pub name: String,
    /// The study this point is.
    pub config: StudyConfig,
}

impl Sweep {
    /// `base` swept over `axes`: refused when there is no axis, an axis is given twice, a
    /// protocol's axis names a protocol not in the study, or any point is not a valid study.
    pub fn new(base: StudyConfig, axes: Vec<Axis>) -> Result<Sweep> {
        if axes.is_empty() {
            return Err(StudyError::Config(
                "a sweep needs at least one --axis NAME=V1,V2,... (or axes under [sweep] in its configuration file)".into(),
            ));
        }
        for (i, axis) in axes.iter().enumerate() {
            if axes[..i].iter().any(|a| a.setting == axis.setting) {
                return Err(StudyError::Config(format!(
                    "--axis {}: the setting has two axes",
                    axis.setting
                )));
            }
        }
        let sweep = Sweep { base, axes };
        for point in sweep.grid() {
            point?;
        }
        Ok(sweep)
    }

    /// The study every point starts from.
    pub fn base(&self) -> &StudyConfig {
        &self.base
    }

    /// The axes, in order.
    pub fn axes(&self) -> &[Axis] {
        &self.axes
    }

    /// The number of points.
    pub fn len(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product()
    }

    /// Whether the grid is empty (never: every axis has a value).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `self` with the base's training settings replaced (the dataset and backend a
    /// workspace binds), its points checked again.
    pub fn with_base(&self, base: StudyConfig) -> Result<Sweep> {
        Sweep::new(base, self.axes.clone())
    }

    /// Every point, the first axis varying slowest.
    pub fn points(&self) -> Vec<SweepPoint> {
        // Every point was checked by `new`.
        self.grid().filter_map(Result::ok).collect()
    }

    fn grid(&self) -> impl Iterator<Item = Result<SweepPoint>> + '_ {
        (0..self.len()).map(move |mut index| {
            let mut picks = vec![0; self.axes.len()];
            for (k, axis) in self.axes.iter().enumerate().rev() {
                picks[k] = index % axis.values.len();
                index /= axis.values.len();
            }
            self.point(&picks)
        })
    }

    fn point(&self, picks: &[usize]) -> Result<SweepPoint> {
        let mut config = self.base.clone();
        let mut values = Vec::with_capacity(picks.len());
        let mut names = Vec::with_capacity(picks.len());
        for (axis, &pick) in self.axes.iter().zip(picks) {
            let value = &axis.values[pick];
            axis.setting.apply(value, &mut config)?;
            names.push(format!("{}={value}", axis.setting));
            values.push(value.clone());
        }
        let name = names.join(",");
        config.training = config.training.canonical();
        config
            .validate()
            .map_err(|e| StudyError::Config(format!("sweep point {name}: {e}")))?;
        Ok(SweepPoint {
            at: picks.to_vec(),
            values,
            name,
            config,
        })
    }
}

/// The report's view of `sweep` run into `root`: its axes and each point's results (`None`
/// for a point whose directory does not exist yet).
pub(crate) fn results(sweep: &Sweep, root: &Path) -> Result<SweepResults> {
    let axes = sweep
        .axes
        .iter()
        .map(|axis| SweepAxis {
            name: axis.setting.name(),
            labels: axis.values.iter().map(ToString::to_string).collect(),
            values: axis.values.iter().map(AxisValue::number).collect(),
            log_scale: axis.spans_decades(),
        })
        .collect();
    let points = sweep
        .points()
        .into_iter()
        .map(|point| {
            let dir = root.join(&point.name);
            let results = if dir.join("settings.json").exists() {
                Some(StudyResults::read(&dir)?)
            } else {
                None
            };
            Ok(SweepPointResults {
                name: point.name,
                at: point.at,
                results,
                planned_runs: point.config.num_runs(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SweepResults {
        axes,
        points,
        protocols: sweep
            .base
            .protocols
            .iter()
            .map(|p| p.name.clone())
            .collect(),
        proportions: sweep.base.proportions.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Preset;

    fn sweep(axes: &[&str]) -> Result<Sweep> {
        let axes = axes
            .iter()
            .map(|a| a.parse())
            .collect::<Result<Vec<Axis>>>()?;
        Sweep::new(Preset::Smoke.config(), axes)
    }

    #[test]
    fn the_grid_is_every_combination_first_axis_slowest() {
        let s = sweep(&["channels=16,32x64", "fc-width=64,128,256"]).unwrap();
        assert_eq!(s.len(), 6);
        let points = s.points();
        let names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "channels=16,fc-width=64",
                "channels=16,fc-width=128",
                "channels=16,fc-width=256",
                "channels=32x64,fc-width=64",
                "channels=32x64,fc-width=128",
                "channels=32x64,fc-width=256",
            ]
        );
        assert_eq!(points[3].config.training.network.channels, [32, 64]);
        assert_eq!(points[3].config.training.network.fc_width, 64);
        // The base's other settings are kept.
        assert_eq!(points[0].config.training.iterations, 5);
    }

    #[test]
    fn every_kind_of_value_parses_and_prints_back() {
        for text in [
            "iters=10,100",
            "eval-every=5",
            "pretrain-iters=100,300,1000,3000",
            "batch=50,100",
            "subset=prefix,stratified",
            "source-classes=012345,01234",
            "target-classes=6789,789",
            "pretrain-learning-rate=0.001,0.0001",
            "seed=1,2",
            "channels=16,32x64",
            "kernel-size=3,5",
            "fc-width=64",
            "finetune.learning-rate=0.0001,0.0003,0.001",
            "dropout.dropout=0.25,0.5,0.75",
            "vary=init,order,dropout,pretraining,init+order,all",
            "subset=drawn",
        ] {
            let axis: Axis = text.parse().unwrap();
            assert_eq!(axis.to_string(), text);
            let json = serde_json::to_string(&axis).unwrap();
            assert_eq!(serde_json::from_str::<Axis>(&json).unwrap(), axis);
        }
        let axis: Axis = "finetune.learning-rate=1e-4,3e-4".parse().unwrap();
        assert_eq!(axis.to_string(), "finetune.learning-rate=0.0001,0.0003");
        let s = sweep(&["finetune.learning-rate=1e-4", "source-classes=01234"]).unwrap();
        let config = &s.points()[0].config;
        assert_eq!(config.protocols[2].learning_rate, 1e-4);
        assert_eq!(config.training.source_classes, [0, 1, 2, 3, 4]);
        // A value naming every source the settings can vary is the default, hash and all.
        let s = sweep(&["vary=init+order+dropout+pretraining,order"]).unwrap();
        let points = s.points();
        assert_eq!(points[0].config.training, Preset::Smoke.config().training);
        assert_eq!(
            points[1].config.training.vary,
            Some("order".parse().unwrap())
        );
    }

    #[test]
    fn bad_axes_are_refused_in_one_line_naming_them() {
        for (axes, expected) in [
            (&["iterations=10"][..], "unknown setting (accepted: iters,"),
            (&["iters=10,ten"], "'ten' is not a whole number"),
            (&["iters="], "no values"),
            (&["iters"], "expected NAME=V1,V2"),
            (&["iters=10,10"], "10 is listed twice"),
            (&["iters=10", "iters=20"], "two axes"),
            (
                &["finetune-dropout.dropout=0.5"],
                "not in the study (raw, frozen",
            ),
            (&["finetune.momentum=0.9"], "PROTOCOL.learning-rate or"),
            (&["dropout.dropout=1.5"], "sweep point dropout.dropout=1.5"),
            (&["kernel-size=4"], "kernel-size 4 is even"),
            (&["channels=0"], "conv1 channels 0"),
            (
                &["source-classes=0,1"],
                "each task needs at least two classes",
            ),
            (&["source-classes=0a"], "a set of digits"),
            (&["pretrain-learning-rate=inf"], "not a number such as"),
            (
                &["iters=0"],
                "iters (training iterations per run) must be at least 1",
            ),
            (&["vary=seed"], "'seed' is not a source"),
            (&["vary=init+init"], "'init+init' is not a source"),
            (
                &["vary=init,subset"],
                "sweep point vary=subset: vary: subset cannot vary under the prefix rule",
            ),
        ] {
            let err = sweep(axes).unwrap_err().to_string();
            assert!(err.contains(expected), "{axes:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        let err = Sweep::new(Preset::Smoke.config(), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("at least one --axis"));
    }

    #[test]
    fn a_stored_sweep_reads_back_checked() {
        let s = sweep(&["pretrain-iters=10,20"]).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"pretrain-iters=10,20\""), "{json}");
        assert_eq!(serde_json::from_str::<Sweep>(&json).unwrap(), s);
        let bad = json.replace("pretrain-iters=10,20", "pretrain-iters=10,10");
        let err = serde_json::from_str::<Sweep>(&bad).unwrap_err().to_string();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn log_axes_are_for_numbers_spanning_decades() {
        let axis = |t: &str| t.parse::<Axis>().unwrap();
        assert!(axis("pretrain-iters=100,300,1000,3000").spans_decades());
        assert!(!axis("pretrain-iters=100,300").spans_decades());
        assert!(!axis("subset=prefix,stratified").spans_decades());
    }
}
