//! Winograd F(4x4, 3x3) convolutions of channels-last maps with AVX-512: 36 multiplications per
//! 4x4 output tile and channel pair instead of 144.
//!
//! A 6x6 patch `d` of the zero-bordered input becomes `V = Bᵀ d B`, a 3x3 kernel `g` becomes
//! `U = G g Gᵀ`, and the tile's outputs are `Aᵀ (Σ_in U ⊙ V) A` (Lavin and Gray's matrices,
//! interpolation points 0, ±1, ±2). The sum over input channels is 36 small matrix products per
//! strip of tiles (one row of tiles: for the study's 28x28x32 maps, 32 KB of `V` and as much of
//! products, which stay in the core's cache), register-blocked like the direct kernels (up to
//! seven tiles by 32 output channels in 14 registers). A 4x4 output tile is four whole 2x2 pooling windows, so
//! [`conv_bias_relu_pool`] pools as it untransforms. [`weight_grad`] sums `V ⊙ (A dY Aᵀ)` over
//! an image's tiles in the transformed domain; [`taps_from_transformed`] brings the sum back to
//! the kernel's taps (`Gᵀ dU G`).
//!
//! The results equal a direct convolution's to float rounding; the transforms scale a tile's
//! values by up to 100 and 1/576, so the rounding follows the tile's largest values (tests hold
//! the results to 1e-5 of the largest output; measured up to 5e-6). Used where the CPU has AVX-512F,
//! the kernel is 3x3, the map's sides are multiples of 4, the input channels a multiple of 16
//! and the output channels of 32 ([`available`]).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Output channels per block of products: two AVX-512 registers.
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
    fn check(&self, padded: &[f32], transformed: &[f32], workspace: &Workspace, rows: usize) {
        assert!(
            available(self.height, self.width, self.cin, self.cout)
                && padded.len() >= self.padded_len()
                && transformed.len() >= self.transformed_len()
                && workspace.fits(self, rows),
            "Winograd convolution operands do not match {self:?}"
        );
    }
}

/// Whether this CPU runs these kernels for maps of these sides and channel counts.
pub fn available(height: usize, width: usize, cin: usize, cout: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        height > 0
            && width > 0
            && height.is_multiple_of(TILE)
            && width.is_multiple_of(TILE)
            && cin > 0
            && cin.is_multiple_of(16)
            && cout > 0
            && cout.is_multiple_of(BLOCK_CHANNELS)
            && is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (height, width, cin, cout);
        false
    }
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
/// ([`transform_weights`]). The workspace needs one tile row.
///
/// Panics when the slices are smaller than `shape` says or [`available`] is false.
pub fn conv(
    shape: &Shape,
    padded: &[f32],
    transformed: &[f32],
    workspace: &mut Workspace,
    out: &mut [f32],
) {
    shape.check(padded, transformed, workspace, 1);
    assert!(out.len() >= shape.height * shape.width * shape.cout);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is present and every operand fits the shape (checked above).
    unsafe {
        for ty in 0..shape.tile_rows() {
            strip_products(shape, padded, transformed, workspace, ty);
            store_strip(shape, &workspace.products, ty, out);
        }
    }
}

/// `pooled [height/2 * width/2, cout] = maxpool2x2(relu(conv(padded, weights) + bias))`, and
/// per pooled value the window's winner (0..4, row-major, first on ties) in `winners`. The
/// workspace needs one tile row.
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
    shape.check(padded, transformed, workspace, 1);
    let pooled_len = shape.height / 2 * shape.width / 2 * shape.cout;
    assert!(bias.len() >= shape.cout && pooled.len() >= pooled_len && winners.len() >= pooled_len);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `conv`; pooled writes stay inside `pooled_len` values.
    unsafe {
        for ty in 0..shape.tile_rows() {
            strip_products(shape, padded, transformed, workspace, ty);
            pool_strip(shape, &workspace.products, bias, ty, pooled, winners);
        }
    }
}

