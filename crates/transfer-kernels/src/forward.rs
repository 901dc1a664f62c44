//! The forward pass: pooled features of a batch, one image per rayon task.

use rayon::prelude::*;

use crate::im2col::{conv_im2col, conv1_relu};
#[cfg(target_arch = "x86_64")]
use crate::layout::channels_first_f32;
use crate::layout::tap_in_out;
use crate::pool::{bias_relu, max_pool};
use crate::scratch::{FastForward, Scratch, with_scratch};
use crate::simd::dispatch;
use crate::{
    Geometry, Isa, Method, Saved, Weights, act1_len, assert_matches, conv1_shape, conv2_shape,
    direct, winograd, winograd_shape,
};

/// Pooled features `[batch, c2, height/2, width/2]` of `input` `[batch, c0, height, width]`.
pub fn forward(g: &Geometry, input: &[f32], w: Weights<'_>) -> Vec<f32> {
    forward_with(Method::chosen(g), Isa::chosen(), g, input, w, false).0
}

/// [`forward`], also keeping what [`backward`](crate::backward) needs.
pub fn forward_saving(g: &Geometry, input: &[f32], w: Weights<'_>) -> (Vec<f32>, Saved) {
    forward_with(Method::chosen(g), Isa::chosen(), g, input, w, true)
}

/// [`forward`] (or with `save`, [`forward_saving`]) by the given method, the direct and
/// Winograd methods with the instruction set `isa` (the library's own calls pass
/// [`Isa::chosen`]).
///
/// Panics when the geometry is not [`Geometry::supported`], a slice's length is not the one
/// the geometry gives it, or `method` is not one of [`Method::all`] or needs an instruction
/// set this CPU lacks.
pub fn forward_with(
    method: Method,
    isa: Option<Isa>,
    g: &Geometry,
    input: &[f32],
    w: Weights<'_>,
    save: bool,
) -> (Vec<f32>, Saved) {
    assert_matches(g, input, &w);
    assert!(
        Method::all(g).contains(&method),
        "{method:?} is not available for {g:?} on this CPU"
    );
    let fast = fast_isa(method, isa);
    let p = g.pixels();
    let image_len = g.c0 * p;
    let direct = method != Method::Im2col;
    let w2_rows = tap_in_out(g.c2, g.c1, g.kernel, w.w2);
    let w2_winograd = match method {
        Method::Winograd => winograd::transform_weights(&w2_rows, g.c1, g.c2),
        _ => Vec::new(),
    };
    // The im2col method reads conv1's weight in burn's layout.
    let w1_rows = if direct {
        tap_in_out(g.c1, g.c0, g.kernel, w.w1)
    } else {
        Vec::new()
    };
    let mut pooled = vec![0.0f32; g.batch * g.pooled_len()];
    let act1_image_len = act1_len(g, method);
    let mut act1 = vec![0.0f32; if save { g.batch * act1_image_len } else { 0 }];
    let mut argmax = vec![0u8; if save { g.batch * g.pooled_len() } else { 0 }];

    let act1_len = if save { act1_image_len } else { 0 };
    let argmax_len = if save { g.pooled_len() } else { 0 };
    let images = input
        .par_chunks(image_len)
        .zip(pooled.par_chunks_mut(g.pooled_len()));
    let body = |image: &[f32],
                out: &mut [f32],
                act1: Option<&mut [f32]>,
                argmax: Option<&mut [u8]>| {
        with_scratch(g, method, |scratch| match (scratch, fast) {
            (Scratch::Fast(s), Some(isa)) => {
                let winners = match argmax {
                    Some(a) => a,
                    None => &mut s.winners[..],
                };
                let forms = FastWeights {
                    w1: &w1_rows,
                    b1: w.b1,
                    w2: if method == Method::Winograd {
                        &w2_winograd
                    } else {
                        &w2_rows
                    },
                    b2: w.b2,
                };
                let s = &mut s.forward;
                // SAFETY: the CPU has `isa` (`fast_isa`).
                unsafe { fast_forward_image(isa, g, method, forms, s, image, act1, out, winners) };
            }
            (Scratch::Im2col(s), _) => {
                let s = &mut s.forward;
                let act1 = match act1 {
                    Some(a) => a,
                    None => &mut s.act1[..],
                };
                conv1_relu(g, image, w, &mut s.cols1, act1);
                // act2 = relu(conv2(act1) + b2).
                conv_im2col(g, act1, g.c1, &w2_rows, g.c2, &mut s.cols2, &mut s.act2);
                bias_relu(&mut s.act2, w.b2);
                max_pool(g, &s.act2, out, argmax);
            }
            (Scratch::Fast(_), None) => {
                unreachable!("the fast methods' buffers come with an instruction set")
            }
        })
    };
    if save {
        images
            .zip(act1.par_chunks_mut(act1_len))
            .zip(argmax.par_chunks_mut(argmax_len))
            .for_each(|(((image, out), a1), am)| body(image, out, Some(a1), Some(am)));
        (
            pooled,
            Saved {
                act1,
                argmax,
                method,
            },
        )
    } else {
        images.for_each(|(image, out)| body(image, out, None, None));
        (pooled, Saved::default())
    }
}

