//! Winograd F(4x4, 3x3) convolutions of channels-last maps with AVX-512 or AVX2: 36
//! multiplications per 4x4 output tile and channel pair instead of 144.
//!
//! A 6x6 patch `d` of the zero-bordered input becomes `V = Bᵀ d B`, a 3x3 kernel `g` becomes
//! `U = G g Gᵀ`, and the tile's outputs are `Aᵀ (Σ_in U ⊙ V) A` (Lavin and Gray's matrices,
//! interpolation points 0, ±1, ±2). The sum over input channels is 36 small matrix products per
//! strip of tiles (one row of tiles: for the study's 28x28x32 maps, 32 KB of `V` and as much of
//! products, which stay in the core's cache), register-blocked like the direct kernels (up to
//! seven tiles by 32 output channels in 14 registers with AVX-512, six tiles by 16 in 12 with
//! AVX2). A 4x4 output tile is four whole 2x2 pooling windows, so
//! [`conv_bias_relu_pool`] pools as it untransforms. [`weight_grad`] sums `V ⊙ (A dY Aᵀ)` over
//! an image's tiles in the transformed domain; [`taps_from_transformed`] brings the sum back to
//! the kernel's taps (`Gᵀ dU G`).
//!
//! The results equal a direct convolution's to float rounding; the transforms scale a tile's
//! values by up to 100 and 1/576, so the rounding follows the tile's largest values (tests hold
//! the results to 1e-5 of the largest output). Used where the CPU has
//! AVX-512F or AVX2 with FMA ([`Isa`]), the kernel is 3x3, the map's sides are multiples of 4,
//! the input channels a multiple of 16 and the output channels of 32 ([`available`]).

use crate::simd::Isa;
#[cfg(target_arch = "x86_64")]
use crate::simd::{Lanes, add_rows, dispatch, pool_window};

/// What the output channel count must be a multiple of: one block of products with AVX-512
/// (two registers), two with AVX2 (two pairs).
const BLOCK_CHANNELS: usize = 32;
/// Output rows and columns of a tile.
const TILE: usize = 4;
/// Rows and columns of a transformed tile.
const ALPHA: usize = TILE + 2;
/// Positions of a transformed tile.
const POSITIONS: usize = ALPHA * ALPHA;
/// Taps of the 3x3 kernel.
const TAPS: usize = 9;

/// `Bᵀ`: the input patch's transform (as [`input_1d`] computes it).
#[cfg(test)]
const BT: [[f32; ALPHA]; ALPHA] = [
    [4.0, 0.0, -5.0, 0.0, 1.0, 0.0],
    [0.0, -4.0, -4.0, 1.0, 1.0, 0.0],
    [0.0, 4.0, -4.0, -1.0, 1.0, 0.0],
    [0.0, -2.0, -1.0, 2.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 4.0, 0.0, -5.0, 0.0, 1.0],
];
/// `G`: the kernel's transform.
const G: [[f32; 3]; ALPHA] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];
/// `Aᵀ`: back from the transformed domain to the tile's outputs (as [`output_1d`] computes it).
#[cfg(test)]
const AT: [[f32; ALPHA]; TILE] = [
    [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, -2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 4.0, 0.0],
    [0.0, 1.0, -1.0, 8.0, -8.0, 1.0],
];
/// `A` (`Aᵀ` transposed): the output gradient's transform (as [`grad_1d`] computes it).
#[cfg(test)]
const A: [[f32; TILE]; ALPHA] = [
    [1.0, 0.0, 0.0, 0.0],
    [1.0, 1.0, 1.0, 1.0],
    [1.0, -1.0, 1.0, -1.0],
    [1.0, 2.0, 4.0, 8.0],
    [1.0, -2.0, 4.0, -8.0],
    [0.0, 0.0, 0.0, 1.0],
];

/// Shapes of one 3x3 "same" convolution: a zero-bordered channels-last input `[height + 2,
/// width + 2, cin]`, output `[height, width, cout]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Output rows (a multiple of 4).
    pub height: usize,
    /// Output columns (a multiple of 4).
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
    /// Values in the transformed weights `[36, cin, cout]`.
    pub fn transformed_len(&self) -> usize {
        POSITIONS * self.cin * self.cout
    }
    fn tiles_per_row(&self) -> usize {
        self.width / TILE
    }
    fn tile_rows(&self) -> usize {
        self.height / TILE
    }
    fn check(
        &self,
        isa: Isa,
        padded: &[f32],
        transformed: &[f32],
        workspace: &Workspace,
        rows: usize,
    ) {
        assert!(isa.available(), "no {isa:?} on this CPU");
        assert!(
            fits(self.height, self.width, self.cin, self.cout)
                && padded.len() >= self.padded_len()
                && transformed.len() >= self.transformed_len()
                && workspace.fits(self, rows),
            "Winograd convolution operands do not match {self:?}"
        );
    }
}

