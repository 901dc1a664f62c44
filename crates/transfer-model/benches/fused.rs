//! Criterion benchmarks of the backbone on 100 images of the study's shape through
//! `Backbone::forward` (the fused kernels on burn-flex) and `Backbone::forward_unfused`
//! (burn's modules), forward and forward + backward, to measure the gain in one run.
//!
//! `cargo bench -p transfer-model`

use burn::module::Module;
use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use transfer_core::SeededRng;
use transfer_model::CnnConfig;

fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|_| ((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale)
        .collect()
}

fn fused_vs_burn_modules(c: &mut Criterion) {
    let images = |device: &Device| {
        Tensor::<4>::from_data(
            TensorData::new(values(100 * 784, 7, 2.0), [100, 1, 28, 28]),
            device,
        )
    };
    let mut group = c.benchmark_group("fused_vs_burn_modules");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100));
    let device = Device::flex();
    let backbone = CnnConfig::new(4).init_backbone(&device, 1);
    let x = images(&device);
    group.bench_function("forward_fused", |b| {
        b.iter(|| backbone.forward(x.clone()).into_data())
    });
    group.bench_function("forward_burn_modules", |b| {
        b.iter(|| backbone.forward_unfused(x.clone()).into_data())
    });
    let ad = device.autodiff();
    let trained = backbone.fork(&ad).train();
    let x = images(&ad);
    group.bench_function("forward_backward_fused", |b| {
        b.iter(|| trained.forward(x.clone()).sum().backward())
    });
    group.bench_function("forward_backward_burn_modules", |b| {
        b.iter(|| trained.forward_unfused(x.clone()).sum().backward())
    });
    group.finish();
}

criterion_group!(benches, fused_vs_burn_modules);
criterion_main!(benches);
