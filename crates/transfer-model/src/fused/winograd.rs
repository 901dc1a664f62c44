//! Winograd F(2x2, 3x3) convolutions of channels-last maps with AVX-512: 16 multiplications per
//! 2x2 output tile and channel pair instead of 36.
//!
//! A 4x4 patch `d` of the zero-bordered input becomes `V = Bᵀ d B`, a 3x3 kernel `g` becomes
//! `U = G g Gᵀ`, and the tile's outputs are `Aᵀ (Σ_in U ⊙ V) A`. The sum over input channels
//! is 16 small matrix products per strip of tiles (one row of tiles: `V` and the products stay
//! in the core's first-level cache), register-blocked like the direct kernels (up to seven
//! tiles by 32 output channels in 14 registers). A 2x2 output tile is exactly one 2x2 pooling
//! window, so [`conv_bias_relu_pool`] pools as it untransforms. [`weight_grad`] sums
//! `V ⊙ (A dY Aᵀ)` over tiles in the transformed domain; [`taps_from_transformed`] brings the
//! sum back to the kernel's taps (`Gᵀ dU G`).
//!
//! The transforms only add, subtract and halve, so the results equal a direct convolution's to
//! float rounding. Used where the CPU has AVX-512F, the kernel is 3x3, the input channels are a
//! multiple of 16 and the output channels of 32 ([`available`]).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Output channels per block of products: two AVX-512 registers.
const BLOCK_CHANNELS: usize = 32;
/// Positions of a transformed 4x4 tile.
const POSITIONS: usize = 16;
/// Taps of the 3x3 kernel.
const TAPS: usize = 9;

/// Shapes of one 3x3 "same" convolution: a zero-bordered channels-last input `[height + 2,
/// width + 2, cin]`, output `[height, width, cout]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Output rows (even).
    pub height: usize,
    /// Output columns (even).
    pub width: usize,
    /// Input channels (a multiple of 16).
    pub cin: usize,
    /// Output channels (a multiple of 32).
    pub cout: usize,
}

impl Shape {
    fn padded_width(&self) -> usize {
        self.width + 2
    }
    /// Values in the zero-bordered input.
    pub fn padded_len(&self) -> usize {
        self.padded_width() * (self.height + 2) * self.cin
    }
    /// Values in the transformed weights `[16, cin, cout]`.
    pub fn transformed_len(&self) -> usize {
        POSITIONS * self.cin * self.cout
    }
    fn tiles_per_strip(&self) -> usize {
        self.width / 2
    }
    fn check(&self, padded: &[f32], transformed: &[f32], workspace: &Workspace) {
        assert!(
            available(self.cin, self.cout)
                && self.height.is_multiple_of(2)
                && self.width.is_multiple_of(2)
                && padded.len() >= self.padded_len()
                && transformed.len() >= self.transformed_len()
                && workspace.fits(self),
            "Winograd convolution operands do not match {self:?}"
        );
    }
}

/// Whether this CPU runs these kernels for these channel counts.
pub fn available(cin: usize, cout: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        cin > 0
            && cin.is_multiple_of(16)
            && cout > 0
            && cout.is_multiple_of(BLOCK_CHANNELS)
            && is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (cin, cout);
        false
    }
}

/// One strip's transformed input and products, reused from call to call.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    /// Transformed input `[16, tiles, cin]`.
    input: Vec<f32>,
    /// Products, or the transformed output gradient, `[16, tiles, cout]`.
    products: Vec<f32>,
}

impl Workspace {
    /// A workspace for maps of `width` columns and up to `channels` channels in or out.
    pub fn new(width: usize, channels: usize) -> Self {
        let len = POSITIONS * (width / 2) * channels;
        Workspace {
            input: vec![0.0; len],
            products: vec![0.0; len],
        }
    }
    fn fits(&self, shape: &Shape) -> bool {
        let tiles = shape.tiles_per_strip();
        self.input.len() >= POSITIONS * tiles * shape.cin
            && self.products.len() >= POSITIONS * tiles * shape.cout
    }
}

