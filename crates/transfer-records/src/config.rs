//! The configuration of a study and the part of it that fixes each run's numbers.

use serde::{Deserialize, Serialize};
use transfer_data::{Manifest, SubsetRule};

use crate::claim::ClaimSpec;
use crate::error::RecordError;
use crate::protocol::Protocol;
use crate::seeds::{run_seed, subset_seed};
use crate::vary::{RunSeeds, Source, Sources};

/// Which data a study trains on: its manifest's name and the SHA-256 of the decompressed
/// content of its four files. Part of [`TrainingSettings`], so runs on one dataset are never
/// reused or mixed with runs on another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetIdentity {
    /// The manifest's name, e.g. `MNIST`.
    pub name: String,
    /// SHA-256 of the train images, train labels, test images and test labels.
    pub sha256: [String; 4],
}

impl DatasetIdentity {
    /// The identity of the dataset `manifest` describes (whose files are only ever used once
    /// their SHA-256 matches these).
    pub fn of(manifest: &Manifest) -> Self {
        DatasetIdentity {
            name: manifest.name.clone(),
            sha256: manifest.files().map(|f| f.sha256.clone()),
        }
    }
}

/// Everything that determines the numbers of one run, besides its protocol, proportion and
/// repetition. Its [`hash`](TrainingSettings::hash) is stored in every record; a results
/// directory never mixes records of different settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSettings {
    /// Master seed from which every run's seed is derived.
    pub seed: u64,
    /// Training iterations of every target-task run.
    pub iterations: u32,
    /// Test accuracy is measured every this many iterations (and after the last).
    pub eval_every: u32,
    /// Iterations of each pretraining on the source task.
    pub pretrain_iterations: u32,
    /// Images per training batch.
    pub batch_size: usize,
    /// Adam's learning rate for pretraining.
    pub pretrain_learning_rate: f64,
    /// How a proportion of the target training set is chosen.
    pub subset: SubsetRule,
    /// Digits of the source task (pretraining).
    pub source_classes: Vec<u8>,
    /// Digits of the target task.
    pub target_classes: Vec<u8>,
    /// Backend name (`flex`, `ndarray`, `wgpu`, `vulkan`, `cuda`): numbers differ across backends in
    /// the last digits, so they are never mixed.
    pub backend: String,
    /// The dataset trained and scored on.
    pub dataset: DatasetIdentity,
    /// The network's shape. Absent from the JSON when it is the study's network, so settings
    /// written before the shape was a setting keep their hash and read as the study's network.
    #[serde(default, skip_serializing_if = "NetworkShape::is_study_network")]
    pub network: NetworkShape,
    /// The sources of randomness that change between repetitions; every other source is held
    /// at repetition 0's draw. Absent: every source these settings can vary
    /// ([`TrainingSettings::variable_sources`]), and then absent from the JSON too, so settings
    /// written before sources could be held keep their hash. [`TrainingSettings::canonical`]
    /// writes a list naming exactly those sources as absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vary: Option<Sources>,
}

/// The shape of the network besides its classes and image size: conv1's and conv2's output
/// channels, the convolutions' square kernel and fc1's width. The default is the study's
/// network (32 and 32 channels, 3x3 kernels, 128 units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkShape {
    /// Output channels of conv1 and conv2.
    pub channels: [usize; 2],
    /// Side of both convolutions' square kernel (odd: "same" padding).
    pub kernel_size: usize,
    /// Width of fc1.
    pub fc_width: usize,
}

impl NetworkShape {
    /// The largest channel count or fc1 width accepted: far past what this task can use, and
    /// small enough that a typo cannot ask for terabytes.
    pub const MAX_WIDTH: usize = 4096;

    /// The study's network.
    pub const STUDY: NetworkShape = NetworkShape {
        channels: [32, 32],
        kernel_size: 3,
        fc_width: 128,
    };

    /// Whether this is the study's network.
    pub fn is_study_network(&self) -> bool {
        *self == NetworkShape::STUDY
    }

    /// Checks the numbers: positive widths up to [`NetworkShape::MAX_WIDTH`], an odd kernel
    /// (whether the images can take it is the model's to check, knowing their size).
    pub fn validate(&self) -> Result<(), RecordError> {
        let bad = |what: String| Err(RecordError::Invalid(format!("network: {what}")));
        for (name, width) in [
            ("conv1 channels", self.channels[0]),
            ("conv2 channels", self.channels[1]),
            ("fc-width", self.fc_width),
        ] {
            if width == 0 || width > Self::MAX_WIDTH {
                return bad(format!("{name} {width} is outside 1..={}", Self::MAX_WIDTH));
            }
        }
        if self.kernel_size.is_multiple_of(2) {
            return bad(format!(
                "kernel-size {} is even; the convolutions keep the image's size (\"same\" padding), which needs an odd kernel",
                self.kernel_size
            ));
        }
        Ok(())
    }
}

