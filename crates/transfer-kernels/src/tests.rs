use crate::layout::*;
use crate::pool::*;
#[cfg(target_arch = "x86_64")]
use crate::simd::{Avx2, Avx512};
use crate::{Geometry, Grads, Isa, Method, Saved, Weights, act1_len, backward_with, forward_with};
use crate::{assert_close_to_largest, test_values as values, with_each_isa};

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

/// The study's shapes: one channel of 28 x 28, 32 and 32 channels of 3x3 kernels.
fn study(batch: usize) -> Geometry {
    Geometry {
        batch,
        c0: 1,
        c1: 32,
        c2: 32,
        height: 28,
        width: 28,
        kernel: 3,
    }
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
    forward_matches_direct_convolution_with(study(2));
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
    let g = study(6);
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
    let study = study(5);
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
#[ignore = "needs a CPU with both AVX2 and AVX-512F: cargo test -p transfer-kernels -- --ignored"]
fn instruction_sets_give_the_same_bits() {
    let g = study(5);
    assert_eq!(Isa::all().len(), 2, "this CPU lacks AVX2 or AVX-512F");
    let case = Case::new(g, 71);
    for method in [Method::Direct, Method::Winograd] {
        let run = |isa| case.run(method, Some(isa), true);
        assert!(identical(&run(Isa::Avx2), &run(Isa::Avx512)), "{method:?}");
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
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
#[cfg(target_arch = "x86_64")]
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

#[test]
#[should_panic(expected = "unsupported geometry")]
fn an_unsupported_geometry_is_refused_not_computed() {
    let mut case = Case::new(small(3), 80);
    case.g.height = 5;
    case.run(Method::Im2col, None, false);
}

#[test]
#[should_panic(expected = "input holds")]
fn a_short_input_is_refused_not_read_past() {
    let mut case = Case::new(small(3), 81);
    case.input.pop();
    case.run(Method::Im2col, None, false);
}

#[test]
#[should_panic(expected = "w2 holds")]
fn a_weight_of_the_wrong_length_is_refused() {
    let mut case = Case::new(small(3), 82);
    case.params[2].push(0.0);
    case.run(Method::Im2col, None, false);
}

#[test]
#[should_panic(expected = "grad holds")]
fn a_gradient_of_the_wrong_length_is_refused() {
    let mut case = Case::new(small(3), 83);
    case.probe.truncate(1);
    case.run(Method::Im2col, None, false);
}
