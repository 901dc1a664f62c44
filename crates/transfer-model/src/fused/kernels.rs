//! The backbone's CPU kernels on plain slices: conv1 -> ReLU -> conv2 -> ReLU -> 2x2 max-pool,
//! forward and backward, one image at a time on the rayon pool.
//!
//! Three methods ([`Method`]): conv2 by Winograd F(4x4, 3x3) and conv1 direct
//! ([`Method::Winograd`]); both convolutions direct ([`Method::Direct`]), these two with AVX-512
//! or AVX2 ([`Isa`]); or each as im2col followed by one matrix product per image
//! ([`Method::Im2col`], any CPU and shape), so that an image's working set (conv2's 784 x 288
//! column matrix, under 1 MB) stays in the core's cache. The first activation is kept in
//! channels-last order throughout. Gradients of the weights are summed per fixed group of
//! images and the groups are then added in order: the result does not depend on the number of
//! threads or on scheduling.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::LocalKey;

use rayon::prelude::*;

pub use super::simd::Isa;
#[cfg(target_arch = "x86_64")]
use super::simd::{Lanes, dispatch};
use super::{direct, winograd};

/// Images whose weight gradients are summed together before the groups are added in order.
const GRAD_GROUP: usize = 4;

/// Shapes of one fused backbone call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub c0: usize,
    /// conv1's output channels.
    pub c1: usize,
    /// conv2's output channels.
    pub c2: usize,
    /// Image height (even).
    pub height: usize,
    /// Image width (even).
    pub width: usize,
    /// Square kernel size (odd; "same" padding of `kernel / 2`).
    pub kernel: usize,
}

impl Geometry {
    /// The backbone of `config` on batches of `batch` images.
    pub fn of(config: &crate::CnnConfig, batch: usize) -> Self {
        Geometry {
            batch,
            c0: config.in_channels,
            c1: config.channels[0],
            c2: config.channels[1],
            height: config.image_size[0],
            width: config.image_size[1],
            kernel: config.kernel_size,
        }
    }

    /// Pixels per image.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }
    /// Pooled values per image (`c2 * height/2 * width/2`).
    pub fn pooled_len(&self) -> usize {
        self.c2 * (self.height / 2) * (self.width / 2)
    }
    fn taps(&self) -> usize {
        self.kernel * self.kernel
    }
    /// Whether these shapes are ones the kernels handle.
    pub fn supported(&self) -> bool {
        self.batch > 0
            && self.c0 > 0
            && self.c1 > 0
            && self.c2 > 0
            && self.kernel % 2 == 1
            && self.height >= 2
            && self.width >= 2
            && self.height.is_multiple_of(2)
            && self.width.is_multiple_of(2)
    }
}

/// The weights of both convolutions in burn's layouts: `w1` `[c1, c0, k, k]`, `w2`
/// `[c2, c1, k, k]`, and their biases.
#[derive(Debug, Clone, Copy)]
pub struct Weights<'a> {
    /// conv1's weight.
    pub w1: &'a [f32],
    /// conv1's bias.
    pub b1: &'a [f32],
    /// conv2's weight.
    pub w2: &'a [f32],
    /// conv2's bias.
    pub b2: &'a [f32],
}

/// What the forward pass keeps for the backward pass (empty when nothing was kept).
#[derive(Debug, Clone, Default)]
pub struct Saved {
    /// conv1's activation after ReLU, channels last: `[batch, pixels, c1]` (im2col method),
    /// or with a zero border of `kernel / 2` around each image's map (direct and Winograd:
    /// conv2's input as it ran, reused by the backward pass).
    pub act1: Vec<f32>,
    /// Which of the four pooled pixels won, per pooled value: `[batch, pooled_len]`, each
    /// image's channels first (im2col method) or channels last (direct and Winograd).
    pub argmax: Vec<u8>,
    /// The method that computed them.
    pub method: Method,
}

/// Gradients of the backbone's inputs, in burn's layouts.
#[derive(Debug, Clone)]
pub struct Grads {
    /// Of the images, when asked for: `[batch, c0, height, width]`.
    pub input: Option<Vec<f32>>,
    /// Of conv1's weight, `[c1, c0, k, k]`.
    pub w1: Vec<f32>,
    /// Of conv1's bias.
    pub b1: Vec<f32>,
    /// Of conv2's weight, `[c2, c1, k, k]`.
    pub w2: Vec<f32>,
    /// Of conv2's bias.
    pub b2: Vec<f32>,
}

/// How the convolutions (forward, input and weight gradients) are computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Method {
    /// im2col and one `gemm` product per image: any CPU, any shapes.
    #[default]
    Im2col,
    /// Register-blocked direct convolutions with AVX-512 or AVX2 ([`Isa`]), pooling in
    /// registers: where the CPU has either and `c1` and `c2` are multiples of 32.
    Direct,
    /// conv2 by Winograd F(4x4, 3x3) (four times fewer multiplications, pooling as it
    /// untransforms), conv1 as [`Method::Direct`]: where that method applies, the kernel is 3x3
    /// and the image's sides are multiples of 4.
    Winograd,
}

impl Method {
    /// The fastest method this CPU has for these shapes (with the chosen instruction set,
    /// [`Isa::chosen`]).
    pub fn best(g: &Geometry) -> Self {
        Method::all(g).last().copied().unwrap_or_default()
    }

    /// Every method this CPU has for these shapes, slowest first (with the chosen instruction
    /// set). With AVX2 the direct kernels, short of registers, are slower than im2col on
    /// `gemm` (37.8 against 44.8 training steps/s on the study's shapes).
    pub fn all(g: &Geometry) -> Vec<Self> {
        let mut methods = vec![Method::Im2col];
        let direct = direct::available(g.c1, g.c2) && direct::available(g.c2, g.c1);
        if direct {
            match Isa::chosen() {
                Some(Isa::Avx512) => methods.push(Method::Direct),
                _ => methods.insert(0, Method::Direct),
            }
        }
        let winograd = g.kernel == 3
            && winograd::available(g.height, g.width, g.c1, g.c2)
            && winograd::available(g.height, g.width, g.c2, g.c1);
        if direct && winograd {
            methods.push(Method::Winograd);
        }
        methods
    }

    /// Makes [`forward`] and [`forward_saving`] use `method` from now on in this process,
    /// wherever the CPU has it for the shapes (`None`: the fastest, the default). For
    /// comparisons and for checking numerics: Winograd's results round to about 5e-6 of a tile's
    /// largest value, direct convolution's to about 1e-7 of each value, and Adam, which divides
    /// each gradient by its own magnitude, turns such differences in near-zero features into
    /// visibly different training trajectories within a few steps.
    pub fn prefer(method: Option<Method>) {
        let code = PREFERENCES.iter().position(|&p| p == method).unwrap_or(0);
        PREFERRED.store(code as u8, Ordering::Relaxed);
    }

