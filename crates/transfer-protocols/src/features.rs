//! The frozen-backbone fast path: the backbone's pooled features computed once, and the
//! classifier trained and scored on them.

use burn::module::Module;
use burn::prelude::*;
use transfer_data::{ImageSet, SeededRng};
use transfer_model::{Backbone, Classifier, ClassifierStack};
use transfer_records::{CurvePoint, LossPoint};

use crate::error::TrainError;
use crate::eval::{EvalSet, Tally};
use crate::masks::classify;
use crate::optimise::{Member, One, optimise_one};
use crate::settings::{LoopSeeds, LoopSettings, Observer, Optimisation};

/// Backbone features of a set of images (`[N, 6272]`) with their labels, on one device. The
/// features are kept in blocks of rows, none over the size limit given to
/// [`FeatureSet::compute`]: the target training set's are 600 MB, more than some GPUs' buffers
/// hold.
#[derive(Debug, Clone)]
pub struct FeatureSet {
    /// Consecutive blocks of `block_rows` rows (the last one may be shorter).
    blocks: Vec<Tensor<2>>,
    block_rows: usize,
    /// The labels.
    pub labels: Tensor<1, Int>,
    len: usize,
}

impl FeatureSet {
    /// Runs `backbone` (in inference mode) over `set` in chunks of `chunk` images, kept in
    /// blocks of at most `max_bytes` (or one chunk; [`crate::DEFAULT_MAX_BUFFER_BYTES`] fits every
    /// device).
    pub fn compute(
        backbone: &Backbone,
        set: &ImageSet,
        device: &Device,
        chunk: usize,
        max_bytes: usize,
    ) -> Self {
        let images = EvalSet::new(set, device, chunk);
        let mut chunks = Vec::with_capacity(images.chunks().len());
        let mut labels = Vec::with_capacity(images.chunks().len());
        for (x, y) in images.chunks() {
            chunks.push(backbone.forward(x.clone()));
            labels.push(y.clone());
        }
        // Whole chunks per block, as many as fit in a buffer (at least one).
        let (chunk_rows, width) = chunks.first().map_or((1, 1), |c| {
            let [rows, width] = c.dims();
            (rows.max(1), width.max(1))
        });
        let per_block = (max_bytes / (chunk_rows * width * 4)).max(1);
        let mut blocks = Vec::with_capacity(chunks.len().div_ceil(per_block));
        let mut chunks = chunks.into_iter().peekable();
        while chunks.peek().is_some() {
            blocks.push(Tensor::cat(chunks.by_ref().take(per_block).collect(), 0));
        }
        FeatureSet {
            blocks,
            block_rows: per_block * chunk_rows,
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

    /// The blocks of features in order, each with the row it starts at.
    pub fn blocks(&self) -> impl Iterator<Item = (usize, &Tensor<2>)> {
        self.blocks
            .iter()
            .enumerate()
            .map(|(b, block)| (b * self.block_rows, block))
    }

    /// The features of rows `positions`, in that order: `[positions.len(), 6272]`.
    pub fn rows(&self, positions: &[usize], device: &Device) -> Tensor<2> {
        let index = |rows: Vec<i64>| {
            let len = rows.len();
            Tensor::<1, Int>::from_data(TensorData::new(rows, [len]), device)
        };
        if let [block] = self.blocks.as_slice() {
            return block
                .clone()
                .select(0, index(positions.iter().map(|&p| p as i64).collect()));
        }
        // Gather block by block, then put the rows back in the order asked for.
        let mut parts = Vec::new();
        let mut order = Vec::with_capacity(positions.len());
        for (b, block) in self.blocks.iter().enumerate() {
            let wanted: Vec<usize> = (0..positions.len())
                .filter(|&i| positions[i] / self.block_rows == b)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let local = wanted
                .iter()
                .map(|&i| (positions[i] % self.block_rows) as i64);
            parts.push(block.clone().select(0, index(local.collect())));
            order.extend(wanted);
        }
        let mut back = vec![0i64; positions.len()];
        for (gathered, &i) in order.iter().enumerate() {
            back[i] = gathered as i64;
        }
        Tensor::cat(parts, 0).select(0, index(back))
    }

    /// Fraction of the set `classifier` (in inference mode) classifies correctly.
    pub fn accuracy(&self, classifier: &Classifier) -> Result<f64, TrainError> {
        let mut tally = Tally::new(1);
        for (start, block) in self.blocks() {
            let rows = block.dims()[0];
            let logits = classifier.forward(block.clone()).unsqueeze_dim(0);
            tally.add(logits, self.labels.clone().narrow(0, start, rows));
        }
        Ok(tally.accuracies(self.len)?.first().copied().unwrap_or(0.0))
    }
}

/// Each member's accuracy on its own features of one test set (`tests[r]` for member `r` of
/// `stack`, the same labels and blocks), scored in parts under `max_bytes`.
pub(crate) fn stack_accuracies(
    stack: &ClassifierStack,
    tests: &[FeatureSet],
    max_bytes: usize,
) -> Result<Vec<f64>, TrainError> {
    let members = tests.len();
    let Some(first) = tests.first() else {
        return Ok(Vec::new());
    };
    let mut tally = Tally::new(members);
    let mut member_blocks: Vec<_> = tests.iter().map(FeatureSet::blocks).collect();
    for (start, block) in first.blocks() {
        let [rows, width] = block.dims();
        let blocks: Vec<&Tensor<2>> = member_blocks
            .iter_mut()
            .filter_map(|b| b.next().map(|(_, block)| block))
            .collect();
        let part = (max_bytes / (members * width * 4).max(1)).max(1);
        for offset in (0..rows).step_by(part) {
            let len = part.min(rows - offset);
            let features = blocks.iter().map(|b| (*b).clone().narrow(0, offset, len));
            let logits = stack.forward(Tensor::stack::<3>(features.collect(), 0));
            tally.add(logits, first.labels.clone().narrow(0, start + offset, len));
        }
    }
    tally.accuracies(first.len())
}

/// Trains `classifier` on the first of `(train, test)` precomputed features, scoring on the
/// second, with the shared loop (the same batches, dropout masks and Adam as the full network
/// would see).
pub fn train_classifier_on_features(
    device: &Device,
    classifier: Classifier,
    (train, test): (&FeatureSet, &FeatureSet),
    settings: &LoopSettings,
    optimisation: Optimisation,
    seeds: impl Into<LoopSeeds>,
    observer: &mut dyn Observer,
) -> Result<(Classifier, Vec<CurvePoint>, Vec<LossPoint>), TrainError> {
    let ad = device.clone().autodiff();
    let classifier = classifier.fork(&ad).train();
    let mut objective = One::new(
        &ad,
        |classifier: &Classifier, positions: &[usize], masks_rng: &mut SeededRng| {
            let index: Vec<i64> = positions.iter().map(|&p| p as i64).collect();
            let index =
                Tensor::<1, Int>::from_data(TensorData::new(index, [positions.len()]), device);
            let features = train.rows(positions, device).autodiff();
            let labels = train.labels.clone().select(0, index).autodiff();
            let dropout = optimisation.dropout;
            let logits = classify(classifier, features, dropout, masks_rng, &ad);
            (logits, labels)
        },
        |classifier: &Classifier| test.accuracy(&classifier.valid()),
    );
    let member = Member {
        images: train.len(),
        seeds: seeds.into(),
    };
    let learning_rate = optimisation.learning_rate;
    let (classifier, curve, loss_curve) = optimise_one(
        classifier,
        member,
        settings,
        learning_rate,
        &mut objective,
        observer,
    )?;
    Ok((classifier.valid(), curve, loss_curve))
}

#[cfg(test)]
mod tests {
    use super::*;
    use transfer_model::CnnConfig;

    #[test]
    fn features_in_blocks_give_the_rows_and_accuracy_of_one_block() {
        let device = Device::flex();
        let mut rng = SeededRng::new(3);
        let pixels = (0..50 * 784)
            .map(|_| (rng.next_u64() >> 56) as u8)
            .collect();
        let labels = (0..50).map(|i| (i % 4) as u8).collect();
        let set = ImageSet {
            rows: 28,
            cols: 28,
            pixels,
            labels,
        };
        let backbone = CnnConfig::new(4).init_backbone(&device, 1);
        let whole =
            FeatureSet::compute(&backbone, &set, &device, 7, crate::DEFAULT_MAX_BUFFER_BYTES);
        // Two chunks of 7 images (6272 features each) per block: four blocks, the last of 8.
        let blocks = FeatureSet::compute(&backbone, &set, &device, 7, 14 * 6272 * 4);
        assert_eq!((whole.blocks.len(), blocks.blocks.len()), (1, 4));
        let starts: Vec<usize> = blocks.blocks().map(|(start, _)| start).collect();
        assert_eq!(starts, [0, 14, 28, 42]);
        let positions = [49, 0, 13, 14, 30, 2, 41, 42, 27];
        let values = |t: Tensor<2>| t.into_data().try_into_vec_as::<f32>().unwrap();
        let (got, expected) = (
            blocks.rows(&positions, &device),
            whole.rows(&positions, &device),
        );
        assert!(
            values(got) == values(expected),
            "rows gathered from blocks differ"
        );
        let classifier = CnnConfig::new(4).init_classifier(&device, 4, 2);
        assert_eq!(
            blocks.accuracy(&classifier).unwrap(),
            whole.accuracy(&classifier).unwrap()
        );
    }
}
