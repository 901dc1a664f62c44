//! Criterion benchmarks of the fused backbone kernels (conv1, conv2, ReLUs, pooling) on 100
//! 28x28 images through 32 and 32 channels of 3x3 kernels, by each method this CPU has
//! (im2col + gemm; direct and Winograd, with each instruction set the CPU has:
//! `winograd-avx2`, `winograd-avx512`...): the forward pass alone (evaluation), the forward
//! pass that keeps its activations, and the backward pass (training).
//!
//! Then the three products of fc1 (`fc1/...`), by gemm and by `product` with each instruction
//! set; the throughput counts floating-point operations.
//!
//! `cargo bench -p transfer-kernels`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use transfer_kernels::{Geometry, Isa, Method, Weights};

/// `n` values uniform in `[-scale/2, scale/2)` from SplitMix64 seeded with `seed`.
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..n)
        .map(|_| ((next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale)
        .collect()
}

fn backbone(c: &mut Criterion) {
    let g = Geometry {
        batch: 100,
        c0: 1,
        c1: 32,
        c2: 32,
        height: 28,
        width: 28,
        kernel: 3,
    };
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
        let (pooled, saved) = transfer_kernels::forward_with(method, isa, &g, &input, w, true);
        group.bench_function(format!("{name}/forward_100_images"), |b| {
            b.iter(|| transfer_kernels::forward_with(method, isa, &g, &input, w, false))
        });
        group.bench_function(format!("{name}/forward_saving_100_images"), |b| {
            b.iter(|| transfer_kernels::forward_with(method, isa, &g, &input, w, true))
        });
        let saved = &saved;
        group.bench_function(format!("{name}/backward_100_images"), |b| {
            b.iter(|| {
                transfer_kernels::backward_with(
                    method, isa, &g, &input, w, &pooled, saved, &grad, false,
                )
            })
        });
    }
    group.finish();
}

/// The three products of the study's fc1 (6272 features to 128 units, 100 images): forward,
/// input gradient and weight gradient, by gemm and by `product` with each instruction set
/// this CPU has, on one thread.
fn products(c: &mut Criterion) {
    use transfer_kernels::{Mat, product_with};
    let (batch, features, units) = (100, 6272, 128);
    let x = values(batch * features, 7, 2.0);
    let w = values(features * units, 8, 0.05);
    let g = values(batch * units, 9, 0.01);
    type Operands<'a> = (Mat<'a>, Mat<'a>, usize, usize, usize);
    let shapes: [(&str, Operands<'_>); 3] = [
        (
            "forward",
            (
                Mat::rows(&x, features),
                Mat::rows(&w, units),
                batch,
                features,
                units,
            ),
        ),
        (
            "input_grad",
            (
                Mat::rows(&g, units),
                Mat::cols(&w, units),
                batch,
                units,
                features,
            ),
        ),
        (
            "weight_grad",
            (
                Mat::cols(&x, features),
                Mat::rows(&g, units),
                features,
                batch,
                units,
            ),
        ),
    ];
    let variants = std::iter::once(("gemm", None))
        .chain(Isa::all().into_iter().map(|isa| (isa.name(), Some(isa))));
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a thread pool");
    let mut group = c.benchmark_group("fc1");
    group.sample_size(30);
    group.throughput(Throughput::Elements((2 * batch * features * units) as u64));
    for (name, isa) in variants {
        for (what, (lhs, rhs, m, k, n)) in shapes {
            group.bench_function(format!("{name}/{what}"), |b| {
                one_thread.install(|| b.iter(|| product_with(isa, lhs, rhs, m, k, n)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, backbone, products);
criterion_main!(benches);
