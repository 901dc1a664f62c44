//! Several networks of one shape as one module: each layer holds every network's weights,
//! and one forward pass computes every network's output.
//!
//! The convolutions become grouped convolutions (network `r` is group `r`), and the fully
//! connected layers batched matrix products. A step of a stack of `R` networks issues the
//! same number of device operations as a step of one network, each `R` times wider: on a
//! GPU, where one small network leaves most of the device idle and the time goes to
//! launching operations, a stack trains `R` networks in little more than the time of one.
//!
//! Networks do not interact: member `r`'s outputs depend only on its own weights and inputs,
//! so a loss that sums the members' losses gives each member the gradient it would get
//! alone. [`CnnStack::stack`] and [`CnnStack::unstack`] convert exactly (the same values).

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::ops::PadMode;

use crate::model::{Backbone, Classifier, Cnn, ModelError, keep_mask};

/// One linear layer per member: `[R, B, d_in] -> [R, B, d_out]`.
#[derive(Module, Debug)]
pub struct LinearStack {
    /// `[R, d_in, d_out]`.
    pub weight: Param<Tensor<3>>,
    /// `[R, 1, d_out]`.
    pub bias: Param<Tensor<3>>,
}

impl LinearStack {
    fn stack(layers: &[&Linear]) -> LinearStack {
        let mut weights = Vec::with_capacity(layers.len());
        let mut biases = Vec::with_capacity(layers.len());
        for layer in layers {
            let [_, d_out] = layer.weight.shape().dims::<2>();
            weights.push(layer.weight.val());
            biases.push(match &layer.bias {
                Some(bias) => bias.val(),
                None => Tensor::zeros([d_out], &layer.weight.lazy_device()),
            });
        }
        LinearStack {
            weight: Param::from_tensor(Tensor::stack(weights, 0)),
            bias: Param::from_tensor(Tensor::stack::<2>(biases, 0).unsqueeze_dim(1)),
        }
    }

    fn member(&self, r: usize) -> Linear {
        let [_, d_in, d_out] = self.weight.shape().dims::<3>();
        Linear {
            weight: Param::from_tensor(self.weight.val().narrow(0, r, 1).reshape([d_in, d_out])),
            bias: Some(Param::from_tensor(
                self.bias.val().narrow(0, r, 1).reshape([d_out]),
            )),
        }
    }

    /// Each member's `x[r] W[r] + b[r]` (the product as in [`crate::fused::matmul`] where
    /// the device has it).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let weight = self.weight.val();
        crate::fused::matmul(&x, &weight).unwrap_or_else(|| x.matmul(weight)) + self.bias.val()
    }
}

/// How a stack computes its convolutions. Both give the same numbers to float rounding;
/// which is faster depends on the backend's kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StackedConv {
    /// One grouped convolution per layer, member `r` being group `r`: the backend's own
    /// convolution kernels, and no extra memory.
    #[default]
    Grouped,
    /// Each layer as one batched matrix product: every member's `k x k` shifted copies of
    /// its input (im2col, `k * k` times the layer's input in memory) times its weights, one
    /// product per image and member. Runs on the backend's matrix-product kernels, for
    /// backends whose grouped convolutions are slow.
    Gemm,
}

impl StackedConv {
    /// Its name in records: `grouped` or `gemm`.
    pub fn name(self) -> &'static str {
        match self {
            StackedConv::Grouped => "grouped",
            StackedConv::Gemm => "gemm",
        }
    }
}

impl std::fmt::Display for StackedConv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The members' backbones: conv1 and conv2 grouped by member, then pooling.
#[derive(Module, Debug)]
pub struct BackboneStack {
    /// Every member's conv1, one group each.
    pub conv1: Conv2d,
    /// Every member's conv2, one group each.
    pub conv2: Conv2d,
    /// 2x2 max-pooling, stride 2.
    pub pool: MaxPool2d,
    /// How the convolutions are computed.
    #[module(skip)]
    pub conv: StackedConv,
}

