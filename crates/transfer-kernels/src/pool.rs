//! ReLU and 2x2 max-pooling, forward and backward, and the column sums of bias gradients.

use crate::Geometry;
#[cfg(target_arch = "x86_64")]
use crate::direct;
#[cfg(target_arch = "x86_64")]
use crate::simd::Lanes;

pub(crate) fn bias_relu(map: &mut [f32], bias: &[f32]) {
    for row in map.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v = (*v + b).max(0.0);
        }
    }
}

/// 2x2 max-pooling, stride 2, of a channels-last map `[h * w, c2]` into channels-first
/// `[c2, h/2, w/2]`; records the winner (0..4, row-major in the window, first on ties).
pub(crate) fn max_pool(g: &Geometry, act2: &[f32], out: &mut [f32], mut argmax: Option<&mut [u8]>) {
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
pub(crate) fn keep_if(keep: bool, value: f32) -> f32 {
    f32::from_bits(value.to_bits() & 0u32.wrapping_sub(keep as u32))
}

/// The gradient that reaches conv2's pre-activation through the ReLU and the pooling, into a
/// channels-first map `[c2, p]`: the window's winner gets the pooled gradient when the pooled
/// value is positive, every other pixel zero (one store per window, no branch on the
/// unpredictable winner). `argmax` is channels first.
pub(crate) fn unpool_planar(
    g: &Geometry,
    grad: &[f32],
    pooled: &[f32],
    argmax: &[u8],
    out: &mut [f32],
) {
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
pub(crate) unsafe fn unpool_padded<V: Lanes>(
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
pub(crate) unsafe fn positive_channels_last<V: Lanes>(
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

/// Adds each column's sum over the rows of `map` to `sums`, 16 columns at a time in local
/// accumulators (kept in registers, not reloaded from `sums` row after row).
#[inline(always)]
pub(crate) fn column_sums(map: &[f32], columns: usize, sums: &mut [f32]) {
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
pub(crate) fn add(acc: &mut [f32], values: &[f32]) {
    for (a, &v) in acc.iter_mut().zip(values) {
        *a += v;
    }
}