    /// The method [`forward`] and [`forward_saving`] use for these shapes: the preferred one
    /// ([`Method::prefer`]) where available, else the fastest.
    pub fn chosen(g: &Geometry) -> Self {
        let preferred = PREFERENCES[usize::from(PREFERRED.load(Ordering::Relaxed))];
        match preferred {
            Some(method) if Method::all(g).contains(&method) => method,
            _ => Method::best(g),
        }
    }

    /// Lower-case name: `im2col`, `direct` or `winograd`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Im2col => "im2col",
            Method::Direct => "direct",
            Method::Winograd => "winograd",
        }
    }
}

/// [`Method::prefer`]'s choice, as an index into [`PREFERENCES`].
static PREFERRED: AtomicU8 = AtomicU8::new(0);

/// What [`PREFERRED`] can hold.
const PREFERENCES: [Option<Method>; 4] = [
    None,
    Some(Method::Im2col),
    Some(Method::Direct),
    Some(Method::Winograd),
];

/// Pooled features `[batch, c2, height/2, width/2]` of `input` `[batch, c0, height, width]`.
pub fn forward(g: &Geometry, input: &[f32], w: Weights<'_>) -> Vec<f32> {
    forward_with(Method::chosen(g), Isa::chosen(), g, input, w, false).0
}

/// [`forward`], also keeping what [`backward`] needs.
pub fn forward_saving(g: &Geometry, input: &[f32], w: Weights<'_>) -> (Vec<f32>, Saved) {
    forward_with(Method::chosen(g), Isa::chosen(), g, input, w, true)
}

/// [`forward`] (or with `save`, [`forward_saving`]) by the given method, the direct and
/// Winograd methods with the instruction set `isa` (the library's own calls pass
/// [`Isa::chosen`]).
///
/// Panics when `method` is not one of [`Method::all`], or needs an instruction set this CPU
/// lacks.
pub fn forward_with(
    method: Method,
    isa: Option<Isa>,
    g: &Geometry,
    input: &[f32],
    w: Weights<'_>,
    save: bool,
) -> (Vec<f32>, Saved) {
    assert!(
        Method::all(g).contains(&method),
        "{method:?} is not available for {g:?} on this CPU"
    );
    let fast = fast_isa(method, isa);
    let p = g.pixels();
    let k1 = g.c0 * g.taps();
    let k2 = g.c1 * g.taps();
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
    let (conv1, conv2) = (conv1_shape(g), conv2_shape(g));
    let mut pooled = vec![0.0f32; g.batch * g.pooled_len()];
    let act1_image_len = act1_len(g, method);
    let mut act1 = vec![0.0f32; if save { g.batch * act1_image_len } else { 0 }];
    let mut argmax = vec![0u8; if save { g.batch * g.pooled_len() } else { 0 }];

    let act1_len = if save { act1_image_len } else { 0 };
    let argmax_len = if save { g.pooled_len() } else { 0 };
    let key = CacheKey::new(g, method);
    let scratch = || Scratch {
        cols1: vec![0.0; if direct { 0 } else { p * k1 }],
        act1: vec![0.0; if direct { 0 } else { p * g.c1 }],
        cols2: vec![0.0; if direct { 0 } else { p * k2 }],
        act2: vec![0.0; if direct { 0 } else { p * g.c2 }],
        winners: vec![0; if direct { g.pooled_len() } else { 0 }],
        fast: FastScratch {
            image_padded: vec![0.0; if direct { conv1.padded_len() } else { 0 }],
            padded: vec![0.0; if direct { conv2.padded_len() } else { 0 }],
            pooled: vec![0.0; if direct { g.pooled_len() } else { 0 }],
            workspace: match method {
                Method::Winograd => winograd::Workspace::new(g.height, g.width, g.c1.max(g.c2)),
                _ => winograd::Workspace::default(),
            },
        },
    };
    let images = input
        .par_chunks(image_len)
        .zip(pooled.par_chunks_mut(g.pooled_len()));
    let body = |s: &mut Scratch,
                image: &[f32],
                out: &mut [f32],
                act1: Option<&mut [f32]>,
                argmax: Option<&mut [u8]>| {
        if let Some(isa) = fast {
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
            let scratch = &mut s.fast;
            // SAFETY: the CPU has `isa` (`fast_isa`).
            unsafe {
                fast_forward_image(isa, g, method, forms, scratch, image, act1, out, winners)
            };
            return;
        }
        let act1_buf = match act1 {
            Some(a) => a,
            None => &mut s.act1[..],
        };
        conv1_relu(g, image, w, &mut s.cols1, act1_buf);
        // act2 = relu(conv2(act1) + b2).
        conv_im2col(g, act1_buf, g.c1, &w2_rows, g.c2, &mut s.cols2, &mut s.act2);
        bias_relu(&mut s.act2, w.b2);
        max_pool(g, &s.act2, out, argmax);
    };
    if save {
        images
            .zip(act1.par_chunks_mut(act1_len))
            .zip(argmax.par_chunks_mut(argmax_len))
            .for_each(|(((image, out), a1), am)| {
                cached(&FORWARD_SCRATCH, key, scratch, |s| {
                    body(s, image, out, Some(a1), Some(am))
                })
            });
        (
            pooled,
            Saved {
                act1,
                argmax,
                method,
            },
        )
    } else {
        images.for_each(|(image, out)| {
            cached(&FORWARD_SCRATCH, key, scratch, |s| {
                body(s, image, out, None, None)
            })
        });
        (pooled, Saved::default())
    }
}