impl BackboneStack {
    /// Stacks backbones of one shape (at least one).
    pub fn stack(backbones: &[&Backbone]) -> Result<BackboneStack, ModelError> {
        let first = backbones
            .first()
            .ok_or_else(|| ModelError::Config("a stack needs at least one network".into()))?;
        let members = backbones.len();
        let conv = |layer: fn(&Backbone) -> &Conv2d| -> Result<Conv2d, ModelError> {
            let template = layer(first);
            let shape = template.weight.shape();
            let mut weights = Vec::with_capacity(members);
            let mut biases = Vec::with_capacity(members);
            for backbone in backbones {
                let conv = layer(backbone);
                if conv.weight.shape() != shape || conv.groups != 1 {
                    return Err(ModelError::Config(
                        "stacked networks must have the same shape (and ungrouped convolutions)"
                            .into(),
                    ));
                }
                weights.push(conv.weight.val());
                biases.push(match &conv.bias {
                    Some(bias) => bias.val(),
                    None => Tensor::zeros([shape.dims::<4>()[0]], &conv.weight.lazy_device()),
                });
            }
            Ok(Conv2d {
                weight: Param::from_tensor(Tensor::cat(weights, 0)),
                bias: Some(Param::from_tensor(Tensor::cat(biases, 0))),
                groups: members,
                ..template.clone()
            })
        };
        Ok(BackboneStack {
            conv1: conv(|b| &b.conv1)?,
            conv2: conv(|b| &b.conv2)?,
            pool: first.pool.clone(),
            conv: StackedConv::default(),
        })
    }

    /// The same stack, computing its convolutions as `conv` says.
    pub fn with_conv(self, conv: StackedConv) -> BackboneStack {
        BackboneStack { conv, ..self }
    }

    /// Number of members.
    pub fn members(&self) -> usize {
        self.conv1.groups
    }

    /// Member `r`'s backbone (`r < members()`).
    pub fn member(&self, r: usize) -> Backbone {
        let conv = |layer: &Conv2d| {
            let out = layer.weight.shape().dims::<4>()[0] / self.members();
            Conv2d {
                weight: Param::from_tensor(layer.weight.val().narrow(0, r * out, out)),
                bias: layer
                    .bias
                    .as_ref()
                    .map(|b| Param::from_tensor(b.val().narrow(0, r * out, out))),
                groups: 1,
                ..layer.clone()
            }
        };
        Backbone {
            conv1: conv(&self.conv1),
            conv2: conv(&self.conv2),
            pool: self.pool.clone(),
        }
    }

    /// Bytes of the widest tensor a forward pass over `images` images of `height` x `width`
    /// creates ("same" padding): conv1's or conv2's output, every member's channels, or
    /// under [`StackedConv::Gemm`] a layer's columns (`k * k` times its input).
    pub fn activation_bytes(&self, images: usize, height: usize, width: usize) -> usize {
        let widest = |conv: &Conv2d| {
            let [out, member_in, kh, kw] = conv.weight.dims();
            let columns = match (self.conv, unit_step_padding(conv)) {
                (StackedConv::Gemm, Some(_)) => self.members() * member_in * kh * kw,
                _ => 0,
            };
            out.max(columns)
        };
        let widest = widest(&self.conv1).max(widest(&self.conv2));
        images * widest * height * width * std::mem::size_of::<f32>()
    }

    /// Every member's flattened pooled features: `[B, R * C, H, W] -> [R, B, F]`, where
    /// member `r` reads input channels `r * C .. (r + 1) * C`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<3> {
        let x = relu(self.convolve(&self.conv1, images));
        let x = relu(self.convolve(&self.conv2, x));
        let pooled = self.pool.forward(x);
        let [batch, channels, h, w] = pooled.dims();
        let members = self.members();
        pooled
            .reshape([batch, members, channels / members * h * w])
            .swap_dims(0, 1)
    }

    /// `layer` (grouped by member) applied to `x`, as [`Self::conv`] says. Strided or
    /// dilated convolutions always run grouped.
    fn convolve(&self, layer: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        match (self.conv, unit_step_padding(layer)) {
            (StackedConv::Gemm, Some(padding)) => gemm_conv(layer, x, self.members(), padding),
            _ => layer.forward(x),
        }
    }
}