/// Whether this CPU runs these kernels (with some [`Isa`]) for maps of these sides and channel
/// counts.
pub fn available(height: usize, width: usize, cin: usize, cout: usize) -> bool {
    fits(height, width, cin, cout) && Isa::best().is_some()
}

/// Whether the kernels handle maps of these sides and channel counts.
fn fits(height: usize, width: usize, cin: usize, cout: usize) -> bool {
    height > 0
        && width > 0
        && height.is_multiple_of(TILE)
        && width.is_multiple_of(TILE)
        && cin > 0
        && cin.is_multiple_of(16)
        && cout > 0
        && cout.is_multiple_of(BLOCK_CHANNELS)
}

/// Transformed inputs and products (or output gradients) of up to a whole map, reused from
/// call to call.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    /// Transformed input `[36, tiles, cin]`.
    input: Vec<f32>,
    /// Products, or the transformed output gradient, `[36, tiles, cout]`.
    products: Vec<f32>,
}

impl Workspace {
    /// A workspace for maps of `height` x `width` with up to `channels` channels in or out.
    pub fn new(height: usize, width: usize, channels: usize) -> Self {
        let len = POSITIONS * (height / TILE) * (width / TILE) * channels;
        Workspace {
            input: vec![0.0; len],
            products: vec![0.0; len],
        }
    }
    /// Whether strips of `rows` tile rows fit.
    fn fits(&self, shape: &Shape, rows: usize) -> bool {
        let tiles = rows * shape.tiles_per_row();
        self.input.len() >= POSITIONS * tiles * shape.cin
            && self.products.len() >= POSITIONS * tiles * shape.cout
    }
}

/// Transformed weights `U [36, cin, cout]` (`G g Gᵀ` per channel pair) of weights `[9, cin,
/// cout]` (tap-major rows, as the direct kernels read them).
pub fn transform_weights(taps: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let pair = cin * cout;
    assert!(
        taps.len() >= TAPS * pair,
        "weights shorter than [9, cin, cout]"
    );
    let mut out = vec![0.0f32; POSITIONS * pair];
    // One pass per (position, tap) over all channel pairs: contiguous, vectorised.
    for (i, gi) in G.iter().enumerate() {
        for (j, gj) in G.iter().enumerate() {
            let u = &mut out[(i * ALPHA + j) * pair..][..pair];
            for (tap, g) in taps.chunks_exact(pair).take(TAPS).enumerate() {
                let c = gi[tap / 3] * gj[tap % 3];
                if c != 0.0 {
                    u.iter_mut().zip(g).for_each(|(u, &g)| *u += c * g);
                }
            }
        }
    }
    out
}

/// The weights' gradient `[9, cin, cout]` (`Gᵀ dU G`) of its transformed-domain sum `dU [36,
/// cin, cout]`, as [`weight_grad`] accumulates it.
pub fn taps_from_transformed(transformed: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let pair = cin * cout;
    assert!(transformed.len() >= POSITIONS * pair);
    let mut out = vec![0.0f32; TAPS * pair];
    for (tap, w) in out.chunks_exact_mut(pair).enumerate() {
        for (pos, du) in transformed.chunks_exact(pair).take(POSITIONS).enumerate() {
            let c = G[pos / ALPHA][tap / 3] * G[pos % ALPHA][tap % 3];
            if c != 0.0 {
                w.iter_mut().zip(du).for_each(|(w, &du)| *w += c * du);
            }
        }
    }
    out
}

/// `out [height, width, cout] = conv(padded, weights)`, no bias, from the transformed weights
/// ([`transform_weights`]), with `isa`'s instructions. The workspace needs one tile row.
///
/// Panics when the slices are smaller than `shape` says, the shape does not fit the kernels
/// ([`available`]) or the CPU lacks `isa`.
pub fn conv(
    isa: Isa,
    shape: &Shape,
    padded: &[f32],
    transformed: &[f32],
    workspace: &mut Workspace,
    out: &mut [f32],
) {
    shape.check(isa, padded, transformed, workspace, 1);
    assert!(out.len() >= shape.height * shape.width * shape.cout);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has `isa` and every operand fits the shape (checked above).
    unsafe {
        let mut epilogue = Epilogue::Store(out);
        strips_for(isa, shape, padded, transformed, workspace, &mut epilogue);
    }
}

/// What happens to a strip's products once untransformed.
#[cfg(target_arch = "x86_64")]
enum Epilogue<'a> {
    /// Stored as they are into the output map.
    Store(&'a mut [f32]),
    /// Biased, through ReLU and max-pooled, with the windows' winners.
    Pool {
        bias: &'a [f32],
        pooled: &'a mut [f32],
        winners: &'a mut [u8],
    },
}

