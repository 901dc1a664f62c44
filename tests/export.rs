//! A network trained by the study leaves it: `--save-models` keeps it, `export` writes it as
//! safetensors with PyTorch's names and layouts, and Python (the `safetensors` package and
//! numpy, no burn) loads it and reproduces its predictions on real MNIST test images.

// The check loads the network on burn-flex.
#![cfg(feature = "flex")]

mod common;

use std::path::Path;
use std::process::Command;

use burn::prelude::*;
use common::{mnist_dir, run_err, run_ok, temp};
use transfer_data::{Dataset, Manifest};
use transfer_model::CnnConfig;
use transfer_records::ResultsDir;

/// The logits the study's network gives for the first `n` target test images, row by row.
fn logits(dir: &Path, record: &Path, n: usize) -> Vec<Vec<f32>> {
    let store = ResultsDir::open(dir).unwrap();
    let run = store.read_run(record).unwrap();
    let saved = run.model.as_ref().expect("the run kept its model");
    let device = Device::flex();
    let model = CnnConfig::new(saved.num_classes)
        .with_image_size(saved.image_size)
        .init(&device, 0)
        .load(&store.saved_model(&run).unwrap())
        .unwrap();
    let mnist = Dataset::load(&mnist_dir(), &Manifest::mnist()).unwrap();
    let target = mnist.task(&[6, 7, 8, 9]).unwrap();
    let batch = target.test.batch(&(0..n).collect::<Vec<_>>());
    let (images, _) = transfer_protocols::batch_tensors(&batch, &device);
    let values: Vec<f32> = model
        .forward(images)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    values
        .chunks(saved.num_classes)
        .map(<[f32]>::to_vec)
        .collect()
}

#[test]
fn an_exported_network_predicts_in_python_what_it_predicted_in_the_study() {
    let dir = temp("export");
    let out = dir.to_str().unwrap();
    run_ok(&[
        "train",
        "--protocol",
        "finetune",
        "--proportion",
        "0.01",
        "--iters",
        "30",
        "--eval-every",
        "30",
        "--pretrain-iters",
        "30",
        "--save-models",
        "--quiet",
        "--out",
        out,
    ]);
    let record = dir.join("runs/finetune-p0.01-rep-00.json");
    let net = dir.join("finetune.safetensors");
    // Both the record and the model name the run.
    for run in [record.clone(), dir.join("models/finetune-p0.01-rep-00.bpk")] {
        let text = run_ok(&[
            "export",
            run.to_str().unwrap(),
            "--out",
            net.to_str().unwrap(),
        ]);
        assert!(text.contains("finetune p=0.01 rep 0"), "{text}");
    }
    let expected = logits(&dir, &record, 300);
    let expected_path = dir.join("logits.json");
    std::fs::write(&expected_path, serde_json::to_vec(&expected).unwrap()).unwrap();
    let check = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check_export.py"))
        .args([&net, &mnist_dir(), &expected_path])
        .output()
        .expect("python3 runs (with the safetensors and numpy packages, as .ci/run installs)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(check.status.success(), "{said}");
    assert!(
        said.contains("300 images: predictions agree on 1.0000"),
        "{said}"
    );
    eprintln!("{said}");

    // A model that is not the one its run recorded is refused.
    let model = dir.join("models/finetune-p0.01-rep-00.bpk");
    let mut bytes = std::fs::read(&model).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&model, bytes).unwrap();
    let err = run_err(&[
        "export",
        record.to_str().unwrap(),
        "--out",
        net.to_str().unwrap(),
    ]);
    assert!(err.contains("SHA-256 differs"), "{err}");

    // A path that does not name a run says what it expects; a missing run says so.
    let stray = dir.join("stray.bpk");
    std::fs::write(&stray, b"not a model").unwrap();
    for (path, expected) in [
        (
            stray,
            "not a run of a results directory (DIR/runs/NAME.json or DIR/models/NAME.bpk)",
        ),
        (dir.join("runs/raw-p0.01-rep-00.json"), "no such file"),
    ] {
        let err = run_err(&[
            "export",
            path.to_str().unwrap(),
            "--out",
            net.to_str().unwrap(),
        ]);
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains(expected),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