/// Gradients of the inputs of [`forward`] given the gradient `grad` of its output, the
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
/// Panics when `method` is not one of [`Method::all`], needs an instruction set this CPU
/// lacks, or keeps its winners in another order than the method that saved them (im2col
/// against the others).
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
    let key = CacheKey::new(g, method);
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
            let make = || (BackwardBuffers::new(g, method), vec![0.0; p * g.c1]);
            cached(&BACKWARD_BUFFERS, key, make, |(buffers, grad_act1)| {
                for (local, i) in (first..last).enumerate() {
                    let one = image(i);
                    match (&mut *buffers, fast) {
                        // SAFETY: the CPU has `isa` (`fast_isa`).
                        (BackwardBuffers::Fast(b), Some(isa)) => unsafe {
                            fast_backward_image(isa, &context, b, &one, grad_act1, &mut acc)
                        },
                        (BackwardBuffers::Im2col(b), _) => {
                            im2col_backward_image(&context, b, &one, grad_act1, &mut acc)
                        }
                        (BackwardBuffers::Fast(_), None) => {
                            unreachable!("the fast methods' buffers come with an instruction set")
                        }
                    }
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

/// The convolutions' weights in the fast methods' layouts.
#[derive(Clone, Copy)]
struct FastWeights<'a> {
    /// conv1's, `[tap, c0, c1]`.
    w1: &'a [f32],
    b1: &'a [f32],
    /// conv2's, `[tap, c1, c2]` (direct) or transformed (Winograd).
    w2: &'a [f32],
    b2: &'a [f32],
}

/// The instruction set of the direct and Winograd methods: `isa`, checked to be present;
/// `None` for im2col.
///
/// Panics when a fast method comes without an instruction set this CPU has.
fn fast_isa(method: Method, isa: Option<Isa>) -> Option<Isa> {
    if method == Method::Im2col {
        return None;
    }
    match isa {
        Some(isa) if isa.available() => Some(isa),
        _ => panic!("{method:?} needs AVX2 or AVX-512F, and this CPU lacks {isa:?}"),
    }
}

#[cfg(target_arch = "x86_64")]
dispatch! {
    /// [`fast_forward_body`] compiled compiled for `isa`, the small loops included.
    fn fast_forward_image =>
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
        s: &mut FastScratch,
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

/// What sizes a thread's cached buffers: the shapes but the batch, and the method.
#[derive(Clone, Copy, PartialEq, Eq)]
struct CacheKey(Geometry, Method);

impl CacheKey {
    fn new(g: &Geometry, method: Method) -> Self {
        CacheKey(Geometry { batch: 0, ..*g }, method)
    }
}

/// A thread's buffers, kept from call to call.
type Cache<T> = RefCell<Option<(CacheKey, T)>>;

thread_local! {
    static FORWARD_SCRATCH: Cache<Scratch> = const { RefCell::new(None) };
    static BACKWARD_BUFFERS: Cache<(BackwardBuffers, Vec<f32>)> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's buffers for `key`, made by `make` when there are none for it
/// yet. Every kernel writes its buffers before reading them, so buffers kept from an earlier
/// call (of the same shapes) need no zeroing: a training step allocates none. `f` must not
/// start parallel work that could run another call's `f` on this thread.
fn cached<T, R>(
    cache: &'static LocalKey<Cache<T>>,
    key: CacheKey,
    make: impl FnOnce() -> T,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    cache.with_borrow_mut(|slot| {
        let buffers = match slot {
            Some((k, buffers)) if *k == key => buffers,
            _ => &mut slot.insert((key, make())).1,
        };
        f(buffers)
    })
}

/// One image's share of the backward pass.
struct ImageBackward<'a> {
    /// The image, channels first.
    image: &'a [f32],
    /// conv1's saved activation, channels last ([`Saved::act1`]).
    act1: &'a [f32],
    /// The gradient reaching the pooled features, channels first.
    grad: &'a [f32],
    /// The pooled features, channels first.
    pooled: &'a [f32],
    /// The pooling windows' winners, in the method's order ([`Saved::argmax`]).
    argmax: &'a [u8],
}

/// What every image's backward pass shares.
struct BackwardContext<'a> {
    g: &'a Geometry,
    method: Method,
    /// conv2's rotated kernel in the method's layout (transformed for Winograd).
    w2_flipped: &'a [f32],
}

/// One worker's buffers for the backward pass of its images.
enum BackwardBuffers {
    Im2col(Im2colBuffers),
    Fast(FastBuffers),
}

impl BackwardBuffers {
    fn new(g: &Geometry, method: Method) -> Self {
        let p = g.pixels();
        match method {
            Method::Im2col => BackwardBuffers::Im2col(Im2colBuffers {
                cols1: vec![0.0; p * g.c0 * g.taps()],
                grad_z2_planar: vec![0.0; p * g.c2],
                cols2: vec![0.0; p * g.c1 * g.taps()],
                grad_z2: vec![0.0; p * g.c2],
                grad_cols: vec![0.0; p * g.c2 * g.taps()],
            }),
            Method::Direct | Method::Winograd => {
                let padded = |channels: usize| {
                    vec![0.0; (g.height + g.kernel - 1) * (g.width + g.kernel - 1) * channels]
                };
                BackwardBuffers::Fast(FastBuffers {
                    image_padded: padded(g.c0),
                    grad_pooled: vec![0.0; g.pooled_len()],
                    grad_padded: padded(g.c2),
                    grad_act1_padded: padded(g.c1),
                    workspace: match method {
                        Method::Winograd => {
                            winograd::Workspace::new(g.height, g.width, g.c1.max(g.c2))
                        }
                        _ => winograd::Workspace::default(),
                    },
                })
            }
        }
    }
}

/// The im2col method's buffers.
struct Im2colBuffers {
    cols1: Vec<f32>,
    grad_z2_planar: Vec<f32>,
    cols2: Vec<f32>,
    grad_z2: Vec<f32>,
    grad_cols: Vec<f32>,
}

/// The direct and Winograd methods' buffers: zero-bordered channels-last maps.
struct FastBuffers {
    image_padded: Vec<f32>,
    /// The pooled features' gradient where they are positive, channels last.
    grad_pooled: Vec<f32>,
    grad_padded: Vec<f32>,
    grad_act1_padded: Vec<f32>,
    workspace: winograd::Workspace,
}

/// Adds one image's weight and bias gradients to `acc` by the im2col method, leaving the
/// gradient of conv1's output (after its ReLU) in `grad_act1`.
fn im2col_backward_image(
    context: &BackwardContext<'_>,
    b: &mut Im2colBuffers,
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
    matmul(
        &mut acc.w2,
        g.c2,
        k2,
        p,
        Mat::rows(&b.grad_z2_planar, p),
        Mat::rows(&b.cols2, k2),
        true,
    );
    // grad_act1 = conv of grad_z2 with the flipped kernel.
    channels_last(&b.grad_z2_planar, g.c2, &mut b.grad_z2);
    let (w2, grad_cols) = (context.w2_flipped, &mut b.grad_cols);
    conv_im2col(g, &b.grad_z2, g.c2, w2, g.c1, grad_cols, grad_act1);
    relu_backward(grad_act1, one.act1, &mut acc.b1, g.c1);
    // dW1 [c1, k1] += grad_act1^T [c1, p] x cols1 [p, k1].
    im2col_planar(g, one.image, &mut b.cols1);
    matmul(
        &mut acc.w1,
        g.c1,
        k1,
        p,
        Mat::cols(grad_act1, g.c1),
        Mat::rows(&b.cols1, k1),
        true,
    );
}

#[cfg(target_arch = "x86_64")]
dispatch! {
    /// [`fast_backward_body`] compiled compiled for `isa`, the small loops included.
    fn fast_backward_image =>
    /// [`im2col_backward_image`] by the direct or Winograd method.
    ///
    /// # Safety
    ///
    /// The CPU must have `V`'s instruction set.
    unsafe fn fast_backward_body<V: Lanes>(
        context: &BackwardContext<'_>,
        b: &mut FastBuffers,
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
fn relu_backward(grad_act1: &mut [f32], act1: &[f32], b1: &mut [f32], c1: usize) {
    for (d, &a) in grad_act1.iter_mut().zip(act1) {
        *d = keep_if(a > 0.0, *d);
    }
    column_sums(grad_act1, c1, b1);
}

/// Values of one image's kept conv1 activation ([`Saved::act1`]) by `method`.
fn act1_len(g: &Geometry, method: Method) -> usize {
    match method {
        Method::Im2col => g.pixels() * g.c1,
        Method::Direct | Method::Winograd => conv2_shape(g).padded_len(),
    }
}

/// conv1 as a direct convolution.
fn conv1_shape(g: &Geometry) -> direct::Shape {
    direct::Shape {
        cin: g.c0,
        cout: g.c1,
        ..conv2_shape(g)
    }
}

/// A 3x3 convolution of the maps' size from `cin` to `cout` channels, by Winograd.
fn winograd_shape(cin: usize, cout: usize, g: &Geometry) -> winograd::Shape {
    winograd::Shape {
        height: g.height,
        width: g.width,
        cin,
        cout,
    }
}

/// conv2 as a direct convolution.
fn conv2_shape(g: &Geometry) -> direct::Shape {
    direct::Shape {
        height: g.height,
        width: g.width,
        cin: g.c1,
        cout: g.c2,
        kernel: g.kernel,
    }
}

struct Scratch {
    cols1: Vec<f32>,
    act1: Vec<f32>,
    cols2: Vec<f32>,
    act2: Vec<f32>,
    /// Fast methods: the winners when they are not kept.
    winners: Vec<u8>,
    fast: FastScratch,
}

/// The direct and Winograd methods' forward buffers.
struct FastScratch {
    /// The image, channels last with a zero border.
    image_padded: Vec<f32>,
    /// conv1's activation with a zero border.
    padded: Vec<f32>,
    /// Pooled values, channels last.
    pooled: Vec<f32>,
    /// Winograd method: conv2's strip buffers.
    workspace: winograd::Workspace,
}

/// A channels-first map `[channels, positions]` into channels-last `out [positions, channels]`.
fn channels_last(map: &[f32], channels: usize, out: &mut [f32]) {
    let positions = map.len() / channels;
    for (c, plane) in map.chunks_exact(positions).enumerate() {
        for (position, &v) in plane.iter().enumerate() {
            out[position * channels + c] = v;
        }
    }
}

/// A channels-last map `[positions, channels]` into channels-first `out [channels, positions]`.
#[cfg(test)]
fn channels_first<T: Copy>(map: &[T], channels: usize, out: &mut [T]) {
    let positions = map.len() / channels;
    for (position, row) in map.chunks_exact(channels).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[c * positions + position] = v;
        }
    }
}

/// conv1 with ReLU for one image: `act1 [p, c1] = relu(cols1 [p, k1] x w1^T + b1)`.
fn conv1_relu(g: &Geometry, image: &[f32], w: Weights<'_>, cols1: &mut [f32], act1: &mut [f32]) {
    let k1 = g.c0 * g.taps();
    im2col_planar(g, image, cols1);
    // w1 is [c1, k1] row-major: as the right operand [k1, c1] its rows are strided by 1.
    matmul(
        act1,
        g.pixels(),
        g.c1,
        k1,
        Mat::rows(cols1, k1),
        Mat {
            data: w.w1,
            row_stride: 1,
            col_stride: k1,
        },
        false,
    );
    bias_relu(act1, w.b1);
}

/// Columns of a channels-first image `[c0, h, w]`: `cols [p, c0 * k * k]` in (channel, tap)
/// order, matching burn's weight layout; zero outside the image.
fn im2col_planar(g: &Geometry, image: &[f32], cols: &mut [f32]) {
    let (h, w, k) = (g.height, g.width, g.kernel);
    let r = k / 2;
    let width = g.c0 * k * k;
    for y in 0..h {
        for x in 0..w {
            let row = &mut cols[(y * w + x) * width..(y * w + x + 1) * width];
            let mut j = 0;
            for c in 0..g.c0 {
                let plane = &image[c * h * w..(c + 1) * h * w];
                for ky in 0..k {
                    let sy = (y + ky) as isize - r as isize;
                    for kx in 0..k {
                        let sx = (x + kx) as isize - r as isize;
                        row[j] = if sy >= 0 && sy < h as isize && sx >= 0 && sx < w as isize {
                            plane[sy as usize * w + sx as usize]
                        } else {
                            0.0
                        };
                        j += 1;
                    }
                }
            }
        }
    }
}

/// A "same" convolution of a channels-last map `[p, channels]` with weights `[(tap, channels),
/// out_channels]` (as [`tap_in_out`] or [`flipped_weight_rows`] lay them out) into `out [p,
/// out_channels]`, through the column matrix `cols`.
fn conv_im2col(
    g: &Geometry,
    map: &[f32],
    channels: usize,
    weight_rows: &[f32],
    out_channels: usize,
    cols: &mut [f32],
    out: &mut [f32],
) {
    let depth = g.taps() * channels;
    im2col_channels_last(g, map, channels, cols);
    matmul(
        out,
        g.pixels(),
        out_channels,
        depth,
        Mat::rows(cols, depth),
        Mat::rows(weight_rows, out_channels),
        false,
    );
}

/// Columns of a channels-last map `[p, channels]`: `cols [p, k * k * channels]` in (tap,
/// channel) order; zero outside the map.
fn im2col_channels_last(g: &Geometry, map: &[f32], channels: usize, cols: &mut [f32]) {
    let (h, w, k) = (g.height, g.width, g.kernel);
    let r = k / 2;
    let width = k * k * channels;
    for y in 0..h {
        for x in 0..w {
            let row = &mut cols[(y * w + x) * width..(y * w + x + 1) * width];
            for ky in 0..k {
                let sy = (y + ky) as isize - r as isize;
                for kx in 0..k {
                    let sx = (x + kx) as isize - r as isize;
                    let dst = &mut row[(ky * k + kx) * channels..(ky * k + kx + 1) * channels];
                    if sy >= 0 && sy < h as isize && sx >= 0 && sx < w as isize {
                        let src = (sy as usize * w + sx as usize) * channels;
                        dst.copy_from_slice(&map[src..src + channels]);
                    } else {
                        dst.fill(0.0);
                    }
                }
            }
        }
    }
}

/// A convolution's weight `[out, in, k, k]` as `[k * k * in, out]`, row `(tap, in)`: the
/// right operand of the channels-last im2col, and the direct kernels' layout.
fn tap_in_out(out: usize, inp: usize, k: usize, weight: &[f32]) -> Vec<f32> {
    let taps = k * k;
    let mut rows = vec![0.0; taps * inp * out];
    for co in 0..out {
        for ci in 0..inp {
            for t in 0..taps {
                rows[(t * inp + ci) * out + co] = weight[(co * inp + ci) * taps + t];
            }
        }
    }
    rows
}

/// The weight `[out, in, k, k]` of a "same" convolution rearranged to compute the gradient of
/// its input: `[k * k * out, in]`, row `(tap, out)`, with the kernel rotated by 180 degrees.
fn flipped_weight_rows(out: usize, inp: usize, k: usize, weight: &[f32]) -> Vec<f32> {
    let taps = k * k;
    let mut rows = vec![0.0; taps * out * inp];
    for co in 0..out {
        for ci in 0..inp {
            for t in 0..taps {
                let flipped = taps - 1 - t;
                rows[(t * out + co) * inp + ci] = weight[(co * inp + ci) * taps + flipped];
            }
        }
    }
    rows
}

/// [`tap_in_out`]'s inverse: `[tap, in, out]` to burn's `[out, in, k, k]`.
fn tap_in_out_to_burn(out: usize, inp: usize, k: usize, grad: &[f32]) -> Vec<f32> {
    let taps = k * k;
    let mut burn = vec![0.0; grad.len()];
    for t in 0..taps {
        for ci in 0..inp {
            for co in 0..out {
                burn[(co * inp + ci) * taps + t] = grad[(t * inp + ci) * out + co];
            }
        }
    }
    burn
}

/// `[c2, (tap, c1)]` to burn's `[c2, c1, k, k]`.
fn tap_major_to_burn(c2: usize, c1: usize, k: usize, grad: &[f32]) -> Vec<f32> {
    let taps = k * k;
    let mut out = vec![0.0; grad.len()];
    for co in 0..c2 {
        for t in 0..taps {
            for ci in 0..c1 {
                out[(co * c1 + ci) * taps + t] = grad[co * taps * c1 + t * c1 + ci];
            }
        }
    }
    out
}

fn bias_relu(map: &mut [f32], bias: &[f32]) {
    for row in map.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v = (*v + b).max(0.0);
        }
    }
}

