//! The fused backbone kernel against burn's own modules on burn-flex: features, and the
//! gradients of every backbone parameter and of the images, to 1e-5 relative.

use burn::module::Module;
use burn::prelude::*;
use transfer_core::SeededRng;
use transfer_model::{Backbone, CnnConfig};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

fn images(n: usize, device: &Device) -> Tensor<4> {
    images_of(n, [28, 28], device)
}

fn images_of(n: usize, [height, width]: [usize; 2], device: &Device) -> Tensor<4> {
    let mut rng = SeededRng::new(99);
    let pixels: Vec<f32> = (0..n * height * width)
        .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
        .collect();
    Tensor::from_data(TensorData::new(pixels, [n, 1, height, width]), device)
}

/// Largest difference relative to the largest magnitude of `reference`.
fn assert_close(name: &str, got: &[f32], reference: &[f32]) {
    assert_eq!(got.len(), reference.len(), "{name}: lengths");
    let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(reference)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        diff <= 1e-5 * scale.max(1e-12),
        "{name}: differs by {diff:e} at scale {scale:e}"
    );
}

#[test]
fn fused_features_equal_burn_modules() {
    let device = Device::flex();
    let backbone = CnnConfig::new(4).init_backbone(&device, 5);
    let x = images(13, &device);
    let pooled = transfer_model::fused::forward(&backbone, &x);
    assert!(pooled.is_some(), "flex devices take the fused path");
    let fused = values(backbone.forward(x.clone()));
    let reference = values(backbone.forward_unfused(x));
    assert_close("features", &fused, &reference);
    assert!(fused.iter().any(|&v| v > 0.0));
}

#[test]
fn images_of_other_sizes_give_the_configured_feature_length() {
    let device = Device::flex();
    for (side, fused) in [
        ([32, 32], true),
        ([16, 20], true),
        ([2, 2], true),
        ([29, 31], false),
        ([3, 2], false),
    ] {
        let config = CnnConfig::new(4).with_image_size(side);
        config.validate().unwrap();
        let net = config.init(&device, 5);
        let x = images_of(3, side, &device);
        assert_eq!(
            transfer_model::fused::forward(&net.backbone, &x).is_some(),
            fused,
            "{side:?}"
        );
        let features = net.backbone.forward(x.clone());
        assert_eq!(features.dims(), [3, config.feature_len()], "{side:?}");
        let reference = values(net.backbone.forward_unfused(x.clone()));
        assert_close("features", &values(features), &reference);
        assert_eq!(net.forward(x).dims(), [3, 4], "{side:?}");
    }
    for side in [[1, 28], [28, 0], [513, 28]] {
        let err = CnnConfig::new(4).with_image_size(side).validate();
        assert!(err.is_err(), "{side:?}");
    }
    // "Same" padding takes any kernel up to twice the image's side less one.
    assert!(CnnConfig::new(4).with_kernel_size(55).validate().is_ok());
    let err = CnnConfig::new(4)
        .with_kernel_size(57)
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("at most 55"), "{err}");
}

/// Gradients of `sum(features * probe)` through `forward`.
fn gradients(backbone: &Backbone, fused: bool) -> Vec<Vec<f32>> {
    let ad = Device::flex().autodiff();
    let backbone = backbone.clone().fork(&ad).train();
    let x = images(9, &ad).require_grad();
    assert!(transfer_model::fused::forward(&backbone, &images(1, &ad)).is_some());
    let features = if fused {
        backbone.forward(x.clone())
    } else {
        backbone.forward_unfused(x.clone())
    };
    let [n, f] = features.dims();
    let mut rng = SeededRng::new(7);
    let probe: Vec<f32> = (0..n * f)
        .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        .collect();
    let probe = Tensor::<2>::from_data(TensorData::new(probe, [n, f]), &ad);
    let grads = (features * probe).sum().backward();
    let grad4 = |t: &Tensor<4>| values(t.grad(&grads).expect("a gradient"));
    let grad1 = |t: &Tensor<1>| values(t.grad(&grads).expect("a gradient"));
    let bias = |c: &burn::nn::conv::Conv2d| c.bias.as_ref().expect("a bias").val();
    vec![
        grad4(&backbone.conv1.weight.val()),
        grad1(&bias(&backbone.conv1)),
        grad4(&backbone.conv2.weight.val()),
        grad1(&bias(&backbone.conv2)),
        grad4(&x),
    ]
}

#[test]
fn fused_gradients_equal_burn_modules() {
    let backbone = CnnConfig::new(4).init_backbone(&Device::flex(), 8);
    let fused = gradients(&backbone, true);
    let reference = gradients(&backbone, false);
    for (name, (a, b)) in [
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
        "conv2.bias",
        "images",
    ]
    .iter()
    .zip(fused.iter().zip(&reference))
    {
        assert_close(name, a, b);
    }
}

#[test]
fn fused_results_are_bit_identical_from_run_to_run() {
    let backbone = CnnConfig::new(4).init_backbone(&Device::flex(), 8);
    assert_eq!(gradients(&backbone, true), gradients(&backbone, true));
}

#[test]
fn other_padding_takes_burn_modules() {
    let device = Device::flex();
    let mut backbone = CnnConfig::new(4).init_backbone(&device, 5);
    backbone.conv2.padding = burn::nn::PaddingConfig2d::Valid;
    let x = images(2, &device);
    assert!(transfer_model::fused::forward(&backbone, &x).is_none());
    assert_eq!(backbone.forward(x).dims(), [2, 32 * 13 * 13]);
}