impl Default for NetworkShape {
    fn default() -> NetworkShape {
        NetworkShape::STUDY
    }
}

/// Which kind of record a [`TrainingSettings::shared_key`] is for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RecordKind<'a> {
    /// A target-task run of this protocol and repetition.
    Run(&'a Protocol, u32),
    /// A pretraining on the source task.
    Pretraining,
}

impl TrainingSettings {
    /// The published study's settings (docs/protocol.md): canonical MNIST, 1000 iterations,
    /// evaluation every 10, batch 100, prefix subsets, digits 0-5 then 6-9.
    pub fn paper(backend: &str) -> Self {
        TrainingSettings {
            seed: 2016,
            iterations: 1000,
            eval_every: 10,
            pretrain_iterations: 1000,
            batch_size: 100,
            pretrain_learning_rate: 1e-3,
            subset: SubsetRule::Prefix,
            source_classes: transfer_data::SOURCE_CLASSES.to_vec(),
            target_classes: transfer_data::TARGET_CLASSES.to_vec(),
            backend: backend.to_owned(),
            dataset: DatasetIdentity::of(&Manifest::mnist()),
            network: NetworkShape::STUDY,
            vary: None,
        }
    }

    /// Every source these settings can vary: all of them where the subset rule draws the
    /// images, all but [`Source::Subset`] under the prefix rule (every repetition trains on
    /// the same first images of the file).
    pub fn variable_sources(&self) -> Sources {
        Sources::variable(self.subset.draws())
    }

    /// The sources that change between repetitions.
    pub fn varied(&self) -> Sources {
        self.vary.clone().unwrap_or_else(|| self.variable_sources())
    }

    /// Whether every source these settings can vary changes between repetitions (the
    /// default).
    pub fn varies_all(&self) -> bool {
        self.varied() == self.variable_sources()
    }

    /// These settings with `vary` written as [`TrainingSettings::vary`] keeps it: absent when
    /// it names every variable source, so that both spellings share a hash.
    pub fn canonical(mut self) -> TrainingSettings {
        if self.vary.as_ref() == Some(&self.variable_sources()) {
            self.vary = None;
        }
        self
    }

    /// The repetition whose draw of `source` repetition `repetition` uses: its own where the
    /// source varies, repetition 0's where it is held.
    pub fn draw_of(&self, source: Source, repetition: u32) -> u32 {
        self.varied().draw_of(source, repetition)
    }

    /// The repetition whose pretrained backbone repetition `repetition` starts from (where
    /// its protocol starts from one).
    pub fn pretraining_of(&self, repetition: u32) -> u32 {
        self.draw_of(Source::Pretraining, repetition)
    }

    /// The seeds of the run of `protocol` at `proportion`, repetition `repetition`: each
    /// source's from [`run_seed`] of the repetition whose draw it uses, but a drawn subset's,
    /// which is shared by every protocol at one proportion and repetition ([`subset_seed`])
    /// so that protocols are compared on the same images.
    pub fn run_seeds(&self, protocol: &str, proportion: f64, repetition: u32) -> RunSeeds {
        let varied = self.varied();
        let draw = |source| varied.draw_of(source, repetition);
        let seed = |source| run_seed(self.seed, protocol, proportion, draw(source));
        let subset_draw = draw(Source::Subset);
        RunSeeds {
            init: seed(Source::Init),
            order: seed(Source::Order),
            dropout: seed(Source::Dropout),
            subset: match self.subset {
                SubsetRule::Drawn => subset_seed(self.seed, proportion, subset_draw),
                SubsetRule::Stratified => seed(Source::Subset),
                // Unused: the prefix draws nothing.
                SubsetRule::Prefix => run_seed(self.seed, protocol, proportion, repetition),
            },
            pretraining: draw(Source::Pretraining),
        }
    }

    /// How often a pretraining scores the source test set: at most five times, and never more
    /// often than the target runs are scored.
    pub fn pretrain_eval_every(&self) -> u32 {
        self.eval_every.max(self.pretrain_iterations.div_ceil(5))
    }