/// `G`, 4x3: the kernel's transform.
const G: [[f32; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// Transformed weights `U [16, cin, cout]` (`G g Gᵀ` per channel pair) of weights `[9, cin,
/// cout]` (tap-major rows, as the direct kernels read them).
pub fn transform_weights(taps: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let pair = cin * cout;
    assert!(
        taps.len() >= TAPS * pair,
        "weights shorter than [9, cin, cout]"
    );
    let mut out = vec![0.0f32; POSITIONS * pair];
    for p in 0..pair {
        let g = |a: usize, b: usize| taps[(a * 3 + b) * pair + p];
        for i in 0..4 {
            for j in 0..4 {
                let mut s = 0.0;
                for (a, &gi) in G[i].iter().enumerate() {
                    for (b, &gj) in G[j].iter().enumerate() {
                        s += gi * g(a, b) * gj;
                    }
                }
                out[(i * 4 + j) * pair + p] = s;
            }
        }
    }
    out
}

/// The weights' gradient `[9, cin, cout]` (`Gᵀ dU G`) of its transformed-domain sum `dU [16,
/// cin, cout]`, as [`weight_grad`] accumulates it.
pub fn taps_from_transformed(transformed: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let pair = cin * cout;
    assert!(transformed.len() >= POSITIONS * pair);
    let mut out = vec![0.0f32; TAPS * pair];
    for p in 0..pair {
        let du = |i: usize, j: usize| transformed[(i * 4 + j) * pair + p];
        for a in 0..3 {
            for b in 0..3 {
                let mut s = 0.0;
                for (i, gi) in G.iter().enumerate() {
                    for (j, gj) in G.iter().enumerate() {
                        s += gi[a] * du(i, j) * gj[b];
                    }
                }
                out[(a * 3 + b) * pair + p] = s;
            }
        }
    }
    out
}

/// `out [height, width, cout] = conv(padded, weights)`, no bias, from the transformed weights
/// ([`transform_weights`]).
///
/// Panics when the slices are smaller than `shape` says or [`available`] is false.
pub fn conv(
    shape: &Shape,
    padded: &[f32],
    transformed: &[f32],
    workspace: &mut Workspace,
    out: &mut [f32],
) {
    shape.check(padded, transformed, workspace);
    assert!(out.len() >= shape.height * shape.width * shape.cout);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is present and every operand fits the shape (checked above).
    unsafe {
        for ty in 0..shape.height / 2 {
            strip_products(shape, padded, transformed, workspace, ty);
            store_strip(shape, &workspace.products, ty, out);
        }
    }
}

/// `pooled [height/2 * width/2, cout] = maxpool2x2(relu(conv(padded, weights) + bias))`, and
/// per pooled value the window's winner (0..4, row-major, first on ties) in `winners`.
///
/// Panics when the slices are smaller than `shape` says or [`available`] is false.
#[allow(clippy::too_many_arguments)]
pub fn conv_bias_relu_pool(
    shape: &Shape,
    padded: &[f32],
    transformed: &[f32],
    bias: &[f32],
    workspace: &mut Workspace,
    pooled: &mut [f32],
    winners: &mut [u8],
) {
    shape.check(padded, transformed, workspace);
    let pooled_len = shape.height / 2 * shape.width / 2 * shape.cout;
    assert!(bias.len() >= shape.cout && pooled.len() >= pooled_len && winners.len() >= pooled_len);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `conv`; pooled writes stay inside `pooled_len` values.
    unsafe {
        for ty in 0..shape.height / 2 {
            strip_products(shape, padded, transformed, workspace, ty);
            pool_strip(shape, &workspace.products, bias, ty, pooled, winners);
        }
    }
}

/// Adds to `transformed_grad [16, cin, cout]` the weights' gradient in the transformed domain:
/// the sum over tiles of `V ⊙ (A dY Aᵀ)`, where `padded_grad` is the output's gradient `dY`
/// with a zero border of one (`[height + 2, width + 2, cout]`). [`taps_from_transformed`]
/// gives the gradient of the weights themselves.
///
/// Panics when the slices are smaller than `shape` says or [`available`] is false.
pub fn weight_grad(
    shape: &Shape,
    padded: &[f32],
    padded_grad: &[f32],
    workspace: &mut Workspace,
    transformed_grad: &mut [f32],
) {
    shape.check(padded, transformed_grad, workspace);
    let grad_len = shape.padded_width() * (shape.height + 2) * shape.cout;
    assert!(padded_grad.len() >= grad_len);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `conv`; the gradient's tiles lie inside `padded_grad` (checked above).
    unsafe {
        let tiles = shape.tiles_per_strip();
        for ty in 0..shape.height / 2 {
            transform_input_strip(shape, padded, &mut workspace.input, ty);
            transform_grad_strip(shape, padded_grad, &mut workspace.products, ty);
            for pos in 0..POSITIONS {
                let v = workspace.input.as_ptr().add(pos * tiles * shape.cin);
                let gy = workspace.products.as_ptr().add(pos * tiles * shape.cout);
                let du = transformed_grad
                    .as_mut_ptr()
                    .add(pos * shape.cin * shape.cout);
                for cb in 0..shape.cout / BLOCK_CHANNELS {
                    let mut ci = 0;
                    while ci < shape.cin {
                        let at = (v.add(ci), gy.add(cb * BLOCK_CHANNELS));
                        let du = du.add(ci * shape.cout + cb * BLOCK_CHANNELS);
                        ci += match shape.cin - ci {
                            12.. => weight_products::<12>(shape, tiles, at, du),
                            8..12 => weight_products::<8>(shape, tiles, at, du),
                            _ => weight_products::<4>(shape, tiles, at, du),
                        };
                    }
                }
            }
        }
    }
}

/// Transforms the input tiles of tile row `ty` and multiplies them by the transformed weights:
/// `products [16, tiles, cout]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn strip_products(
    shape: &Shape,
    padded: &[f32],
    transformed: &[f32],
    workspace: &mut Workspace,
    ty: usize,
) {
    let tiles = shape.tiles_per_strip();
    // SAFETY: the caller checked the shapes: every offset below stays inside the workspace's
    // buffers (`Workspace::fits`) and the transformed weights.
    unsafe {
        transform_input_strip(shape, padded, &mut workspace.input, ty);
        for pos in 0..POSITIONS {
            let v = workspace.input.as_ptr().add(pos * tiles * shape.cin);
            let u = transformed.as_ptr().add(pos * shape.cin * shape.cout);
            let m = workspace
                .products
                .as_mut_ptr()
                .add(pos * tiles * shape.cout);
            for cb in 0..shape.cout / BLOCK_CHANNELS {
                let mut t = 0;
                while t < tiles {
                    let c = cb * BLOCK_CHANNELS;
                    let (v, u, m) = (v.add(t * shape.cin), u.add(c), m.add(t * shape.cout + c));
                    t += match tiles - t {
                        7.. => products::<7>(shape, v, u, m),
                        4..7 => products::<4>(shape, v, u, m),
                        2..4 => products::<2>(shape, v, u, m),
                        _ => products::<1>(shape, v, u, m),
                    };
                }
            }
        }
    }
}

/// `m [t, 32] = Σ_ci v [t, ci] u [ci, 32]` for `T` tiles (one position, one channel block).
/// Returns `T`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn products<const T: usize>(
    shape: &Shape,
    v: *const f32,
    u: *const f32,
    m: *mut f32,
) -> usize {
    let (cin, cout) = (shape.cin, shape.cout);
    let mut acc = [[_mm512_setzero_ps(); 2]; T];
    // SAFETY: the caller passes pointers to `T` tiles of `cin` values, `cin` weight rows of
    // `cout` values from the block's channel, and `T` product rows.
    unsafe {
        for ci in 0..cin {
            let w0 = _mm512_loadu_ps(u.add(ci * cout));
            let w1 = _mm512_loadu_ps(u.add(ci * cout + 16));
            for (t, a) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*v.add(t * cin + ci));
                a[0] = _mm512_fmadd_ps(x, w0, a[0]);
                a[1] = _mm512_fmadd_ps(x, w1, a[1]);
            }
        }
        for (t, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(m.add(t * cout), a[0]);
            _mm512_storeu_ps(m.add(t * cout + 16), a[1]);
        }
    }
    T
}

