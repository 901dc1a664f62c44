//! The small CNN of the MNIST transfer-learning study, as a burn module.
//!
//! ```text
//! input 1x28x28 -> conv1 3x3 (32, same, ReLU) -> conv2 3x3 (32, same, ReLU) -> max-pool 2x2
//!              -> flatten 6272 -> fc1 128 (ReLU) -> head K logits
//! ```
//!
//! A [`Cnn`] is a [`Backbone`] (the two convolutions and the pooling: the transferable
//! features) and a [`Classifier`] (fc1 and the head). [`Cnn::with_fresh_classifier`] keeps a
//! pretrained backbone and attaches a new classifier of any width in one call.
//!
//! A [`CnnStack`] holds several networks of one shape as one module (grouped convolutions,
//! batched products), so that one pass trains them all: the way to fill a GPU with a small
//! network.
//!
//! Weights are Xavier-uniform and biases zero, drawn from a seeded generator of this crate
//! rather than the backend's, so one seed gives the same initial weights on every backend
//! and in every thread. Dropout is applied through explicit [`DropoutMasks`] for the same
//! reason: the caller draws them from its own seeded stream.
//!
//! ```
//! use burn::prelude::*;
//! use transfer_model::CnnConfig;
//!
//! let device = Device::flex();
//! let model = CnnConfig::new(6).init(&device, 42);
//! let logits = model.forward(Tensor::zeros([2, 1, 28, 28], &device));
//! assert_eq!(logits.dims(), [2, 6]);
//! let target = model.with_fresh_classifier(4, 7);
//! assert_eq!(target.classifier.num_classes(), 4);
//! ```

mod export;
pub mod fused;
mod init;
mod model;
mod stack;

pub use export::{SafetensorsError, to_safetensors};
pub use model::{Backbone, Classifier, Cnn, CnnConfig, DropoutMasks, MAX_IMAGE_SIDE, ModelError};
pub use stack::{
    BackboneStack, ClassifierStack, CnnStack, DropoutMaskStack, LinearStack, StackedConv,
};

/// Forward floating-point operations per image of the study's model (multiply-add = 2),
/// dominated by conv2: used to report achieved GFLOP/s.
pub fn forward_flops_per_image(config: &CnnConfig, num_classes: usize) -> u64 {
    let pixels = (config.image_size[0] * config.image_size[1]) as u64;
    let k = (config.kernel_size * config.kernel_size) as u64;
    let [c1, c2] = config.channels.map(|c| c as u64);
    let conv1 = 2 * pixels * c1 * k * config.in_channels as u64;
    let conv2 = 2 * pixels * c2 * k * c1;
    let features = config.feature_len() as u64;
    let fc1 = 2 * features * config.fc_width as u64;
    let head = 2 * config.fc_width as u64 * num_classes as u64;
    conv1 + conv2 + fc1 + head
}
