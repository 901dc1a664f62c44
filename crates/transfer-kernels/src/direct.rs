//! Direct "same" convolutions of channels-last maps with AVX-512 or AVX2, register-blocked: no
//! column matrix, no packing.
//!
//! Each call computes a block of two output rows by up to six columns by 32 output channels in
//! 24 vector registers (AVX-512; with AVX2 two columns by 16 channels in 8 register pairs),
//! reading the zero-bordered input in place (one broadcast per input value and tap) and the
//! weights as `[tap, in, out]` rows. Three epilogues: store the block
//! ([`conv`]), add the bias and apply ReLU ([`conv_bias_relu_padded`], into a zero-bordered map
//! when asked), or also 2x2 max-pool it in
//! registers, keeping the winners ([`conv_bias_relu_pool`]). [`weight_grad`] sums the weights'
//! gradient over all pixels in registers. Used where the CPU has AVX-512F or AVX2 with FMA
//! ([`Isa`]) and the output channel counts are multiples of 32 ([`available`]); the caller
//! falls back to im2col and `gemm` elsewhere.

use crate::simd::Isa;
#[cfg(target_arch = "x86_64")]
use crate::simd::{Lanes, add_rows, dispatch, pool_window};

/// What the output channel count must be a multiple of: one block with AVX-512, two with AVX2.
pub const BLOCK_CHANNELS: usize = 32;

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

/// Whether this CPU runs the direct kernels (with some [`Isa`]) for these channel counts.
pub fn available(cin: usize, cout: usize) -> bool {
    cin > 0 && cout.is_multiple_of(BLOCK_CHANNELS) && Isa::best().is_some()
}

/// Copies a channels-last map `[height, width, channels]` into the interior of a zero-bordered
/// one `out` with a border of `border` values on every side.
#[inline(always)]
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
#[inline(always)]
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
#[inline(always)]
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

/// `out [height, width, cout] = conv(padded, weights)`, no bias, with `isa`'s instructions.
///
/// Panics when the slices are smaller than `shape` says, the channel counts do not fit
/// ([`available`]) or the CPU lacks `isa`.
pub fn conv(isa: Isa, shape: &Shape, padded: &[f32], weights: &[f32], out: &mut [f32]) {
    conv_with(isa, shape, padded, weights, None, 0, out);
}

/// `relu(conv(padded, weights) + bias)` into the interior of a map with a zero border of
/// `border` values (`[height + 2 * border, width + 2 * border, cout]`, border zeroed here):
/// with a border, the next convolution's input without a copy; with none, `[height, width,
/// cout]`.
///
/// Panics as [`conv`] does.
pub fn conv_bias_relu_padded(
    isa: Isa,
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
    conv_with(isa, shape, padded, weights, Some(bias), border, out);
}

/// The convolution into `out` with a border of `border` values around the `[height, width,
/// cout]` outputs (left as it is).
fn conv_with(
    isa: Isa,
    shape: &Shape,
    padded: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    border: usize,
    out: &mut [f32],
) {
    let conv = Operands::checked(isa, shape, padded, weights);
    let out_len = (shape.height + 2 * border) * (shape.width + 2 * border) * shape.cout;
    assert!(out.len() >= out_len);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has `isa` and the operands fit the shape (`Operands::checked`), so
    // every block's reads lie inside `padded`, `weights` and `bias`; its writes inside `out`.
    unsafe {
        let mut out = Output {
            values: out,
            border,
        };
        store_for(isa, conv, bias, &mut out);
    }
}

#[cfg(target_arch = "x86_64")]
dispatch! {
    /// [`store_blocks`] compiled for `isa`.
    fn store_for =>
    /// Every block of the convolution, stored.
    ///
    /// # Safety
    ///
    /// The CPU must have `V`'s instruction set; the operands must fit the shape.
    unsafe fn store_blocks<V: Lanes>(
        conv: Operands<'_>,
        bias: Option<&[f32]>,
        out: &mut Output<'_>,
    ) {
        for at in blocks::<V>(conv.shape) {
            // SAFETY: passed on from the caller.
            unsafe {
                match (V::WIDE, at.columns) {
                    (true, 6) => store_block::<V, 6, 2>(conv, at, bias, out),
                    (true, 4) => store_block::<V, 4, 2>(conv, at, bias, out),
                    (true, _) => store_block::<V, 2, 2>(conv, at, bias, out),
                    (false, _) => store_block::<V, 2, 1>(conv, at, bias, out),
                }
            }
        }
    }
}

