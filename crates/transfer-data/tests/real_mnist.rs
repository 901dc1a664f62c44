//! The real MNIST: counts and subset sizes of docs/protocol.md, agreement with the `mnist` crate's
//! parser, and the load time.

mod common;

use std::time::Instant;

use common::{TempDir, mnist_dir};
use transfer_data::{
    Dataset, MNIST_TEST_DIGITS, Manifest, SOURCE_CLASSES, SubsetRule, TARGET_CLASSES, subset_size,
};

#[test]
fn splits_and_subsets_have_the_specified_sizes() {
    let dir = mnist_dir();
    let start = Instant::now();
    let mnist = Dataset::load(&dir, &Manifest::mnist()).unwrap();
    eprintln!(
        "loaded and verified MNIST in {:.3} s (test profile)",
        start.elapsed().as_secs_f64()
    );
    let (source, target) = mnist
        .transfer_tasks(&SOURCE_CLASSES, &TARGET_CLASSES)
        .unwrap();
    assert_eq!((source.train.len(), source.test.len()), (36_017, 6_031));
    assert_eq!((target.train.len(), target.test.len()), (23_983, 3_969));
    assert!(target.train.labels.iter().all(|&l| l < 4));
    assert!(source.test.labels.iter().all(|&l| l < 6));
    let sizes: Vec<usize> = [0.005, 0.01, 0.1, 1.0]
        .iter()
        .map(|&p| subset_size(SubsetRule::Prefix, target.train.len(), p, 100).unwrap())
        .collect();
    assert_eq!(sizes, [100, 200, 2300, 23_900]);
    for digit in 0..10u8 {
        let task = mnist.task(&[digit, (digit + 1) % 10]).unwrap();
        let count = task.test.labels.iter().filter(|&&l| l == 0).count();
        assert_eq!(
            count,
            MNIST_TEST_DIGITS[usize::from(digit)],
            "digit {digit}"
        );
    }
}

#[test]
fn agrees_with_the_mnist_crate() {
    // The `mnist` crate reads raw files under fixed names; give it decompressed copies.
    let dir = mnist_dir();
    let manifest = Manifest::mnist();
    let raw = TempDir::new("mnist-crate");
    for spec in manifest.files() {
        let (_, content) = transfer_data::read_verified(&dir, spec).unwrap();
        std::fs::write(raw.path().join(&spec.name), content).unwrap();
    }
    let ours = Dataset::load(raw.path(), &manifest).unwrap();
    let theirs = mnist::MnistBuilder::new()
        .base_path(raw.path().to_str().unwrap())
        .training_set_length(60_000)
        .validation_set_length(0)
        .test_set_length(10_000)
        .finalize();
    assert_eq!(ours.train().pixels, theirs.trn_img);
    assert_eq!(ours.train().labels, theirs.trn_lbl);
    assert_eq!(ours.test().pixels, theirs.tst_img);
    assert_eq!(ours.test().labels, theirs.tst_lbl);
}
