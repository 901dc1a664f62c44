//! The network's shapes, initialisation, transfer, save/load and export.

use burn::prelude::*;
use transfer_model::{CnnConfig, forward_flops_per_image, to_safetensors};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("transfer-model-{}-{name}", std::process::id()))
}

#[test]
fn shapes_follow_the_spec() {
    let device = Device::flex();
    let config = CnnConfig::new(6);
    assert_eq!(config.feature_len(), 6272);
    let model = config.init(&device, 1);
    let x = Tensor::<4>::ones([3, 1, 28, 28], &device);
    assert_eq!(model.backbone.forward(x.clone()).dims(), [3, 6272]);
    assert_eq!(model.forward(x).dims(), [3, 6]);
    // 320 + 9248 + 802,944 + 774 parameters.
    assert_eq!(
        model.num_params(),
        320 + 9248 + 6272 * 128 + 128 + 128 * 6 + 6
    );
    let flops = forward_flops_per_image(&config, 4);
    assert!((16_000_000..17_000_000).contains(&flops), "{flops}");
}

#[test]
fn xavier_uniform_weights_and_zero_biases() {
    let device = Device::flex();
    let model = CnnConfig::new(4).init(&device, 3);
    let w = values(model.backbone.conv2.weight.val());
    let limit = (6.0f32 / (32.0 * 9.0 + 32.0 * 9.0)).sqrt();
    assert!(w.iter().all(|v| v.abs() <= limit));
    let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
    let expected = limit / 3f32.sqrt();
    assert!(
        (std - expected).abs() < 0.02 * expected,
        "std {std} expected {expected}"
    );
    for b in [&model.backbone.conv1.bias, &model.classifier.fc1.bias] {
        assert!(values(b.as_ref().unwrap().val()).iter().all(|&v| v == 0.0));
    }
}

#[test]
fn a_seed_fixes_the_weights_and_seeds_differ() {
    let device = Device::flex();
    let a = values(
        CnnConfig::new(4)
            .init(&device, 5)
            .classifier
            .fc1
            .weight
            .val(),
    );
    let b = values(
        CnnConfig::new(4)
            .init(&device, 5)
            .classifier
            .fc1
            .weight
            .val(),
    );
    let c = values(
        CnnConfig::new(4)
            .init(&device, 6)
            .classifier
            .fc1
            .weight
            .val(),
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn fresh_classifier_keeps_the_backbone() {
    let device = Device::flex();
    let source = CnnConfig::new(6).init(&device, 8);
    let before = values(source.backbone.conv2.weight.val());
    let target = source.with_fresh_classifier(4, 9);
    assert_eq!(values(target.backbone.conv2.weight.val()), before);
    assert_eq!(target.classifier.num_classes(), 4);
    assert_eq!(target.config(4), CnnConfig::new(4));
}

#[test]
fn save_and_load_round_trip_exactly() {
    let device = Device::flex();
    let model = CnnConfig::new(6).init(&device, 10);
    let path = temp("round-trip.bpk");
    model.backbone.save(&path).unwrap();
    let loaded = CnnConfig::new(6)
        .init_backbone(&device, 11)
        .load(&path)
        .unwrap();
    assert_eq!(
        values(loaded.conv1.weight.val()),
        values(model.backbone.conv1.weight.val())
    );
    assert_eq!(
        values(loaded.conv2.weight.val()),
        values(model.backbone.conv2.weight.val())
    );
    std::fs::remove_file(&path).unwrap();
    let err = CnnConfig::new(6)
        .init_backbone(&device, 11)
        .load(&path)
        .unwrap_err();
    assert!(err.to_string().contains("round-trip.bpk"), "{err}");
}

#[test]
fn safetensors_export_uses_pytorch_names_and_layouts() {
    let device = Device::flex();
    let model = CnnConfig::new(4).init(&device, 12);
    let path = temp("export.safetensors");
    to_safetensors(&model, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    assert_eq!(
        header["fc1.weight"]["shape"],
        serde_json::json!([128, 6272])
    );
    assert_eq!(
        header["conv1.weight"]["shape"],
        serde_json::json!([32, 1, 3, 3])
    );
    assert_eq!(header["head.bias"]["shape"], serde_json::json!([4]));
    // fc1.weight[out=1][in=0] is burn's weight[0][1].
    let [start, _] =
        [0, 1].map(|i| header["fc1.weight"]["data_offsets"][i].as_u64().unwrap() as usize);
    let data = &bytes[8 + header_len..];
    let exported = f32::from_le_bytes(
        data[start + 6272 * 4..start + 6272 * 4 + 4]
            .try_into()
            .unwrap(),
    );
    let burn_w = values(model.classifier.fc1.weight.val());
    assert_eq!(exported, burn_w[1]);
    let total: usize = 320 + 9248 + 6272 * 128 + 128 + 128 * 4 + 4;
    assert_eq!(data.len(), total * 4);
}