/// `(top, bottom, left, right)` padding of a stride-1, dilation-1 convolution; `None` for
/// any other.
fn unit_step_padding(layer: &Conv2d) -> Option<(usize, usize, usize, usize)> {
    if layer.stride != [1, 1] || layer.dilation != [1, 1] {
        return None;
    }
    let [kh, kw] = layer.kernel_size;
    match layer.padding {
        PaddingConfig2d::Valid => Some((0, 0, 0, 0)),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some((top, bottom, left, right)),
        // "Same" at stride 1 pads k - 1 in all, the extra row or column after.
        PaddingConfig2d::Same => Some(((kh - 1) / 2, kh / 2, (kw - 1) / 2, kw / 2)),
    }
}

/// A grouped convolution (group `r` = member `r`) as im2col and one batched product:
/// `[B, R * C, H, W] -> [B, R * O, H', W']`.
///
/// The `kh * kw` shifted windows of the padded input are gathered into columns
/// `[B, R, C * kh * kw, H' * W']`, ordered like the weights' `[C, kh, kw]`, and each image
/// and member's output is its weights `[O, C * kh * kw]` times its columns.
fn gemm_conv(
    layer: &Conv2d,
    x: Tensor<4>,
    members: usize,
    (top, bottom, left, right): (usize, usize, usize, usize),
) -> Tensor<4> {
    let [batch, channels, height, width] = x.dims();
    let [out_channels, member_channels, kh, kw] = layer.weight.dims();
    let (out_h, out_w) = (
        height + top + bottom + 1 - kh,
        width + left + right + 1 - kw,
    );
    let padded = x.pad((left, right, top, bottom), PadMode::Constant(0.0));
    let mut windows = Vec::with_capacity(kh * kw);
    for i in 0..kh {
        for j in 0..kw {
            windows.push(
                padded
                    .clone()
                    .slice([0..batch, 0..channels, i..i + out_h, j..j + out_w])
                    .reshape([batch, members, member_channels, 1, out_h * out_w]),
            );
        }
    }
    let columns =
        Tensor::cat(windows, 3).reshape([batch, members, member_channels * kh * kw, out_h * out_w]);
    let member_out = out_channels / members;
    let weights = layer
        .weight
        .val()
        .reshape([1, members, member_out, member_channels * kh * kw]);
    let mut out = weights.matmul(columns);
    if let Some(bias) = &layer.bias {
        out = out + bias.val().reshape([1, members, member_out, 1]);
    }
    out.reshape([batch, out_channels, out_h, out_w])
}

/// Dropout masks for every member's batch, scaled by `1 / keep` (see
/// [`crate::DropoutMasks`]).
#[derive(Debug, Clone)]
pub struct DropoutMaskStack {
    /// `[R, B, F]` mask on the flattened features.
    pub features: Tensor<3>,
    /// `[R, B, fc_width]` mask on fc1's output.
    pub hidden: Tensor<3>,
}

impl DropoutMaskStack {
    /// Masks from keep decisions, member after member: `keep_features` holds
    /// `members * batch * feature_len` booleans, `keep_hidden` `members * batch * fc_width`.
    pub fn from_keep(
        keep_features: &[bool],
        keep_hidden: &[bool],
        members: usize,
        batch: usize,
        drop_prob: f64,
        device: &Device,
    ) -> DropoutMaskStack {
        let mask = |keep: &[bool]| {
            let width = keep.len() / (members * batch).max(1);
            keep_mask(keep, [members, batch, width], drop_prob, device)
        };
        DropoutMaskStack {
            features: mask(keep_features),
            hidden: mask(keep_hidden),
        }
    }
}

/// The members' classifiers: fc1 (ReLU) and the head as batched products.
#[derive(Module, Debug)]
pub struct ClassifierStack {
    /// Every member's fc1.
    pub fc1: LinearStack,
    /// Every member's head.
    pub head: LinearStack,
}

