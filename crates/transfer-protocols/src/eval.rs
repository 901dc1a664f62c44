//! Evaluation: the test set uploaded once, in chunks, scored without an autodiff graph.

use burn::prelude::*;
use transfer_data::{Batch, ImageSet};
use transfer_model::{Cnn, CnnStack};

use crate::error::TrainError;

/// Images and labels of a batch as tensors on `device`.
pub fn batch_tensors(batch: &Batch, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let images = Tensor::from_data(TensorData::new(batch.images.clone(), batch.shape()), device);
    let labels: Vec<i64> = batch.labels.iter().map(|&l| i64::from(l)).collect();
    let labels = Tensor::from_data(TensorData::new(labels, [batch.len()]), device);
    (images, labels)
}

/// The largest tensor evaluation and the cached features create unless set
/// ([`crate::LoopSettings::max_buffer_bytes`]), in bytes: 128 MiB, the largest buffer every
/// wgpu device accepts (WebGPU's default limit, and Mesa lavapipe's maximum; a stack of 3
/// scoring 500 images at once needed 150 MB there and failed, the target training set's
/// cached features 600 MB).
pub const DEFAULT_MAX_BUFFER_BYTES: usize = 128 << 20;

/// A test set held on a device as chunks of at most `chunk` images, built once and scored
/// many times.
#[derive(Debug, Clone)]
pub struct EvalSet {
    chunks: Vec<(Tensor<4>, Tensor<1, Int>)>,
    len: usize,
    max_buffer_bytes: usize,
}

impl EvalSet {
    /// Uploads `set` to `device` (which should not be an autodiff device) in chunks.
    pub fn new(set: &ImageSet, device: &Device, chunk: usize) -> EvalSet {
        let indices: Vec<usize> = (0..set.len()).collect();
        let chunks = indices
            .chunks(chunk.max(1))
            .map(|idx| batch_tensors(&set.batch(idx), device))
            .collect();
        EvalSet {
            chunks,
            len: set.len(),
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
        }
    }

    /// The same set, scoring stacks in parts whose largest tensor stays under `bytes`
    /// (default [`DEFAULT_MAX_BUFFER_BYTES`]).
    pub fn with_max_buffer_bytes(self, bytes: usize) -> EvalSet {
        EvalSet {
            max_buffer_bytes: bytes,
            ..self
        }
    }

    /// The largest tensor scoring a stack may create, in bytes.
    pub fn max_buffer_bytes(&self) -> usize {
        self.max_buffer_bytes
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks, for callers that compute something else from the images.
    pub fn chunks(&self) -> &[(Tensor<4>, Tensor<1, Int>)] {
        &self.chunks
    }

    /// Fraction of images `model` (in inference mode) classifies correctly.
    pub fn accuracy(&self, model: &Cnn) -> Result<f64, TrainError> {
        let mut tally = Tally::new(1);
        for (images, labels) in &self.chunks {
            let logits = model.forward(images.clone()).unsqueeze_dim(0);
            tally.add(logits, labels.clone());
        }
        Ok(tally.accuracies(self.len)?.first().copied().unwrap_or(0.0))
    }

    /// Each member's fraction of images classified correctly, in member order. Every chunk
    /// is scored in parts small enough for [`EvalSet::max_buffer_bytes`].
    pub fn accuracies(&self, stack: &CnnStack) -> Result<Vec<f64>, TrainError> {
        let mut tally = Tally::new(stack.members());
        for (images, labels) in self.chunks() {
            let [n, _, height, width] = images.dims();
            let per_image = stack.backbone.activation_bytes(1, height, width);
            let rows = (self.max_buffer_bytes() / per_image.max(1)).max(1);
            for start in (0..n).step_by(rows) {
                let len = rows.min(n - start);
                let images = images.clone().narrow(0, start, len);
                let logits = stack.forward(images.repeat_dim(1, stack.members()));
                tally.add(logits, labels.clone().narrow(0, start, len));
            }
        }
        tally.accuracies(self.len())
    }
}

/// Every member's correct predictions, counted on the device and read once: one
/// synchronisation per evaluation, however many chunks.
pub(crate) struct Tally {
    members: usize,
    correct: Option<Tensor<1, Int>>,
}

impl Tally {
    /// A tally of `members` networks' predictions.
    pub(crate) fn new(members: usize) -> Tally {
        Tally {
            members,
            correct: None,
        }
    }

    /// Counts each member's logits `[R, n, K]` that pick the label of `labels` `[n]`.
    pub(crate) fn add(&mut self, logits: Tensor<3>, labels: Tensor<1, Int>) {
        let [members, n, _] = logits.dims();
        let predicted = logits.argmax(2).reshape([members, n]);
        let labels = labels.reshape([1, n]).repeat_dim(0, members);
        let counts = predicted.equal(labels).int().sum_dim(1).reshape([members]);
        self.correct = Some(match self.correct.take() {
            Some(total) => total + counts,
            None => counts,
        });
    }

    /// Each member's fraction correct of `images` images.
    pub(crate) fn accuracies(self, images: usize) -> Result<Vec<f64>, TrainError> {
        let correct = match self.correct {
            Some(counts) => read_ints(counts)?,
            None => vec![0; self.members],
        };
        let images = images.max(1) as f64;
        Ok(correct.into_iter().map(|c| c as f64 / images).collect())
    }
}

/// An integer tensor's values, read back from its device (a failed device computation is
/// an error, not a panic).
pub(crate) fn read_ints(values: Tensor<1, Int>) -> Result<Vec<i64>, TrainError> {
    let data = values.try_into_data().map_err(device_error)?;
    data.try_into_vec_as::<i64>().map_err(device_error)
}

/// A float tensor's values, read back from its device.
pub(crate) fn read_floats(values: Tensor<1>) -> Result<Vec<f64>, TrainError> {
    let data = values.try_into_data().map_err(device_error)?;
    data.try_into_vec_as::<f64>().map_err(device_error)
}

/// The device's failure in one line: burn's execution errors list their causes on the lines
/// that follow, the root last ("can't allocate buffer of size: ...").
fn device_error(e: impl std::fmt::Debug) -> TrainError {
    let text = format!("{e:?}");
    let first = text.lines().next().unwrap_or_default().trim();
    let root = text
        .rsplit_once("Caused by:")
        .and_then(|(_, rest)| rest.lines().map(str::trim).find(|l| !l.is_empty()));
    TrainError::Device(match root {
        Some(root) if root != first => format!("{first}: {root}"),
        _ => first.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_device_failure_reads_as_its_first_and_root_causes() {
        let chain = "An error happened during execution\nCaused by:\n  Several failures at once\n\
                     Caused by:\n  An IO error happened\nCaused by:\n  can't allocate buffer of \
                     size: 599603200\nNo backtrace available";
        struct Chain(&'static str);
        impl std::fmt::Debug for Chain {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        assert_eq!(
            super::device_error(Chain(chain)).to_string(),
            "the device failed: An error happened during execution: can't allocate buffer of size: 599603200"
        );
        assert_eq!(
            super::device_error(Chain("out of memory")).to_string(),
            "the device failed: out of memory"
        );
    }
}