/// A convolution's output map, with a border of `border` values around its `[height, width,
/// cout]` values.
struct Output<'a> {
    values: &'a mut [f32],
    border: usize,
}

/// `pooled [height/2 * width/2, cout] = maxpool2x2(relu(conv(padded, weights) + bias))`, and
/// per pooled value the window's winner (0..4, row-major, first on ties) in `winners`, with
/// `isa`'s instructions.
///
/// Panics as [`conv`] does.
pub fn conv_bias_relu_pool(
    isa: Isa,
    shape: &Shape,
    padded: &[f32],
    weights: &[f32],
    bias: &[f32],
    pooled: &mut [f32],
    winners: &mut [u8],
) {
    let conv = Operands::checked(isa, shape, padded, weights);
    let pooled_len = shape.height / 2 * shape.width / 2 * shape.cout;
    assert!(bias.len() >= shape.cout && pooled.len() >= pooled_len && winners.len() >= pooled_len);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `conv_with`; pooled writes stay inside `pooled_len` values.
    unsafe {
        pool_for(isa, conv, bias, pooled, winners);
    }
}

#[cfg(target_arch = "x86_64")]
dispatch! {
    /// [`pool_blocks`] compiled for `isa`.
    fn pool_for =>
    /// Every block of the convolution, pooled.
    ///
    /// # Safety
    ///
    /// As [`store_blocks`]; `pooled` and `winners` hold the pooled map.
    unsafe fn pool_blocks<V: Lanes>(
        conv: Operands<'_>,
        bias: &[f32],
        pooled: &mut [f32],
        winners: &mut [u8],
    ) {
        for at in blocks::<V>(conv.shape) {
            // SAFETY: passed on from the caller.
            unsafe {
                match (V::WIDE, at.columns) {
                    (true, 6) => pool_block::<V, 6, 2>(conv, at, bias, pooled, winners),
                    (true, 4) => pool_block::<V, 4, 2>(conv, at, bias, pooled, winners),
                    (true, _) => pool_block::<V, 2, 2>(conv, at, bias, pooled, winners),
                    (false, _) => pool_block::<V, 2, 1>(conv, at, bias, pooled, winners),
                }
            }
        }
    }
}

/// The weights' gradient: `grad_w [k * k, cin, cout] += sum over output pixels of
/// padded_input[pixel + tap] (x) grad[pixel]`, where `padded_grad` is the output's gradient
/// with the same zero border as the input (`[height + 2r, width + 2r, cout]`), with `isa`'s
/// instructions.
///
/// Panics as [`conv`] does.
pub fn weight_grad(
    isa: Isa,
    shape: &Shape,
    padded: &[f32],
    padded_grad: &[f32],
    grad_w: &mut [f32],
) {
    // The gradient has the weights' layout.
    Operands::checked(isa, shape, padded, grad_w);
    let grad_len = shape.padded_width() * (shape.height + shape.kernel - 1) * shape.cout;
    assert!(padded_grad.len() >= grad_len);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has `isa` (asserted); the checks above keep every read inside `padded`
    // and `padded_grad` and every write inside `grad_w`.
    unsafe {
        weight_grad_for(isa, shape, padded, padded_grad, grad_w);
    }
}