/// `du [i, 32] += Σ_tiles v [tile, i] gy [tile, 32]` for `I` input channels (one position,
/// one channel block). Returns `I`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn weight_products<const I: usize>(
    shape: &Shape,
    tiles: usize,
    (v, gy): (*const f32, *const f32),
    du: *mut f32,
) -> usize {
    let (cin, cout) = (shape.cin, shape.cout);
    let mut acc = [[_mm512_setzero_ps(); 2]; I];
    // SAFETY: the caller passes pointers to `tiles` rows of the transformed input (from input
    // channel `ci`, `I` of them) and gradient (from the block's channel), and `I` rows of `du`.
    unsafe {
        for t in 0..tiles {
            let g0 = _mm512_loadu_ps(gy.add(t * cout));
            let g1 = _mm512_loadu_ps(gy.add(t * cout + 16));
            for (i, a) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*v.add(t * cin + i));
                a[0] = _mm512_fmadd_ps(x, g0, a[0]);
                a[1] = _mm512_fmadd_ps(x, g1, a[1]);
            }
        }
        for (i, a) in acc.iter().enumerate() {
            for (half, &value) in a.iter().enumerate() {
                let at = du.add(i * cout + half * 16);
                _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), value));
            }
        }
    }
    I
}

/// `V = Bᵀ d B` of every 4x4 input patch of tile row `ty`, 16 channels at a time: `input [16,
/// tiles, cin]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transform_input_strip(shape: &Shape, padded: &[f32], input: &mut [f32], ty: usize) {
    let (cin, tiles) = (shape.cin, shape.tiles_per_strip());
    let row = shape.padded_width() * cin;
    // SAFETY: the caller checked the shapes: the strip's patches (rows `2ty..2ty + 4`, every
    // column) lie inside `padded`, and `input` holds `16 * tiles * cin` values.
    unsafe {
        let src = padded.as_ptr().add(2 * ty * row);
        let dst = input.as_mut_ptr();
        for t in 0..tiles {
            for c in (0..cin).step_by(16) {
                let patch = src.add(2 * t * cin + c);
                let d = |i: usize, j: usize| _mm512_loadu_ps(patch.add(i * row + j * cin));
                // Rows: Bᵀ d.
                let mut rows = [[_mm512_setzero_ps(); 4]; 4];
                for (j, column) in (0..4).map(|j| (j, [d(0, j), d(1, j), d(2, j), d(3, j)])) {
                    let [r0, r1, r2, r3] = column;
                    rows[0][j] = _mm512_sub_ps(r0, r2);
                    rows[1][j] = _mm512_add_ps(r1, r2);
                    rows[2][j] = _mm512_sub_ps(r2, r1);
                    rows[3][j] = _mm512_sub_ps(r1, r3);
                }
                // Columns: (Bᵀ d) B.
                for (i, [c0, c1, c2, c3]) in rows.into_iter().enumerate() {
                    let values = [
                        _mm512_sub_ps(c0, c2),
                        _mm512_add_ps(c1, c2),
                        _mm512_sub_ps(c2, c1),
                        _mm512_sub_ps(c1, c3),
                    ];
                    for (j, value) in values.into_iter().enumerate() {
                        let pos = i * 4 + j;
                        _mm512_storeu_ps(dst.add((pos * tiles + t) * cin + c), value);
                    }
                }
            }
        }
    }
}