/// 2x2 max-pooling, stride 2, of a channels-last map `[h * w, c2]` into channels-first
/// `[c2, h/2, w/2]`; records the winner (0..4, row-major in the window, first on ties).
fn max_pool(g: &Geometry, act2: &[f32], out: &mut [f32], mut argmax: Option<&mut [u8]>) {
    let (w, c) = (g.width, g.c2);
    let (ph, pw) = (g.height / 2, g.width / 2);
    for y in 0..ph {
        for x in 0..pw {
            let corners = [
                (2 * y) * w + 2 * x,
                (2 * y) * w + 2 * x + 1,
                (2 * y + 1) * w + 2 * x,
                (2 * y + 1) * w + 2 * x + 1,
            ];
            for ch in 0..c {
                let mut best = act2[corners[0] * c + ch];
                let mut which = 0u8;
                for (n, &pixel) in corners.iter().enumerate().skip(1) {
                    let v = act2[pixel * c + ch];
                    if v > best {
                        best = v;
                        which = n as u8;
                    }
                }
                let o = (ch * ph + y) * pw + x;
                out[o] = best;
                if let Some(a) = argmax.as_deref_mut() {
                    a[o] = which;
                }
            }
        }
    }
}

/// `value` where `keep`, else zero, without a branch (these selects are unpredictable).
fn keep_if(keep: bool, value: f32) -> f32 {
    f32::from_bits(value.to_bits() & 0u32.wrapping_sub(keep as u32))
}

