//! Direct "same" convolutions of channels-last maps with AVX-512, register-blocked: no column
//! matrix, no packing.
//!
//! Each call computes a block of two output rows by up to six columns by 32 output channels in
//! 24 vector registers, reading the zero-bordered input in place (one broadcast per input value
//! and tap) and the weights as `[tap, in, out]` rows. Three epilogues: store the block
//! ([`conv`]), add the bias and apply ReLU ([`conv_bias_relu_padded`], into a zero-bordered map
//! when asked), or also 2x2 max-pool it in
//! registers, keeping the winners ([`conv_bias_relu_pool`]). [`weight_grad`] sums the weights'
//! gradient over all pixels in registers. Used where the CPU has AVX-512F and the output
//! channel counts are multiples of 32 ([`available`]); the caller falls back to im2col and
//! `gemm` elsewhere.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Output channels per block: two AVX-512 registers.
pub const BLOCK_CHANNELS: usize = 32;
/// Output columns per full block (two rows of six columns: 24 accumulators).
const BLOCK_COLUMNS: usize = 6;

/// Shapes of one direct convolution: a zero-bordered channels-last input `[height + 2r,
/// width + 2r, cin]` (`r = kernel / 2`), weights `[kernel * kernel, cin, cout]`, output
/// `[height, width, cout]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Output rows (even).
    pub height: usize,
    /// Output columns (even).
    pub width: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels (a multiple of [`BLOCK_CHANNELS`]).
    pub cout: usize,
    /// Square kernel size (odd).
    pub kernel: usize,
}

impl Shape {
    /// Values in the zero-bordered input.
    pub fn padded_len(&self) -> usize {
        self.padded_width() * (self.height + self.kernel - 1) * self.cin
    }
    fn padded_width(&self) -> usize {
        self.width + self.kernel - 1
    }
    fn weights_len(&self) -> usize {
        self.kernel * self.kernel * self.cin * self.cout
    }
    fn check(&self, padded: &[f32], weights: &[f32]) {
        assert!(
            self.height.is_multiple_of(2)
                && self.width.is_multiple_of(2)
                && self.kernel % 2 == 1
                && self.cout.is_multiple_of(BLOCK_CHANNELS)
                && padded.len() >= self.padded_len()
                && weights.len() >= self.weights_len(),
            "direct convolution operands do not match {self:?}"
        );
    }
}

/// Whether this CPU runs the direct kernels for these channel counts.
pub fn available(cin: usize, cout: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        cin > 0 && cout.is_multiple_of(BLOCK_CHANNELS) && is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (cin, cout);
        false
    }
}

/// Copies a channels-last map `[height, width, channels]` into the interior of a zero-bordered
/// one `out` with a border of `border` values on every side.
pub fn pad(
    map: &[f32],
    height: usize,
    width: usize,
    channels: usize,
    border: usize,
    out: &mut [f32],
) {
    zero_border(height, width, channels, border, out);
    let row = (width + 2 * border) * channels;
    for (y, src) in map.chunks_exact(width * channels).take(height).enumerate() {
        let start = (y + border) * row + border * channels;
        out[start..start + width * channels].copy_from_slice(src);
    }
}

/// [`pad`] from a channels-first map `[channels, height, width]`.
pub fn pad_planar(map: &[f32], height: usize, width: usize, border: usize, out: &mut [f32]) {
    let channels = map.len() / (height * width);
    zero_border(height, width, channels, border, out);
    let row = width + 2 * border;
    for (c, plane) in map.chunks_exact(height * width).enumerate() {
        for (y, line) in plane.chunks_exact(width).enumerate() {
            let start = (y + border) * row + border;
            for (x, &v) in line.iter().enumerate() {
                out[(start + x) * channels + c] = v;
            }
        }
    }
}

/// Zeroes the border of a padded channels-last map, leaving its interior.
pub fn zero_border(height: usize, width: usize, channels: usize, border: usize, out: &mut [f32]) {
    let row = (width + 2 * border) * channels;
    let edge = border * channels;
    out[..border * row].fill(0.0);
    out[(height + border) * row..(height + 2 * border) * row].fill(0.0);
    for y in border..height + border {
        out[y * row..y * row + edge].fill(0.0);
        out[(y + 1) * row - edge..(y + 1) * row].fill(0.0);
    }
}

