//! The backbone as one fused operation where a fast kernel exists.
//!
//! On burn-flex devices (with this crate's `flex` feature) conv1, ReLU, conv2, ReLU and the
//! 2x2 max-pooling run as one burn backend extension with its own backward pass
//! (the `transfer-kernels` crate: Winograd and register-blocked direct convolutions with
//! AVX-512 or AVX2 where the CPU and the shapes allow, im2col and `gemm` elsewhere); with autodiff it records a
//! single graph node. Every other device, and shapes the kernels do not handle, use burn's own
//! modules: the numbers agree to float rounding (tested), only the speed differs.

#[cfg(feature = "flex")]
mod flex;

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