impl ClassifierStack {
    /// Stacks classifiers of one shape (at least one).
    pub fn stack(classifiers: &[&Classifier]) -> Result<ClassifierStack, ModelError> {
        let first = classifiers
            .first()
            .ok_or_else(|| ModelError::Config("a stack needs at least one network".into()))?;
        let same = |a: &Linear, b: &Linear| a.weight.shape() == b.weight.shape();
        if !classifiers
            .iter()
            .all(|c| same(&c.fc1, &first.fc1) && same(&c.head, &first.head))
        {
            return Err(ModelError::Config(
                "stacked networks must have the same shape".into(),
            ));
        }
        let layers = |layer: fn(&Classifier) -> &Linear| {
            LinearStack::stack(&classifiers.iter().map(|c| layer(c)).collect::<Vec<_>>())
        };
        Ok(ClassifierStack {
            fc1: layers(|c| &c.fc1),
            head: layers(|c| &c.head),
        })
    }

    /// Number of members.
    pub fn members(&self) -> usize {
        self.fc1.weight.shape().dims::<3>()[0]
    }

    /// Member `r`'s classifier (`r < members()`).
    pub fn member(&self, r: usize) -> Classifier {
        Classifier {
            fc1: self.fc1.member(r),
            head: self.head.member(r),
        }
    }

    /// Every member's logits from its features, without dropout: `[R, B, F] -> [R, B, K]`.
    pub fn forward(&self, features: Tensor<3>) -> Tensor<3> {
        self.head.forward(relu(self.fc1.forward(features)))
    }

    /// Every member's logits with dropout applied through `masks` (training only).
    pub fn forward_masked(&self, features: Tensor<3>, masks: &DropoutMaskStack) -> Tensor<3> {
        let hidden = relu(self.fc1.forward(features * masks.features.clone()));
        self.head.forward(hidden * masks.hidden.clone())
    }
}

/// Whole networks of one shape as one module.
///
/// ```
/// use burn::prelude::*;
/// use transfer_model::{CnnConfig, CnnStack};
///
/// let device = Device::flex();
/// let nets = [CnnConfig::new(4).init(&device, 1), CnnConfig::new(4).init(&device, 2)];
/// let stack = CnnStack::stack(&nets).unwrap();
/// // Member r reads input channel r: two images of each member's batch of 3.
/// let logits = stack.forward(Tensor::zeros([3, 2, 28, 28], &device));
/// assert_eq!(logits.dims(), [2, 3, 4]);
/// assert_eq!(stack.unstack().len(), 2);
/// ```
#[derive(Module, Debug)]
pub struct CnnStack {
    /// The members' backbones.
    pub backbone: BackboneStack,
    /// The members' classifiers.
    pub classifier: ClassifierStack,
}

impl CnnStack {
    /// Stacks networks of one shape (at least one), in order.
    pub fn stack(networks: &[Cnn]) -> Result<CnnStack, ModelError> {
        let backbones: Vec<&Backbone> = networks.iter().map(|n| &n.backbone).collect();
        let classifiers: Vec<&Classifier> = networks.iter().map(|n| &n.classifier).collect();
        Ok(CnnStack {
            backbone: BackboneStack::stack(&backbones)?,
            classifier: ClassifierStack::stack(&classifiers)?,
        })
    }

    /// Number of members.
    pub fn members(&self) -> usize {
        self.backbone.members()
    }

    /// The same stack, computing its convolutions as `conv` says.
    pub fn with_conv(self, conv: StackedConv) -> CnnStack {
        CnnStack {
            backbone: self.backbone.with_conv(conv),
            ..self
        }
    }

    /// The members as separate networks, in order.
    pub fn unstack(&self) -> Vec<Cnn> {
        (0..self.members())
            .map(|r| Cnn {
                backbone: self.backbone.member(r),
                classifier: self.classifier.member(r),
            })
            .collect()
    }