/// `out [height, width, cout] = conv(padded, weights)`, no bias.
///
/// Panics when the slices are smaller than `shape` says or [`available`] is false.
pub fn conv(shape: &Shape, padded: &[f32], weights: &[f32], out: &mut [f32]) {
    conv_with(shape, padded, weights, None, 0, out);
}

/// `relu(conv(padded, weights) + bias)` into the interior of a map with a zero border of
/// `border` values (`[height + 2 * border, width + 2 * border, cout]`, border zeroed here):
/// with a border, the next convolution's input without a copy; with none, `[height, width,
/// cout]`.
///
/// Panics when the slices are smaller than `shape` says or [`available`] is false.
pub fn conv_bias_relu_padded(
    shape: &Shape,
    padded: &[f32],
    weights: &[f32],
    bias: &[f32],
    border: usize,
    out: &mut [f32],
) {
    assert!(bias.len() >= shape.cout);
    let out_len = (shape.height + 2 * border) * (shape.width + 2 * border) * shape.cout;
    assert!(out.len() >= out_len);
    zero_border(shape.height, shape.width, shape.cout, border, out);
    conv_with(shape, padded, weights, Some(bias), border, out);
}

/// The convolution into `out` with a border of `border` values around the `[height, width,
/// cout]` outputs (left as it is).
fn conv_with(
    shape: &Shape,
    padded: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    border: usize,
    out: &mut [f32],
) {
    let conv = Operands::checked(shape, padded, weights);
    let out_len = (shape.height + 2 * border) * (shape.width + 2 * border) * shape.cout;
    assert!(out.len() >= out_len);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is present and the operands fit the shape (`Operands::checked`), so
    // every block's reads lie inside `padded`, `weights` and `bias`; its writes inside `out`.
    unsafe {
        let mut out = Output {
            values: out,
            border,
        };
        for_each_block(shape, |at| match at.columns {
            6 => store_block::<6>(conv, at, bias, &mut out),
            4 => store_block::<4>(conv, at, bias, &mut out),
            _ => store_block::<2>(conv, at, bias, &mut out),
        });
    }
}

/// A convolution's output map, with a border of `border` values around its `[height, width,
/// cout]` values.
struct Output<'a> {
    values: &'a mut [f32],
    border: usize,
}

/// `pooled [height/2 * width/2, cout] = maxpool2x2(relu(conv(padded, weights) + bias))`, and
/// per pooled value the window's winner (0..4, row-major, first on ties) in `winners`.
///
/// Panics when the slices are smaller than `shape` says or [`available`] is false.
pub fn conv_bias_relu_pool(
    shape: &Shape,
    padded: &[f32],
    weights: &[f32],
    bias: &[f32],
    pooled: &mut [f32],
    winners: &mut [u8],
) {
    let conv = Operands::checked(shape, padded, weights);
    let pooled_len = shape.height / 2 * shape.width / 2 * shape.cout;
    assert!(bias.len() >= shape.cout && pooled.len() >= pooled_len && winners.len() >= pooled_len);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `conv`; pooled writes stay inside `pooled_len` values.
    unsafe {
        for_each_block(shape, |at| match at.columns {
            6 => pool_block::<6>(conv, at, bias, pooled, winners),
            4 => pool_block::<4>(conv, at, bias, pooled, winners),
            _ => pool_block::<2>(conv, at, bias, pooled, winners),
        });
    }
}

