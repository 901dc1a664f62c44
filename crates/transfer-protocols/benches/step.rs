//! Criterion benchmarks of the two kernels that decide the study's time: one training step
//! (batch 100, whole network) and one evaluation pass over a test-set-sized batch of images
//! (3,969). Synthetic images of MNIST's shape: the arithmetic does not depend on pixel values.
//!
//! `cargo bench -p transfer-protocols` (CPU, burn-flex).

use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use transfer_data::{ImageSet, SeededRng};
use transfer_model::CnnConfig;
use transfer_protocols::{EvalSet, LoopSettings, RunInput, Silent, run_protocol};
use transfer_records::{Protocol, RunSeeds};

fn images(n: usize, seed: u64) -> ImageSet {
    let mut rng = SeededRng::new(seed);
    ImageSet {
        rows: 28,
        cols: 28,
        pixels: (0..n * 784).map(|_| rng.below(256) as u8).collect(),
        labels: (0..n).map(|_| rng.below(4) as u8).collect(),
    }
}

fn train_step(c: &mut Criterion) {
    // As `cargo xtask` does: without it the steps measure glibc's page faults.
    transfer_protocols::keep_freed_memory();
    let device = Device::flex();
    let train = images(500, 1);
    let test = images(10, 2);
    let mut group = c.benchmark_group("train");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1000));
    for name in ["raw", "dropout"] {
        let protocol = Protocol::preset(name).unwrap_or_else(|| Protocol::presets().remove(0));
        // Ten steps (1,000 images) per sample; set-up and the one evaluation of 10 images
        // are negligible.
        let settings = LoopSettings::new(10, 10);
        group.bench_function(format!("{name}_10_steps_batch_100"), |b| {
            b.iter(|| {
                run_protocol(
                    &device,
                    &RunInput {
                        protocol: &protocol,
                        train: &train,
                        test: &test,
                        num_classes: 4,
                        pretrained: None,
                        settings: &settings,
                        seeds: RunSeeds::all(3, 0),
                    },
                    &mut Silent,
                )
            })
        });
    }
    group.finish();
}

fn eval_pass(c: &mut Criterion) {
    let device = Device::flex();
    let model = CnnConfig::new(4).init(&device, 1);
    let test = images(3969, 4);
    let mut group = c.benchmark_group("eval");
    group.sample_size(10);
    group.throughput(Throughput::Elements(3969));
    for chunk in [100, 500] {
        let eval = EvalSet::new(&test, &device, chunk);
        group.bench_function(format!("3969_images_chunks_of_{chunk}"), |b| {
            b.iter(|| eval.accuracy(&model))
        });
    }
    group.finish();
}

criterion_group!(benches, train_step, eval_pass);
criterion_main!(benches);