#[cfg(target_arch = "x86_64")]
dispatch! {
    /// [`strips`] compiled for `isa`.
    fn strips_for =>
    /// [`conv`]'s or [`conv_bias_relu_pool`]'s work, strip by strip.
    ///
    /// # Safety
    ///
    /// The CPU must have `V`'s instruction set and the operands must fit the shape.
    unsafe fn strips<V: Lanes>(
        shape: &Shape,
        padded: &[f32],
        transformed: &[f32],
        workspace: &mut Workspace,
        epilogue: &mut Epilogue<'_>,
    ) {
        for ty in 0..shape.tile_rows() {
            // SAFETY: passed on from the caller.
            unsafe {
                strip_products::<V>(shape, padded, transformed, workspace, ty);
                let products = &workspace.products;
                match epilogue {
                    Epilogue::Store(out) => store_strip::<V>(shape, products, ty, out),
                    Epilogue::Pool {
                        bias,
                        pooled,
                        winners,
                    } => pool_strip::<V>(shape, products, bias, ty, pooled, winners),
                }
            }
        }
    }
}

/// `pooled [height/2 * width/2, cout] = maxpool2x2(relu(conv(padded, weights) + bias))`, and
/// per pooled value the window's winner (0..4, row-major, first on ties) in `winners`, with
/// `isa`'s instructions. The workspace needs one tile row.
///
/// Panics as [`conv`] does.
#[allow(clippy::too_many_arguments)]
pub fn conv_bias_relu_pool(
    isa: Isa,
    shape: &Shape,
    padded: &[f32],
    transformed: &[f32],
    bias: &[f32],
    workspace: &mut Workspace,
    pooled: &mut [f32],
    winners: &mut [u8],
) {
    shape.check(isa, padded, transformed, workspace, 1);
    let pooled_len = shape.height / 2 * shape.width / 2 * shape.cout;
    assert!(bias.len() >= shape.cout && pooled.len() >= pooled_len && winners.len() >= pooled_len);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `conv`; pooled writes stay inside `pooled_len` values.
    unsafe {
        let mut epilogue = Epilogue::Pool {
            bias,
            pooled,
            winners,
        };
        strips_for(isa, shape, padded, transformed, workspace, &mut epilogue);
    }
}

/// Adds to `transformed_grad [36, cin, cout]` the weights' gradient in the transformed domain:
/// the sum over tiles of `V ⊙ (A dY Aᵀ)`, where `padded_grad` is the output's gradient `dY`
/// with a zero border of one (`[height + 2, width + 2, cout]`), with `isa`'s instructions.
/// [`taps_from_transformed`] gives the gradient of the weights themselves. The workspace needs
/// the whole map.
///
/// Panics as [`conv`] does.
pub fn weight_grad(
    isa: Isa,
    shape: &Shape,
    padded: &[f32],
    padded_grad: &[f32],
    workspace: &mut Workspace,
    transformed_grad: &mut [f32],
) {
    let rows = shape.tile_rows();
    shape.check(isa, padded, transformed_grad, workspace, rows);
    let grad_len = shape.padded_width() * (shape.height + 2) * shape.cout;
    assert!(padded_grad.len() >= grad_len);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `conv`; the gradient's tiles lie inside `padded_grad` (checked above).
    unsafe {
        weight_grad_for(isa, shape, padded, padded_grad, workspace, transformed_grad)
    }
}

#[cfg(target_arch = "x86_64")]
dispatch! {
    /// [`weight_grad_sums`] compiled for `isa`.
    fn weight_grad_for =>
    /// [`weight_grad`]'s work: every tile's transforms, then per position the sums over tiles.
    ///
    /// # Safety
    ///
    /// As [`strips`]; the workspace holds the whole map.
    unsafe fn weight_grad_sums<V: Lanes>(
        shape: &Shape,
        padded: &[f32],
        padded_grad: &[f32],
        workspace: &mut Workspace,
        transformed_grad: &mut [f32],
    ) {
        let rows = shape.tile_rows();
        let tiles = rows * shape.tiles_per_row();
        // SAFETY: the caller checked the shapes: every offset below stays inside the workspace's
        // buffers (`Workspace::fits`) and `transformed_grad`.
        unsafe {
            for ty in 0..rows {
                let t0 = ty * shape.tiles_per_row();
                transform_input_row::<V>(shape, padded, &mut workspace.input, ty, t0, tiles);
                transform_grad_row::<V>(shape, padded_grad, &mut workspace.products, ty, t0, tiles);
            }
            for pos in 0..POSITIONS {
                let v = workspace.input.as_ptr().add(pos * tiles * shape.cin);
                let gy = workspace.products.as_ptr().add(pos * tiles * shape.cout);
                let du = transformed_grad
                    .as_mut_ptr()
                    .add(pos * shape.cin * shape.cout);
                for c in (0..shape.cout).step_by(V::BLOCK_CHANNELS) {
                    let mut ci = 0;
                    while ci < shape.cin {
                        let at = (v.add(ci), gy.add(c));
                        let du = du.add(ci * shape.cout + c);
                        let rest = shape.cin - ci;
                        // 24 accumulators with AVX-512 (12 channels by 32), 12 with AVX2 (6 by 16).
                        ci += if V::WIDE {
                            match rest {
                                12.. => weight_products::<V, 12, 2>(shape, tiles, at, du),
                                8..12 => weight_products::<V, 8, 2>(shape, tiles, at, du),
                                _ => weight_products::<V, 4, 2>(shape, tiles, at, du),
                            }
                        } else {
                            match rest {
                                4 | 5 | 8 => weight_products::<V, 4, 1>(shape, tiles, at, du),
                                6.. => weight_products::<V, 6, 1>(shape, tiles, at, du),
                                2 | 3 => weight_products::<V, 2, 1>(shape, tiles, at, du),
                                _ => weight_products::<V, 1, 1>(shape, tiles, at, du),
                            }
                        };
                    }
                }
            }
        }
    }
}

