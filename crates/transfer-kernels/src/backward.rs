//! The backward pass: gradients of the weights, summed per fixed group of images and the
//! groups added in order, and of the images when asked for.

use rayon::prelude::*;

use crate::forward::fast_isa;
use crate::im2col::{conv_im2col, im2col_channels_last, im2col_planar};
use crate::layout::{channels_last, flipped_weight_rows, tap_in_out_to_burn, tap_major_to_burn};
#[cfg(target_arch = "x86_64")]
use crate::pool::unpool_padded;
use crate::pool::{add, column_sums, keep_if, unpool_planar};
use crate::product::{Mat, gemm_product};
use crate::scratch::{FastBackward, Im2colBackward, Scratch, with_scratch};
use crate::simd::dispatch;
use crate::{
    GRAD_GROUP, Geometry, Grads, Isa, Method, Saved, Weights, act1_len, assert_matches,
    assert_slice_len, conv1_shape, conv2_shape, direct, winograd, winograd_shape,
};

/// Gradients of the inputs of [`forward`](crate::forward) given the gradient `grad` of its output, the
/// output `pooled` itself and what it saved, by the method that saved it. The images' gradient
/// is computed only when `input_grad` is set.
pub fn backward(
    g: &Geometry,
    input: &[f32],
    w: Weights<'_>,
    pooled: &[f32],
    saved: &Saved,
    grad: &[f32],
    input_grad: bool,
) -> Grads {
    let isa = Isa::chosen();
    backward_with(
        saved.method,
        isa,
        g,
        input,
        w,
        pooled,
        saved,
        grad,
        input_grad,
    )
}

