//! The model crate on its own: a plain burn training loop (Adam, cross-entropy) over the even
//! digits, on a stratified 5% of their training images, using only the data and model crates.
//!
//! `MNIST_DIR=path/to/mnist cargo run --release --bin plain_loop -- [ITERATIONS]`

use std::path::PathBuf;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use transfer_data::{
    Batch, BatchSampler, Dataset, Manifest, SubsetRule, SubsetSpec, select_subset,
};
use transfer_model::CnnConfig;

fn tensors(batch: &Batch, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let images = Tensor::from_data(TensorData::new(batch.images.clone(), batch.shape()), device);
    let labels: Vec<i64> = batch.labels.iter().map(|&l| i64::from(l)).collect();
    (
        images,
        Tensor::from_data(TensorData::new(labels, [batch.len()]), device),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: u32 = std::env::args().nth(1).map_or(Ok(200), |a| a.parse())?;
    let mnist = std::env::var_os("MNIST_DIR").map_or(PathBuf::from("data/mnist"), PathBuf::from);
    let dataset = Dataset::load(&mnist, &Manifest::mnist())?; // every file's SHA-256 checked
    let task = dataset.task(&[0, 2, 4, 6, 8])?; // relabelled 0..5
    let spec = SubsetSpec {
        rule: SubsetRule::Stratified,
        proportion: 0.05,
        batch: 64,
        seed: 1,
    };
    let train = task.train.select(&select_subset(
        &task.train.labels,
        task.num_classes(),
        spec,
    )?);

    let cpu = Device::flex();
    let device = cpu.clone().autodiff();
    let mut model = CnnConfig::new(task.num_classes()).init(&device, 7);
    let mut optimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let loss = CrossEntropyLossConfig::new().init(&device);
    let mut sampler = BatchSampler::new(train.len(), 64, 3)?;
    for iteration in 1..=iterations {
        let (images, labels) = tensors(&train.batch(sampler.next_batch()), &device);
        let step_loss = loss.forward(model.forward(images), labels);
        if iteration % 50 == 0 || iteration == iterations {
            println!(
                "iteration {iteration}: loss {:.4}",
                step_loss.clone().into_scalar::<f32>()
            );
        }
        let grads = GradientsParams::from_grads(step_loss.backward(), &model);
        model = optimizer.step(1e-3, model, grads);
    }

    let model = model.valid(); // off the autodiff graph
    let test = &task.test;
    let mut correct = 0i64;
    for start in (0..test.len()).step_by(500) {
        let chunk: Vec<usize> = (start..test.len().min(start + 500)).collect();
        let (images, labels) = tensors(&test.batch(&chunk), &cpu);
        let predicted = model.forward(images).argmax(1).reshape([chunk.len()]);
        correct += predicted.equal(labels).int().sum().into_scalar::<i64>();
    }
    println!(
        "{} training images, test accuracy {:.4} on {} images",
        train.len(),
        correct as f64 / test.len() as f64,
        test.len()
    );
    Ok(())
}