/// The weights' gradient: `grad_w [k * k, cin, cout] += sum over output pixels of
/// padded_input[pixel + tap] (x) grad[pixel]`, where `padded_grad` is the output's gradient
/// with the same zero border as the input (`[height + 2r, width + 2r, cout]`).
///
/// Panics when the slices are smaller than `shape` says or [`available`] is false.
pub fn weight_grad(shape: &Shape, padded: &[f32], padded_grad: &[f32], grad_w: &mut [f32]) {
    // The gradient has the weights' layout.
    Operands::checked(shape, padded, grad_w);
    let grad_len = shape.padded_width() * (shape.height + shape.kernel - 1) * shape.cout;
    assert!(padded_grad.len() >= grad_len);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is present (asserted); the checks above keep every read inside
    // `padded` and `padded_grad` and every write inside `grad_w`.
    unsafe {
        if shape.cin == 1 && shape.kernel == 3 {
            // One input channel (conv1): all nine taps in registers, each pixel's gradient
            // read once instead of once per tap.
            for cb in 0..shape.cout / BLOCK_CHANNELS {
                single_channel_weight_grad(shape, padded, padded_grad, grad_w, cb);
            }
            return;
        }
        for tap in 0..shape.kernel * shape.kernel {
            for cb in 0..shape.cout / BLOCK_CHANNELS {
                let mut ci = 0;
                while ci < shape.cin {
                    let (p, g, w) = (padded, padded_grad, &mut *grad_w);
                    ci += match shape.cin - ci {
                        12.. => weight_grad_block::<12>(shape, p, g, w, tap, ci, cb),
                        8..12 => weight_grad_block::<8>(shape, p, g, w, tap, ci, cb),
                        4..8 => weight_grad_block::<4>(shape, p, g, w, tap, ci, cb),
                        2..4 => weight_grad_block::<2>(shape, p, g, w, tap, ci, cb),
                        _ => weight_grad_block::<1>(shape, p, g, w, tap, ci, cb),
                    };
                }
            }
        }
    }
}

/// A convolution's operands, checked against its shape.
#[derive(Clone, Copy)]
struct Operands<'a> {
    shape: &'a Shape,
    padded: &'a [f32],
    weights: &'a [f32],
}

impl<'a> Operands<'a> {
    /// Panics when the slices are smaller than `shape` says or [`available`] is false.
    fn checked(shape: &'a Shape, padded: &'a [f32], weights: &'a [f32]) -> Self {
        shape.check(padded, weights);
        assert!(available(shape.cin, shape.cout), "no AVX-512F on this CPU");
        Operands {
            shape,
            padded,
            weights,
        }
    }
}

/// Where a block of the output lies: two rows from `y`, `columns` columns from `x`, 32
/// channels from `cb * 32`.
#[derive(Clone, Copy)]
struct BlockAt {
    y: usize,
    x: usize,
    columns: usize,
    cb: usize,
}

/// Calls `f` for every block of the output: rows in pairs, columns by six, then four or two
/// for the rest (widths are even).
fn for_each_block(shape: &Shape, mut f: impl FnMut(BlockAt)) {
    for cb in 0..shape.cout / BLOCK_CHANNELS {
        for y in (0..shape.height).step_by(2) {
            let mut x = 0;
            while x < shape.width {
                let columns = match shape.width - x {
                    BLOCK_COLUMNS.. => BLOCK_COLUMNS,
                    4 | 5 => 4,
                    _ => 2,
                };
                f(BlockAt { y, x, columns, cb });
                x += columns;
            }
        }
    }
}

/// The accumulators of one block: `[row][column][half of the 32 channels]`.
#[cfg(target_arch = "x86_64")]
type Block<const C: usize> = [[[__m512; 2]; C]; 2];

/// Convolves the block at `at` (of `C` columns).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const C: usize>(conv: Operands<'_>, at: BlockAt) -> Block<C> {
    let Operands {
        shape,
        padded,
        weights,
    } = conv;
    let BlockAt { y, x, cb, .. } = at;
    let (cin, cout, k) = (shape.cin, shape.cout, shape.kernel);
    let row = shape.padded_width() * cin;
    let mut acc: Block<C> = [[[_mm512_setzero_ps(); 2]; C]; 2];
    // SAFETY (this block): the caller checked the shapes (`Shape::check`), so the block's
    // receptive field, `C + k - 1` columns of `k + 1` rows from `(y, x)`, lies in `padded`, and
    // every weight row read lies in `weights`.
    unsafe {
        let input = padded.as_ptr().add(y * row + x * cin);
        let weights = weights.as_ptr().add(cb * BLOCK_CHANNELS);
        for ky in 0..k {
            for kx in 0..k {
                let taps_in = input.add(ky * row + kx * cin);
                let taps_w = weights.add((ky * k + kx) * cin * cout);
                for ci in 0..cin {
                    let w0 = _mm512_loadu_ps(taps_w.add(ci * cout));
                    let w1 = _mm512_loadu_ps(taps_w.add(ci * cout + 16));
                    for (r, acc_row) in acc.iter_mut().enumerate() {
                        for (c, a) in acc_row.iter_mut().enumerate() {
                            let v = _mm512_set1_ps(*taps_in.add(r * row + c * cin + ci));
                            a[0] = _mm512_fmadd_ps(v, w0, a[0]);
                            a[1] = _mm512_fmadd_ps(v, w1, a[1]);
                        }
                    }
                }
            }
        }
    }
    acc
}