/// [`backward`] by the given method, the direct and Winograd methods with the instruction set
/// `isa`.
///
/// Panics when the geometry is not [`Geometry::supported`], a slice's length (the images, the
/// weights, `pooled`, `grad`, what `saved` holds) is not the one the geometry gives it,
/// `method` is not one of [`Method::all`] or needs an instruction set this CPU lacks, or it
/// keeps its winners in another order than the method that saved them (im2col against the
/// others).
#[allow(clippy::too_many_arguments)]
pub fn backward_with(
    method: Method,
    isa: Option<Isa>,
    g: &Geometry,
    input: &[f32],
    w: Weights<'_>,
    pooled: &[f32],
    saved: &Saved,
    grad: &[f32],
    input_grad: bool,
) -> Grads {
    assert_matches(g, input, &w);
    let outputs = g.batch * g.pooled_len();
    assert_slice_len("pooled", pooled.len(), outputs, g);
    assert_slice_len("grad", grad.len(), outputs, g);
    assert_slice_len("saved winners", saved.argmax.len(), outputs, g);
    let act1 = g.batch * act1_len(g, saved.method);
    assert_slice_len("saved conv1 activation", saved.act1.len(), act1, g);
    assert!(
        Method::all(g).contains(&method),
        "{method:?} is not available for {g:?} on this CPU"
    );
    let fast = fast_isa(method, isa);
    let direct = method != Method::Im2col;
    assert_eq!(
        direct,
        saved.method != Method::Im2col,
        "{method:?} cannot read what {:?} saved",
        saved.method
    );
    let winograd = method == Method::Winograd;
    let p = g.pixels();
    let taps = g.taps();
    let k1 = g.c0 * taps;
    let k2 = g.c1 * taps;
    // The Winograd method sums conv2's weight gradient in the transformed domain.
    let w2_len = if winograd {
        winograd_shape(g.c1, g.c2, g).transformed_len()
    } else {
        g.c2 * k2
    };
    let image_len = g.c0 * p;
    // conv2's input gradient is a convolution of its output's gradient with the rotated kernel.
    let mut w2_flipped = flipped_weight_rows(g.c2, g.c1, g.kernel, w.w2);
    if winograd {
        w2_flipped = winograd::transform_weights(&w2_flipped, g.c2, g.c1);
    }
    // Only the images' gradient needs conv1's rotated kernel.
    let w1_flipped = if input_grad {
        flipped_weight_rows(g.c1, g.c0, g.kernel, w.w1)
    } else {
        Vec::new()
    };
    let mut input_grads = vec![0.0f32; if input_grad { g.batch * image_len } else { 0 }];
    let groups = g.batch.div_ceil(GRAD_GROUP);
    let group_len = if input_grad {
        GRAD_GROUP * image_len
    } else {
        0
    };
    let mut input_chunks: Vec<&mut [f32]> = if input_grad {
        input_grads.chunks_mut(group_len).collect()
    } else {
        (0..groups).map(|_| <&mut [f32]>::default()).collect()
    };

    let pl = g.pooled_len();
    let act1_image_len = act1_len(g, method);
    let image = |i: usize| ImageBackward {
        image: &input[i * image_len..(i + 1) * image_len],
        act1: &saved.act1[i * act1_image_len..(i + 1) * act1_image_len],
        grad: &grad[i * pl..(i + 1) * pl],
        pooled: &pooled[i * pl..(i + 1) * pl],
        argmax: &saved.argmax[i * pl..(i + 1) * pl],
    };
    let context = BackwardContext {
        g,
        method,
        w2_flipped: &w2_flipped,
    };
    let partial: Vec<Grads> = input_chunks
        .par_iter_mut()
        .enumerate()
        .map(|(group, dx)| {
            let mut acc = Grads {
                input: None,
                w1: vec![0.0; g.c1 * k1],
                b1: vec![0.0; g.c1],
                w2: vec![0.0; w2_len],
                b2: vec![0.0; g.c2],
            };
            let mut dx_cols = vec![0.0; if input_grad { p * g.c1 * taps } else { 0 }];
            let mut dx_hwc = vec![0.0; if input_grad { p * g.c0 } else { 0 }];
            let first = group * GRAD_GROUP;
            let last = (first + GRAD_GROUP).min(g.batch);
            with_scratch(g, method, |scratch| {
                for (local, i) in (first..last).enumerate() {
                    let one = image(i);
                    let grad_act1 = match (&mut *scratch, fast) {
                        (Scratch::Fast(s), Some(isa)) => {
                            let (b, grad_act1) = (&mut s.backward, &mut s.grad_act1[..]);
                            // SAFETY: the CPU has `isa` (`fast_isa`).
                            unsafe {
                                fast_backward_image(isa, &context, b, &one, grad_act1, &mut acc)
                            };
                            grad_act1
                        }
                        (Scratch::Im2col(s), _) => {
                            let (b, grad_act1) = (&mut s.backward, &mut s.grad_act1[..]);
                            im2col_backward_image(&context, b, &one, grad_act1, &mut acc);
                            grad_act1
                        }
                        (Scratch::Fast(_), None) => {
                            unreachable!("the fast methods' buffers come with an instruction set")
                        }
                    };
                    if input_grad {
                        conv_im2col(
                            g,
                            grad_act1,
                            g.c1,
                            &w1_flipped,
                            g.c0,
                            &mut dx_cols,
                            &mut dx_hwc,
                        );
                        let out = &mut dx[local * image_len..(local + 1) * image_len];
                        for (pixel, row) in dx_hwc.chunks_exact(g.c0).enumerate() {
                            for (c, &v) in row.iter().enumerate() {
                                out[c * p + pixel] = v;
                            }
                        }
                    }
                }
            });
            acc
        })
        .collect();

    let mut total = Grads {
        input: input_grad.then_some(input_grads),
        w1: vec![0.0; g.c1 * k1],
        b1: vec![0.0; g.c1],
        w2: vec![0.0; w2_len],
        b2: vec![0.0; g.c2],
    };
    for part in &partial {
        add(&mut total.w1, &part.w1);
        add(&mut total.b1, &part.b1);
        add(&mut total.w2, &part.w2);
        add(&mut total.b2, &part.b2);
    }
    if winograd {
        total.w2 = winograd::taps_from_transformed(&total.w2, g.c1, g.c2);
    }
    if direct {
        total.w1 = tap_in_out_to_burn(g.c1, g.c0, g.kernel, &total.w1);
        total.w2 = tap_in_out_to_burn(g.c2, g.c1, g.kernel, &total.w2);
    } else {
        total.w2 = tap_major_to_burn(g.c2, g.c1, g.kernel, &total.w2);
    }
    total
}

/// One image's share of the backward pass.
pub(crate) struct ImageBackward<'a> {
    /// The image, channels first.
    pub(crate) image: &'a [f32],
    /// conv1's saved activation, channels last ([`Saved::act1`]).
    pub(crate) act1: &'a [f32],
    /// The gradient reaching the pooled features, channels first.
    pub(crate) grad: &'a [f32],
    /// The pooled features, channels first.
    pub(crate) pooled: &'a [f32],
    /// The pooling windows' winners, in the method's order ([`Saved::argmax`]).
    pub(crate) argmax: &'a [u8],
}

/// What every image's backward pass shares.
pub(crate) struct BackwardContext<'a> {
    pub(crate) g: &'a Geometry,
    pub(crate) method: Method,
    /// conv2's rotated kernel in the method's layout (transformed for Winograd).
    pub(crate) w2_flipped: &'a [f32],
}

