//! What one run produced.

use serde::{Deserialize, Serialize};

use crate::config::DatasetIdentity;
use crate::protocol::Protocol;

/// What produced a record, beyond its settings: the program and its source, the data, when
/// and by which command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The program and its version, e.g. `mnist-transfer 0.1.0`.
    pub program: String,
    /// The git commit the program was built from, `-dirty` after it when its sources differed
    /// from that commit; empty when not built from a checkout.
    pub commit: String,
    /// The dataset: its manifest's name and its files' SHA-256.
    pub dataset: DatasetIdentity,
    /// When the record was written, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
    /// The command line that produced it.
    pub command: String,
    /// The results directory the record was trained in, when it was copied from there
    /// because its settings give this run the same numbers ([`crate::ResultsDir::adopt_run`]);
    /// absent for a record trained where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_in: Option<String>,
}

/// `seconds` since the Unix epoch as a UTC date and time, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_timestamp(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Test accuracy after `iteration` training iterations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Iterations done (1-based: 10 means after the tenth update).
    pub iteration: u32,
    /// Fraction of the test set classified correctly.
    pub accuracy: f64,
}

/// Mean training loss of the iterations up to `iteration` since the previous point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossPoint {
    /// Iterations done.
    pub iteration: u32,
    /// Mean softmax cross-entropy over those iterations' batches.
    pub loss: f64,
}

/// The backend and device a run used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// Backend name: `flex`, `ndarray`, `wgpu`, `vulkan`, `cuda`.
    pub backend: String,
    /// The device as the backend describes it (adapter name for a GPU).
    pub device: String,
    /// Driver or runtime description, where known.
    pub driver: String,
    /// CPU threads available to the process.
    pub threads: usize,
}

/// A trained network kept beside the records (`models/NAME.bpk` for `runs/NAME.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedModel {
    /// Its file name under the results directory's `models/`.
    pub file: String,
    /// SHA-256 of the file's bytes (set by `ResultsDir::write_run`).
    pub sha256: String,
    /// Output classes of its head.
    pub num_classes: usize,
    /// Height and width of the images it takes.
    pub image_size: [usize; 2],
}

/// Splits a loss curve at its first non-finite value: the finite points before it, and the
/// iteration it belongs to when there is one (the run diverged by then).
pub fn split_at_divergence(mut loss_curve: Vec<LossPoint>) -> (Vec<LossPoint>, Option<u32>) {
    match loss_curve.iter().position(|p| !p.loss.is_finite()) {
        Some(i) => {
            let at = loss_curve[i].iteration;
            loss_curve.truncate(i);
            (loss_curve, Some(at))
        }
        None => (loss_curve, None),
    }
}

/// One target-task run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// The protocol, in full.
    pub protocol: Protocol,
    /// Proportion of the target training set.
    pub proportion: f64,
    /// Repetition index, from 0.
    pub repetition: u32,
    /// The run's seed: where every source varies, that of its subset, batches, fresh weights
    /// and dropout ([`TrainingSettings::run_seeds`](crate::TrainingSettings::run_seeds)).
    pub seed: u64,
    /// Seed of the pretrained model used, if any.
    pub pretrain_seed: Option<u64>,
    /// Number of training images.
    pub train_samples: usize,
    /// Training iterations done.
    pub iterations: u32,
    /// Test images every evaluation scores (absent in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_samples: Option<usize>,
    /// Test accuracy every `eval_every` iterations and after the last.
    pub curve: Vec<CurvePoint>,
    /// Training loss at the same points, up to (not including) the first point whose loss
    /// was not a finite number.
    pub loss_curve: Vec<LossPoint>,
    /// The evaluation point by which the training loss had become infinite or NaN, if it
    /// did: the run diverged. Absent when the loss stayed finite. Accuracies are still
    /// measured (a diverged network's predictions), but tables leave the run out of means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged_at: Option<u32>,
    /// Test accuracy after the last iteration.
    pub final_accuracy: f64,
    /// Seconds the run took (training and evaluation).
    pub wall_seconds: f64,
    /// Backend and device.
    pub backend: BackendInfo,
    /// Hash of the [`TrainingSettings`](crate::TrainingSettings) that produced it.
    pub settings_hash: String,
    /// The trained network, when the study kept it (`--save-models`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<SavedModel>,
    /// The program, data, date and command that produced it.
    pub provenance: Provenance,
    /// SHA-256 of the record's file with these 64 digits zeroed: set when the record is
    /// written, checked when it is read back.
    #[serde(default)]
    pub checksum: String,
}