/// The gradient that reaches conv2's pre-activation through the ReLU and the pooling, into a
/// channels-first map `[c2, p]`: the window's winner gets the pooled gradient when the pooled
/// value is positive, every other pixel zero (one store per window, no branch on the
/// unpredictable winner). `argmax` is channels first.
fn unpool_planar(g: &Geometry, grad: &[f32], pooled: &[f32], argmax: &[u8], out: &mut [f32]) {
    let (w, p) = (g.width, g.pixels());
    let (ph, pw) = (g.height / 2, g.width / 2);
    out.fill(0.0);
    for ch in 0..g.c2 {
        for y in 0..ph {
            for x in 0..pw {
                let o = (ch * ph + y) * pw + x;
                let winner = (argmax[o] & 3) as usize;
                out[ch * p + (2 * y + winner / 2) * w + 2 * x + winner % 2] =
                    keep_if(pooled[o] > 0.0, grad[o]);
            }
        }
    }
}

/// [`unpool_planar`] into a zero-bordered channels-last map `[h + 2r, w + 2r, c2]`, with
/// `argmax` channels last: every pixel of every window written (vectorised over channels),
/// through `grad_pooled` (`[pooled pixels, c2]`) for the positive pooled values' gradient.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn unpool_padded<V: Lanes>(
    g: &Geometry,
    grad: &[f32],
    pooled: &[f32],
    argmax: &[u8],
    grad_pooled: &mut [f32],
    out: &mut [f32],
) {
    let r = g.kernel / 2;
    let (c, row) = (g.c2, g.width + 2 * r);
    let (ph, pw) = (g.height / 2, g.width / 2);
    let windows = ph * pw;
    // SAFETY: passed on from the caller.
    unsafe { positive_channels_last::<V>(grad, pooled, windows, c, grad_pooled) };
    direct::zero_border(g.height, g.width, c, r, out);
    for y in 0..ph {
        for x in 0..pw {
            let o = y * pw + x;
            let (values, winners) = (&grad_pooled[o * c..][..c], &argmax[o * c..][..c]);
            for n in 0..4u8 {
                let pixel = (2 * y + n as usize / 2 + r) * row + 2 * x + n as usize % 2 + r;
                let out = &mut out[pixel * c..][..c];
                for ((d, &v), &winner) in out.iter_mut().zip(values).zip(winners) {
                    *d = keep_if(winner == n, v);
                }
            }
        }
    }
}

/// `out [positions, channels]` = `grad [channels, positions]` where `pooled` (same layout)
/// is positive, else zero: channels first to channels last, by 16 x 16 blocks transposed in
/// registers ([`Lanes::transpose`]).
///
/// # Safety
///
/// The CPU must have `V`'s instruction set.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn positive_channels_last<V: Lanes>(
    grad: &[f32],
    pooled: &[f32],
    positions: usize,
    channels: usize,
    out: &mut [f32],
) {
    let n = positions * channels;
    assert!(grad.len() >= n && pooled.len() >= n && out.len() >= n);
    let done = if channels.is_multiple_of(16) {
        positions - positions % 16
    } else {
        0
    };
    // SAFETY: the caller guarantees the instruction set; block (ch, o) reads rows `ch..ch + 16`
    // (< channels) at positions `o..o + 16` (<= done <= positions) and writes rows `o..o + 16`
    // at channels `ch..ch + 16`: all inside the checked lengths.
    unsafe {
        let zero = V::zero();
        let mut rows = [zero; 16];
        // Without whole blocks of channels, `done` is 0 and no block runs.
        let block_channels = if done > 0 { channels } else { 0 };
        for ch in (0..block_channels).step_by(16) {
            for o in (0..done).step_by(16) {
                for (k, row) in rows.iter_mut().enumerate() {
                    let at = (ch + k) * positions + o;
                    let p = V::load(pooled.as_ptr().add(at));
                    *row = p.select_greater(zero, V::load(grad.as_ptr().add(at)), zero);
                }
                for (j, column) in V::transpose(rows).into_iter().enumerate() {
                    column.store(out.as_mut_ptr().add((o + j) * channels + ch));
                }
            }
        }
    }
    for ch in 0..channels {
        for o in done..positions {
            let at = ch * positions + o;
            out[o * channels + ch] = keep_if(pooled[at] > 0.0, grad[at]);
        }
    }
}