    /// Every member's logits: `[B, R * C, H, W] -> [R, B, K]` (member `r` reads input
    /// channels `r * C .. (r + 1) * C`), without dropout.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<3> {
        self.classifier.forward(self.backbone.forward(images))
    }

    /// Every member's logits with dropout applied through `masks` (training only).
    pub fn forward_masked(&self, images: Tensor<4>, masks: &DropoutMaskStack) -> Tensor<3> {
        self.classifier
            .forward_masked(self.backbone.forward(images), masks)
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::CnnConfig;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    /// Values uniform in [0, 1) from `seed`, the same in every run: the backend's own random
    /// tensors come from one generator shared by every test running at once, and gradients
    /// through ReLU and max-pooling can jump where rounding flips a near-tie, so random inputs
    /// that change from run to run would make the comparisons below flaky.
    fn uniform<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
        let mut rng = transfer_core::SeededRng::new(seed);
        let count = shape.iter().product();
        let data: Vec<f32> = (0..count).map(|_| crate::init::unit(&mut rng)).collect();
        Tensor::from_data(TensorData::new(data, shape), device)
    }

    /// Every parameter of a network, flattened in a fixed order.
    fn parameters(net: &Cnn) -> Vec<Vec<f32>> {
        let (b, c) = (&net.backbone, &net.classifier);
        let bias =
            |p: &Option<Param<Tensor<1>>>| p.as_ref().map(|p| values(p.val())).unwrap_or_default();
        vec![
            values(b.conv1.weight.val()),
            bias(&b.conv1.bias),
            values(b.conv2.weight.val()),
            bias(&b.conv2.bias),
            values(c.fc1.weight.val()),
            bias(&c.fc1.bias),
            values(c.head.weight.val()),
            bias(&c.head.bias),
        ]
    }

    #[test]
    fn stacking_and_unstacking_keep_every_weight() {
        let device = Device::flex();
        let nets: Vec<Cnn> = (0..3).map(|s| CnnConfig::new(4).init(&device, s)).collect();
        let back = CnnStack::stack(&nets).unwrap().unstack();
        assert_eq!(back.len(), 3);
        for (a, b) in nets.iter().zip(&back) {
            assert_eq!(parameters(a), parameters(b));
        }
    }

    #[test]
    fn each_member_computes_what_its_network_computes() {
        let device = Device::flex();
        let nets: Vec<Cnn> = (0..3)
            .map(|s| CnnConfig::new(4).init(&device, 10 + s))
            .collect();
        let stack = CnnStack::stack(&nets).unwrap();
        let images: Vec<Tensor<4>> = (0..3)
            .map(|r| uniform([2, 1, 28, 28], 40 + r as u64, &device) + r as f32)
            .collect();
        let stacked = stack.forward(Tensor::cat(images.clone(), 1));
        for (r, (net, x)) in nets.iter().zip(images).enumerate() {
            let alone = net.forward(x).unsqueeze_dim::<3>(0);
            let member = stacked.clone().narrow(0, r, 1);
            for (a, b) in values(member).iter().zip(values(alone)) {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "member {r}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn each_member_gets_the_gradient_of_its_network() {
        let device = Device::flex();
        let ad = device.clone().autodiff();
        let nets: Vec<Cnn> = (0..2)
            .map(|s| CnnConfig::new(4).init(&device, 20 + s))
            .collect();
        let stack = CnnStack::stack(&nets).unwrap().fork(&ad).train();
        let images = uniform([3, 2, 28, 28], 50, &ad);
        let weights = uniform([2, 3, 4], 51, &ad);
        let grads = (stack.forward(images.clone()) * weights.clone())
            .sum()
            .backward();
        let stacked = stack.backbone.conv2.weight.val().grad(&grads).unwrap();
        let stacked_fc1 = stack.classifier.fc1.weight.val().grad(&grads).unwrap();
        for (r, net) in nets.iter().enumerate() {
            let net = net.clone().fork(&ad).train();
            let logits = net.forward(images.clone().narrow(1, r, 1));
            let weights = weights.clone().narrow(0, r, 1).reshape([3, 4]);
            let grads = (logits * weights).sum().backward();
            let pairs = [
                (
                    values(stacked.clone().narrow(0, 32 * r, 32)),
                    values(net.backbone.conv2.weight.val().grad(&grads).unwrap()),
                ),
                (
                    values(stacked_fc1.clone().narrow(0, r, 1)),
                    values(net.classifier.fc1.weight.val().grad(&grads).unwrap()),
                ),
            ];
            for (got, expected) in pairs {
                let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (a, b) in got.iter().zip(&expected) {
                    assert!((a - b).abs() <= 1e-5 * scale, "member {r}: {a} vs {b}");
                }
            }
        }
    }

    /// The gradients of every parameter and of the images, for one loss.
    fn gradients(stack: &CnnStack, images: Tensor<4>, weights: Tensor<3>) -> Vec<Vec<f32>> {
        let grads = (stack.forward(images.clone()) * weights).sum().backward();
        let (b, c) = (&stack.backbone, &stack.classifier);
        let grad = |t: Tensor<4>| values(t.grad(&grads).unwrap());
        let bias = |p: &Option<Param<Tensor<1>>>| {
            p.as_ref()
                .map(|p| values(p.val().grad(&grads).unwrap()))
                .unwrap_or_default()
        };
        vec![
            grad(images),
            grad(b.conv1.weight.val()),
            bias(&b.conv1.bias),
            grad(b.conv2.weight.val()),
            bias(&b.conv2.bias),
            values(c.fc1.weight.val().grad(&grads).unwrap()),
        ]
    }

    #[test]
    fn convolutions_as_products_equal_grouped_convolutions() {
        let device = Device::flex();
        let ad = device.clone().autodiff();
        // The study's 3x3 kernels, and 5x5 ones with "same" padding.
        for (kernel, padding) in [(3, None), (5, Some(PaddingConfig2d::Same))] {
            let config = CnnConfig::new(4).with_kernel_size(kernel);
            let nets: Vec<Cnn> = (0..3)
                .map(|s| {
                    let mut net = config.init(&device, 30 + s);
                    if let Some(padding) = &padding {
                        net.backbone.conv1.padding = padding.clone();
                        net.backbone.conv2.padding = padding.clone();
                    }
                    net
                })
                .collect();
            let grouped = CnnStack::stack(&nets).unwrap().fork(&ad).train();
            let gemm = grouped.clone().with_conv(StackedConv::Gemm);
            // The choice survives moving to a device, training mode and back.
            let moved = CnnStack::stack(&nets)
                .unwrap()
                .with_conv(StackedConv::Gemm)
                .fork(&ad)
                .train();
            assert_eq!(moved.valid().backbone.conv, StackedConv::Gemm);
            // conv2's 3 x 32 output channels, or its columns: 3 x 32 input channels x k x k.
            let bytes = |stack: &CnnStack| stack.backbone.activation_bytes(1, 28, 28);
            assert_eq!(bytes(&grouped), 96 * 784 * 4);
            assert_eq!(bytes(&gemm), 96 * kernel * kernel * 784 * 4);
            let images = uniform([2, 3, 28, 28], 60 + kernel as u64, &ad);
            let weights = uniform([3, 2, 4], 61, &ad);
            let logits = |stack: &CnnStack| values(stack.forward(images.clone()));
            for (a, b) in logits(&gemm).iter().zip(logits(&grouped)) {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "k {kernel}: {a} vs {b}"
                );
            }
            let expected = gradients(&grouped, images.clone().require_grad(), weights.clone());
            let got = gradients(&gemm, images.clone().require_grad(), weights.clone());
            for (layer, (got, expected)) in got.iter().zip(&expected).enumerate() {
                assert_eq!(got.len(), expected.len());
                let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                assert!(scale > 0.0, "k {kernel}: gradient {layer} is zero");
                for (a, b) in got.iter().zip(expected) {
                    assert!(
                        (a - b).abs() <= 1e-5 * scale,
                        "k {kernel}, gradient {layer}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn networks_of_different_shapes_do_not_stack() {
        let device = Device::flex();
        let nets = [
            CnnConfig::new(4).init(&device, 0),
            CnnConfig::new(6).init(&device, 0),
        ];
        assert!(CnnStack::stack(&nets).is_err());
        assert!(CnnStack::stack(&[]).is_err());
    }
}