/// Adds to `transformed_grad [36, cin, cout]` the weights' gradient in the transformed domain:
/// the sum over tiles of `V ⊙ (A dY Aᵀ)`, where `padded_grad` is the output's gradient `dY`
/// with a zero border of one (`[height + 2, width + 2, cout]`). [`taps_from_transformed`]
/// gives the gradient of the weights themselves. The workspace needs the whole map.
///
/// Panics when the slices are smaller than `shape` says or [`available`] is false.
pub fn weight_grad(
    shape: &Shape,
    padded: &[f32],
    padded_grad: &[f32],
    workspace: &mut Workspace,
    transformed_grad: &mut [f32],
) {
    let rows = shape.tile_rows();
    shape.check(padded, transformed_grad, workspace, rows);
    let grad_len = shape.padded_width() * (shape.height + 2) * shape.cout;
    assert!(padded_grad.len() >= grad_len);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `conv`; the gradient's tiles lie inside `padded_grad` (checked above).
    unsafe {
        let tiles = rows * shape.tiles_per_row();
        for ty in 0..rows {
            let t0 = ty * shape.tiles_per_row();
            transform_input_row(shape, padded, &mut workspace.input, ty, t0, tiles);
            transform_grad_row(shape, padded_grad, &mut workspace.products, ty, t0, tiles);
        }
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

/// `Bᵀ x` of six vectors (one column or row of an input patch).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn input_1d(x: &[__m512; ALPHA]) -> [__m512; ALPHA] {
    let [d0, d1, d2, d3, d4, d5] = *x;
    let c = _mm512_set1_ps;
    let (four_apart, two_apart) = (
        _mm512_fnmadd_ps(c(4.0), d2, d4),
        _mm512_fnmadd_ps(c(4.0), d1, d3),
    );
    let (near, far) = (
        _mm512_sub_ps(d4, d2),
        _mm512_mul_ps(c(2.0), _mm512_sub_ps(d3, d1)),
    );
    [
        _mm512_fmadd_ps(c(4.0), d0, _mm512_fnmadd_ps(c(5.0), d2, d4)),
        _mm512_add_ps(four_apart, two_apart),
        _mm512_sub_ps(four_apart, two_apart),
        _mm512_add_ps(near, far),
        _mm512_sub_ps(near, far),
        _mm512_fmadd_ps(c(4.0), d1, _mm512_fnmadd_ps(c(5.0), d3, d5)),
    ]
}

/// `Aᵀ x` of six vectors (one column or row of a tile's products).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn output_1d(x: &[__m512; ALPHA]) -> [__m512; TILE] {
    let [m0, m1, m2, m3, m4, m5] = *x;
    let c = _mm512_set1_ps;
    let (sum12, diff12) = (_mm512_add_ps(m1, m2), _mm512_sub_ps(m1, m2));
    let (sum34, diff34) = (_mm512_add_ps(m3, m4), _mm512_sub_ps(m3, m4));
    [
        _mm512_add_ps(_mm512_add_ps(m0, sum12), sum34),
        _mm512_fmadd_ps(c(2.0), diff34, diff12),
        _mm512_fmadd_ps(c(4.0), sum34, sum12),
        _mm512_add_ps(_mm512_fmadd_ps(c(8.0), diff34, diff12), m5),
    ]
}

/// `A x` of four vectors (one column or row of an output-gradient tile).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn grad_1d(x: &[__m512; TILE]) -> [__m512; ALPHA] {
    let [g0, g1, g2, g3] = *x;
    let c = _mm512_set1_ps;
    let (even, odd) = (_mm512_add_ps(g0, g2), _mm512_add_ps(g1, g3));
    let even4 = _mm512_fmadd_ps(c(4.0), g2, g0);
    let odd8 = _mm512_mul_ps(c(2.0), _mm512_fmadd_ps(c(4.0), g3, g1));
    [
        g0,
        _mm512_add_ps(even, odd),
        _mm512_sub_ps(even, odd),
        _mm512_add_ps(even4, odd8),
        _mm512_sub_ps(even4, odd8),
        g3,
    ]
}

/// `m x mᵀ` of the `C x C` tile `x` (16 channels per vector), where `one_d` computes `m v` of
/// one column or row: columns, then rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn sandwich<const R: usize, const C: usize>(
    one_d: impl Fn(&[__m512; C]) -> [__m512; R],
    x: &[[__m512; C]; C],
) -> [[__m512; R]; R] {
    let zero = _mm512_setzero_ps();
    // Columns: (m x)[i][j] for every column j.
    let mut left = [[zero; C]; R];
    for j in 0..C {
        let column: [__m512; C] = std::array::from_fn(|i| x[i][j]);
        for (i, value) in one_d(&column).into_iter().enumerate() {
            left[i][j] = value;
        }
    }
    let mut out = [[zero; R]; R];
    for (o, row) in out.iter_mut().zip(&left) {
        *o = one_d(row);
    }
    out
}