#[cfg(target_arch = "x86_64")]
dispatch! {
    /// [`weight_grad_sums`] compiled for `isa`.
    fn weight_grad_for =>
    /// [`weight_grad`]'s work, block by block.
    ///
    /// # Safety
    ///
    /// The CPU must have `V`'s instruction set; the operands must fit the shape.
    unsafe fn weight_grad_sums<V: Lanes>(
        shape: &Shape,
        padded: &[f32],
        padded_grad: &[f32],
        grad_w: &mut [f32],
    ) {
        let step = V::BLOCK_CHANNELS;
        // SAFETY: passed on from the caller.
        unsafe {
            if shape.cin == 1 && shape.kernel == 3 {
                // One input channel (conv1): all nine taps in registers, each pixel's gradient
                // read once instead of once per tap.
                let (p, g, w) = (padded, padded_grad, &mut *grad_w);
                for channel in (0..shape.cout).step_by(step) {
                    if V::WIDE {
                        single_channel_weight_grad::<V, 2>(shape, p, g, w, channel);
                    } else {
                        single_channel_weight_grad::<V, 1>(shape, p, g, w, channel);
                    }
                }
                return;
            }
            for tap in 0..shape.kernel * shape.kernel {
                for channel in (0..shape.cout).step_by(step) {
                    let mut ci = 0;
                    while ci < shape.cin {
                        let (p, g, w) = (padded, padded_grad, &mut *grad_w);
                        let at = (tap, ci, channel);
                        // 24 accumulators with AVX-512 (12 channels by 32), 12 with AVX2 (6 by 16).
                        ci += match (V::WIDE, shape.cin - ci) {
                            (true, 12..) => weight_grad_block::<V, 12, 2>(shape, p, g, w, at),
                            (true, 8..12) => weight_grad_block::<V, 8, 2>(shape, p, g, w, at),
                            (true, 4..8) => weight_grad_block::<V, 4, 2>(shape, p, g, w, at),
                            (true, 2..4) => weight_grad_block::<V, 2, 2>(shape, p, g, w, at),
                            (true, _) => weight_grad_block::<V, 1, 2>(shape, p, g, w, at),
                            (false, 6..) => weight_grad_block::<V, 6, 1>(shape, p, g, w, at),
                            (false, 4 | 5) => weight_grad_block::<V, 4, 1>(shape, p, g, w, at),
                            (false, 2 | 3) => weight_grad_block::<V, 2, 1>(shape, p, g, w, at),
                            (false, _) => weight_grad_block::<V, 1, 1>(shape, p, g, w, at),
                        };
                    }
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
    /// Panics when the slices are smaller than `shape` says, the channel counts do not fit the
    /// kernels or the CPU lacks `isa`.
    fn checked(isa: Isa, shape: &'a Shape, padded: &'a [f32], weights: &'a [f32]) -> Self {
        shape.check(padded, weights);
        assert!(shape.cin > 0, "direct convolution without input channels");
        assert!(isa.available(), "no {isa:?} on this CPU");
        Operands {
            shape,
            padded,
            weights,
        }
    }
}

/// Where a block of the output lies: two rows from `y`, `columns` columns from `x`, `16 H`
/// channels from `channel`.
#[derive(Clone, Copy)]
struct BlockAt {
    y: usize,
    x: usize,
    columns: usize,
    channel: usize,
}

/// Every block of the output for `V`'s registers: channels by [`Lanes::BLOCK_CHANNELS`], rows
/// in pairs, columns by six, then four or two for the rest (AVX-512), or by two (AVX2; widths
/// are even).
#[cfg(target_arch = "x86_64")]
fn blocks<V: Lanes>(shape: &Shape) -> impl Iterator<Item = BlockAt> + '_ {
    let widest = if V::WIDE { 6 } else { 2 };
    (0..shape.cout)
        .step_by(V::BLOCK_CHANNELS)
        .flat_map(move |channel| {
            (0..shape.height).step_by(2).flat_map(move |y| {
                let mut x = 0;
                std::iter::from_fn(move || {
                    let columns = match shape.width.checked_sub(x)? {
                        0 => return None,
                        rest if rest >= widest => widest,
                        4 | 5 => 4,
                        _ => 2,
                    };
                    let at = BlockAt {
                        y,
                        x,
                        columns,
                        channel,
                    };
                    x += columns;
                    Some(at)
                })
            })
        })
}

/// The accumulators of one block: `[row][column][vector of 16 channels]`.
#[cfg(target_arch = "x86_64")]
type Block<V, const C: usize, const H: usize> = [[[V; H]; C]; 2];

/// Convolves the block at `at` (of `C` columns, `16 H` channels).
///
/// # Safety
///
/// The CPU must have `V`'s instruction set; the operands must fit the shape.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn block<V: Lanes, const C: usize, const H: usize>(
    conv: Operands<'_>,
    at: BlockAt,
) -> Block<V, C, H> {
    let Operands {
        shape,
        padded,
        weights,
    } = conv;
    let BlockAt { y, x, channel, .. } = at;
    let (cin, cout, k) = (shape.cin, shape.cout, shape.kernel);
    let row = shape.padded_width() * cin;
    // SAFETY: the caller checked the shapes (`Shape::check`), so the block's
    // receptive field, `C + k - 1` columns of `k + 1` rows from `(y, x)`, lies in `padded`, and
    // every weight row read lies in `weights`.
    unsafe {
        let mut acc: Block<V, C, H> = [[[V::zero(); H]; C]; 2];
        let mut w = [V::zero(); H];
        let input = padded.as_ptr().add(y * row + x * cin);
        let weights = weights.as_ptr().add(channel);
        for ky in 0..k {
            for kx in 0..k {
                let taps_in = input.add(ky * row + kx * cin);
                let taps_w = weights.add((ky * k + kx) * cin * cout);
                for ci in 0..cin {
                    for (h, w) in w.iter_mut().enumerate() {
                        *w = V::load(taps_w.add(ci * cout + 16 * h));
                    }
                    for (r, acc_row) in acc.iter_mut().enumerate() {
                        for (c, a) in acc_row.iter_mut().enumerate() {
                            let v = V::splat(*taps_in.add(r * row + c * cin + ci));
                            for (a, &w) in a.iter_mut().zip(&w) {
                                *a = v.mul_add(w, *a);
                            }
                        }
                    }
                }
            }
        }
        acc
    }
}

/// Stores the block, with the bias added and ReLU applied when there is a bias.
///
/// # Safety
///
/// As [`block`]; the block's outputs lie inside `out`, its bias values inside `bias`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn store_block<V: Lanes, const C: usize, const H: usize>(
    conv: Operands<'_>,
    at: BlockAt,
    bias: Option<&[f32]>,
    out: &mut Output<'_>,
) {
    let (shape, BlockAt { y, x, channel, .. }) = (conv.shape, at);
    let (border, row) = (out.border, shape.width + 2 * out.border);
    // SAFETY: as the caller guarantees.
    unsafe {
        let acc = block::<V, C, H>(conv, at);
        let out = out.values.as_mut_ptr();
        let zero = V::zero();
        for (r, acc_row) in acc.iter().enumerate() {
            for (c, a) in acc_row.iter().enumerate() {
                let at = ((y + r + border) * row + x + c + border) * shape.cout + channel;
                for (h, &v) in a.iter().enumerate() {
                    let v = match bias {
                        Some(b) => v.add(V::load(b.as_ptr().add(channel + 16 * h))).max(zero),
                        None => v,
                    };
                    v.store(out.add(at + 16 * h));
                }
            }
        }
    }
}

/// Adds the bias, applies ReLU and max-pools the block's 2x2 windows, storing each window's
/// maximum and winner.
///
/// # Safety
///
/// As [`block`]; the block's pooled outputs lie inside `pooled` and `winners`, its bias values
/// inside `bias`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn pool_block<V: Lanes, const C: usize, const H: usize>(
    conv: Operands<'_>,
    at: BlockAt,
    bias: &[f32],
    pooled: &mut [f32],
    winners: &mut [u8],
) {
    let (shape, BlockAt { y, x, channel, .. }) = (conv.shape, at);
    // SAFETY: as the caller guarantees.
    unsafe {
        let acc = block::<V, C, H>(conv, at);
        let pooled_width = shape.width / 2;
        // The four candidates of a window sit in two rows of the accumulators.
        #[allow(clippy::needless_range_loop)]
        for h in 0..H {
            let channel = channel + 16 * h;
            let b = V::load(bias.as_ptr().add(channel));
            for q in 0..C / 2 {
                let candidates = [
                    acc[0][2 * q][h],
                    acc[0][2 * q + 1][h],
                    acc[1][2 * q][h],
                    acc[1][2 * q + 1][h],
                ];
                let (best, which) = pool_window(candidates, b);
                let at = ((y / 2) * pooled_width + x / 2 + q) * shape.cout + channel;
                best.store(pooled.as_mut_ptr().add(at));
                which.store_bytes(winners.as_mut_ptr().add(at));
            }
        }
    }
}