/// [`channels_first`] for `f32` maps, by 16 x 16 blocks transposed in registers
/// ([`Lanes::transpose`]).
///
/// # Safety
///
/// The CPU must have `V`'s instruction set.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn channels_first_f32<V: Lanes>(map: &[f32], channels: usize, out: &mut [f32]) {
    let positions = map.len() / channels;
    assert!(out.len() >= positions * channels);
    let done = if channels.is_multiple_of(16) {
        positions - positions % 16
    } else {
        0
    };
    // SAFETY: the caller guarantees the instruction set; block (o, ch) reads positions
    // `o..o + 16` (<= done) at channels `ch..ch + 16` (<= channels) and writes channels
    // `ch..ch + 16` at those positions: all inside `map` and `out`.
    unsafe {
        let mut rows = [V::zero(); 16];
        for o in (0..done).step_by(16) {
            for ch in (0..channels).step_by(16) {
                for (k, row) in rows.iter_mut().enumerate() {
                    *row = V::load(map.as_ptr().add((o + k) * channels + ch));
                }
                for (j, column) in V::transpose(rows).into_iter().enumerate() {
                    column.store(out.as_mut_ptr().add((ch + j) * positions + o));
                }
            }
        }
    }
    for (o, row) in map.chunks_exact(channels).enumerate().skip(done) {
        for (c, &v) in row.iter().enumerate() {
            out[c * positions + o] = v;
        }
    }
}

/// Adds each column's sum over the rows of `map` to `sums`, 16 columns at a time in local
/// accumulators (kept in registers, not reloaded from `sums` row after row).
#[inline(always)]
fn column_sums(map: &[f32], columns: usize, sums: &mut [f32]) {
    const LANES: usize = 16;
    let mut start = 0;
    while start < columns {
        let width = LANES.min(columns - start);
        let mut acc = [0.0f32; LANES];
        for row in map.chunks_exact(columns) {
            let row = &row[start..start + width];
            if width == LANES {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            } else {
                add(&mut acc[..width], row);
            }
        }
        add(&mut sums[start..start + width], &acc[..width]);
        start += width;
    }
}

#[inline]
fn add(acc: &mut [f32], values: &[f32]) {
    for (a, &v) in acc.iter_mut().zip(values) {
        *a += v;
    }
}

