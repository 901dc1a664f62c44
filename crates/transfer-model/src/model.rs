//! The network: configuration, backbone, classifier, dropout masks, save and load.

use std::path::Path;

use burn::module::Module;
use burn::nn::Linear;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use transfer_core::SeededRng;

use crate::fused::linear;
use crate::init::{xavier_uniform, zeros};

/// Errors of building, saving or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration value that cannot make a network.
    #[error("invalid model configuration: {0}")]
    Config(String),
    /// Writing or reading a weights file failed.
    #[error("{path}: {what}")]
    Weights {
        /// The weights file.
        path: String,
        /// What went wrong.
        what: String,
    },
}

/// The largest image side a network is built for: fc1's weight grows with the pixel count
/// (32 channels x 512 x 512 / 4 features x 128 units is 1 GiB of f32).
pub const MAX_IMAGE_SIDE: usize = 512;

/// Shape of the network. The defaults are the study's model (docs/protocol.md section 3).
#[derive(Config, Debug, PartialEq)]
pub struct CnnConfig {
    /// Output classes of the head (6 for the source task, 4 for the target task).
    pub num_classes: usize,
    /// Input channels.
    #[config(default = 1)]
    pub in_channels: usize,
    /// Input height and width: the dataset's image sides.
    #[config(default = "[28, 28]")]
    pub image_size: [usize; 2],
    /// Output channels of conv1 and conv2.
    #[config(default = "[32, 32]")]
    pub channels: [usize; 2],
    /// Square kernel size of both convolutions (odd, for "same" padding).
    #[config(default = 3)]
    pub kernel_size: usize,
    /// Width of fc1.
    #[config(default = 128)]
    pub fc_width: usize,
}

impl CnnConfig {
    /// Length of the flattened pooled features fed to fc1: conv2's channels times the
    /// image's sides halved (rounded down) by the pooling; 6272 for the study's model.
    pub fn feature_len(&self) -> usize {
        let [height, width] = self.image_size;
        self.channels[1] * (height / 2) * (width / 2)
    }

    /// Checks that the numbers make a network.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |what: &str| Err(ModelError::Config(what.to_owned()));
        if self.num_classes < 2 {
            return bad("num_classes must be at least 2");
        }
        if self.kernel_size.is_multiple_of(2) {
            return bad("kernel_size must be odd for 'same' padding");
        }
        let [height, width] = self.image_size;
        if height < 2 || width < 2 {
            return Err(ModelError::Config(format!(
                "images of {height}x{width} pixels are too small: the 2x2 pooling needs at least 2x2"
            )));
        }
        if height > MAX_IMAGE_SIDE || width > MAX_IMAGE_SIDE {
            return Err(ModelError::Config(format!(
                "images of {height}x{width} pixels are too large: each side must be at most {MAX_IMAGE_SIDE}"
            )));
        }
        // With "same" padding a kernel wider than this reaches past the image from every
        // pixel: some of its taps would only ever see padding.
        let widest = 2 * height.min(width) - 1;
        if self.kernel_size > widest {
            return Err(ModelError::Config(format!(
                "a {k}x{k} kernel is too wide for images of {height}x{width} pixels (at most {widest}: wider, some of its taps would only ever see padding)",
                k = self.kernel_size
            )));
        }
        if self.in_channels == 0 || self.fc_width == 0 {
            return bad("in_channels >= 1 and fc_width >= 1 are required");
        }
        if self.channels.contains(&0) {
            return bad("channels must be positive");
        }
        Ok(())
    }

    /// A freshly initialised network: Xavier-uniform weights from `seed`, zero biases.
    ///
    /// # Panics
    /// If the configuration is invalid (see [`CnnConfig::validate`]).
    pub fn init(&self, device: &Device, seed: u64) -> Cnn {
        if let Err(e) = self.validate() {
            panic!("{e}");
        }
        Cnn {
            backbone: self.init_backbone(device, seed),
            classifier: self.init_classifier(device, self.num_classes, seed),
        }
    }

    /// A freshly initialised backbone (conv1, conv2, pooling).
    pub fn init_backbone(&self, device: &Device, seed: u64) -> Backbone {
        let k = self.kernel_size;
        let [c1, c2] = self.channels;
        let conv = |c_in: usize, c_out: usize, stream: u64| {
            let mut rng = SeededRng::stream(seed, stream);
            Conv2d {
                weight: xavier_uniform(
                    [c_out, c_in, k, k],
                    c_in * k * k,
                    c_out * k * k,
                    &mut rng,
                    device,
                ),
                bias: Some(zeros(c_out, device)),
                stride: [1, 1],
                kernel_size: [k, k],
                dilation: [1, 1],
                groups: 1,
                padding: PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2),
            }
        };
        Backbone {
            conv1: conv(self.in_channels, c1, 1),
            conv2: conv(c1, c2, 2),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
        }
    }

    /// A freshly initialised classifier (fc1 and a head of `num_classes` logits).
    pub fn init_classifier(&self, device: &Device, num_classes: usize, seed: u64) -> Classifier {
        init_classifier(self.feature_len(), self.fc_width, num_classes, seed, device)
    }
}