/// The convolutions' weights in the fast methods' layouts.
#[derive(Clone, Copy)]
pub(crate) struct FastWeights<'a> {
    /// conv1's, `[tap, c0, c1]`.
    pub(crate) w1: &'a [f32],
    pub(crate) b1: &'a [f32],
    /// conv2's, `[tap, c1, c2]` (direct) or transformed (Winograd).
    pub(crate) w2: &'a [f32],
    pub(crate) b2: &'a [f32],
}

/// The instruction set of the direct and Winograd methods: `isa`, checked to be present;
/// `None` for im2col.
///
/// Panics when a fast method comes without an instruction set this CPU has.
pub(crate) fn fast_isa(method: Method, isa: Option<Isa>) -> Option<Isa> {
    if method == Method::Im2col {
        return None;
    }
    match isa {
        Some(isa) if isa.available() => Some(isa),
        _ => panic!("{method:?} needs AVX2 or AVX-512F, and this CPU lacks {isa:?}"),
    }
}

dispatch! {
    /// [`fast_forward_body`] compiled compiled for `isa`, the small loops included.
    pub(crate) fn fast_forward_image =>
    /// One image's forward pass by the direct or Winograd method: pooled features (channels
    /// first) into `out`, conv1's zero-bordered activation into `act1` when kept, and the winners
    /// (channels last) into `winners`.
    ///
    /// # Safety
    ///
    /// The CPU must have `V`'s instruction set.
    unsafe fn fast_forward_body<V: Lanes>(
        g: &Geometry,
        method: Method,
        w: FastWeights<'_>,
        s: &mut FastForward,
        image: &[f32],
        act1: Option<&mut [f32]>,
        out: &mut [f32],
        winners: &mut [u8],
    ) {
        let (isa, r) = (V::ISA, g.kernel / 2);
        direct::pad_planar(image, g.height, g.width, r, &mut s.image_padded);
        // conv1 writes conv2's zero-bordered input directly: into the kept activation when
        // there is one (the backward pass reads it as it is).
        let padded = match act1 {
            Some(a) => a,
            None => &mut s.padded[..],
        };
        let conv1 = conv1_shape(g);
        direct::conv_bias_relu_padded(isa, &conv1, &s.image_padded, w.w1, w.b1, r, padded);
        if method == Method::Winograd {
            let shape = winograd_shape(g.c1, g.c2, g);
            let (ws, pooled) = (&mut s.workspace, &mut s.pooled);
            winograd::conv_bias_relu_pool(isa, &shape, padded, w.w2, w.b2, ws, pooled, winners);
        } else {
            let conv2 = conv2_shape(g);
            direct::conv_bias_relu_pool(isa, &conv2, padded, w.w2, w.b2, &mut s.pooled, winners);
        }
        // SAFETY: the caller guarantees `V`'s instruction set.
        unsafe { channels_first_f32::<V>(&s.pooled, g.c2, out) };
    }
}
