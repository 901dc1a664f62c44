#![doc = include_str!("../README.md")]

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
