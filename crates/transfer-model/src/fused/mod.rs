//! The backbone as one fused operation where a fast kernel exists.
//!
//! On burn-flex devices (with this crate's `flex` feature) conv1, ReLU, conv2, ReLU and the
//! 2x2 max-pooling run as one burn backend extension with its own backward pass
//! (the `transfer-kernels` crate: Winograd and register-blocked direct convolutions with
//! AVX-512 or AVX2 where the CPU and the shapes allow, im2col and `gemm` elsewhere); with autodiff it records a
//! single graph node. Every other device, and shapes the kernels do not handle, use burn's own
//! modules: the numbers agree to float rounding (tested), only the speed differs.
//!
//! The classifier's matrix products are a second extension ([`matmul`], [`linear`]):
//! `transfer_kernels::product`, summed in one order on every x86-64 CPU, forward and backward.

#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "flex")]
mod product;

use burn::nn::Linear;
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

/// Each member's `lhs[r] rhs[r]` (`[R, M, K] x [R, K, N]`) summed in
/// `transfer_kernels::product`'s order, the same on every x86-64 CPU with AVX2 or AVX-512
/// (gemm's own order follows the instruction set and the cache); `None` where this device
/// has no such kernel.
pub fn matmul(lhs: &Tensor<3>, rhs: &Tensor<3>) -> Option<Tensor<3>> {
    #[cfg(feature = "flex")]
    {
        product::matmul(lhs, rhs)
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (lhs, rhs);
        None
    }
}

/// `layer`'s output for `x` `[M, d_in]`: `x W + b` with [`matmul`]'s product where the device
/// has it, else `layer.forward(x)`. The same numbers as burn's linear layer with gemm's
/// AVX-512 kernels.
pub fn linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    let weight = layer.weight.val().unsqueeze::<3>();
    match matmul(&x.clone().unsqueeze::<3>(), &weight) {
        Some(product) => {
            let product = product.squeeze_dim::<2>(0);
            match &layer.bias {
                Some(bias) => product + bias.val().unsqueeze::<2>(),
                None => product,
            }
        }
        None => layer.forward(x),
    }
}