/// A matrix view of a slice: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    /// Row-major with rows of `width` values.
    fn rows(data: &'a [f32], width: usize) -> Self {
        Mat {
            data,
            row_stride: width,
            col_stride: 1,
        }
    }
    /// The transpose of a row-major matrix whose rows have `height` values.
    fn cols(data: &'a [f32], height: usize) -> Self {
        Mat {
            data,
            row_stride: 1,
            col_stride: height,
        }
    }
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst [m, n] (row-major) = (dst if accumulate) + lhs [m, k] x rhs [k, n]`, single-threaded
/// (the callers parallelise over images).
fn matmul(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    lhs: Mat<'_>,
    rhs: Mat<'_>,
    accumulate: bool,
) {
    assert!(
        dst.len() >= m * n && lhs.fits(m, k) && rhs.fits(k, n),
        "matmul operands smaller than their shapes"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assertion above keeps every index gemm forms, `i * rs + j * cs` over the
    // given shapes, inside the three slices; `dst` does not alias the inputs (it is a
    // mutable borrow).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::simd::{Avx2, Avx512};
    use crate::fused::{assert_close_to_largest, test_values as values, with_each_isa};

    /// Direct (loop) reference of the forward pass, channels-first.
    fn reference_forward(g: &Geometry, input: &[f32], w: Weights<'_>) -> Vec<f32> {
        let (h, wd, k) = (g.height, g.width, g.kernel);
        let r = k as isize / 2;
        let conv = |src: &[f32], cin: usize, cout: usize, weight: &[f32], bias: &[f32]| {
            let mut out = vec![0.0f32; cout * h * wd];
            for co in 0..cout {
                for y in 0..h {
                    for x in 0..wd {
                        let mut s = bias[co];
                        for ci in 0..cin {
                            for ky in 0..k {
                                for kx in 0..k {
                                    let sy = y as isize + ky as isize - r;
                                    let sx = x as isize + kx as isize - r;
                                    if sy >= 0 && sy < h as isize && sx >= 0 && sx < wd as isize {
                                        s += src[(ci * h + sy as usize) * wd + sx as usize]
                                            * weight[((co * cin + ci) * k + ky) * k + kx];
                                    }
                                }
                            }
                        }
                        out[(co * h + y) * wd + x] = s.max(0.0);
                    }
                }
            }
            out
        };
        let mut pooled = Vec::new();
        for i in 0..g.batch {
            let image = &input[i * g.c0 * h * wd..(i + 1) * g.c0 * h * wd];
            let a1 = conv(image, g.c0, g.c1, w.w1, w.b1);
            let a2 = conv(&a1, g.c1, g.c2, w.w2, w.b2);
            for c in 0..g.c2 {
                for y in 0..h / 2 {
                    for x in 0..wd / 2 {
                        let at = |dy: usize, dx: usize| a2[(c * h + 2 * y + dy) * wd + 2 * x + dx];
                        pooled.push(at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1)));
                    }
                }
            }
        }
        pooled
    }

    /// Small shapes, with the study's kernel size or a larger one.
    fn small(kernel: usize) -> Geometry {
        Geometry {
            batch: 5,
            c0: 2,
            c1: 3,
            c2: 4,
            height: 6,
            width: 4,
            kernel,
        }
    }

    #[test]
    fn forward_matches_direct_convolution() {
        for kernel in [3, 5] {
            forward_matches_direct_convolution_with(small(kernel));
            forward_matches_direct_convolution_with(small_wide(kernel));
        }
        // The study's shapes: 32 channels, 28 x 28.
        forward_matches_direct_convolution_with(Geometry::of(&crate::CnnConfig::new(4), 2));
    }

    /// 32 channels on a small map: shapes the direct method takes (where the CPU has it).
    fn small_wide(kernel: usize) -> Geometry {
        Geometry {
            batch: 3,
            c0: 2,
            c1: 32,
            c2: 32,
            height: 4,
            width: 6,
            kernel,
        }
    }

    /// Random images and weights of 3x3 kernels for `g`, and a gradient reaching the pooled
    /// features: values from the streams `seed..seed + 6`.
    struct Case {
        g: Geometry,
        input: Vec<f32>,
        params: [Vec<f32>; 4],
        probe: Vec<f32>,
    }

    /// The outputs of one forward and backward pass.
    type Outputs = (Vec<f32>, Saved, Grads);

    impl Case {
        fn new(g: Geometry, seed: u64) -> Self {
            let params = [
                values(g.c1 * g.c0 * 9, seed + 1),
                values(g.c1, seed + 2),
                values(g.c2 * g.c1 * 9, seed + 3),
                values(g.c2, seed + 4),
            ];
            Case {
                input: values(g.batch * g.c0 * g.pixels(), seed),
                probe: values(g.batch * g.pooled_len(), seed + 5),
                params,
                g,
            }
        }

        /// The pooled features, what the forward pass kept, and the gradients (the images'
        /// too when `input_grad`).
        fn run(&self, method: Method, isa: Option<Isa>, input_grad: bool) -> Outputs {
            let [w1, b1, w2, b2] = &self.params;
            let w = Weights { w1, b1, w2, b2 };
            let (g, input) = (&self.g, &self.input);
            let (pooled, saved) = forward_with(method, isa, g, input, w, true);
            let probe = &self.probe;
            let grads = backward_with(method, isa, g, input, w, &pooled, &saved, probe, input_grad);
            (pooled, saved, grads)
        }
    }

    /// Whether two passes gave the same bits: features, kept activations and winners, and every
    /// gradient.
    fn identical(a: &Outputs, b: &Outputs) -> bool {
        let ((pa, sa, ga), (pb, sb, gb)) = (a, b);
        pa == pb
            && (&sa.act1, &sa.argmax) == (&sb.act1, &sb.argmax)
            && (&ga.w1, &ga.b1, &ga.w2, &ga.b2, &ga.input)
                == (&gb.w1, &gb.b1, &gb.w2, &gb.b2, &gb.input)
    }

    /// Every method this CPU has for `g`, the fast ones with each instruction set it has.
    fn variants(g: &Geometry) -> Vec<(Method, Option<Isa>)> {
        let with_isas = |method| Isa::all().into_iter().map(move |isa| (method, Some(isa)));
        Method::all(g)
            .into_iter()
            .flat_map(|method| match method {
                Method::Im2col => vec![(method, None)],
                _ => with_isas(method).collect(),
            })
            .collect()
    }

    fn forward_matches_direct_convolution_with(g: Geometry) {
        for (method, isa) in variants(&g) {
            forward_by_method_matches_direct_convolution(method, isa, g);
        }
    }

    fn forward_by_method_matches_direct_convolution(method: Method, isa: Option<Isa>, g: Geometry) {
        let taps = g.kernel * g.kernel;
        let input = values(g.batch * g.c0 * g.pixels(), 1);
        let (w1, b1) = (values(g.c1 * g.c0 * taps, 2), values(g.c1, 3));
        let (w2, b2) = (values(g.c2 * g.c1 * taps, 4), values(g.c2, 5));
        let w = Weights {
            w1: &w1,
            b1: &b1,
            w2: &w2,
            b2: &b2,
        };
        let expected = reference_forward(&g, &input, w);
        let (fast, saved) = forward_with(method, isa, &g, &input, w, true);
        let (plain, _) = forward_with(method, isa, &g, &input, w, false);
        assert_eq!(saved.act1.len(), g.batch * act1_len(&g, method));
        assert_eq!(fast, plain);
        assert_close_to_largest(&format!("{method:?} {isa:?}"), &fast, &expected);
    }

    /// Every weight gradient against a central finite difference of `sum(pooled * probe)`.
    #[test]
    fn backward_matches_finite_differences() {
        for kernel in [3, 5] {
            backward_matches_finite_differences_with(small(kernel));
        }
    }

    /// Every method on the study's shapes: the same features, winners and gradients as im2col
    /// (these shapes have too many ReLU and pooling switches for finite differences; the
    /// im2col method is checked against them above).
    #[test]
    fn methods_agree_on_the_study_shapes() {
        let g = Geometry::of(&crate::CnnConfig::new(4), 6);
        if Method::best(&g) == Method::Im2col {
            eprintln!("SKIPPED: neither AVX-512F nor AVX2 on this CPU");
            return;
        }
        let case = Case::new(g, 21);
        let run = |method, isa| case.run(method, isa, true);
        let (p_ref, s_ref, g_ref) = run(Method::Im2col, None);
        let fast = variants(&g)
            .into_iter()
            .filter(|&(m, _)| m != Method::Im2col);
        for (method, isa) in fast {
            let (p, s, grads) = run(method, isa);
            let close = |name: &str, a: &[f32], b: &[f32]| {
                assert_close_to_largest(&format!("{method:?} {isa:?} {name}"), a, b)
            };
            close("pooled", &p, &p_ref);
            // The fast methods keep it zero-bordered: compare the interiors, check the borders.
            let (row, line) = ((g.width + 2) * g.c1, g.width * g.c1);
            let mut interior = Vec::with_capacity(s_ref.act1.len());
            for image in s.act1.chunks_exact(act1_len(&g, method)) {
                for (y, map_row) in image.chunks_exact(row).enumerate() {
                    let (border, inside) = (y == 0 || y == g.height + 1, &map_row[g.c1..][..line]);
                    assert!(
                        map_row[..g.c1]
                            .iter()
                            .chain(&map_row[g.c1 + line..])
                            .all(|&v| v == 0.0)
                    );
                    if border {
                        assert!(map_row.iter().all(|&v| v == 0.0));
                    } else {
                        interior.extend_from_slice(inside);
                    }
                }
            }
            close("act1", &interior, &s_ref.act1);
            // Winners agree wherever the gradient flows (a clear positive maximum); the fast
            // methods keep them channels last.
            let mut winners = vec![0u8; s.argmax.len()];
            for (image, out) in s
                .argmax
                .chunks_exact(g.pooled_len())
                .zip(winners.chunks_exact_mut(g.pooled_len()))
            {
                channels_first(image, g.c2, out);
            }
            for ((&a, &b), &v) in winners.iter().zip(&s_ref.argmax).zip(&p_ref) {
                assert!(
                    a == b || v < 1e-3,
                    "{method:?} {isa:?}: winner {a} vs {b} at {v}"
                );
            }
            close("w1", &grads.w1, &g_ref.w1);
            close("b1", &grads.b1, &g_ref.b1);
            close("w2", &grads.w2, &g_ref.w2);
            close("b2", &grads.b2, &g_ref.b2);
            close(
                "input",
                grads.input.as_deref().unwrap_or_default(),
                g_ref.input.as_deref().unwrap_or_default(),
            );
        }
    }

    fn backward_matches_finite_differences_with(g: Geometry) {
        let method = Method::Im2col;
        let taps = g.kernel * g.kernel;
        let input = values(g.batch * g.c0 * g.pixels(), 11);
        let params = [
            values(g.c1 * g.c0 * taps, 12),
            values(g.c1, 13),
            values(g.c2 * g.c1 * taps, 14),
            values(g.c2, 15),
        ];
        let probe = values(g.batch * g.pooled_len(), 16);
        let loss = |p: &[Vec<f32>; 4], x: &[f32]| -> f64 {
            let w = Weights {
                w1: &p[0],
                b1: &p[1],
                w2: &p[2],
                b2: &p[3],
            };
            let (out, _) = forward_with(method, Isa::chosen(), &g, x, w, false);
            out.iter()
                .zip(&probe)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum()
        };
        let w = Weights {
            w1: &params[0],
            b1: &params[1],
            w2: &params[2],
            b2: &params[3],
        };
        let (pooled, saved) = forward_with(method, Isa::chosen(), &g, &input, w, true);
        let isa = Isa::chosen();
        let grads = backward_with(method, isa, &g, &input, w, &pooled, &saved, &probe, true);
        let analytic = [
            grads.w1.clone(),
            grads.b1.clone(),
            grads.w2.clone(),
            grads.b2.clone(),
        ];
        // A central difference straddling a ReLU or max-pool switch is meaningless: where the
        // differences at two step sizes disagree the point is skipped, and at most 5% may be.
        let (mut checked, mut skipped) = (0, 0);
        let mut compare = |name: String, analytic: f64, value: &mut dyn FnMut(f32) -> f64| {
            let mut numeric = |eps: f32| (value(eps) - value(-eps)) / (2.0 * eps as f64);
            let (coarse, fine) = (numeric(1e-3), numeric(5e-4));
            let tolerance = 2e-2 * (1.0 + fine.abs());
            checked += 1;
            if (coarse - fine).abs() > tolerance {
                skipped += 1;
                return;
            }
            assert!(
                (analytic - fine).abs() <= tolerance,
                "{name}: {analytic} vs {fine}"
            );
        };
        for (which, grad) in analytic.iter().enumerate() {
            for (j, &a) in grad.iter().enumerate() {
                let orig = params[which][j];
                compare(format!("param {which}[{j}]"), a as f64, &mut |eps| {
                    let mut p = params.clone();
                    p[which][j] = orig + eps;
                    loss(&p, &input)
                });
            }
        }
        let dx = grads.input.unwrap();
        for j in (0..input.len()).step_by(7) {
            compare(format!("input[{j}]"), dx[j] as f64, &mut |eps| {
                let mut x = input.clone();
                x[j] += eps;
                loss(&params, &x)
            });
        }
        assert!(
            skipped * 20 <= checked,
            "{skipped} of {checked} points skipped"
        );
    }

    /// Buffers kept from earlier calls leave no trace: the same inputs give the same bits
    /// before and after a call with other values (and after one with other shapes, which
    /// replaces the buffers of the threads it ran on).
    #[test]
    fn kept_buffers_leave_no_trace() {
        let study = Geometry::of(&crate::CnnConfig::new(4), 5);
        // Other shapes that every method takes.
        let other = Geometry {
            batch: 3,
            height: 8,
            width: 8,
            ..study
        };
        let run = |g: &Geometry, (method, isa): (Method, Option<Isa>), seed: u64| {
            Case::new(*g, seed).run(method, isa, false)
        };
        for variant in variants(&study) {
            run(&other, variant, 30);
            let fresh = run(&study, variant, 40);
            run(&study, variant, 50);
            assert!(identical(&run(&study, variant, 40), &fresh), "{variant:?}");
        }
    }

    /// The instruction sets run the same arithmetic in the same order: AVX2 and AVX-512 give
    /// the same bits (features, kept activations, winners, every gradient).
    #[test]
    fn instruction_sets_give_the_same_bits() {
        let g = Geometry::of(&crate::CnnConfig::new(4), 5);
        if Isa::all().len() < 2 {
            eprintln!("SKIPPED: this CPU lacks AVX-512F or AVX2");
            return;
        }
        let case = Case::new(g, 71);
        for method in [Method::Direct, Method::Winograd] {
            let run = |isa| case.run(method, Some(isa), true);
            assert!(identical(&run(Isa::Avx2), &run(Isa::Avx512)), "{method:?}");
        }
    }

    #[test]
    fn fast_channels_first_matches_the_plain_one() {
        for (isa, (positions, channels)) in with_each_isa(&[(196, 32), (20, 16), (5, 3)]) {
            let map = values(positions * channels, 62);
            let (mut fast, mut plain) = (vec![f32::NAN; map.len()], vec![0.0; map.len()]);
            // SAFETY: the CPU has `isa`.
            unsafe {
                match isa {
                    Isa::Avx2 => channels_first_f32::<Avx2>(&map, channels, &mut fast),
                    Isa::Avx512 => channels_first_f32::<Avx512>(&map, channels, &mut fast),
                }
            }
            channels_first(&map, channels, &mut plain);
            assert_eq!(fast, plain, "{isa:?} {positions} x {channels}");
        }
    }

    #[test]
    fn positive_gradient_goes_channels_last() {
        // 196 positions: twelve 16-wide blocks and a remainder; 32 and 16 channels.
        for (isa, (positions, channels)) in with_each_isa(&[(196, 32), (20, 16), (5, 3)]) {
            let grad = values(positions * channels, 60);
            let pooled = values(positions * channels, 61);
            let mut out = vec![f32::NAN; positions * channels];
            let (n, c, out) = (positions, channels, &mut out[..]);
            // SAFETY: the CPU has `isa`.
            unsafe {
                match isa {
                    Isa::Avx2 => positive_channels_last::<Avx2>(&grad, &pooled, n, c, out),
                    Isa::Avx512 => positive_channels_last::<Avx512>(&grad, &pooled, n, c, out),
                }
            }
            for ch in 0..channels {
                for o in 0..positions {
                    let at = ch * positions + o;
                    let expected = if pooled[at] > 0.0 { grad[at] } else { 0.0 };
                    let at = o * channels + ch;
                    assert_eq!(out[at], expected, "{isa:?} {positions} x {channels}");
                }
            }
        }
    }

    /// The only test that changes the preference (tests run in parallel; the others name
    /// their method).
    #[test]
    fn a_preferred_method_is_used_where_available() {
        let g = Geometry::of(&crate::CnnConfig::new(4), 1);
        for method in Method::all(&g) {
            Method::prefer(Some(method));
            assert_eq!(Method::chosen(&g), method);
        }
        // Not available for these shapes (4 channels): the fastest that is.
        let narrow = small(3);
        Method::prefer(Some(Method::Direct));
        assert_eq!(Method::chosen(&narrow), Method::Im2col);
        Method::prefer(None);
        assert_eq!(Method::chosen(&g), Method::best(&g));
    }

    #[test]
    fn odd_sizes_are_not_supported() {
        let mut g = small(3);
        assert!(g.supported());
        g.height = 5;
        assert!(!g.supported());
        g.height = 6;
        g.kernel = 2;
        assert!(!g.supported());
    }
}
