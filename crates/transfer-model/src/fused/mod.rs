//! The backbone as one fused operation where a fast kernel exists.
//!
//! On burn-flex devices (with this crate's `flex` feature) conv1, ReLU, conv2, ReLU and the
//! 2x2 max-pooling run as one burn backend extension with its own backward pass
//! ([`kernels`]: Winograd and register-blocked direct convolutions with AVX-512 or AVX2 where
//! the CPU and the shapes allow, im2col and `gemm` elsewhere); with autodiff it records a
//! single graph node. Every other device, and shapes the kernels do not handle, use burn's own
//! modules: the numbers agree to float rounding (tested), only the speed differs.

#[cfg(feature = "flex")]
mod direct;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "flex")]
pub mod kernels;
#[cfg(feature = "flex")]
mod simd;
#[cfg(feature = "flex")]
mod winograd;

use burn::prelude::*;

use crate::Backbone;

/// Pooled features `[N, c2, H/2, W/2]` through the fused kernel, or `None` where this
/// device or these shapes have none ([`Backbone::forward`] then uses burn's modules).
pub fn forward(backbone: &Backbone, images: &Tensor<4>) -> Option<Tensor<4>> {
    #[cfg(feature = "flex")]
    {
        flex::forward(backbone, images)
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (backbone, images);
        None
    }
}

/// `n` values uniform in [-1, 1) from a seeded stream, for the kernels' tests.
#[cfg(all(test, feature = "flex"))]
fn test_values(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = transfer_data::SeededRng::new(seed);
    (0..n)
        .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
        .collect()
}

/// Every pair of an instruction set this CPU has and one of `items`, for the kernels' tests.
#[cfg(all(test, feature = "flex"))]
fn with_each_isa<T: Copy>(items: &[T]) -> Vec<(simd::Isa, T)> {
    let each = simd::Isa::all().into_iter();
    each.flat_map(|isa| items.iter().map(move |&item| (isa, item)))
        .collect()
}

/// Asserts that `got` equals `expected` within 1e-5 of `expected`'s largest magnitude (plus
/// 1e-5 absolute): Winograd's transforms scale a tile's values by up to 100 and 1/576, so a small
/// value carries the rounding of its tile's large ones (measured: up to 5e-6 of the largest).
/// `what` names the comparison in the failure.
#[cfg(all(test, feature = "flex"))]
fn assert_close_to_largest(what: &str, got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len(), "{what}: lengths");
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (x, y) in got.iter().zip(expected) {
        assert!((x - y).abs() <= 1e-5 * (1.0 + scale), "{what}: {x} vs {y}");
    }
}