/// Transforms the input tiles of tile row `ty` and multiplies them by the transformed weights:
/// `products [36, tiles, cout]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn strip_products(
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
        transform_input_row(shape, padded, &mut workspace.input, ty, 0, tiles);
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
        super::direct::add_rows(&acc, du, cout);
    }
    I
}

/// `V = Bᵀ d B` of every 6x6 input patch of tile row `ty`, 16 channels at a time, as tiles
/// `t0..` of `input [36, tiles, cin]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transform_input_row(
    shape: &Shape,
    padded: &[f32],
    input: &mut [f32],
    ty: usize,
    t0: usize,
    tiles: usize,
) {
    let cin = shape.cin;
    let row = shape.padded_width() * cin;
    // SAFETY: the caller checked the shapes: the row's patches (padded rows `4ty..4ty + 6`,
    // every column) lie inside `padded`, and `input` holds `36 * tiles * cin` values.
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
        transform_row::<ALPHA>(at, |x| input_1d(x));
    }
}

/// `A dY Aᵀ` of every 4x4 output-gradient tile of tile row `ty`, as tiles `t0..` of `out [36,
/// tiles, cout]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transform_grad_row(
    shape: &Shape,
    padded_grad: &[f32],
    out: &mut [f32],
    ty: usize,
    t0: usize,
    tiles: usize,
) {
    let cout = shape.cout;
    let row = shape.padded_width() * cout;
    // SAFETY: the caller checked the shapes: the row's gradient tiles (padded rows `4ty + 1 ..
    // 4ty + 5`) lie inside `padded_grad`; `out` holds `36 * tiles * cout` values.
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
        transform_row::<TILE>(at, |x| grad_1d(x));
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
/// `one_d` applied to its columns, then to its rows, into 36 positions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn transform_row<const N: usize>(
    at: TileRow<'_>,
    one_d: impl Fn(&[__m512; N]) -> [__m512; ALPHA],
) {
    let TileRow {
        shape,
        src,
        row,
        channels,
        dst,
        t0,
        tiles,
    } = at;
    // SAFETY: the callers pass a row whose tiles (`N` rows of `row` values from `src`, `N`
    // pixels each, TILE pixels apart) lie inside their map, and `dst` holding `36 * tiles *
    // channels` values.
    unsafe {
        for tx in 0..shape.tiles_per_row() {
            for c in (0..channels).step_by(16) {
                let tile = src.add(TILE * tx * channels + c);
                let x: [[__m512; N]; N] = std::array::from_fn(|i| {
                    std::array::from_fn(|j| _mm512_loadu_ps(tile.add(i * row + j * channels)))
                });
                for (i, values) in sandwich(&one_d, &x).iter().enumerate() {
                    for (j, &value) in values.iter().enumerate() {
                        let pos = i * ALPHA + j;
                        _mm512_storeu_ps(dst.add((pos * tiles + t0 + tx) * channels + c), value);
                    }
                }
            }
        }
    }
}

/// The 4x4 outputs `Aᵀ m A` of the tile whose 36 products (16 channels) start at `m`, `stride`
/// values apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn untransform(m: *const f32, stride: usize) -> [[__m512; TILE]; TILE] {
    // SAFETY: the caller passes 36 products `stride` apart.
    let products: [[__m512; ALPHA]; ALPHA] = std::array::from_fn(|i| {
        std::array::from_fn(|j| unsafe { _mm512_loadu_ps(m.add((i * ALPHA + j) * stride)) })
    });
    sandwich(|x| output_1d(x), &products)
}

/// Untransforms tile row `ty`'s products into `out [height, width, cout]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn store_strip(shape: &Shape, products: &[f32], ty: usize, out: &mut [f32]) {
    let (cout, tiles) = (shape.cout, shape.tiles_per_row());
    let stride = tiles * cout;
    // SAFETY: the caller checked the shapes: the strip's four output rows lie inside `out`.
    unsafe {
        let out = out.as_mut_ptr();
        for t in 0..tiles {
            for c in (0..cout).step_by(16) {
                let y = untransform(products.as_ptr().add(t * cout + c), stride);
                for (a, values) in y.iter().enumerate() {
                    for (b, &value) in values.iter().enumerate() {
                        let pixel = (TILE * ty + a) * shape.width + TILE * t + b;
                        _mm512_storeu_ps(out.add(pixel * cout + c), value);
                    }
                }
            }
        }
    }
}