    /// A key equal for two settings exactly when they give a record of `kind` the same numbers
    /// (for a run: the same protocol, proportion and repetition), so that a record made with
    /// one is that of the other. A run of a protocol that starts fresh reads none of the
    /// pretraining's settings (its length, learning rate, source digits); a pretraining reads
    /// none of the target task's (its length, evaluation interval, subset rule, target digits),
    /// but its own evaluation interval. A run from a pretrained backbone reads them all.
    pub fn shared_key(&self, kind: RecordKind<'_>) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(fields) = value.as_object_mut() {
            // What a run reads of `vary`: the sources it draws from that change, none for
            // repetition 0, which draws every source from its own seed.
            let varied: Vec<Source> = match kind {
                RecordKind::Run(protocol, repetition) if repetition > 0 => self
                    .varied()
                    .iter()
                    .filter(|s| s.read_by(protocol))
                    .collect(),
                _ => Vec::new(),
            };
            fields.remove("vary");
            let unread: &[&str] = match kind {
                RecordKind::Run(protocol, _) if !protocol.needs_pretraining() => &[
                    "pretrain_iterations",
                    "pretrain_learning_rate",
                    "source_classes",
                ],
                RecordKind::Run(..) => &[],
                RecordKind::Pretraining => {
                    &["iterations", "eval_every", "subset", "target_classes"]
                }
            };
            for field in unread {
                fields.remove(*field);
            }
            match kind {
                RecordKind::Run(protocol, _) => {
                    fields.insert(
                        "protocol".into(),
                        serde_json::to_value(protocol).unwrap_or_default(),
                    );
                    fields.insert(
                        "varied".into(),
                        serde_json::to_value(varied).unwrap_or_default(),
                    );
                }
                RecordKind::Pretraining => {
                    fields.insert(
                        "pretrain_eval_every".into(),
                        self.pretrain_eval_every().into(),
                    );
                }
            }
        }
        crate::sha256_hex(&value.to_string())
    }

    /// Whether these settings pose the published study's task (canonical MNIST, pretrained on
    /// digits 0-5, transferred to 6-9), so that its results compare with the published table.
    pub fn is_published_task(&self) -> bool {
        self.dataset == DatasetIdentity::of(&Manifest::mnist())
            && self.source_classes == transfer_data::SOURCE_CLASSES
            && self.target_classes == transfer_data::TARGET_CLASSES
    }

    /// The target task's test images where the dataset is canonical MNIST (whose count per
    /// digit is known), for records that do not say.
    pub fn mnist_test_samples(&self) -> Option<usize> {
        (self.dataset == DatasetIdentity::of(&Manifest::mnist())).then(|| {
            self.target_classes
                .iter()
                .filter_map(|&d| transfer_data::MNIST_TEST_DIGITS.get(usize::from(d)))
                .sum()
        })
    }

    /// Hex SHA-256 of the settings' canonical JSON.
    pub fn hash(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        crate::sha256_hex(&json)
    }

    /// Checks ranges (iterations, batch, evaluation interval, classes).
    pub fn validate(&self) -> Result<(), RecordError> {
        let bad = |what: &str| Err(RecordError::Invalid(what.to_owned()));
        if self.iterations == 0 {
            return bad("iters (training iterations per run) must be at least 1");
        }
        if self.pretrain_iterations == 0 {
            return bad(
                "pretrain-iters (iterations of each pretraining) must be at least 1; to train without a pretrained backbone, use a protocol that starts fresh, such as raw",
            );
        }
        if self.eval_every == 0 {
            return bad("eval-every must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1");
        }
        if !(self.pretrain_learning_rate.is_finite() && self.pretrain_learning_rate > 0.0) {
            return bad("the pretraining learning rate must be a finite number above 0");
        }
        self.network.validate()?;
        if let Some(vary) = &self.vary
            && vary.contains(Source::Subset)
            && !self.subset.draws()
        {
            return bad(
                "vary: subset cannot vary under the prefix rule, where every repetition trains on the same first images of the file; subset = \"drawn\" draws the same number of images afresh",
            );
        }
        if self.source_classes.len() < 2 || self.target_classes.len() < 2 {
            return bad("each task needs at least two classes");
        }
        transfer_data::check_classes(&self.source_classes, &[])
            .and_then(|()| transfer_data::check_classes(&self.target_classes, &self.source_classes))
            .map_err(|e| RecordError::Invalid(format!("classes: {e}")))
    }
}

