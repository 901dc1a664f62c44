//! Power, planning and equivalence of a comparison: how likely its one-sided test was to find
//! the difference it saw, the smallest difference it could find, how many repetitions would
//! find the one it saw, and whether the data show the two sides equal within a margin (two
//! one-sided tests). The noncentral t distribution is Lenth's AS 243 over `statrs`' incomplete
//! beta; every number is held to statsmodels' in the tests
//! (`tests/reference/power_tost.py`).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};
use statrs::function::beta::beta_reg;
use statrs::function::gamma::ln_gamma;

use crate::summary::{Difference, student_t_tail, t_quantile};

/// The level of every test here: 5%, one-sided.
pub const ALPHA: f64 = 0.05;
/// The power planning aims at.
pub const TARGET_POWER: f64 = 0.8;
/// The most repetitions planning searches; more is reported as "more than this".
pub const MAX_REPETITIONS: u32 = 1000;

/// How a comparison's test is designed, which fixes its degrees of freedom and noncentrality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// `n` pairs: a one-sample t-test of the differences (statsmodels' `TTestPower`).
    Paired(usize),
    /// Two samples of `a` and `b` values: the pooled two-sample t-test (`TTestIndPower`),
    /// the standard planning model for the Welch test the report runs.
    TwoSample(usize, usize),
}

impl Design {
    /// The same design with `n` repetitions on each side.
    fn with_repetitions(self, n: usize) -> Design {
        match self {
            Design::Paired(_) => Design::Paired(n),
            Design::TwoSample(..) => Design::TwoSample(n, n),
        }
    }

    fn df_and_scale(self) -> (f64, f64) {
        match self {
            Design::Paired(n) => (n as f64 - 1.0, (n as f64).sqrt()),
            Design::TwoSample(a, b) => {
                let (a, b) = (a as f64, b as f64);
                (a + b - 2.0, (a * b / (a + b)).sqrt())
            }
        }
    }
}

/// `P(T <= t)` for the noncentral t distribution with `df` degrees of freedom and
/// noncentrality `nc` (AS 243, Lenth 1989, as R's `pnt`); NaN for `df <= 0`.
pub fn noncentral_t_cdf(t: f64, df: f64, nc: f64) -> f64 {
    if df.is_nan() || df <= 0.0 || t.is_nan() || nc.is_nan() {
        return f64::NAN;
    }
    let (negative, tt, del) = if t >= 0.0 {
        (false, t, nc)
    } else {
        (true, -t, -nc)
    };
    let x = tt * tt / (tt * tt + df);
    let mut tnc = 0.0;
    if x > 0.0 {
        let lambda = del * del;
        let mut p = 0.5 * (-0.5 * lambda).exp();
        let mut q = (2.0 / std::f64::consts::PI).sqrt() * p * del;
        let mut s = 0.5 - p;
        let mut a = 0.5;
        let b = 0.5 * df;
        let rxb = (1.0 - x).powf(b);
        let albeta = 0.5 * std::f64::consts::PI.ln() + ln_gamma(b) - ln_gamma(0.5 + b);
        let mut xodd = beta_reg(a, b, x);
        let mut godd = 2.0 * rxb * (a * x.ln() - albeta).exp();
        let bx = b * x;
        let mut xeven = if bx < f64::EPSILON { bx } else { 1.0 - rxb };
        let mut geven = bx * rxb;
        tnc = p * xodd + q * xeven;
        for it in 1..=1000 {
            a += 1.0;
            xodd -= godd;
            xeven -= geven;
            godd *= x * (a + b - 1.0) / a;
            geven *= x * (a + b - 0.5) / (a + 0.5);
            p *= lambda / (2 * it) as f64;
            q *= lambda / (2 * it + 1) as f64;
            tnc += p * xodd + q * xeven;
            s -= p;
            if s <= 0.0 && it > 1 {
                break;
            }
            if (2.0 * s * (xodd - godd)).abs() < 1e-12 {
                break;
            }
        }
    }
    tnc += Normal::standard().cdf(-del);
    if negative {
        (1.0 - tnc).clamp(0.0, 1.0)
    } else {
        tnc.min(1.0)
    }
}

/// The power of the one-sided 5% t-test of `design` at standardised effect `d`: the
/// probability it finds `a > b` when the true effect is `d`.
pub fn power(d: f64, design: Design) -> f64 {
    let (df, scale) = design.df_and_scale();
    if df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if d.is_infinite() {
        return if d > 0.0 { 1.0 } else { 0.0 };
    }
    let critical = t_quantile(1.0 - ALPHA, df);
    1.0 - noncentral_t_cdf(critical, df, d * scale)
}