/// The gradient of `I` input channels from `ci`, one tap, `16 H` output channels from
/// `channel` (`at`: tap, ci, channel), summed over every output pixel in `I H` vectors.
/// Returns `I`.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set; the operands must fit the shape.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn weight_grad_block<V: Lanes, const I: usize, const H: usize>(
    shape: &Shape,
    padded: &[f32],
    padded_grad: &[f32],
    grad_w: &mut [f32],
    (tap, ci, channel): (usize, usize, usize),
) -> usize {
    let (cin, cout, k) = (shape.cin, shape.cout, shape.kernel);
    let (r, width) = (k / 2, shape.padded_width());
    // SAFETY: the caller checked the shapes: the input pixel `(y + ky, x + kx)` and the
    // gradient pixel `(y + r, x + r)` of every output pixel lie inside the padded maps, and
    // the tap's rows `ci..ci + I` inside `grad_w`.
    unsafe {
        let mut acc = [[V::zero(); H]; I];
        let mut g = [V::zero(); H];
        let input = padded
            .as_ptr()
            .add(((tap / k) * width + tap % k) * cin + ci);
        let grad = padded_grad.as_ptr().add((r * width + r) * cout + channel);
        for y in 0..shape.height {
            for x in 0..shape.width {
                let pixel = y * width + x;
                for (h, g) in g.iter_mut().enumerate() {
                    *g = V::load(grad.add(pixel * cout + 16 * h));
                }
                let values = input.add(pixel * cin);
                for (i, a) in acc.iter_mut().enumerate() {
                    let v = V::splat(*values.add(i));
                    for (a, &g) in a.iter_mut().zip(&g) {
                        *a = v.mul_add(g, *a);
                    }
                }
            }
        }
        let out = grad_w.as_mut_ptr().add((tap * cin + ci) * cout + channel);
        add_rows(&acc, out, cout);
    }
    I
}