/// `A dY Aᵀ` of every 2x2 output-gradient tile of tile row `ty`: `out [16, tiles, cout]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transform_grad_strip(shape: &Shape, padded_grad: &[f32], out: &mut [f32], ty: usize) {
    let (cout, tiles) = (shape.cout, shape.tiles_per_strip());
    let row = shape.padded_width() * cout;
    // SAFETY: the caller checked the shapes: the strip's gradient tiles (rows `2ty + 1` and
    // `2ty + 2` of the padded map) lie inside `padded_grad`; `out` holds `16 * tiles * cout`.
    unsafe {
        let src = padded_grad.as_ptr().add((2 * ty + 1) * row + cout);
        let dst = out.as_mut_ptr();
        for t in 0..tiles {
            for c in (0..cout).step_by(16) {
                let tile = src.add(2 * t * cout + c);
                let g = |a: usize, b: usize| _mm512_loadu_ps(tile.add(a * row + b * cout));
                // A (2 x 2) Aᵀ with A = [1 0; 1 1; 1 -1; 0 -1]: rows, then columns.
                let expand = |x0: __m512, x1: __m512| {
                    [
                        x0,
                        _mm512_add_ps(x0, x1),
                        _mm512_sub_ps(x0, x1),
                        _mm512_sub_ps(_mm512_setzero_ps(), x1),
                    ]
                };
                let first = expand(g(0, 0), g(1, 0));
                let second = expand(g(0, 1), g(1, 1));
                for i in 0..4 {
                    for (j, value) in expand(first[i], second[i]).into_iter().enumerate() {
                        let pos = i * 4 + j;
                        _mm512_storeu_ps(dst.add((pos * tiles + t) * cout + c), value);
                    }
                }
            }
        }
    }
}

