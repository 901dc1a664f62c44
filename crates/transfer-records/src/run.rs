//! What one run produced.

use serde::{Deserialize, Serialize};

use crate::protocol::Protocol;

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

/// One target-task run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The protocol, in full.
    pub protocol: Protocol,
    /// Proportion of the target training set.
    pub proportion: f64,
    /// Repetition index, from 0.
    pub repetition: u32,
    /// The run's seed (subset, batches, classifier initialisation, dropout).
    pub seed: u64,
    /// Seed of the pretrained model used, if any.
    pub pretrain_seed: Option<u64>,
    /// Number of training images.
    pub train_samples: usize,
    /// Training iterations done.
    pub iterations: u32,
    /// Test accuracy every `eval_every` iterations and after the last.
    pub curve: Vec<CurvePoint>,
    /// Training loss at the same points.
    pub loss_curve: Vec<LossPoint>,
    /// Test accuracy after the last iteration.
    pub final_accuracy: f64,
    /// Seconds the run took (training and evaluation).
    pub wall_seconds: f64,
    /// Backend and device.
    pub backend: BackendInfo,
    /// Hash of the [`TrainingSettings`](crate::TrainingSettings) that produced it.
    pub settings_hash: String,
}

/// One pretraining on the source task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Training loss at the same points.
    pub loss_curve: Vec<LossPoint>,
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
            final_accuracy: 0.75,
            wall_seconds: 1.5,
            backend: BackendInfo {
                backend: "flex".into(),
                device: "cpu".into(),
                driver: String::new(),
                threads: 2,
            },
            settings_hash: "abc".into(),
        };
        let json: serde_json::Value = serde_json::to_value(&record).unwrap();
        assert_eq!(json["final_accuracy"], 0.75);
        assert_eq!(json["curve"][1]["iteration"], 20);
        assert_eq!(json["curve"][1]["accuracy"], 0.75);
        let back: RunRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }
}
