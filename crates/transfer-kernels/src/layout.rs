//! Rearrangements between burn's layouts and the kernels' own: channels first and last, and
//! convolution weights by tap.

#[cfg(target_arch = "x86_64")]
use crate::simd::Lanes;

/// A channels-first map `[channels, positions]` into channels-last `out [positions, channels]`.
pub(crate) fn channels_last(map: &[f32], channels: usize, out: &mut [f32]) {
    let positions = map.len() / channels;
    for (c, plane) in map.chunks_exact(positions).enumerate() {
        for (position, &v) in plane.iter().enumerate() {
            out[position * channels + c] = v;
        }
    }
}

/// A channels-last map `[positions, channels]` into channels-first `out [channels, positions]`.
#[cfg(test)]
pub(crate) fn channels_first<T: Copy>(map: &[T], channels: usize, out: &mut [T]) {
    let positions = map.len() / channels;
    for (position, row) in map.chunks_exact(channels).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[c * positions + position] = v;
        }
    }
}

/// A convolution's weight `[out, in, k, k]` as `[k * k * in, out]`, row `(tap, in)`: the
/// right operand of the channels-last im2col, and the direct kernels' layout.
pub(crate) fn tap_in_out(out: usize, inp: usize, k: usize, weight: &[f32]) -> Vec<f32> {
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
pub(crate) fn flipped_weight_rows(out: usize, inp: usize, k: usize, weight: &[f32]) -> Vec<f32> {
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
pub(crate) fn tap_in_out_to_burn(out: usize, inp: usize, k: usize, grad: &[f32]) -> Vec<f32> {
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
pub(crate) fn tap_major_to_burn(c2: usize, c1: usize, k: usize, grad: &[f32]) -> Vec<f32> {
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
/// [`channels_first`] for `f32` maps, by 16 x 16 blocks transposed in registers
/// ([`Lanes::transpose`]).
///
/// # Safety
///
/// The CPU must have `V`'s instruction set.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) unsafe fn channels_first_f32<V: Lanes>(map: &[f32], channels: usize, out: &mut [f32]) {
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
