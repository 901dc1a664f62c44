//! Summary statistics, Welch's and the paired t-test, effect sizes with intervals and Holm's
//! adjustment; the distributions are `statrs`'.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Mean, spread and 95% confidence interval of a sample.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Sample size.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator; 0 for one value, where
    /// [`Summary::has_spread`] is false).
    pub std: f64,
    /// Lower end of the 95% confidence interval of the mean (Student's t); absent with
    /// fewer than two values, where no interval can be computed.
    pub ci95_low: Option<f64>,
    /// Upper end of the 95% confidence interval of the mean; absent with fewer than two
    /// values.
    pub ci95_high: Option<f64>,
}

impl Summary {
    /// Whether the sample has two values or more, so that its spread and interval exist.
    pub fn has_spread(&self) -> bool {
        self.n > 1
    }

    /// The 95% confidence interval of the mean, where there is one.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.ci95_low.zip(self.ci95_high)
    }

    /// Half the width of the 95% confidence interval, where there is one.
    pub fn half_width(&self) -> Option<f64> {
        self.interval().map(|(low, high)| (high - low) / 2.0)
    }

    /// Whether `value` lies inside the 95% confidence interval (never without one).
    pub fn contains(&self, value: f64) -> bool {
        self.interval()
            .is_some_and(|(low, high)| value >= low && value <= high)
    }
}

/// Summarises a sample. An empty sample gives NaNs; one value gives no interval.
pub fn summarize(values: &[f64]) -> Summary {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let half = (n > 1).then(|| t_quantile(0.975, (n - 1) as f64) * std / (n as f64).sqrt());
    Summary {
        n,
        mean,
        std,
        ci95_low: half.map(|h| mean - h),
        ci95_high: half.map(|h| mean + h),
    }
}

/// Welch's unequal-variance t-test of two samples.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Welch {
    /// Difference of means, `mean(a) - mean(b)`.
    pub difference: f64,
    /// The t statistic.
    pub t: f64,
    /// Welch-Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p_two_sided: f64,
    /// One-sided p-value for `mean(a) > mean(b)`.
    pub p_greater: f64,
}

/// Welch's t-test of `a` against `b`. Needs two values in each sample; with zero variance in
/// both, the p-value is 0 for different means and 1 for equal ones.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (sa, sb) = (summarize(a), summarize(b));
    let (va, vb) = (
        sa.std.powi(2) / a.len() as f64,
        sb.std.powi(2) / b.len() as f64,
    );
    let difference = sa.mean - sb.mean;
    if va + vb == 0.0 {
        let p = if difference == 0.0 { 1.0 } else { 0.0 };
        let greater = if difference > 0.0 { 0.0 } else { 1.0 };
        return Some(Welch {
            difference,
            t: f64::INFINITY * difference.signum(),
            df: f64::NAN,
            p_two_sided: p,
            p_greater: greater,
        });
    }
    let t = difference / (va + vb).sqrt();
    let df =
        (va + vb).powi(2) / (va.powi(2) / (a.len() - 1) as f64 + vb.powi(2) / (b.len() - 1) as f64);
    let tail = student_t_tail(t.abs(), df);
    Some(Welch {
        difference,
        t,
        df,
        p_two_sided: (2.0 * tail).min(1.0),
        p_greater: if t > 0.0 { tail } else { 1.0 - tail },
    })
}

/// A test of whether `mean(a) > mean(b)`, with the difference's 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Difference {
    /// `mean(a) - mean(b)` (paired: the mean of the differences).
    pub difference: f64,
    /// Lower end of its 95% confidence interval.
    pub ci95_low: f64,
    /// Upper end.
    pub ci95_high: f64,
    /// Standardised effect: the difference over the standard deviation of the differences
    /// (paired, Cohen's d_z) or over the pooled standard deviation (unpaired, Cohen's d);
    /// infinite where that deviation is zero.
    pub effect_size: f64,
    /// Lower end of the effect size's approximate 95% interval (normal approximation of its
    /// sampling variance: `1/n + d²/(2n)` for `n` pairs, `(na + nb)/(na·nb) + d²/(2(na + nb))`
    /// for two samples).
    pub effect_ci95_low: f64,
    /// Upper end of that interval.
    pub effect_ci95_high: f64,
    /// The t statistic.
    pub t: f64,
    /// Degrees of freedom (paired: pairs - 1; unpaired: Welch-Satterthwaite).
    pub df: f64,
    /// One-sided p-value for `mean(a) > mean(b)`.
    pub p_greater: f64,
    /// The difference's standard error (paired: of the mean difference; unpaired: Welch's).
    pub se: f64,
    /// The spread the effect size is measured in: the standard deviation of the differences
    /// (paired) or the pooled standard deviation (unpaired).
    pub sd: f64,
}

