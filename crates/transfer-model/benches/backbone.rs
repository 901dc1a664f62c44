//! Criterion benchmarks of the fused backbone kernels (conv1, conv2, ReLUs, pooling) on 100
//! images of the study's shape, by each method this CPU has (im2col + gemm; direct and
//! Winograd, with each instruction set the CPU has: `winograd-avx2`, `winograd-avx512`...):
//! the forward pass alone (evaluation), the forward pass that keeps its activations, and the
//! backward pass (training).
//!
//! The same 100 images also go through `Backbone::forward` (fused on burn-flex) and
//! `Backbone::forward_unfused` (burn's modules), forward and forward + backward, to measure
//! the gain in one run.
//!
//! `cargo bench -p transfer-model`

use burn::module::Module;
use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use transfer_data::SeededRng;
use transfer_model::CnnConfig;
use transfer_model::fused::kernels::{self, Geometry, Isa, Method, Weights};

fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = SeededRng::new(seed);
    (0..n)
        .map(|_| ((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale)
        .collect()
}

fn backbone(c: &mut Criterion) {
    let g = Geometry::of(&CnnConfig::new(4), 100);
    let input = values(g.batch * g.pixels(), 1, 2.0);
    let (w1, b1) = (values(32 * 9, 2, 0.6), values(32, 3, 0.1));
    let (w2, b2) = (values(32 * 32 * 9, 4, 0.2), values(32, 5, 0.1));
    let w = Weights {
        w1: &w1,
        b1: &b1,
        w2: &w2,
        b2: &b2,
    };
    let grad = values(g.batch * g.pooled_len(), 6, 0.01);

    // Each method, the fast ones with each instruction set.
    let variants = Method::all(&g).into_iter().flat_map(|method| match method {
        Method::Im2col => vec![(method.name().to_string(), method, None)],
        _ => Isa::all()
            .into_iter()
            .map(|isa| {
                (
                    format!("{}-{}", method.name(), isa.name()),
                    method,
                    Some(isa),
                )
            })
            .collect(),
    });
    let mut group = c.benchmark_group("backbone");
    group.sample_size(20);
    group.throughput(Throughput::Elements(g.batch as u64));
    for (name, method, isa) in variants {
        let (pooled, saved) = kernels::forward_with(method, isa, &g, &input, w, true);
        group.bench_function(format!("{name}/forward_100_images"), |b| {
            b.iter(|| kernels::forward_with(method, isa, &g, &input, w, false))
        });
        group.bench_function(format!("{name}/forward_saving_100_images"), |b| {
            b.iter(|| kernels::forward_with(method, isa, &g, &input, w, true))
        });
        let saved = &saved;
        group.bench_function(format!("{name}/backward_100_images"), |b| {
            b.iter(|| {
                kernels::backward_with(method, isa, &g, &input, w, &pooled, saved, &grad, false)
            })
        });
    }
    group.finish();
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

criterion_group!(benches, backbone, fused_vs_burn_modules);
criterion_main!(benches);