/// The 2x2 outputs `Aᵀ m A` of the tile whose 16 products (16 channels) start at `m`, `stride`
/// values apart: `[y00, y01, y10, y11]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn untransform(m: *const f32, stride: usize) -> [__m512; 4] {
    // SAFETY: the caller passes 16 products `stride` apart.
    let at = |i: usize, j: usize| unsafe { _mm512_loadu_ps(m.add((i * 4 + j) * stride)) };
    let columns = |j: usize| {
        let (m0, m1, m2, m3) = (at(0, j), at(1, j), at(2, j), at(3, j));
        (
            _mm512_add_ps(_mm512_add_ps(m0, m1), m2),
            _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3),
        )
    };
    let (c0, c1, c2, c3) = (columns(0), columns(1), columns(2), columns(3));
    let first = |s0: __m512, s1: __m512, s2: __m512| _mm512_add_ps(_mm512_add_ps(s0, s1), s2);
    let second = |s1: __m512, s2: __m512, s3: __m512| _mm512_sub_ps(_mm512_sub_ps(s1, s2), s3);
    [
        first(c0.0, c1.0, c2.0),
        second(c1.0, c2.0, c3.0),
        first(c0.1, c1.1, c2.1),
        second(c1.1, c2.1, c3.1),
    ]
}

/// Untransforms tile row `ty`'s products into `out [height, width, cout]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn store_strip(shape: &Shape, products: &[f32], ty: usize, out: &mut [f32]) {
    let (cout, tiles) = (shape.cout, shape.tiles_per_strip());
    let stride = tiles * cout;
    // SAFETY: the caller checked the shapes: the strip's two output rows lie inside `out`.
    unsafe {
        let out = out.as_mut_ptr();
        for t in 0..tiles {
            for c in (0..cout).step_by(16) {
                let y = untransform(products.as_ptr().add(t * cout + c), stride);
                for (n, value) in y.into_iter().enumerate() {
                    let pixel = (2 * ty + n / 2) * shape.width + 2 * t + n % 2;
                    _mm512_storeu_ps(out.add(pixel * cout + c), value);
                }
            }
        }
    }
}