/// The paired t-test of `a` against `b`, matched element by element. Needs two pairs.
pub fn paired(a: &[f64], b: &[f64]) -> Option<Difference> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let s = summarize(&d);
    let (ci95_low, ci95_high) = s.interval()?;
    let n = d.len() as f64;
    let df = n - 1.0;
    let se = s.std / n.sqrt();
    let (t, p_greater) = one_sided(s.mean, se, df);
    let effect_size = s.mean / s.std;
    let (effect_ci95_low, effect_ci95_high) =
        effect_interval(effect_size, 1.0 / n + effect_size * effect_size / (2.0 * n));
    Some(Difference {
        difference: s.mean,
        ci95_low,
        ci95_high,
        effect_size,
        effect_ci95_low,
        effect_ci95_high,
        t,
        df,
        p_greater,
        se,
        sd: s.std,
    })
}

/// Welch's test of `a` against `b` as a [`Difference`], with the Welch 95% interval.
pub fn unpaired(a: &[f64], b: &[f64]) -> Option<Difference> {
    let w = welch(a, b)?;
    let (sa, sb) = (summarize(a), summarize(b));
    let spread = (sa.std.powi(2) / a.len() as f64 + sb.std.powi(2) / b.len() as f64).sqrt();
    let half = if spread == 0.0 {
        0.0
    } else {
        t_quantile(0.975, w.df) * spread
    };
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let pooled =
        (((na - 1.0) * sa.std.powi(2) + (nb - 1.0) * sb.std.powi(2)) / (na + nb - 2.0)).sqrt();
    let effect_size = w.difference / pooled;
    let (effect_ci95_low, effect_ci95_high) = effect_interval(
        effect_size,
        (na + nb) / (na * nb) + effect_size * effect_size / (2.0 * (na + nb)),
    );
    Some(Difference {
        difference: w.difference,
        ci95_low: w.difference - half,
        ci95_high: w.difference + half,
        effect_size,
        effect_ci95_low,
        effect_ci95_high,
        t: w.t,
        df: w.df,
        p_greater: w.p_greater,
        se: spread,
        sd: pooled,
    })
}

/// The t statistic of `mean` with standard error `se` and its one-sided p-value for a
/// positive mean; a zero standard error gives p = 0 for a positive mean, else 1.
fn one_sided(mean: f64, se: f64, df: f64) -> (f64, f64) {
    if se == 0.0 {
        let p = if mean > 0.0 { 0.0 } else { 1.0 };
        return (f64::INFINITY * mean.signum(), p);
    }
    let t = mean / se;
    let tail = student_t_tail(t.abs(), df);
    (t, if t > 0.0 { tail } else { 1.0 - tail })
}

/// Holm's step-down adjustment of p-values for testing them together: the family-wise error
/// rate stays at the level each adjusted value is compared with. Same order as given.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// `P(T > t)` for Student's t with `df` degrees of freedom, `t >= 0`; NaN when `df` is not
/// positive.
pub fn student_t_tail(t: f64, df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df).map_or(f64::NAN, |dist| dist.sf(t))
}

/// The `p`-quantile of Student's t with `df` degrees of freedom (`p` in (0.5, 1)); NaN when
/// `df` is not positive or `p` is outside [0, 1].
pub fn t_quantile(p: f64, df: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, df) {
        Ok(dist) if (0.0..=1.0).contains(&p) => dist.inverse_cdf(p),
        _ => f64::NAN,
    }
}

/// The standard normal distribution's 97.5% quantile, the half-width of a 95% interval in
/// standard errors.
fn z_975() -> f64 {
    Normal::standard().inverse_cdf(0.975)
}