/// One pretraining on the source task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainRecord {
    /// Repetition index it serves.
    pub repetition: u32,
    /// Its seed.
    pub seed: u64,
    /// Training iterations done.
    pub iterations: u32,
    /// Number of source training images.
    pub train_samples: usize,
    /// Accuracy on the source test set, at the evaluation points.
    pub curve: Vec<CurvePoint>,
    /// Training loss at the same points, up to the first one that was not finite.
    pub loss_curve: Vec<LossPoint>,
    /// The evaluation point by which the training loss had become infinite or NaN, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged_at: Option<u32>,
    /// Accuracy on the source test set after the last iteration.
    pub source_test_accuracy: f64,
    /// Seconds it took.
    pub wall_seconds: f64,
    /// Backend and device.
    pub backend: BackendInfo,
    /// Hash of the settings that produced it.
    pub settings_hash: String,
    /// File name of the saved backbone weights, beside the record.
    pub weights_file: String,
    /// SHA-256 of the weights file's bytes.
    pub weights_sha256: String,
    /// The program, data, date and command that produced it.
    pub provenance: Provenance,
    /// SHA-256 of the record's file with these 64 digits zeroed.
    #[serde(default)]
    pub checksum: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_record_json_has_the_documented_fields() {
        let record = RunRecord {
            protocol: Protocol::preset("raw").unwrap(),
            proportion: 0.1,
            repetition: 2,
            seed: 9,
            pretrain_seed: None,
            train_samples: 2300,
            iterations: 20,
            test_samples: None,
            curve: vec![
                CurvePoint {
                    iteration: 10,
                    accuracy: 0.5,
                },
                CurvePoint {
                    iteration: 20,
                    accuracy: 0.75,
                },
            ],
            loss_curve: vec![LossPoint {
                iteration: 10,
                loss: 1.0,
            }],
            diverged_at: None,
            final_accuracy: 0.75,
            wall_seconds: 1.5,
            backend: BackendInfo {
                backend: "flex".into(),
                device: "cpu".into(),
                driver: String::new(),
                threads: 2,
            },
            settings_hash: "abc".into(),
            model: None,
            provenance: Provenance {
                program: "mnist-transfer 0.1.0".into(),
                commit: String::new(),
                dataset: crate::DatasetIdentity::of(&transfer_data::Manifest::mnist()),
                date: utc_timestamp(0),
                command: "study".into(),
                trained_in: None,
            },
            checksum: String::new(),
        };
        let json: serde_json::Value = serde_json::to_value(&record).unwrap();
        assert_eq!(json["final_accuracy"], 0.75);
        assert!(json.get("diverged_at").is_none());
        assert_eq!(json["curve"][1]["iteration"], 20);
        assert_eq!(json["curve"][1]["accuracy"], 0.75);
        let back: RunRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_796_083_199), "2026-11-30T23:59:59Z");
    }

    #[test]
    fn a_loss_curve_is_cut_at_its_first_non_finite_point() {
        let point = |iteration, loss| LossPoint { iteration, loss };
        let curve = vec![point(5, 2.0), point(10, f64::NAN), point(15, 1.0)];
        let (kept, at) = split_at_divergence(curve);
        assert_eq!((kept, at), (vec![point(5, 2.0)], Some(10)));
        let (kept, at) = split_at_divergence(vec![point(5, f64::INFINITY)]);
        assert_eq!((kept.len(), at), (0, Some(5)));
        assert_eq!(split_at_divergence(vec![point(5, 0.5)]).1, None);
    }
}