/// Untransforms tile row `ty`'s products, adds the bias, applies ReLU and keeps each tile's
/// maximum and winner.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pool_strip(
    shape: &Shape,
    products: &[f32],
    bias: &[f32],
    ty: usize,
    pooled: &mut [f32],
    winners: &mut [u8],
) {
    let (cout, tiles) = (shape.cout, shape.tiles_per_strip());
    let stride = tiles * cout;
    // SAFETY: the caller checked the shapes: the strip's pooled values lie inside `pooled` and
    // `winners`, the bias inside `bias`.
    unsafe {
        let zero = _mm512_setzero_ps();
        for c in (0..cout).step_by(16) {
            let b = _mm512_loadu_ps(bias.as_ptr().add(c));
            for t in 0..tiles {
                let y = untransform(products.as_ptr().add(t * cout + c), stride);
                let mut best = _mm512_max_ps(_mm512_add_ps(y[0], b), zero);
                let mut which = _mm512_setzero_si512();
                for (n, &candidate) in y.iter().enumerate().skip(1) {
                    let value = _mm512_max_ps(_mm512_add_ps(candidate, b), zero);
                    let better = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(value, best);
                    best = _mm512_mask_blend_ps(better, best, value);
                    which = _mm512_mask_blend_epi32(better, which, _mm512_set1_epi32(n as i32));
                }
                let at = (ty * tiles + t) * cout + c;
                _mm512_storeu_ps(pooled.as_mut_ptr().add(at), best);
                _mm_storeu_si128(
                    winners.as_mut_ptr().add(at).cast(),
                    _mm512_cvtepi32_epi8(which),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::direct;
    use super::*;
    use crate::fused::test_values as values;

    /// Shapes covering every block of tiles (7, 4, 2, 1) and input channels (12, 8, 4), and
    /// two blocks of output channels.
    fn shapes() -> Vec<Shape> {
        let mut shapes = Vec::new();
        for (height, width) in [(2, 2), (4, 6), (6, 16), (2, 28), (28, 28)] {
            for (cin, cout) in [(16, 32), (32, 64)] {
                shapes.push(Shape {
                    height,
                    width,
                    cin,
                    cout,
                });
            }
        }
        shapes
    }

    fn direct_shape(shape: &Shape) -> direct::Shape {
        direct::Shape {
            height: shape.height,
            width: shape.width,
            cin: shape.cin,
            cout: shape.cout,
            kernel: 3,
        }
    }

    /// A random input with its zero border, and random tap-major weights.
    fn operands(shape: &Shape, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let input = values(shape.height * shape.width * shape.cin, seed);
        let mut padded = vec![f32::NAN; shape.padded_len()];
        direct::pad(&input, shape.height, shape.width, shape.cin, 1, &mut padded);
        (padded, values(TAPS * shape.cin * shape.cout, seed + 1))
    }

    /// Within 1e-5 relative to the largest expected value: the sums cancel (random signs), so
    /// a small result carries the rounding of its large terms.
    fn assert_close(shape: &Shape, what: &str, a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-5 * (1.0 + scale),
                "{shape:?} {what}: {x} vs {y}"
            );
        }
    }

    #[test]
    fn weight_transforms_match_their_definitions() {
        // On unit kernels and unit transformed gradients, against `G g Gᵀ` and `Gᵀ dU G`.
        for tap in 0..TAPS {
            let mut g = vec![0.0f32; TAPS];
            g[tap] = 1.0;
            let u = transform_weights(&g, 1, 1);
            for i in 0..4 {
                for j in 0..4 {
                    assert_eq!(u[i * 4 + j], G[i][tap / 3] * G[j][tap % 3]);
                }
            }
        }
        for pos in 0..POSITIONS {
            let mut du = vec![0.0f32; POSITIONS];
            du[pos] = 1.0;
            let back = taps_from_transformed(&du, 1, 1);
            for (tap, value) in back.iter().enumerate() {
                assert_eq!(*value, G[pos / 4][tap / 3] * G[pos % 4][tap % 3]);
            }
        }
    }

    #[test]
    fn conv_matches_direct() {
        if !available(16, 32) || !direct::available(16, 32) {
            eprintln!("SKIPPED: no AVX-512F on this CPU");
            return;
        }
        for shape in shapes() {
            let (padded, weights) = operands(&shape, 1);
            let mut expected = vec![0.0; shape.height * shape.width * shape.cout];
            direct::conv(&direct_shape(&shape), &padded, &weights, &mut expected);
            let transformed = transform_weights(&weights, shape.cin, shape.cout);
            let mut workspace = Workspace::new(shape.width, shape.cin.max(shape.cout));
            let mut out = vec![f32::NAN; expected.len()];
            conv(&shape, &padded, &transformed, &mut workspace, &mut out);
            assert_close(&shape, "conv", &out, &expected);
        }
    }

    #[test]
    fn pooling_matches_direct() {
        if !available(16, 32) || !direct::available(16, 32) {
            eprintln!("SKIPPED: no AVX-512F on this CPU");
            return;
        }
        for shape in shapes() {
            let (padded, weights) = operands(&shape, 3);
            let bias = values(shape.cout, 5);
            let n = shape.height / 2 * shape.width / 2 * shape.cout;
            let (mut expected, mut expected_winners) = (vec![0.0; n], vec![0u8; n]);
            direct::conv_bias_relu_pool(
                &direct_shape(&shape),
                &padded,
                &weights,
                &bias,
                &mut expected,
                &mut expected_winners,
            );
            let transformed = transform_weights(&weights, shape.cin, shape.cout);
            let mut workspace = Workspace::new(shape.width, shape.cin.max(shape.cout));
            let (mut pooled, mut winners) = (vec![f32::NAN; n], vec![9u8; n]);
            conv_bias_relu_pool(
                &shape,
                &padded,
                &transformed,
                &bias,
                &mut workspace,
                &mut pooled,
                &mut winners,
            );
            assert_close(&shape, "pooled", &pooled, &expected);
            // Winners agree but where two candidates are equal to rounding (ties at zero
            // after ReLU go to the first in both).
            let mut differing = 0;
            for (a, b) in winners.iter().zip(&expected_winners) {
                assert!(*a < 4);
                differing += usize::from(a != b);
            }
            assert!(
                differing * 1000 <= n,
                "{shape:?}: {differing} of {n} winners differ"
            );
        }
    }

    #[test]
    fn weight_grad_matches_direct() {
        if !available(16, 32) || !direct::available(16, 32) {
            eprintln!("SKIPPED: no AVX-512F on this CPU");
            return;
        }
        for shape in shapes() {
            let (padded, _) = operands(&shape, 6);
            let grad = values(shape.height * shape.width * shape.cout, 8);
            let mut padded_grad =
                vec![f32::NAN; (shape.height + 2) * (shape.width + 2) * shape.cout];
            direct::pad(
                &grad,
                shape.height,
                shape.width,
                shape.cout,
                1,
                &mut padded_grad,
            );
            let start = values(TAPS * shape.cin * shape.cout, 9);
            let mut expected = start.clone();
            direct::weight_grad(&direct_shape(&shape), &padded, &padded_grad, &mut expected);
            let mut transformed = vec![0.0; shape.transformed_len()];
            let mut workspace = Workspace::new(shape.width, shape.cin.max(shape.cout));
            weight_grad(
                &shape,
                &padded,
                &padded_grad,
                &mut workspace,
                &mut transformed,
            );
            let sum = taps_from_transformed(&transformed, shape.cin, shape.cout);
            let got: Vec<f32> = start.iter().zip(&sum).map(|(a, b)| a + b).collect();
            assert_close(&shape, "weight gradient", &got, &expected);
        }
    }
}