/// The approximate 95% interval of a standardised effect `d` with sampling variance
/// `variance` (the large-sample normal approximation). An infinite effect has no finite
/// interval and keeps itself at both ends.
fn effect_interval(d: f64, variance: f64) -> (f64, f64) {
    if !d.is_finite() {
        return (d, d);
    }
    let half = z_975() * variance.sqrt();
    (d - half, d + half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holm_matches_the_textbook_example() {
        // p = (0.01, 0.04, 0.03, 0.005): sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1,
        // made non-decreasing: 0.02, 0.03, 0.06, 0.06.
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.005]);
        let expected = [0.03, 0.06, 0.06, 0.02];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{adjusted:?}");
        }
        assert_eq!(holm(&[0.9, 0.8]), [1.0, 1.0]);
        assert_eq!(holm(&[0.02, 0.3]), [0.04, 0.3]);
    }

    #[test]
    fn the_paired_test_matches_scipy() {
        // scipy.stats.ttest_rel([0.91, 0.93, 0.92, 0.95], [0.90, 0.91, 0.92, 0.92],
        // alternative="greater"): t = 2.32379, p = 0.051364.
        let d = paired(&[0.91, 0.93, 0.92, 0.95], &[0.90, 0.91, 0.92, 0.92]).unwrap();
        assert!((d.t - 2.323_790_007_724_453_8).abs() < 1e-9, "{d:?}");
        assert!(
            (d.p_greater - 0.051_364_039_429_199_32).abs() < 1e-7,
            "{d:?}"
        );
        assert!((d.difference - 0.015).abs() < 1e-12);
        assert!(d.ci95_low < 0.0 && d.ci95_high > 0.015);
    }

    #[test]
    fn t_quantiles_match_tables() {
        // Two-sided 95% critical values from standard tables.
        for (df, expected) in [(1.0, 12.706), (2.0, 4.303), (9.0, 2.262), (30.0, 2.042)] {
            let q = t_quantile(0.975, df);
            assert!((q - expected).abs() < 1e-3, "df {df}: {q}");
        }
    }

    #[test]
    fn summary_of_a_known_sample() {
        let s = summarize(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean, 2.5);
        assert!((s.std - 1.290_994).abs() < 1e-6);
        // 2.5 +- 3.182 * 1.291 / 2
        assert!((s.ci95_high.unwrap() - 4.554_1).abs() < 1e-3, "{s:?}");
        assert!((s.half_width().unwrap() - 2.054_1).abs() < 1e-3, "{s:?}");
    }

    #[test]
    fn one_value_has_no_interval() {
        let s = summarize(&[0.7783]);
        assert_eq!((s.n, s.mean), (1, 0.7783));
        assert_eq!(s.interval(), None);
        assert_eq!(s.half_width(), None);
        assert!(!s.has_spread() && !s.contains(0.7783));
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"ci95_low\":null"), "{json}");
    }

    #[test]
    fn welch_matches_a_reference_computation() {
        // scipy.stats.ttest_ind(a, b, equal_var=False): t = -2.21924, p = 0.035972, df 24.4962.
        let a = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0];
        let b = [
            28.2, 26.6, 20.1, 23.3, 25.2, 22.1, 17.7, 27.6, 20.6, 13.7, 23.2, 17.5, 20.6, 18.0,
            23.9, 21.6, 24.3, 20.4, 24.0, 13.2,
        ];
        let w = welch(&a, &b).unwrap();
        assert!((w.t + 2.219_241).abs() < 1e-5, "{w:?}");
        assert!((w.df - 24.496_223).abs() < 1e-5, "{w:?}");
        assert!((w.p_two_sided - 0.035_972).abs() < 1e-5, "{w:?}");
        assert!(
            (w.p_greater - (1.0 - 0.035_972 / 2.0)).abs() < 1e-5,
            "{w:?}"
        );
    }

    #[test]
    fn effect_intervals_follow_the_normal_approximation() {
        // Paired: d_z = 1 from 4 pairs has variance 1/4 + 1/8; unpaired: d = 1 from 4 and 4
        // values has variance 8/16 + 1/16. Half-widths are 1.959964 standard errors.
        let d = paired(&[2.0, 3.0, 4.0, 5.0], &[1.0, 1.0, 2.0, 4.0]).unwrap();
        let d_z = d.effect_size;
        let se = (0.25 + d_z * d_z / 8.0).sqrt();
        assert!(
            (d.effect_ci95_low - (d_z - 1.959_964 * se)).abs() < 1e-6,
            "{d:?}"
        );
        assert!(
            (d.effect_ci95_high - (d_z + 1.959_964 * se)).abs() < 1e-6,
            "{d:?}"
        );
        let u = unpaired(&[1.0, 2.0, 3.0, 4.0], &[0.0, 1.0, 2.0, 3.0]).unwrap();
        let d = u.effect_size;
        assert!((d - 1.0 / 1.290_994_448_735_805_6).abs() < 1e-12, "{u:?}");
        let se = (0.5 + d * d / 16.0).sqrt();
        assert!((u.effect_ci95_high - u.effect_ci95_low - 2.0 * 1.959_964 * se).abs() < 1e-5);
        assert!(u.effect_ci95_low < d && d < u.effect_ci95_high);
    }

    #[test]
    fn identical_differences_give_an_infinite_effect_and_no_nan() {
        let d = paired(&[3.0, 2.0, 1.0], &[2.0, 1.0, 0.0]).unwrap();
        assert!(d.effect_size.is_infinite() && d.effect_size > 0.0, "{d:?}");
        assert_eq!(d.effect_ci95_low, d.effect_size);
        assert_eq!(d.effect_ci95_high, d.effect_size);
        assert_eq!(d.p_greater, 0.0);
    }

    #[test]
    fn distributions_outside_their_domain_give_nan() {
        assert!(t_quantile(0.975, 0.0).is_nan());
        assert!(t_quantile(f64::NAN, 3.0).is_nan());
        assert!(student_t_tail(1.0, f64::NAN).is_nan());
    }
}