/// A one-dimensional transform of `N` vectors into `M` (one column or row of a tile), applied
/// to columns and then rows by [`sandwich`].
#[cfg(target_arch = "x86_64")]
trait Transform<const N: usize, const M: usize> {
    /// The transform of `x`.
    ///
    /// # Safety
    ///
    /// The CPU must have `V`'s instruction set.
    unsafe fn apply<V: Lanes>(x: &[V; N]) -> [V; M];
}

/// `Bᵀ x`: the input patch's transform.
#[cfg(target_arch = "x86_64")]
struct InputTransform;

#[cfg(target_arch = "x86_64")]
impl Transform<ALPHA, ALPHA> for InputTransform {
    #[inline(always)]
    unsafe fn apply<V: Lanes>(x: &[V; ALPHA]) -> [V; ALPHA] {
        let [d0, d1, d2, d3, d4, d5] = *x;
        // SAFETY: the caller guarantees the instruction set.
        let (two, four, five) = unsafe { (V::splat(2.0), V::splat(4.0), V::splat(5.0)) };
        let (four_apart, two_apart) = (four.neg_mul_add(d2, d4), four.neg_mul_add(d1, d3));
        let (near, far) = (d4.sub(d2), two.mul(d3.sub(d1)));
        [
            four.mul_add(d0, five.neg_mul_add(d2, d4)),
            four_apart.add(two_apart),
            four_apart.sub(two_apart),
            near.add(far),
            near.sub(far),
            four.mul_add(d1, five.neg_mul_add(d3, d5)),
        ]
    }
}

/// `Aᵀ x`: back from the transformed domain to a tile's outputs.
#[cfg(target_arch = "x86_64")]
struct OutputTransform;

#[cfg(target_arch = "x86_64")]
impl Transform<ALPHA, TILE> for OutputTransform {
    #[inline(always)]
    unsafe fn apply<V: Lanes>(x: &[V; ALPHA]) -> [V; TILE] {
        let [m0, m1, m2, m3, m4, m5] = *x;
        // SAFETY: the caller guarantees the instruction set.
        let (two, four, eight) = unsafe { (V::splat(2.0), V::splat(4.0), V::splat(8.0)) };
        let (sum12, diff12) = (m1.add(m2), m1.sub(m2));
        let (sum34, diff34) = (m3.add(m4), m3.sub(m4));
        [
            m0.add(sum12).add(sum34),
            two.mul_add(diff34, diff12),
            four.mul_add(sum34, sum12),
            eight.mul_add(diff34, diff12).add(m5),
        ]
    }
}

/// `A x`: the output gradient's transform.
#[cfg(target_arch = "x86_64")]
struct GradTransform;

#[cfg(target_arch = "x86_64")]
impl Transform<TILE, ALPHA> for GradTransform {
    #[inline(always)]
    unsafe fn apply<V: Lanes>(x: &[V; TILE]) -> [V; ALPHA] {
        let [g0, g1, g2, g3] = *x;
        // SAFETY: the caller guarantees the instruction set.
        let (two, four) = unsafe { (V::splat(2.0), V::splat(4.0)) };
        let (even, odd) = (g0.add(g2), g1.add(g3));
        let even4 = four.mul_add(g2, g0);
        let odd8 = two.mul(four.mul_add(g3, g1));
        [
            g0,
            even.add(odd),
            even.sub(odd),
            even4.add(odd8),
            even4.sub(odd8),
            g3,
        ]
    }
}

