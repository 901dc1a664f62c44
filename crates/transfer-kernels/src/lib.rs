#![doc = include_str!("../README.md")]
// Elsewhere than on x86-64 only the im2col method runs: the direct and Winograd methods' plain
// code still compiles there, unreachable.
#![cfg_attr(
    not(target_arch = "x86_64"),
    allow(dead_code, unused_imports, unused_variables)
)]

mod backward;
mod direct;
mod forward;
mod im2col;
mod layout;
mod pool;
mod product;
mod scratch;
mod simd;
#[cfg(test)]
mod tests;
mod winograd;

use std::sync::atomic::{AtomicU8, Ordering};

pub use backward::{backward, backward_with};
pub use forward::{forward, forward_saving, forward_with};
pub use product::{Mat, fixed_order, product, product_reference, product_with, sum_run};
pub use simd::Isa;

/// Images whose weight gradients are summed together before the groups are added in order.
pub(crate) const GRAD_GROUP: usize = 4;

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

/// Panics, naming what is wrong, unless `g` is [`Geometry::supported`] and `input` and `w`
/// have the lengths `g` gives them: the safe entry points never compute on slices that do
/// not match their geometry.
pub(crate) fn assert_matches(g: &Geometry, input: &[f32], w: &Weights<'_>) {
    assert!(
        g.supported(),
        "unsupported geometry {g:?}: every size must be positive, the kernel odd and the image's sides even"
    );
    let taps = g.taps();
    for (what, len, expected) in [
        ("input", input.len(), g.batch * g.c0 * g.pixels()),
        ("w1", w.w1.len(), g.c1 * g.c0 * taps),
        ("b1", w.b1.len(), g.c1),
        ("w2", w.w2.len(), g.c2 * g.c1 * taps),
        ("b2", w.b2.len(), g.c2),
    ] {
        assert_slice_len(what, len, expected, g);
    }
}

/// Panics unless a slice the kernels were given has the length its geometry implies.
pub(crate) fn assert_slice_len(what: &str, len: usize, expected: usize, g: &Geometry) {
    assert!(
        len == expected,
        "{what} holds {len} values but {g:?} needs {expected}"
    );
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
    /// set). With AVX2 the direct kernels, short of registers, rank below im2col on `gemm`.
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
pub(crate) static PREFERRED: AtomicU8 = AtomicU8::new(0);

/// What [`PREFERRED`] can hold.
pub(crate) const PREFERENCES: [Option<Method>; 4] = [
    None,
    Some(Method::Im2col),
    Some(Method::Direct),
    Some(Method::Winograd),
];

/// Values of one image's kept conv1 activation ([`Saved::act1`]) by `method`.
pub(crate) fn act1_len(g: &Geometry, method: Method) -> usize {
    match method {
        Method::Im2col => g.pixels() * g.c1,
        Method::Direct | Method::Winograd => conv2_shape(g).padded_len(),
    }
}

/// conv1 as a direct convolution.
pub(crate) fn conv1_shape(g: &Geometry) -> direct::Shape {
    direct::Shape {
        cin: g.c0,
        cout: g.c1,
        ..conv2_shape(g)
    }
}

/// A 3x3 convolution of the maps' size from `cin` to `cout` channels, by Winograd.
pub(crate) fn winograd_shape(cin: usize, cout: usize, g: &Geometry) -> winograd::Shape {
    winograd::Shape {
        height: g.height,
        width: g.width,
        cin,
        cout,
    }
}

/// conv2 as a direct convolution.
pub(crate) fn conv2_shape(g: &Geometry) -> direct::Shape {
    direct::Shape {
        height: g.height,
        width: g.width,
        cin: g.c1,
        cout: g.c2,
        kernel: g.kernel,
    }
}

/// `n` values uniform in [-1, 1) from SplitMix64 seeded with `seed`, for the kernels' tests.
#[cfg(test)]
fn test_values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..n)
        .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
        .collect()
}

/// Every pair of an instruction set this CPU has and one of `items`, for the kernels' tests.
#[cfg(test)]
fn with_each_isa<T: Copy>(items: &[T]) -> Vec<(Isa, T)> {
    let each = Isa::all().into_iter();
    each.flat_map(|isa| items.iter().map(move |&item| (isa, item)))
        .collect()
}

/// Asserts that `got` equals `expected` within 1e-5 of `expected`'s largest magnitude (plus
/// 1e-5 absolute): Winograd's transforms scale a tile's values by up to 100 and 1/576, so a small
/// value carries the rounding of its tile's large ones. `what` names the comparison in the
/// failure.
#[cfg(test)]
fn assert_close_to_largest(what: &str, got: &[f32], expected: &[f32]) {
    assert_eq!(got.len(), expected.len(), "{what}: lengths");
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (x, y) in got.iter().zip(expected) {
        assert!((x - y).abs() <= 1e-5 * (1.0 + scale), "{what}: {x} vs {y}");
    }
}