/// fc1 from `features` inputs to `fc_width` units and a head of `num_classes` logits,
/// Xavier-uniform from `seed`'s streams 3 and 4, zero biases.
fn init_classifier(
    features: usize,
    fc_width: usize,
    num_classes: usize,
    seed: u64,
    device: &Device,
) -> Classifier {
    let linear = |d_in: usize, d_out: usize, stream: u64| {
        let mut rng = SeededRng::stream(seed, stream);
        Linear {
            weight: xavier_uniform([d_in, d_out], d_in, d_out, &mut rng, device),
            bias: Some(zeros(d_out, device)),
        }
    };
    Classifier {
        fc1: linear(features, fc_width, 3),
        head: linear(fc_width, num_classes, 4),
    }
}

/// The transferable part: conv1, conv2 (3x3, "same", ReLU) and 2x2 max-pooling.
#[derive(Module, Debug)]
pub struct Backbone {
    /// First convolution.
    pub conv1: Conv2d,
    /// Second convolution.
    pub conv2: Conv2d,
    /// 2x2 max-pooling, stride 2.
    pub pool: MaxPool2d,
}

impl Backbone {
    /// Pooled features, flattened: `[N, 1, H, W] -> [N, 32 * (H/2) * (W/2)]` (6272 for 28x28).
    ///
    /// On burn-flex devices this is one fused operation (see [`crate::fused`]); elsewhere,
    /// and for shapes the fused kernel does not handle, [`Backbone::forward_unfused`].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match crate::fused::forward(self, &images) {
            Some(pooled) => pooled.flatten(1, 3),
            None => self.forward_unfused(images),
        }
    }

    /// The same features through burn's own modules, on any device: what
    /// [`Backbone::forward`] computes wherever no fused kernel applies.
    pub fn forward_unfused(&self, images: Tensor<4>) -> Tensor<2> {
        let x = relu(self.conv1.forward(images));
        let x = relu(self.conv2.forward(x));
        self.pool.forward(x).flatten(1, 3)
    }

    /// Saves the backbone's weights (burn's record format), atomically.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        save_atomic(self.clone(), path)
    }

    /// Loads weights saved by [`Backbone::save`] into this backbone's shape.
    pub fn load(self, path: &Path) -> Result<Backbone, ModelError> {
        self.try_load_file(path).map_err(|e| weights_error(path, e))
    }
}

/// Dropout masks for one batch, already scaled by `1 / keep`, so that training multiplies
/// and inference does nothing.
#[derive(Debug, Clone)]
pub struct DropoutMasks {
    /// `[N, feature_len]` mask on the flattened conv features.
    pub features: Tensor<2>,
    /// `[N, fc_width]` mask on fc1's output.
    pub hidden: Tensor<2>,
}

impl DropoutMasks {
    /// Masks from keep decisions drawn by the caller: `keep_features` holds
    /// `batch * feature_len` booleans, `keep_hidden` `batch * fc_width`.
    pub fn from_keep(
        keep_features: &[bool],
        keep_hidden: &[bool],
        batch: usize,
        drop_prob: f64,
        device: &Device,
    ) -> DropoutMasks {
        let mask = |keep: &[bool]| {
            let width = keep.len() / batch.max(1);
            keep_mask(keep, [batch, width], drop_prob, device)
        };
        DropoutMasks {
            features: mask(keep_features),
            hidden: mask(keep_hidden),
        }
    }
}