/// `m x mᵀ` of the `N x N` tile `x`, where `T` computes `m v` of one column or row: columns,
/// then rows.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn sandwich<V: Lanes, T: Transform<N, M>, const N: usize, const M: usize>(
    x: &[[V; N]; N],
) -> [[V; M]; M] {
    // SAFETY: the caller guarantees the instruction set.
    let zero = unsafe { V::zero() };
    // Columns: (m x)[i][j] for every column j.
    let mut left = [[zero; N]; M];
    for j in 0..N {
        let mut column = [zero; N];
        for (c, row) in column.iter_mut().zip(x) {
            *c = row[j];
        }
        // SAFETY: as above.
        let transformed = unsafe { T::apply(&column) };
        for (i, value) in transformed.into_iter().enumerate() {
            left[i][j] = value;
        }
    }
    let mut out = [[zero; M]; M];
    for (o, row) in out.iter_mut().zip(&left) {
        // SAFETY: as above.
        *o = unsafe { T::apply(row) };
    }
    out
}

/// Transforms the input tiles of tile row `ty` and multiplies them by the transformed weights:
/// `products [36, tiles, cout]`.
///
/// # Safety
///
/// As [`strips`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn strip_products<V: Lanes>(
    shape: &Shape,
    padded: &[f32],
    transformed: &[f32],
    workspace: &mut Workspace,
    ty: usize,
) {
    let tiles = shape.tiles_per_row();
    // SAFETY: the caller checked the shapes: every offset below stays inside the workspace's
    // buffers (`Workspace::fits`) and the transformed weights.
    unsafe {
        transform_input_row::<V>(shape, padded, &mut workspace.input, ty, 0, tiles);
        for pos in 0..POSITIONS {
            let v = workspace.input.as_ptr().add(pos * tiles * shape.cin);
            let u = transformed.as_ptr().add(pos * shape.cin * shape.cout);
            let m = workspace
                .products
                .as_mut_ptr()
                .add(pos * tiles * shape.cout);
            for c in (0..shape.cout).step_by(V::BLOCK_CHANNELS) {
                let mut t = 0;
                while t < tiles {
                    let (v, u, m) = (v.add(t * shape.cin), u.add(c), m.add(t * shape.cout + c));
                    let rest = tiles - t;
                    // 14 accumulators with AVX-512 (7 tiles by 32 channels), up to 12 with
                    // AVX2 (6 tiles by 16; a row of 7 as 4 and 3).
                    t += if V::WIDE {
                        match rest {
                            7.. => products::<V, 7, 2>(shape, v, u, m),
                            4..7 => products::<V, 4, 2>(shape, v, u, m),
                            2..4 => products::<V, 2, 2>(shape, v, u, m),
                            _ => products::<V, 1, 2>(shape, v, u, m),
                        }
                    } else {
                        match rest {
                            7 | 4 | 5 => products::<V, 4, 1>(shape, v, u, m),
                            6.. => products::<V, 6, 1>(shape, v, u, m),
                            3 => products::<V, 3, 1>(shape, v, u, m),
                            2 => products::<V, 2, 1>(shape, v, u, m),
                            _ => products::<V, 1, 1>(shape, v, u, m),
                        }
                    };
                }
            }
        }
    }
}

/// The register-blocked product both transformed-domain sums use: `acc [r, 16 H] = Σ_k
/// a [r, k] b [k, 16 H]` over `depth` values of `k`, for `R` rows. `a [r, k]` is at
/// `a + r * a_row + k * a_depth`, `b [k, ..]` at `b + k * b_depth`.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set, and every value read must lie in its buffer.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn outer_sums<V: Lanes, const R: usize, const H: usize>(
    depth: usize,
    (a, a_row, a_depth): (*const f32, usize, usize),
    (b, b_depth): (*const f32, usize),
) -> [[V; H]; R] {
    // SAFETY: as the caller guarantees.
    unsafe {
        let mut acc = [[V::zero(); H]; R];
        let mut row = [V::zero(); H];
        for k in 0..depth {
            for (h, value) in row.iter_mut().enumerate() {
                *value = V::load(b.add(k * b_depth + 16 * h));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = V::splat(*a.add(r * a_row + k * a_depth));
                for (acc, &value) in acc.iter_mut().zip(&row) {
                    *acc = x.mul_add(value, *acc);
                }
            }
        }
        acc
    }
}

/// `m [t, 16 H] = Σ_ci v [t, ci] u [ci, 16 H]` for `T` tiles (one position, one block of
/// `16 H` channels). Returns `T`.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set; the pointers must hold `T` tiles of `cin` values,
/// `cin` weight rows of `cout` values from the block's channel, and `T` product rows.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn products<V: Lanes, const T: usize, const H: usize>(
    shape: &Shape,
    v: *const f32,
    u: *const f32,
    m: *mut f32,
) -> usize {
    let (cin, cout) = (shape.cin, shape.cout);
    // SAFETY: as the caller guarantees.
    unsafe {
        let acc = outer_sums::<V, T, H>(cin, (v, cin, 1), (u, cout));
        for (t, a) in acc.iter().enumerate() {
            for (h, a) in a.iter().enumerate() {
                a.store(m.add(t * cout + 16 * h));
            }
        }
    }
    T
}

