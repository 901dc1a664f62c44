//! The im2col method: column matrices of an image's patches and one `gemm` product each.

use crate::pool::bias_relu;
use crate::product::{Mat, gemm_product};
use crate::{Geometry, Weights};

/// conv1 with ReLU for one image: `act1 [p, c1] = relu(cols1 [p, k1] x w1^T + b1)`.
pub(crate) fn conv1_relu(
    g: &Geometry,
    image: &[f32],
    w: Weights<'_>,
    cols1: &mut [f32],
    act1: &mut [f32],
) {
    let k1 = g.c0 * g.taps();
    im2col_planar(g, image, cols1);
    // w1 is [c1, k1] row-major: as the right operand [k1, c1] its rows are strided by 1.
    gemm_product(
        act1,
        [g.pixels(), g.c1, k1],
        Mat::rows(cols1, k1),
        Mat {
            data: w.w1,
            row_stride: 1,
            col_stride: k1,
        },
        false,
        gemm::Parallelism::None,
    );
    bias_relu(act1, w.b1);
}

/// Columns of a channels-first image `[c0, h, w]`: `cols [p, c0 * k * k]` in (channel, tap)
/// order, matching burn's weight layout; zero outside the image.
pub(crate) fn im2col_planar(g: &Geometry, image: &[f32], cols: &mut [f32]) {
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
pub(crate) fn conv_im2col(
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
    gemm_product(
        out,
        [g.pixels(), out_channels, depth],
        Mat::rows(cols, depth),
        Mat::rows(weight_rows, out_channels),
        false,
        gemm::Parallelism::None,
    );
}

/// Columns of a channels-last map `[p, channels]`: `cols [p, k * k * channels]` in (tap,
/// channel) order; zero outside the map.
pub(crate) fn im2col_channels_last(g: &Geometry, map: &[f32], channels: usize, cols: &mut [f32]) {
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