/// Untransforms tile row `ty`'s products, adds the bias, applies ReLU and keeps each 2x2
/// window's maximum and winner.
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
    let (cout, tiles) = (shape.cout, shape.tiles_per_row());
    let (stride, pooled_width) = (tiles * cout, shape.width / 2);
    // SAFETY: the caller checked the shapes: the strip's pooled values lie inside `pooled` and
    // `winners`, the bias inside `bias`.
    unsafe {
        let zero = _mm512_setzero_ps();
        for c in (0..cout).step_by(16) {
            let b = _mm512_loadu_ps(bias.as_ptr().add(c));
            for t in 0..tiles {
                let y = untransform(products.as_ptr().add(t * cout + c), stride);
                for (wy, wx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let window = [
                        y[2 * wy][2 * wx],
                        y[2 * wy][2 * wx + 1],
                        y[2 * wy + 1][2 * wx],
                        y[2 * wy + 1][2 * wx + 1],
                    ];
                    let mut best = _mm512_max_ps(_mm512_add_ps(window[0], b), zero);
                    let mut which = _mm512_setzero_si512();
                    for (n, &candidate) in window.iter().enumerate().skip(1) {
                        let value = _mm512_max_ps(_mm512_add_ps(candidate, b), zero);
                        let better = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(value, best);
                        best = _mm512_mask_blend_ps(better, best, value);
                        which = _mm512_mask_blend_epi32(better, which, _mm512_set1_epi32(n as i32));
                    }
                    let (py, px) = (2 * ty + wy, 2 * t + wx);
                    let at = (py * pooled_width + px) * cout + c;
                    _mm512_storeu_ps(pooled.as_mut_ptr().add(at), best);
                    _mm_storeu_si128(
                        winners.as_mut_ptr().add(at).cast(),
                        _mm512_cvtepi32_epi8(which),
                    );
                }
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
        for (height, width) in [(4, 4), (4, 8), (8, 20), (4, 28), (28, 28)] {
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

    /// Within 1e-5 relative to the largest expected value: the transforms mix a tile's values
    /// (scaled by up to 100 and 1/576), so a small output carries the rounding of its tile's
    /// large ones (measured: up to 5e-6 of the largest).
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
    #[test]
    fn one_dimensional_transforms_match_their_matrices() {
        if !available(4, 4, 16, 32) {
            eprintln!("SKIPPED: no AVX-512F on this CPU");
            return;
        }
        fn check<const R: usize, const C: usize>(
            m: &[[f32; C]; R],
            f: unsafe fn(&[__m512; C]) -> [__m512; R],
        ) {
            let x: [f32; C] = std::array::from_fn(|i| (1u32 << (3 * i)) as f32 * 0.5);
            // SAFETY: AVX-512F is present (checked by the caller).
            let y = unsafe { f(&x.map(|v| _mm512_set1_ps(v))) };
            for (row, &value) in m.iter().zip(&y) {
                let expected: f32 = row.iter().zip(&x).map(|(a, b)| a * b).sum();
                let mut lanes = [0.0f32; 16];
                // SAFETY: as above; `lanes` holds 16 values.
                unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), value) };
                assert!(
                    lanes.iter().all(|&l| l == expected),
                    "{lanes:?} vs {expected}"
                );
            }
        }
        check(&BT, input_1d);
        check(&AT, output_1d);
        check(&A, grad_1d);
    }

    #[test]
    fn conv_matches_direct() {
        if !available(4, 4, 16, 32) || !direct::available(16, 32) {
            eprintln!("SKIPPED: no AVX-512F on this CPU");
            return;
        }
        for shape in shapes() {
            let (padded, weights) = operands(&shape, 1);
            let mut expected = vec![0.0; shape.height * shape.width * shape.cout];
            direct::conv(&direct_shape(&shape), &padded, &weights, &mut expected);
            let transformed = transform_weights(&weights, shape.cin, shape.cout);
            let mut workspace =
                Workspace::new(shape.height, shape.width, shape.cin.max(shape.cout));
            let mut out = vec![f32::NAN; expected.len()];
            conv(&shape, &padded, &transformed, &mut workspace, &mut out);
            assert_close(&shape, "conv", &out, &expected);
        }
    }

    #[test]
    fn pooling_matches_direct() {
        if !available(4, 4, 16, 32) || !direct::available(16, 32) {
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
            let mut workspace =
                Workspace::new(shape.height, shape.width, shape.cin.max(shape.cout));
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
        if !available(4, 4, 16, 32) || !direct::available(16, 32) {
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
            let mut workspace =
                Workspace::new(shape.height, shape.width, shape.cin.max(shape.cout));
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