/// `du [i, 16 H] += Σ_tiles v [tile, i] gy [tile, 16 H]` for `I` input channels (one
/// position, one block of `16 H` channels). Returns `I`.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set; the pointers must hold `tiles` rows of the
/// transformed input (from input channel `ci`, `I` of them) and gradient (from the block's
/// channel), and `I` rows of `du`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn weight_products<V: Lanes, const I: usize, const H: usize>(
    shape: &Shape,
    tiles: usize,
    (v, gy): (*const f32, *const f32),
    du: *mut f32,
) -> usize {
    let (cin, cout) = (shape.cin, shape.cout);
    // SAFETY: as the caller guarantees.
    unsafe {
        let acc = outer_sums::<V, I, H>(tiles, (v, 1, cin), (gy, cout));
        add_rows(&acc, du, cout);
    }
    I
}

/// `V = Bᵀ d B` of every 6x6 input patch of tile row `ty`, 16 channels at a time, as tiles
/// `t0..` of `input [36, tiles, cin]`.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set; the row's patches (padded rows `4ty..4ty + 6`,
/// every column) must lie inside `padded`, and `input` hold `36 * tiles * cin` values.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn transform_input_row<V: Lanes>(
    shape: &Shape,
    padded: &[f32],
    input: &mut [f32],
    ty: usize,
    t0: usize,
    tiles: usize,
) {
    let cin = shape.cin;
    let row = shape.padded_width() * cin;
    // SAFETY: as the caller guarantees.
    unsafe {
        let src = padded.as_ptr().add(TILE * ty * row);
        let at = TileRow {
            shape,
            src,
            row,
            channels: cin,
            dst: input.as_mut_ptr(),
            t0,
            tiles,
        };
        transform_row::<V, InputTransform, ALPHA>(at);
    }
}

/// `A dY Aᵀ` of every 4x4 output-gradient tile of tile row `ty`, as tiles `t0..` of `out [36,
/// tiles, cout]`.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set; the row's gradient tiles (padded rows `4ty + 1 ..
/// 4ty + 5`) must lie inside `padded_grad`, and `out` hold `36 * tiles * cout` values.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn transform_grad_row<V: Lanes>(
    shape: &Shape,
    padded_grad: &[f32],
    out: &mut [f32],
    ty: usize,
    t0: usize,
    tiles: usize,
) {
    let cout = shape.cout;
    let row = shape.padded_width() * cout;
    // SAFETY: as the caller guarantees.
    unsafe {
        let src = padded_grad.as_ptr().add((TILE * ty + 1) * row + cout);
        let at = TileRow {
            shape,
            src,
            row,
            channels: cout,
            dst: out.as_mut_ptr(),
            t0,
            tiles,
        };
        transform_row::<V, GradTransform, TILE>(at);
    }
}

/// Where a row of tiles is read and its transforms written.
#[derive(Clone, Copy)]
struct TileRow<'a> {
    shape: &'a Shape,
    /// The row's first tile's first value.
    src: *const f32,
    /// Values per map row.
    row: usize,
    /// Values per pixel.
    channels: usize,
    /// The transformed tiles, `[36, tiles, channels]`.
    dst: *mut f32,
    /// The row's first tile's index in `dst`.
    t0: usize,
    /// Tiles in `dst`.
    tiles: usize,
}

/// Transforms every `N x N` tile of a row (tiles `TILE` pixels apart), 16 channels at a time:
/// `T` applied to its columns, then to its rows, into 36 positions.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set; the row's tiles (`N` rows of `row` values from
/// `src`, `N` pixels each, TILE pixels apart) must lie inside their map, and `dst` hold
/// `36 * tiles * channels` values.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn transform_row<V: Lanes, T: Transform<N, ALPHA>, const N: usize>(at: TileRow<'_>) {
    let TileRow {
        shape,
        src,
        row,
        channels,
        dst,
        t0,
        tiles,
    } = at;
    // SAFETY: as the caller guarantees.
    unsafe {
        let mut x = [[V::zero(); N]; N];
        for tx in 0..shape.tiles_per_row() {
            for c in (0..channels).step_by(16) {
                let tile = src.add(TILE * tx * channels + c);
                for (i, values) in x.iter_mut().enumerate() {
                    for (j, value) in values.iter_mut().enumerate() {
                        *value = V::load(tile.add(i * row + j * channels));
                    }
                }
                for (i, values) in sandwich::<V, T, N, ALPHA>(&x).iter().enumerate() {
                    for (j, &value) in values.iter().enumerate() {
                        let pos = i * ALPHA + j;
                        value.store(dst.add((pos * tiles + t0 + tx) * channels + c));
                    }
                }
            }
        }
    }
}