/// A dropout mask of `shape` from keep decisions: `1 / (1 - drop_prob)` where kept, else 0.
pub(crate) fn keep_mask<const D: usize>(
    keep: &[bool],
    shape: [usize; D],
    drop_prob: f64,
    device: &Device,
) -> Tensor<D> {
    let scale = (1.0 / (1.0 - drop_prob)) as f32;
    let values: Vec<f32> = keep.iter().map(|&k| if k { scale } else { 0.0 }).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The part trained afresh on the target task: fc1 (ReLU) and the head.
#[derive(Module, Debug)]
pub struct Classifier {
    /// Fully connected layer from the features to `fc_width` units.
    pub fc1: Linear,
    /// Output layer: `fc_width` units to the logits.
    pub head: Linear,
}

impl Classifier {
    /// Logits from flattened features, without dropout.
    pub fn forward(&self, features: Tensor<2>) -> Tensor<2> {
        linear(&self.head, relu(linear(&self.fc1, features)))
    }

    /// Logits from flattened features with dropout applied through `masks`.
    pub fn forward_masked(&self, features: Tensor<2>, masks: &DropoutMasks) -> Tensor<2> {
        let hidden = relu(linear(&self.fc1, features * masks.features.clone()));
        linear(&self.head, hidden * masks.hidden.clone())
    }

    /// Number of output classes.
    pub fn num_classes(&self) -> usize {
        self.head.weight.shape().dims::<2>()[1]
    }
}

/// The whole network.
#[derive(Module, Debug)]
pub struct Cnn {
    /// conv1, conv2 and pooling.
    pub backbone: Backbone,
    /// fc1 and the head.
    pub classifier: Classifier,
}

impl Cnn {
    /// Logits for a batch of images `[N, 1, H, W]` of the configured size, without dropout.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.backbone.forward(images))
    }

    /// Logits with dropout applied through `masks` (training only).
    pub fn forward_masked(&self, images: Tensor<4>, masks: &DropoutMasks) -> Tensor<2> {
        self.classifier
            .forward_masked(self.backbone.forward(images), masks)
    }

    /// This network's backbone with a freshly initialised classifier of `num_classes`
    /// outputs (fc1 and head from `seed`): the start of every transfer run.
    pub fn with_fresh_classifier(self, num_classes: usize, seed: u64) -> Cnn {
        let [features, fc_width] = self.classifier.fc1.weight.shape().dims::<2>();
        let device = self.backbone.conv1.weight.lazy_device();
        Cnn {
            classifier: init_classifier(features, fc_width, num_classes, seed, &device),
            backbone: self.backbone,
        }
    }

    /// The configuration this network's shapes correspond to, with `num_classes` outputs.
    /// The weights fix the pooled pixel count, not the sides: square images are assumed.
    pub fn config(&self, num_classes: usize) -> CnnConfig {
        let [c1, c_in, k, _] = self.backbone.conv1.weight.shape().dims::<4>();
        let [c2, _, _, _] = self.backbone.conv2.weight.shape().dims::<4>();
        let [features, fc_width] = self.classifier.fc1.weight.shape().dims::<2>();
        let pooled = ((features / c2) as f64).sqrt().round() as usize;
        CnnConfig::new(num_classes)
            .with_in_channels(c_in)
            .with_image_size([pooled * 2; 2])
            .with_channels([c1, c2])
            .with_kernel_size(k)
            .with_fc_width(fc_width)
    }

    /// Saves the whole network's weights (burn's record format), atomically.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        save_atomic(self.clone(), path)
    }

    /// Loads weights saved by [`Cnn::save`] into this network's shape.
    pub fn load(self, path: &Path) -> Result<Cnn, ModelError> {
        self.try_load_file(path).map_err(|e| weights_error(path, e))
    }
}

/// Writes a module's burnpack bytes atomically (`transfer_core::write_atomic`), so a reader
/// (another shard of a study, say) never sees a partial file.
fn save_atomic<M: Module>(module: M, path: &Path) -> Result<(), ModelError> {
    let bytes = module
        .into_record()
        .into_bytes()
        .map_err(|e| weights_error(path, e))?;
    transfer_core::write_atomic(path, &bytes).map_err(|e| weights_error(path, e))
}

fn weights_error(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Weights {
        path: path.display().to_string(),
        what: e.to_string(),
    }
}