/// [`weight_grad`] of a 3x3 kernel on one input channel, for `16 H` output channels from
/// `channel`: the nine taps' sums in `9 H` vectors over every output pixel.
///
/// # Safety
///
/// The CPU must have `V`'s instruction set; the operands must fit the shape (one input
/// channel, kernel 3).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn single_channel_weight_grad<V: Lanes, const H: usize>(
    shape: &Shape,
    padded: &[f32],
    padded_grad: &[f32],
    grad_w: &mut [f32],
    channel: usize,
) {
    const TAPS: usize = 9;
    let (cout, width) = (shape.cout, shape.padded_width());
    // SAFETY: the input pixels `(y + ky, x + kx)` and the gradient pixel `(y + 1, x + 1)` of
    // every output pixel lie inside the padded maps, and the nine taps' rows inside `grad_w`.
    unsafe {
        let mut acc = [[V::zero(); H]; TAPS];
        let mut g = [V::zero(); H];
        let input = padded.as_ptr();
        let grad = padded_grad.as_ptr().add((width + 1) * cout + channel);
        for y in 0..shape.height {
            for x in 0..shape.width {
                let pixel = y * width + x;
                for (h, g) in g.iter_mut().enumerate() {
                    *g = V::load(grad.add(pixel * cout + 16 * h));
                }
                for (tap, a) in acc.iter_mut().enumerate() {
                    let v = V::splat(*input.add(pixel + (tap / 3) * width + tap % 3));
                    for (a, &g) in a.iter_mut().zip(&g) {
                        *a = v.mul_add(g, *a);
                    }
                }
            }
        }
        add_rows(&acc, grad_w.as_mut_ptr().add(channel), cout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{test_values as values, with_each_isa};

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
            eprintln!("SKIPPED: neither AVX-512F nor AVX2 on this CPU");
            return;
        }
        for (isa, shape) in with_each_isa(&shapes()) {
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
            conv(isa, &shape, &padded, &weights, &mut out);
            for (a, b) in out.iter().zip(&expected) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{isa:?} {shape:?}: {a} vs {b}"
                );
            }
            let bias = values(shape.cout, 9);
            // Straight into a zero-bordered map: its interior is the same, its border zero.
            let border = 2;
            let (h, w) = (shape.height + 2 * border, shape.width + 2 * border);
            let mut bordered = vec![f32::NAN; h * w * shape.cout];
            conv_bias_relu_padded(isa, &shape, &padded, &weights, &bias, border, &mut bordered);
            conv_bias_relu_padded(isa, &shape, &padded, &weights, &bias, 0, &mut out);
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
                    "{isa:?} {shape:?}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn weight_grad_matches_loops() {
        if !available(1, 64) {
            eprintln!("SKIPPED: neither AVX-512F nor AVX2 on this CPU");
            return;
        }
        // Input channel counts covering every block (AVX-512: 12, 8, 4, 2, 1; AVX2: 6, 4, 2,
        // 1). One input channel with the 3x3 kernel takes its own kernel.
        let cases = [
            (31, 3, 4, 6),
            (8, 5, 6, 4),
            (1, 3, 2, 2),
            (1, 3, 28, 28),
            (1, 5, 6, 8),
        ];
        for (isa, (cin, kernel, height, width)) in with_each_isa(&cases) {
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
            weight_grad(isa, &shape, &padded, &padded_grad, &mut grad_w);
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
                                "{isa:?} {shape:?} tap ({ky}, {kx}) {ci} -> {co}: {} vs {expected}",
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
            eprintln!("SKIPPED: neither AVX-512F nor AVX2 on this CPU");
            return;
        }
        for (isa, shape) in with_each_isa(&shapes()) {
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
            conv_bias_relu_pool(
                isa,
                &shape,
                &padded,
                &weights,
                &bias,
                &mut pooled,
                &mut winners,
            );
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