/// The 4x4 outputs `Aᵀ m A` of the tile whose 36 products (16 channels) start at `m`, `stride`
/// values apart.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set; `m` must hold the 36 products.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn untransform<V: Lanes>(m: *const f32, stride: usize) -> [[V; TILE]; TILE] {
    // SAFETY: as the caller guarantees.
    unsafe {
        let mut products = [[V::zero(); ALPHA]; ALPHA];
        for (i, values) in products.iter_mut().enumerate() {
            for (j, value) in values.iter_mut().enumerate() {
                *value = V::load(m.add((i * ALPHA + j) * stride));
            }
        }
        sandwich::<V, OutputTransform, ALPHA, TILE>(&products)
    }
}

/// Untransforms tile row `ty`'s products into `out [height, width, cout]`.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set; the strip's four output rows must lie inside
/// `out`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn store_strip<V: Lanes>(shape: &Shape, products: &[f32], ty: usize, out: &mut [f32]) {
    let (cout, tiles) = (shape.cout, shape.tiles_per_row());
    let stride = tiles * cout;
    // SAFETY: as the caller guarantees.
    unsafe {
        let out = out.as_mut_ptr();
        for t in 0..tiles {
            for c in (0..cout).step_by(16) {
                let y = untransform::<V>(products.as_ptr().add(t * cout + c), stride);
                for (a, values) in y.iter().enumerate() {
                    for (b, &value) in values.iter().enumerate() {
                        let pixel = (TILE * ty + a) * shape.width + TILE * t + b;
                        value.store(out.add(pixel * cout + c));
                    }
                }
            }
        }
    }
}