/// A whole study: the settings, and which protocols, proportions and repetitions to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// The preset this configuration started from (`paper`, `quick`, `smoke`).
    pub preset: String,
    /// Repetitions of every (protocol, proportion).
    pub repetitions: u32,
    /// Protocols, in the order of the tables.
    pub protocols: Vec<Protocol>,
    /// Proportions of the target training set.
    pub proportions: Vec<f64>,
    /// What fixes each run's numbers.
    pub training: TrainingSettings,
    /// The margin, in accuracy, within which the report tests two sides for equivalence
    /// (absent: the report's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equivalence_margin: Option<f64>,
    /// The claims the report tests (absent: the published study's four,
    /// [`ClaimSpec::published`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ClaimSpec>,
}

impl StudyConfig {
    /// Checks every part.
    pub fn validate(&self) -> Result<(), RecordError> {
        self.training.validate()?;
        if let Some(m) = self.equivalence_margin
            && !(m > 0.0 && m < 1.0)
        {
            return Err(RecordError::Invalid(format!(
                "equivalence-margin {m} is outside (0, 1)"
            )));
        }
        if self.repetitions == 0 {
            return Err(RecordError::Invalid(
                "repetitions must be at least 1".into(),
            ));
        }
        if self.protocols.is_empty() || self.proportions.is_empty() {
            return Err(RecordError::Invalid(
                "at least one protocol and one proportion are needed".into(),
            ));
        }
        for (i, p) in self.protocols.iter().enumerate() {
            p.validate()?;
            if self.protocols[..i].iter().any(|q| q.name == p.name) {
                return Err(RecordError::Invalid(format!(
                    "protocol '{}' is listed twice",
                    p.name
                )));
            }
        }
        for (i, &p) in self.proportions.iter().enumerate() {
            if !(p > 0.0 && p <= 1.0) {
                return Err(RecordError::Invalid(format!(
                    "proportion {p} is outside (0, 1]"
                )));
            }
            if self.proportions[..i].contains(&p) {
                return Err(RecordError::Invalid(format!(
                    "proportion {p} is listed twice"
                )));
            }
        }
        let names: Vec<&str> = self.protocols.iter().map(|p| p.name.as_str()).collect();
        for claim in &self.claims {
            claim.validate(&names, &self.proportions)?;
        }
        Ok(())
    }

    /// The claims the report tests: the configuration's, or the published four.
    pub fn claims(&self) -> Vec<ClaimSpec> {
        if self.claims.is_empty() {
            ClaimSpec::published()
        } else {
            self.claims.clone()
        }
    }

    /// Number of target-task runs.
    pub fn num_runs(&self) -> usize {
        self.protocols.len() * self.proportions.len() * self.repetitions as usize
    }

    /// Whether any protocol needs pretrained models.
    pub fn needs_pretraining(&self) -> bool {
        self.protocols.iter().any(Protocol::needs_pretraining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_changes_with_every_setting() {
        let a = TrainingSettings::paper("flex");
        let mut b = a.clone();
        assert_eq!(a.hash(), b.hash());
        b.eval_every = 20;
        assert_ne!(a.hash(), b.hash());
        let mut c = a.clone();
        c.backend = "wgpu".into();
        assert_ne!(a.hash(), c.hash());
        let mut d = a.clone();
        d.dataset.sha256[3] = "0".repeat(64);
        assert_ne!(a.hash(), d.hash());
    }

    #[test]
    fn an_unset_equivalence_margin_leaves_study_json_as_it_was() {
        let config = StudyConfig {
            preset: "paper".into(),
            repetitions: 1,
            protocols: Protocol::presets(),
            proportions: vec![0.1],
            training: TrainingSettings::paper("flex"),
            equivalence_margin: None,
            claims: Vec::new(),
        };
        let json = serde_json::to_string(&config).unwrap();
        assert!(!json.contains("equivalence"), "{json}");
        let back: StudyConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut s = TrainingSettings::paper("flex");
        s.iterations = 0;
        assert!(s.validate().unwrap_err().to_string().contains("iters"));
        let mut s = TrainingSettings::paper("flex");
        s.pretrain_iterations = 0;
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("pretrain-iters") && err.contains("raw"),
            "{err}"
        );
        let mut s = TrainingSettings::paper("flex");
        s.pretrain_learning_rate = f64::INFINITY;
        assert!(s.validate().unwrap_err().to_string().contains("finite"));
        let mut s = TrainingSettings::paper("flex");
        s.target_classes = vec![5, 6];
        assert!(s.validate().unwrap_err().to_string().contains("5"));
        let mut s = TrainingSettings::paper("flex");
        s.target_classes = vec![9];
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("two classes")
        );
    }
}
