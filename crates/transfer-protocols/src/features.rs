//! The frozen-backbone fast path: the backbone's pooled features computed once, and the
//! classifier trained and scored on them.

use burn::module::Module;
use burn::prelude::*;
use transfer_data::{ImageSet, SeededRng};
use transfer_model::{Backbone, Classifier};
use transfer_records::{CurvePoint, LossPoint};

use crate::error::TrainError;
use crate::eval::{EvalSet, count_equal};
use crate::masks::classify;
use crate::train::{LoopSettings, Observer, Optimised, optimise};

/// Backbone features of a set of images (`[N, 6272]`) with their labels, on one device.
#[derive(Debug, Clone)]
pub struct FeatureSet {
    /// The flattened pooled features.
    pub features: Tensor<2>,
    /// The labels.
    pub labels: Tensor<1, Int>,
    len: usize,
}

impl FeatureSet {
    /// Runs `backbone` (in inference mode) over `set` in chunks of `chunk` images.
    pub fn compute(backbone: &Backbone, set: &ImageSet, device: &Device, chunk: usize) -> Self {
        let images = EvalSet::new(set, device, chunk);
        let (features, labels): (Vec<_>, Vec<_>) = images
            .chunks()
            .iter()
            .map(|(x, y)| (backbone.forward(x.clone()), y.clone()))
            .unzip();
        FeatureSet {
            features: Tensor::cat(features, 0),
            labels: Tensor::cat(labels, 0),
            len: set.len(),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fraction of the set `classifier` (in inference mode) classifies correctly.
    pub fn accuracy(&self, classifier: &Classifier) -> Result<f64, TrainError> {
        let predicted = classifier
            .forward(self.features.clone())
            .argmax(1)
            .flatten::<1>(0, 1);
        Ok(count_equal(predicted, self.labels.clone())? as f64 / self.len.max(1) as f64)
    }
}

/// Trains `classifier` on precomputed features with the shared loop (same batches, same
/// dropout masks and same Adam as the full network would see).
#[allow(clippy::too_many_arguments)]
pub fn train_classifier_on_features(
    device: &Device,
    classifier: Classifier,
    train: &FeatureSet,
    test: &FeatureSet,
    settings: &LoopSettings,
    learning_rate: f64,
    dropout: f64,
    seed: u64,
    observer: &mut dyn Observer,
) -> Result<(Classifier, Vec<CurvePoint>, Vec<LossPoint>), TrainError> {
    let ad = device.clone().autodiff();
    let classifier = classifier.fork(&ad).train();
    let (classifier, curve, loss_curve): Optimised<Classifier> = optimise(
        classifier,
        &ad,
        settings,
        learning_rate,
        train.len(),
        seed,
        observer,
        |classifier: &Classifier, positions: &[usize], masks_rng: &mut SeededRng| {
            let index: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
            let index =
                Tensor::<1, Int>::from_data(TensorData::new(index, [positions.len()]), device);
            let features = train.features.clone().select(0, index.clone()).autodiff();
            let labels = train.labels.clone().select(0, index).autodiff();
            let logits = classify(classifier, features, dropout, masks_rng, &ad);
            (logits, labels)
        },
        |classifier: &Classifier| test.accuracy(&classifier.valid()),
    )?;
    Ok((classifier.valid(), curve, loss_curve))
}