/// Untransforms tile row `ty`'s products, adds the bias, applies ReLU and keeps each 2x2
/// window's maximum and winner.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set; the strip's pooled values must lie inside
/// `pooled` and `winners`, the bias inside `bias`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn pool_strip<V: Lanes>(
    shape: &Shape,
    products: &[f32],
    bias: &[f32],
    ty: usize,
    pooled: &mut [f32],
    winners: &mut [u8],
) {
    let (cout, tiles) = (shape.cout, shape.tiles_per_row());
    let (stride, pooled_width) = (tiles * cout, shape.width / 2);
    // SAFETY: as the caller guarantees.
    unsafe {
        for c in (0..cout).step_by(16) {
            let b = V::load(bias.as_ptr().add(c));
            for t in 0..tiles {
                let y = untransform::<V>(products.as_ptr().add(t * cout + c), stride);
                for (wy, wx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let window = [
                        y[2 * wy][2 * wx],
                        y[2 * wy][2 * wx + 1],
                        y[2 * wy + 1][2 * wx],
                        y[2 * wy + 1][2 * wx + 1],
                    ];
                    let (best, which) = pool_window(window, b);
                    let (py, px) = (2 * ty + wy, 2 * t + wx);
                    let at = (py * pooled_width + px) * cout + c;
                    best.store(pooled.as_mut_ptr().add(at));
                    which.store_bytes(winners.as_mut_ptr().add(at));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direct;
    use crate::{assert_close_to_largest, test_values as values, with_each_isa};

    /// Shapes covering every block of tiles (AVX-512: 7, 4, 2, 1; AVX2: 6, 4, 3, 2, 1) and
    /// input channels (12, 8, 4; 6, 4), and two blocks of output channels.
    fn shapes() -> Vec<Shape> {
        let mut shapes = Vec::new();
        for (height, width) in [(4, 4), (4, 8), (8, 12), (8, 20), (4, 28), (28, 28)] {
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

    #[test]
    fn weight_transforms_match_their_definitions() {
        // On unit kernels and unit transformed gradients, against `G g Gᵀ` and `Gᵀ dU G`.
        for tap in 0..TAPS {
            let mut g = vec![0.0f32; TAPS];
            g[tap] = 1.0;
            let u = transform_weights(&g, 1, 1);
            for i in 0..ALPHA {
                for j in 0..ALPHA {
                    assert_eq!(u[i * ALPHA + j], G[i][tap / 3] * G[j][tap % 3]);
                }
            }
        }
        for pos in 0..POSITIONS {
            let mut du = vec![0.0f32; POSITIONS];
            du[pos] = 1.0;
            let back = taps_from_transformed(&du, 1, 1);
            for (tap, value) in back.iter().enumerate() {
                assert_eq!(*value, G[pos / ALPHA][tap / 3] * G[pos % ALPHA][tap % 3]);
            }
        }
    }

    /// The vector transforms against their matrices, on values with distinct powers of two.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn one_dimensional_transforms_match_their_matrices() {
        use crate::simd::{Avx2, Avx512};

        fn check<V: Lanes, T: Transform<C, R>, const R: usize, const C: usize>(m: &[[f32; C]; R]) {
            let x: [f32; C] = std::array::from_fn(|i| (1u32 << (3 * i)) as f32 * 0.5);
            // SAFETY: the caller checked the instruction set.
            let y = unsafe { T::apply(&x.map(|v| V::splat(v))) };
            for (row, &value) in m.iter().zip(&y) {
                let expected: f32 = row.iter().zip(&x).map(|(a, b)| a * b).sum();
                let mut lanes = [0.0f32; 16];
                // SAFETY: as above; `lanes` holds 16 values.
                unsafe { value.store(lanes.as_mut_ptr()) };
                assert!(
                    lanes.iter().all(|&l| l == expected),
                    "{lanes:?} vs {expected}"
                );
            }
        }
        fn check_all<V: Lanes>() {
            check::<V, InputTransform, ALPHA, ALPHA>(&BT);
            check::<V, OutputTransform, TILE, ALPHA>(&AT);
            check::<V, GradTransform, ALPHA, TILE>(&A);
        }
        for isa in Isa::all() {
            match isa {
                Isa::Avx2 => check_all::<Avx2>(),
                Isa::Avx512 => check_all::<Avx512>(),
            }
        }
    }

    #[test]
    fn conv_matches_direct() {
        if !available(4, 4, 16, 32) {
            eprintln!("SKIPPED: neither AVX-512F nor AVX2 on this CPU");
            return;
        }
        for (isa, shape) in with_each_isa(&shapes()) {
            let (padded, weights) = operands(&shape, 1);
            let mut expected = vec![0.0; shape.height * shape.width * shape.cout];
            direct::conv(isa, &direct_shape(&shape), &padded, &weights, &mut expected);
            let transformed = transform_weights(&weights, shape.cin, shape.cout);
            let mut workspace =
                Workspace::new(shape.height, shape.width, shape.cin.max(shape.cout));
            let mut out = vec![f32::NAN; expected.len()];
            conv(isa, &shape, &padded, &transformed, &mut workspace, &mut out);
            assert_close_to_largest(&format!("{isa:?} {shape:?} conv"), &out, &expected);
        }
    }

    #[test]
    fn pooling_matches_direct() {
        if !available(4, 4, 16, 32) {
            eprintln!("SKIPPED: neither AVX-512F nor AVX2 on this CPU");
            return;
        }
        for (isa, shape) in with_each_isa(&shapes()) {
            let (padded, weights) = operands(&shape, 3);
            let bias = values(shape.cout, 5);
            let n = shape.height / 2 * shape.width / 2 * shape.cout;
            let (mut expected, mut expected_winners) = (vec![0.0; n], vec![0u8; n]);
            direct::conv_bias_relu_pool(
                isa,
                &direct_shape(&shape),
                &padded,
                &weights,
                &bias,
                &mut expected,
                &mut expected_winners,
            );
            let transformed = transform_weights(&weights, shape.cin, shape.cout);
            let mut workspace =
                Workspace::new(shape.height, shape.width, shape.cin.max(shape.cout));
            let (mut pooled, mut winners) = (vec![f32::NAN; n], vec![9u8; n]);
            conv_bias_relu_pool(
                isa,
                &shape,
                &padded,
                &transformed,
                &bias,
                &mut workspace,
                &mut pooled,
                &mut winners,
            );
            assert_close_to_largest(&format!("{isa:?} {shape:?} pooled"), &pooled, &expected);
            // Winners agree but where two candidates are equal to rounding (ties at zero
            // after ReLU go to the first in both).
            let mut differing = 0;
            for (a, b) in winners.iter().zip(&expected_winners) {
                assert!(*a < 4);
                differing += usize::from(a != b);
            }
            assert!(
                differing * 1000 <= n,
                "{isa:?} {shape:?}: {differing} of {n} winners differ"
            );
        }
    }

    #[test]
    fn weight_grad_matches_direct() {
        if !available(4, 4, 16, 32) {
            eprintln!("SKIPPED: neither AVX-512F nor AVX2 on this CPU");
            return;
        }
        for (isa, shape) in with_each_isa(&shapes()) {
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
            direct::weight_grad(
                isa,
                &direct_shape(&shape),
                &padded,
                &padded_grad,
                &mut expected,
            );
            let mut transformed = vec![0.0; shape.transformed_len()];
            let mut workspace =
                Workspace::new(shape.height, shape.width, shape.cin.max(shape.cout));
            weight_grad(
                isa,
                &shape,
                &padded,
                &padded_grad,
                &mut workspace,
                &mut transformed,
            );
            let sum = taps_from_transformed(&transformed, shape.cin, shape.cout);
            let got: Vec<f32> = start.iter().zip(&sum).map(|(a, b)| a + b).collect();
            assert_close_to_largest(
                &format!("{isa:?} {shape:?} weight gradient"),
                &got,
                &expected,
            );
        }
    }
}