/// Stores the block, with the bias added and ReLU applied when there is a bias.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn store_block<const C: usize>(
    conv: Operands<'_>,
    at: BlockAt,
    bias: Option<&[f32]>,
    out: &mut Output<'_>,
) {
    let (shape, BlockAt { y, x, cb, .. }) = (conv.shape, at);
    let (border, row) = (out.border, shape.width + 2 * out.border);
    // SAFETY: the caller checked the shapes; the block's outputs lie inside `out` and its bias
    // values inside `bias`.
    unsafe {
        let acc = block::<C>(conv, at);
        let out = out.values.as_mut_ptr();
        let channel = cb * BLOCK_CHANNELS;
        let finish = |v: __m512, half: usize| match bias {
            Some(b) => _mm512_max_ps(
                _mm512_add_ps(v, _mm512_loadu_ps(b.as_ptr().add(channel + half * 16))),
                _mm512_setzero_ps(),
            ),
            None => v,
        };
        for (r, acc_row) in acc.iter().enumerate() {
            for (c, a) in acc_row.iter().enumerate() {
                let at = ((y + r + border) * row + x + c + border) * shape.cout + channel;
                _mm512_storeu_ps(out.add(at), finish(a[0], 0));
                _mm512_storeu_ps(out.add(at + 16), finish(a[1], 1));
            }
        }
    }
}

/// Adds the bias, applies ReLU and max-pools the block's 2x2 windows, storing each window's
/// maximum and winner.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pool_block<const C: usize>(
    conv: Operands<'_>,
    at: BlockAt,
    bias: &[f32],
    pooled: &mut [f32],
    winners: &mut [u8],
) {
    let (shape, BlockAt { y, x, cb, .. }) = (conv.shape, at);
    // SAFETY: the caller checked the shapes; the block's pooled outputs lie inside `pooled`
    // and `winners`, and its bias values inside `bias`.
    unsafe {
        let acc = block::<C>(conv, at);
        let zero = _mm512_setzero_ps();
        let pooled_width = shape.width / 2;
        // The four candidates of a window sit in two rows of the accumulators.
        #[allow(clippy::needless_range_loop)]
        for half in 0..2 {
            let channel = cb * BLOCK_CHANNELS + half * 16;
            let b = _mm512_loadu_ps(bias.as_ptr().add(channel));
            for q in 0..C / 2 {
                let candidates = [
                    acc[0][2 * q][half],
                    acc[0][2 * q + 1][half],
                    acc[1][2 * q][half],
                    acc[1][2 * q + 1][half],
                ];
                let mut best = _mm512_max_ps(_mm512_add_ps(candidates[0], b), zero);
                let mut which = _mm512_setzero_si512();
                for (n, &candidate) in candidates.iter().enumerate().skip(1) {
                    let value = _mm512_max_ps(_mm512_add_ps(candidate, b), zero);
                    let better = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(value, best);
                    best = _mm512_mask_blend_ps(better, best, value);
                    which = _mm512_mask_blend_epi32(better, which, _mm512_set1_epi32(n as i32));
                }
                let at = ((y / 2) * pooled_width + x / 2 + q) * shape.cout + channel;
                _mm512_storeu_ps(pooled.as_mut_ptr().add(at), best);
                _mm_storeu_si128(
                    winners.as_mut_ptr().add(at).cast(),
                    _mm512_cvtepi32_epi8(which),
                );
            }
        }
    }
}