/// The smallest standardised effect `design` finds with [`TARGET_POWER`].
pub fn detectable_effect(design: Design) -> f64 {
    let (mut low, mut high) = (0.0, 1.0);
    while power(high, design) < TARGET_POWER {
        high *= 2.0;
        if high > 1e6 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if power(mid, design) < TARGET_POWER {
            low = mid;
        } else {
            high = mid;
        }
    }
    high
}

/// The fewest repetitions (pairs, or values on each side) at which the design's test finds
/// effect `d` with [`TARGET_POWER`]: `None` when the effect is not positive (no number of
/// repetitions finds a difference that goes the other way), `Some(Err(MAX_REPETITIONS))`
/// when more than that would be needed.
pub fn repetitions_needed(d: f64, design: Design) -> Option<Result<u32, u32>> {
    if d.is_nan() || d <= 0.0 {
        return None;
    }
    let enough = |n: u32| power(d, design.with_repetitions(n as usize)) >= TARGET_POWER;
    if !enough(MAX_REPETITIONS) {
        return Some(Err(MAX_REPETITIONS));
    }
    let (mut low, mut high) = (1, MAX_REPETITIONS);
    while high - low > 1 {
        let mid = (low + high) / 2;
        if enough(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    Some(Ok(high))
}

/// What a comparison's test could and could not find, at the 5% level, one-sided, before
/// Holm's correction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Planning {
    /// The power of the test at the observed standardised effect.
    pub power_at_observed: f64,
    /// The smallest difference in accuracy the test finds with 80% power at the study's
    /// repetitions (the detectable standardised effect times the observed spread).
    pub detectable_difference: f64,
    /// The repetitions at which the test finds the observed effect with 80% power; absent
    /// when the observed difference goes the other way.
    pub repetitions_for_80: Option<u32>,
    /// True when even [`MAX_REPETITIONS`] would not suffice (`repetitions_for_80` is then
    /// that bound).
    pub more_than_max: bool,
}

/// The planning figures of a test `t` of `design`.
pub fn planning(t: &Difference, design: Design) -> Planning {
    let needed = repetitions_needed(t.effect_size, design);
    Planning {
        power_at_observed: power(t.effect_size, design),
        detectable_difference: detectable_effect(design) * t.sd,
        repetitions_for_80: needed.map(|r| r.unwrap_or_else(|max| max)),
        more_than_max: matches!(needed, Some(Err(_))),
    }
}

/// Two one-sided tests (TOST) of whether `|a - b| < margin`: the larger of the two one-sided
/// p-values, each at the 5% level, so equivalence at 5% is the difference's 90% interval
/// inside `(-margin, margin)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Equivalence {
    /// The margin, in accuracy.
    pub margin: f64,
    /// The TOST p-value.
    pub p: f64,
    /// Whether the two sides are shown equal within the margin (p < 0.05).
    pub equivalent: bool,
}

