//! The spread of a sample and where it comes from: the standard deviation with its
//! chi-square interval, the binomial standard error of an accuracy, and single sources'
//! variances set against all sources' together (reference values: `tests/reference/variance.py`).

use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::summary::{summarize, t_quantile};

/// A sample's spread with 95% intervals (chi-square, which assumes normal values).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Sample size.
    pub n: usize,
    /// Sample standard deviation (n - 1 in the denominator).
    pub sd: f64,
    /// Lower end of the standard deviation's 95% interval.
    pub sd_low: f64,
    /// Upper end of the standard deviation's 95% interval.
    pub sd_high: f64,
    /// Sample variance, `sd²`.
    pub variance: f64,
}

/// The spread of `values`: the standard deviation with its 95% interval
/// `sqrt((n - 1) s² / χ²(0.975; n - 1))` to `sqrt((n - 1) s² / χ²(0.025; n - 1))`. Needs two
/// values.
pub fn spread(values: &[f64]) -> Option<Spread> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let s = summarize(values);
    let df = (n - 1) as f64;
    let chi = ChiSquared::new(df).ok()?;
    let variance = s.std * s.std;
    let bound = |q: f64| (df * variance / chi.inverse_cdf(q)).sqrt();
    Some(Spread {
        n,
        sd: s.std,
        sd_low: bound(0.975),
        sd_high: bound(0.025),
        variance,
    })
}

/// The binomial standard error of an accuracy `accuracy` measured on `n` test images,
/// `sqrt(a (1 - a) / n)`: the spread another test sample of that size would give it.
pub fn binomial_se(accuracy: f64, n: usize) -> f64 {
    if n == 0 {
        return f64::NAN;
    }
    (accuracy * (1.0 - accuracy) / n as f64).max(0.0).sqrt()
}

/// Single sources' spreads set against all sources' together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decomposition {
    /// Each source alone: its name and spread (absent with fewer than two values).
    pub single: Vec<(String, Option<Spread>)>,
    /// All sources together.
    pub all: Option<Spread>,
    /// The single sources' variances added up (over those with a spread).
    pub sum_of_single: f64,
    /// That sum over the all-source variance: near 1 where the sources add up, far below
    /// where they do not (absent without both).
    pub sum_over_all: Option<f64>,
    /// The source whose variance alone is largest, and that variance over the all-source
    /// variance (near 1 or above: that source alone gives about all the spread).
    pub largest: Option<(String, f64)>,
}

/// Decomposes the spread: `single` holds each source's values with only that source varied,
/// `all` the values with every source varied.
pub fn decompose(single: &[(&str, &[f64])], all: &[f64]) -> Decomposition {
    let single: Vec<(String, Option<Spread>)> = single
        .iter()
        .map(|(name, values)| (name.to_string(), spread(values)))
        .collect();
    let all = spread(all);
    let sum_of_single = single
        .iter()
        .filter_map(|(_, s)| s.map(|s| s.variance))
        .sum::<f64>();
    let positive = all.map(|a| a.variance).filter(|v| *v > 0.0);
    let largest = single
        .iter()
        .filter_map(|(name, s)| s.map(|s| (name.clone(), s.variance)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    Decomposition {
        sum_over_all: positive.map(|v| sum_of_single / v),
        largest: largest
            .zip(positive)
            .map(|((name, v), all)| (name, v / all)),
        single,
        all,
        sum_of_single,
    }
}

/// The repetitions whose 95% t-interval of the mean has a half-width of at most `half` when
/// the runs' standard deviation is `sd`: the smallest `n >= 2` with
/// `t(0.975; n - 1) sd / sqrt(n) <= half` (at most `max`; `None` past it).
pub fn repetitions_for_half_width(sd: f64, half: f64, max: u32) -> Option<u32> {
    if !(sd.is_finite() && half > 0.0) {
        return None;
    }
    (2..=max).find(|&n| t_quantile(0.975, f64::from(n - 1)) * sd / f64::from(n).sqrt() <= half)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: tests/reference/variance.py (scipy).
    const SAMPLE: [f64; 10] = [
        0.8512, 0.8566, 0.8479, 0.8601, 0.8534, 0.8490, 0.8555, 0.8523, 0.8580, 0.8502,
    ];

    #[test]
    fn the_spreads_interval_is_scipys_chi_square_interval() {
        let s = spread(&SAMPLE).unwrap();
        assert!((s.sd - REF_SD).abs() < 1e-12, "{s:?}");
        assert!((s.sd_low - REF_SD_LOW).abs() < 1e-9, "{s:?}");
        assert!((s.sd_high - REF_SD_HIGH).abs() < 1e-9, "{s:?}");
        let two = spread(&[0.9, 0.92]).unwrap();
        assert!((two.sd_low - REF_TWO_LOW).abs() < 1e-9, "{two:?}");
        assert!((two.sd_high - REF_TWO_HIGH).abs() < 1e-6, "{two:?}");
        assert!(spread(&[0.9]).is_none());
    }

    #[test]
    fn binomial_error_of_an_accuracy() {
        assert!((binomial_se(0.85, 3969) - REF_BINOMIAL).abs() < 1e-12);
        assert_eq!(binomial_se(1.0, 3969), 0.0);
    }

    #[test]
    fn single_sources_against_all() {
        let a = [0.80, 0.82, 0.84];
        let b = [0.81, 0.81, 0.82];
        let all = [0.78, 0.84, 0.80, 0.86];
        let d = decompose(&[("init", &a), ("order", &b), ("none", &[0.8])], &all);
        let (va, vb, vall) = (0.0004, 1.0 / 30_000.0, 0.001_333_333_333_333_333_4);
        assert!((d.sum_of_single - (va + vb)).abs() < 1e-12, "{d:?}");
        assert!(
            (d.sum_over_all.unwrap() - (va + vb) / vall).abs() < 1e-9,
            "{d:?}"
        );
        let (name, share) = d.largest.clone().unwrap();
        assert_eq!(name, "init");
        assert!((share - va / vall).abs() < 1e-9);
        assert!(d.single[2].1.is_none());
    }

    #[test]
    fn repetitions_for_an_interval_of_a_given_width() {
        assert_eq!(
            repetitions_for_half_width(0.01, 0.005, 1000),
            Some(REF_REPS_01)
        );
        assert_eq!(
            repetitions_for_half_width(0.014, 0.005, 1000),
            Some(REF_REPS_014)
        );
        assert_eq!(repetitions_for_half_width(1.0, 0.001, 10), None);
    }

    const REF_SD: f64 = 0.004035894503631696;
    const REF_SD_LOW: f64 = 0.0027760303303226595;
    const REF_SD_HIGH: f64 = 0.007367970101404806;
    const REF_TWO_LOW: f64 = 0.006309502281565691;
    const REF_TWO_HIGH: f64 = 0.45127780129753164;
    const REF_BINOMIAL: f64 = 0.005667800340113373;
    const REF_REPS_01: u32 = 18;
    const REF_REPS_014: u32 = 33;
}