/// The gradient of `I` input channels from `ci`, one tap, 32 output channels from `cb * 32`,
/// summed over every output pixel in `2 * I` registers. Returns `I`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn weight_grad_block<const I: usize>(
    shape: &Shape,
    padded: &[f32],
    padded_grad: &[f32],
    grad_w: &mut [f32],
    tap: usize,
    ci: usize,
    cb: usize,
) -> usize {
    let (cin, cout, k) = (shape.cin, shape.cout, shape.kernel);
    let (r, width) = (k / 2, shape.padded_width());
    let mut acc = [[_mm512_setzero_ps(); 2]; I];
    // SAFETY: the caller checked the shapes: the input pixel `(y + ky, x + kx)` and the
    // gradient pixel `(y + r, x + r)` of every output pixel lie inside the padded maps, and
    // the tap's rows `ci..ci + I` inside `grad_w`.
    unsafe {
        let input = padded
            .as_ptr()
            .add(((tap / k) * width + tap % k) * cin + ci);
        let grad = padded_grad
            .as_ptr()
            .add((r * width + r) * cout + cb * BLOCK_CHANNELS);
        for y in 0..shape.height {
            for x in 0..shape.width {
                let pixel = y * width + x;
                let g0 = _mm512_loadu_ps(grad.add(pixel * cout));
                let g1 = _mm512_loadu_ps(grad.add(pixel * cout + 16));
                let values = input.add(pixel * cin);
                for (i, a) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*values.add(i));
                    a[0] = _mm512_fmadd_ps(v, g0, a[0]);
                    a[1] = _mm512_fmadd_ps(v, g1, a[1]);
                }
            }
        }
        let out = grad_w
            .as_mut_ptr()
            .add((tap * cin + ci) * cout + cb * BLOCK_CHANNELS);
        add_rows(&acc, out, cout);
    }
    I
}

/// [`weight_grad`] of a 3x3 kernel on one input channel, for 32 output channels from
/// `cb * 32`: the nine taps' sums in 18 registers over every output pixel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn single_channel_weight_grad(
    shape: &Shape,
    padded: &[f32],
    padded_grad: &[f32],
    grad_w: &mut [f32],
    cb: usize,
) {
    const TAPS: usize = 9;
    let (cout, width) = (shape.cout, shape.padded_width());
    let mut acc = [[_mm512_setzero_ps(); 2]; TAPS];
    // SAFETY: the caller checked the shapes (one input channel, kernel 3): the input pixels
    // `(y + ky, x + kx)` and the gradient pixel `(y + 1, x + 1)` of every output pixel lie
    // inside the padded maps, and the nine taps' rows inside `grad_w`.
    unsafe {
        let input = padded.as_ptr();
        let grad = padded_grad
            .as_ptr()
            .add((width + 1) * cout + cb * BLOCK_CHANNELS);
        for y in 0..shape.height {
            for x in 0..shape.width {
                let pixel = y * width + x;
                let g0 = _mm512_loadu_ps(grad.add(pixel * cout));
                let g1 = _mm512_loadu_ps(grad.add(pixel * cout + 16));
                for (tap, a) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*input.add(pixel + (tap / 3) * width + tap % 3));
                    a[0] = _mm512_fmadd_ps(v, g0, a[0]);
                    a[1] = _mm512_fmadd_ps(v, g1, a[1]);
                }
            }
        }
        add_rows(&acc, grad_w.as_mut_ptr().add(cb * BLOCK_CHANNELS), cout);
    }
}