/// Adds one image's weight and bias gradients to `acc` by the im2col method, leaving the
/// gradient of conv1's output (after its ReLU) in `grad_act1`.
pub(crate) fn im2col_backward_image(
    context: &BackwardContext<'_>,
    b: &mut Im2colBackward,
    one: &ImageBackward<'_>,
    grad_act1: &mut [f32],
    acc: &mut Grads,
) {
    let g = context.g;
    let (p, k1, k2) = (g.pixels(), g.c0 * g.taps(), g.c1 * g.taps());
    unpool_planar(g, one.grad, one.pooled, one.argmax, &mut b.grad_z2_planar);
    for (sum, plane) in acc.b2.iter_mut().zip(b.grad_z2_planar.chunks_exact(p)) {
        *sum += plane.iter().sum::<f32>();
    }
    // dW2 [c2, k2] += grad_z2 [c2, p] x cols2 [p, k2] (columns in (tap, c1) order).
    im2col_channels_last(g, one.act1, g.c1, &mut b.cols2);
    gemm_product(
        &mut acc.w2,
        [g.c2, k2, p],
        Mat::rows(&b.grad_z2_planar, p),
        Mat::rows(&b.cols2, k2),
        true,
        gemm::Parallelism::None,
    );
    // grad_act1 = conv of grad_z2 with the flipped kernel.
    channels_last(&b.grad_z2_planar, g.c2, &mut b.grad_z2);
    let (w2, grad_cols) = (context.w2_flipped, &mut b.grad_cols);
    conv_im2col(g, &b.grad_z2, g.c2, w2, g.c1, grad_cols, grad_act1);
    relu_backward(grad_act1, one.act1, &mut acc.b1, g.c1);
    // dW1 [c1, k1] += grad_act1^T [c1, p] x cols1 [p, k1].
    im2col_planar(g, one.image, &mut b.cols1);
    gemm_product(
        &mut acc.w1,
        [g.c1, k1, p],
        Mat::cols(grad_act1, g.c1),
        Mat::rows(&b.cols1, k1),
        true,
        gemm::Parallelism::None,
    );
}

dispatch! {
    /// [`fast_backward_body`] compiled compiled for `isa`, the small loops included.
    pub(crate) fn fast_backward_image =>
    /// [`im2col_backward_image`] by the direct or Winograd method.
    ///
    /// # Safety
    ///
    /// The CPU must have `V`'s instruction set.
    unsafe fn fast_backward_body<V: Lanes>(
        context: &BackwardContext<'_>,
        b: &mut FastBackward,
        one: &ImageBackward<'_>,
        grad_act1: &mut [f32],
        acc: &mut Grads,
    ) {
        let (g, isa) = (context.g, V::ISA);
        let r = g.kernel / 2;
        // conv2's input (kept zero-bordered by the forward pass) and its output's gradient with
        // a zero border, then dW2 and grad_act1 (a convolution with the rotated kernel).
        let grad_pooled = &mut b.grad_pooled;
        let (grad, pooled, argmax) = (one.grad, one.pooled, one.argmax);
        // SAFETY: the caller guarantees `V`'s instruction set.
        unsafe { unpool_padded::<V>(g, grad, pooled, argmax, grad_pooled, &mut b.grad_padded) };
        column_sums(&b.grad_padded, g.c2, &mut acc.b2);
        if context.method == Method::Winograd {
            let (shape, back) = (winograd_shape(g.c1, g.c2, g), winograd_shape(g.c2, g.c1, g));
            let (a, d, ws) = (one.act1, &b.grad_padded, &mut b.workspace);
            winograd::weight_grad(isa, &shape, a, d, ws, &mut acc.w2);
            winograd::conv(isa, &back, d, context.w2_flipped, ws, grad_act1);
        } else {
            let conv2 = conv2_shape(g);
            let back = direct::Shape {
                cin: g.c2,
                cout: g.c1,
                ..conv2
            };
            direct::weight_grad(isa, &conv2, one.act1, &b.grad_padded, &mut acc.w2);
            direct::conv(isa, &back, &b.grad_padded, context.w2_flipped, grad_act1);
        }
        // Through conv1's ReLU: the kept activation has a border of `r`.
        let (row, line) = ((g.width + 2 * r) * g.c1, g.width * g.c1);
        for (y, grad) in grad_act1.chunks_exact_mut(line).take(g.height).enumerate() {
            let act1 = &one.act1[(y + r) * row + r * g.c1..][..line];
            for (d, &a) in grad.iter_mut().zip(act1) {
                *d = keep_if(a > 0.0, *d);
            }
        }
        column_sums(grad_act1, g.c1, &mut acc.b1);
        // dW1 [tap, c0, c1].
        direct::pad_planar(one.image, g.height, g.width, r, &mut b.image_padded);
        let grad_act1_padded = &mut b.grad_act1_padded;
        direct::pad(grad_act1, g.height, g.width, g.c1, r, grad_act1_padded);
        direct::weight_grad(
            isa,
            &conv1_shape(g),
            &b.image_padded,
            grad_act1_padded,
            &mut acc.w1,
        );
    }
}

/// Through conv1's ReLU (branch-free: about half the activations are zero), and the bias's
/// gradient.
#[inline]
pub(crate) fn relu_backward(grad_act1: &mut [f32], act1: &[f32], b1: &mut [f32], c1: usize) {
    for (d, &a) in grad_act1.iter_mut().zip(act1) {
        *d = keep_if(a > 0.0, *d);
    }
    column_sums(grad_act1, c1, b1);
}