/// The TOST of a test `t` (its difference, standard error and degrees of freedom) against
/// `margin`.
pub fn equivalence(t: &Difference, margin: f64) -> Equivalence {
    let p = if t.se == 0.0 {
        if t.difference.abs() < margin {
            0.0
        } else {
            1.0
        }
    } else {
        let upper_of = |x: f64| {
            // P(T > x) for any x.
            let tail = student_t_tail(x.abs(), t.df);
            if x >= 0.0 { tail } else { 1.0 - tail }
        };
        let p_above_low = upper_of((t.difference + margin) / t.se);
        let p_below_high = 1.0 - upper_of((t.difference - margin) / t.se);
        p_above_low.max(p_below_high)
    };
    Equivalence {
        margin,
        p,
        equivalent: p < ALPHA,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{paired, unpaired};

    // Reference values: tests/reference/power_tost.py (statsmodels 0.14, scipy).

    #[test]
    fn the_noncentral_t_matches_scipy() {
        for (t, df, nc, expected) in [
            (1.5, 9.0, 2.0, 0.304_323_312_520_262_1),
            (-0.7, 4.0, 0.5, 0.129_966_198_677_265_28),
            (2.262, 9.0, 4.1, 0.047_039_534_168_315_335),
            (0.0, 19.0, 1.0, 0.158_655_253_931_457_07),
            (3.0, 1.0, -1.0, 0.978_272_964_564_714_1),
        ] {
            let got = noncentral_t_cdf(t, df, nc);
            assert!(
                (got - expected).abs() < 1e-9,
                "t {t} df {df} nc {nc}: {got}"
            );
        }
    }

    #[test]
    fn power_matches_statsmodels() {
        for (d, n, expected) in [
            (0.5, 10, 0.427_289_826_771_178_2),
            (1.2, 10, 0.967_475_248_564_820_8),
            (0.3, 2, 0.080_816_097_093_807_77),
            (2.0, 5, 0.974_830_566_359_738_4),
            (0.1, 50, 0.171_696_658_716_701_6),
        ] {
            let got = power(d, Design::Paired(n));
            assert!((got - expected).abs() < 1e-6, "paired d {d} n {n}: {got}");
        }
        for (d, n, expected) in [
            (0.5, 10, 0.284_763_491_351_250_45),
            (1.2, 10, 0.825_222_452_548_708_9),
            (0.8, 3, 0.205_015_627_600_922_62),
            (2.0, 5, 0.891_582_808_186_882_1),
        ] {
            let got = power(d, Design::TwoSample(n, n));
            assert!((got - expected).abs() < 1e-6, "two d {d} n {n}: {got}");
        }
    }

    #[test]
    fn detectable_effects_match_statsmodels() {
        for (n, expected) in [
            (2, 5.792_801_486_804_05),
            (5, 1.359_417_315_970_048),
            (10, 0.852_839_137_572_982_5),
            (30, 0.464_947_219_503_093_2),
        ] {
            // statsmodels' root finder stops within about 1e-5 of the root; the power at its
            // answer is 80% to that precision.
            let got = detectable_effect(Design::Paired(n));
            assert!((got - expected).abs() < 1e-4, "paired n {n}: {got}");
            assert!((power(expected, Design::Paired(n)) - TARGET_POWER).abs() < 1e-5);
        }
        for (n, expected) in [
            (3, 2.481_946_829_584_363_6),
            (10, 1.156_297_269_864_037_7),
            (30, 0.649_629_565_103_093_2),
        ] {
            let got = detectable_effect(Design::TwoSample(n, n));
            assert!((got - expected).abs() < 1e-4, "two n {n}: {got}");
            let at_expected = power(expected, Design::TwoSample(n, n));
            assert!((at_expected - TARGET_POWER).abs() < 1e-5);
        }
    }

    #[test]
    fn repetitions_needed_are_the_ceiling_of_statsmodels() {
        for (d, nobs) in [
            (0.3, 70.067_904_089_916_61),
            (0.8, 11.144_239_850_374_804),
            (1.5, 4.440_254_127_285_652),
            (3.0, 2.552_326_264_541_636),
        ] {
            let expected = f64::ceil(nobs) as u32;
            assert_eq!(
                repetitions_needed(d, Design::Paired(10)),
                Some(Ok(expected)),
                "d {d}"
            );
        }
        for (d, nobs) in [
            (0.5, 50.150_783_386_857_44),
            (1.0, 13.097_761_620_753_06),
            (2.0, 3.987_012_928_210_557),
        ] {
            let expected = f64::ceil(nobs) as u32;
            assert_eq!(
                repetitions_needed(d, Design::TwoSample(4, 4)),
                Some(Ok(expected)),
                "d {d}"
            );
        }
        assert_eq!(repetitions_needed(-0.4, Design::Paired(10)), None);
        assert_eq!(
            repetitions_needed(0.01, Design::Paired(10)),
            Some(Err(MAX_REPETITIONS))
        );
    }

    #[test]
    fn equivalence_matches_statsmodels_tost() {
        let a = [
            0.9921, 0.9930, 0.9915, 0.9925, 0.9932, 0.9919, 0.9927, 0.9922, 0.9918, 0.9929,
        ];
        let b = [
            0.9919, 0.9926, 0.9920, 0.9921, 0.9928, 0.9915, 0.9925, 0.9924, 0.9914, 0.9926,
        ];
        let paired_tost = equivalence(&paired(&a, &b).unwrap(), 0.002);
        assert!(
            (paired_tost.p - 9.396_978_649_973_07e-9).abs() < 1e-12,
            "{paired_tost:?}"
        );
        assert!(paired_tost.equivalent);
        let welch_tost = equivalence(&unpaired(&a, &b).unwrap(), 0.002);
        assert!(
            (welch_tost.p - 2.702_353_970_282_641_6e-7).abs() < 1e-10,
            "{welch_tost:?}"
        );
        let (c, e) = ([0.90, 0.91, 0.93, 0.89], [0.89, 0.92, 0.90, 0.88]);
        let wide = equivalence(&paired(&c, &e).unwrap(), 0.002);
        assert!((wide.p - 0.800_279_388_035_031_5).abs() < 1e-9, "{wide:?}");
        assert!(!wide.equivalent);
        let wide = equivalence(&unpaired(&c, &e).unwrap(), 0.002);
        assert!((wide.p - 0.733_859_449_808_295_1).abs() < 1e-9, "{wide:?}");
    }
}