/// Adds `N` rows of 32 accumulated values to the rows at `out`, `stride` values apart.
///
/// # Safety
///
/// The CPU must have AVX-512F, and `out` must hold the `N` rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn add_rows<const N: usize>(
    acc: &[[__m512; 2]; N],
    out: *mut f32,
    stride: usize,
) {
    for (i, a) in acc.iter().enumerate() {
        for (half, &v) in a.iter().enumerate() {
            // SAFETY: the caller passes `N` rows of 32 values at `out`.
            unsafe {
                let at = out.add(i * stride + half * 16);
                _mm512_storeu_ps(at, _mm512_add_ps(_mm512_loadu_ps(at), v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::test_values as values;

    /// Loop reference of [`conv`] on an unpadded input.
    fn reference(shape: &Shape, input: &[f32], weights: &[f32]) -> Vec<f32> {
        let (h, w, k) = (shape.height, shape.width, shape.kernel);
        let r = (k / 2) as isize;
        let mut out = vec![0.0f32; h * w * shape.cout];
        for y in 0..h {
            for x in 0..w {
                for co in 0..shape.cout {
                    let mut s = 0.0;
                    for ky in 0..k {
                        for kx in 0..k {
                            let (sy, sx) =
                                (y as isize + ky as isize - r, x as isize + kx as isize - r);
                            if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                                continue;
                            }
                            for ci in 0..shape.cin {
                                s += input[(sy as usize * w + sx as usize) * shape.cin + ci]
                                    * weights[((ky * k + kx) * shape.cin + ci) * shape.cout + co];
                            }
                        }
                    }
                    out[(y * w + x) * shape.cout + co] = s;
                }
            }
        }
        out
    }

    fn shapes() -> Vec<Shape> {
        // Widths covering every block width (6, 4, 2 columns), kernels 3 and 5, two blocks
        // of output channels.
        let mut shapes = Vec::new();
        for (height, width) in [(2, 2), (4, 10), (6, 14), (28, 28)] {
            for kernel in [3, 5] {
                shapes.push(Shape {
                    height,
                    width,
                    cin: 5,
                    cout: 64,
                    kernel,
                });
            }
        }
        shapes
    }

    #[test]
    fn conv_matches_loops() {
        if !available(5, 64) {
            eprintln!("SKIPPED: no AVX-512F on this CPU");
            return;
        }
        for shape in shapes() {
            let input = values(shape.height * shape.width * shape.cin, 1);
            let weights = values(shape.kernel * shape.kernel * shape.cin * shape.cout, 2);
            let mut padded = vec![f32::NAN; shape.padded_len()];
            pad(
                &input,
                shape.height,
                shape.width,
                shape.cin,
                shape.kernel / 2,
                &mut padded,
            );
            // The same map given channels first.
            let (pixels, cin) = (shape.height * shape.width, shape.cin);
            let planar: Vec<f32> = (0..cin * pixels)
                .map(|i| input[(i % pixels) * cin + i / pixels])
                .collect();
            let mut from_planar = vec![f32::NAN; shape.padded_len()];
            pad_planar(
                &planar,
                shape.height,
                shape.width,
                shape.kernel / 2,
                &mut from_planar,
            );
            assert_eq!(from_planar, padded);

            let expected = reference(&shape, &input, &weights);
            let mut out = vec![f32::NAN; shape.height * shape.width * shape.cout];
            conv(&shape, &padded, &weights, &mut out);
            for (a, b) in out.iter().zip(&expected) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{shape:?}: {a} vs {b}"
                );
            }
            let bias = values(shape.cout, 9);
            // Straight into a zero-bordered map: its interior is the same, its border zero.
            let border = 2;
            let (h, w) = (shape.height + 2 * border, shape.width + 2 * border);
            let mut bordered = vec![f32::NAN; h * w * shape.cout];
            conv_bias_relu_padded(&shape, &padded, &weights, &bias, border, &mut bordered);
            conv_bias_relu_padded(&shape, &padded, &weights, &bias, 0, &mut out);
            for (i, pixel) in bordered.chunks_exact(shape.cout).enumerate() {
                let (y, x) = (i / w, i % w);
                let inside = (border..h - border).contains(&y) && (border..w - border).contains(&x);
                if inside {
                    let at = ((y - border) * shape.width + x - border) * shape.cout;
                    assert_eq!(pixel, &out[at..at + shape.cout], "{shape:?} ({y}, {x})");
                } else {
                    assert!(
                        pixel.iter().all(|&v| v == 0.0),
                        "{shape:?} border ({y}, {x})"
                    );
                }
            }
            for (i, (a, b)) in out.iter().zip(&expected).enumerate() {
                let b = (b + bias[i % shape.cout]).max(0.0);
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{shape:?}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn weight_grad_matches_loops() {
        if !available(1, 64) {
            eprintln!("SKIPPED: no AVX-512F on this CPU");
            return;
        }
        // Input channel counts covering every block (12, 8, 4, 2, 1).
        // One input channel with the 3x3 kernel takes its own kernel.
        for (cin, kernel, height, width) in [
            (31, 3, 4, 6),
            (8, 5, 6, 4),
            (1, 3, 2, 2),
            (1, 3, 28, 28),
            (1, 5, 6, 8),
        ] {
            let shape = Shape {
                height,
                width,
                cin,
                cout: 64,
                kernel,
            };
            let r = kernel / 2;
            let input = values(height * width * cin, 6);
            let grad = values(height * width * shape.cout, 7);
            let mut padded = vec![0.0; shape.padded_len()];
            pad(&input, height, width, cin, r, &mut padded);
            let mut padded_grad = vec![0.0; (height + 2 * r) * (width + 2 * r) * shape.cout];
            pad(&grad, height, width, shape.cout, r, &mut padded_grad);
            let start = values(kernel * kernel * cin * shape.cout, 8);
            let mut grad_w = start.clone();
            weight_grad(&shape, &padded, &padded_grad, &mut grad_w);
            for ky in 0..kernel {
                for kx in 0..kernel {
                    for ci in 0..cin {
                        for co in 0..shape.cout {
                            let mut s = 0.0f32;
                            for y in 0..height {
                                for x in 0..width {
                                    let (sy, sx) = (y + ky, x + kx);
                                    let (sy, sx) =
                                        (sy as isize - r as isize, sx as isize - r as isize);
                                    if sy < 0
                                        || sx < 0
                                        || sy >= height as isize
                                        || sx >= width as isize
                                    {
                                        continue;
                                    }
                                    s += input[(sy as usize * width + sx as usize) * cin + ci]
                                        * grad[(y * width + x) * shape.cout + co];
                                }
                            }
                            let o = ((ky * kernel + kx) * cin + ci) * shape.cout + co;
                            let expected = start[o] + s;
                            assert!(
                                (grad_w[o] - expected).abs() <= 1e-5 * (1.0 + expected.abs()),
                                "{shape:?} tap ({ky}, {kx}) {ci} -> {co}: {} vs {expected}",
                                grad_w[o]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn pooling_epilogue_matches_loops() {
        if !available(5, 64) {
            eprintln!("SKIPPED: no AVX-512F on this CPU");
            return;
        }
        for shape in shapes() {
            let input = values(shape.height * shape.width * shape.cin, 3);
            let weights = values(shape.kernel * shape.kernel * shape.cin * shape.cout, 4);
            let bias = values(shape.cout, 5);
            let mut padded = vec![0.0; shape.padded_len()];
            pad(
                &input,
                shape.height,
                shape.width,
                shape.cin,
                shape.kernel / 2,
                &mut padded,
            );
            let n = shape.height / 2 * shape.width / 2 * shape.cout;
            let (mut pooled, mut winners) = (vec![f32::NAN; n], vec![9u8; n]);
            conv_bias_relu_pool(&shape, &padded, &weights, &bias, &mut pooled, &mut winners);
            let full = reference(&shape, &input, &weights);
            let (w, c) = (shape.width, shape.cout);
            for py in 0..shape.height / 2 {
                for px in 0..w / 2 {
                    for co in 0..c {
                        let at = |n: usize| {
                            let pixel = (2 * py + n / 2) * w + 2 * px + n % 2;
                            (full[pixel * c + co] + bias[co]).max(0.0)
                        };
                        let o = (py * (w / 2) + px) * c + co;
                        let best = (0..4).map(at).fold(0.0f32, f32::max);
                        assert!((pooled[o] - best).abs() <= 1e-5 * (1.0 + best.abs()));
                        let winner = winners[o] as usize;
                        assert!(winner < 4);
                        // The recorded winner holds the maximum (ties between near-equal
                        // sums may go either way after rounding).
                        assert!((at(winner) - best).abs() <= 1e-5 * (1.0 + best.abs()));
                    }
                }
            }
        }
    }
}
