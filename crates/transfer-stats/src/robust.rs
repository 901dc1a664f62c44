//! Intervals that assume no normality: the percentile bootstrap of a mean and of a
//! difference, and the probability of improvement P(A > B) with its bootstrap interval.
//! Deterministic: every resample comes from a `SeededRng` stream of the study's master seed
//! and the statistic's label, so a report is the same every time it is written.

use serde::Serialize;
use transfer_core::{SeededRng, sha256_hex};

/// Resamples of every bootstrap.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// A 95% percentile-bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// The 2.5% quantile of the resampled statistic.
    pub low: f64,
    /// The 97.5% quantile.
    pub high: f64,
}

/// The probability that a run of A ends above a run of B (ties count half), with its 95%
/// bootstrap interval: over pairs where the runs are paired, the Mann-Whitney estimate
/// `U / (na nb)` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Improvement {
    /// P(A > B).
    pub probability: f64,
    /// Its 95% interval.
    pub interval: Interval,
}

/// The generator of the statistic named `label` in a study of master seed `seed`.
pub fn stream(seed: u64, label: &str) -> SeededRng {
    let digest = sha256_hex(label.as_bytes());
    let tag = u64::from_str_radix(&digest[..16], 16).unwrap_or(0);
    SeededRng::stream(seed, tag)
}

/// The 2.5% and 97.5% quantiles of `values` (linear interpolation between order statistics,
/// as numpy's default).
fn percentile_interval(mut values: Vec<f64>) -> Interval {
    values.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let position = q * (values.len() - 1) as f64;
        let (i, frac) = (position.floor() as usize, position.fract());
        let next = values[(i + 1).min(values.len() - 1)];
        values[i] + frac * (next - values[i])
    };
    Interval {
        low: at(0.025),
        high: at(0.975),
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// `values` resampled with replacement.
fn resample(values: &[f64], rng: &mut SeededRng) -> Vec<f64> {
    (0..values.len())
        .map(|_| values[rng.below(values.len() as u64) as usize])
        .collect()
}

/// The bootstrap interval of `statistic` over the samples, each resampled on its own.
fn bootstrap(
    samples: &[&[f64]],
    rng: &mut SeededRng,
    statistic: impl Fn(&[Vec<f64>]) -> f64,
) -> Interval {
    let draws = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let resampled: Vec<Vec<f64>> = samples.iter().map(|s| resample(s, rng)).collect();
            statistic(&resampled)
        })
        .collect();
    percentile_interval(draws)
}

/// The bootstrap interval of the mean of `values` (at least two). Means of values in [0, 1]
/// stay in [0, 1], so an accuracy's interval never leaves it.
pub fn mean_interval(values: &[f64], rng: &mut SeededRng) -> Option<Interval> {
    (values.len() >= 2).then(|| bootstrap(&[values], rng, |r| mean(&r[0])))
}

/// The bootstrap interval of `mean(a) - mean(b)`: over pairs when `paired` (equal lengths),
/// each sample resampled on its own otherwise.
pub fn difference_interval(
    a: &[f64],
    b: &[f64],
    paired: bool,
    rng: &mut SeededRng,
) -> Option<Interval> {
    if paired {
        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        (a.len() == b.len())
            .then_some(())
            .and(mean_interval(&d, rng))
    } else {
        (a.len() >= 2 && b.len() >= 2)
            .then(|| bootstrap(&[a, b], rng, |r| mean(&r[0]) - mean(&r[1])))
    }
}

/// The share of pairs in which `a` is above `b`, ties counting half.
fn paired_share(a: &[f64], b: &[f64]) -> f64 {
    let wins: f64 = a.iter().zip(b).map(|(x, y)| score(*x, *y)).sum();
    wins / a.len() as f64
}

/// The Mann-Whitney estimate of P(A > B): `U / (na nb)`, ties counting half.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> f64 {
    let u: f64 = a
        .iter()
        .map(|x| b.iter().map(|y| score(*x, *y)).sum::<f64>())
        .sum();
    u / (a.len() * b.len()) as f64
}

fn score(x: f64, y: f64) -> f64 {
    match x.total_cmp(&y) {
        std::cmp::Ordering::Greater => 1.0,
        std::cmp::Ordering::Equal => 0.5,
        std::cmp::Ordering::Less => 0.0,
    }
}

/// P(A > B) with its bootstrap interval: over pairs when `paired` (equal lengths), the
/// Mann-Whitney estimate with both samples resampled otherwise. Needs two values a side.
pub fn improvement(a: &[f64], b: &[f64], paired: bool, rng: &mut SeededRng) -> Option<Improvement> {
    if a.len() < 2 || b.len() < 2 || (paired && a.len() != b.len()) {
        return None;
    }
    if paired {
        let pairs: Vec<f64> = (0..a.len()).map(|i| i as f64).collect();
        let share = |idx: &[f64]| {
            let (x, y): (Vec<f64>, Vec<f64>) =
                idx.iter().map(|&i| (a[i as usize], b[i as usize])).unzip();
            paired_share(&x, &y)
        };
        Some(Improvement {
            probability: paired_share(a, b),
            interval: bootstrap(&[&pairs], rng, |r| share(&r[0])),
        })
    } else {
        Some(Improvement {
            probability: mann_whitney(a, b),
            interval: bootstrap(&[a, b], rng, |r| mann_whitney(&r[0], &r[1])),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: tests/reference/robust.py (scipy).
    const A: [f64; 10] = [
        0.8512, 0.8566, 0.8479, 0.8601, 0.8534, 0.8490, 0.8555, 0.8523, 0.8580, 0.8502,
    ];
    const B: [f64; 10] = [
        0.8988, 0.9001, 0.8972, 0.9010, 0.8995, 0.8969, 0.8990, 0.8983, 0.9004, 0.8977,
    ];

    fn close(got: Interval, (low, high): (f64, f64)) {
        let width = high - low;
        assert!(
            (got.low - low).abs() < 0.05 * width && (got.high - high).abs() < 0.05 * width,
            "{got:?} against scipy's ({low}, {high})"
        );
    }

    #[test]
    fn bootstrap_intervals_agree_with_scipy_to_sampling_error() {
        let mut rng = stream(2016, "test");
        close(
            mean_interval(&A, &mut rng).unwrap(),
            (0.851_109_999_999_999_9, 0.8558),
        );
        close(
            difference_interval(&B, &A, true, &mut rng).unwrap(),
            (0.043_820_000_000_000_026, 0.047_010_000_000_000_02),
        );
        close(
            difference_interval(&B, &A, false, &mut rng).unwrap(),
            (0.042_979_749_999_999_914, 0.047_889_999_999_999_88),
        );
    }

    #[test]
    fn the_mann_whitney_estimate_matches_scipy() {
        let (x, y) = (
            [0.91, 0.93, 0.92, 0.95, 0.92],
            [0.90, 0.92, 0.92, 0.96, 0.89, 0.91],
        );
        // scipy.stats.mannwhitneyu(x, y).statistic = 20.5 over 5 x 6 pairs.
        assert!((mann_whitney(&x, &y) - 20.5 / 30.0).abs() < 1e-12);
        let i = improvement(&x, &y, false, &mut stream(1, "mw")).unwrap();
        assert!(
            i.interval.low <= i.probability && i.probability <= i.interval.high,
            "{i:?}"
        );
    }

    #[test]
    fn the_same_seed_and_label_give_the_same_interval_and_others_differ() {
        let first = mean_interval(&A, &mut stream(7, "raw p=0.1")).unwrap();
        assert_eq!(
            first,
            mean_interval(&A, &mut stream(7, "raw p=0.1")).unwrap()
        );
        assert_ne!(first, mean_interval(&A, &mut stream(7, "raw p=1")).unwrap());
    }

    #[test]
    fn an_accuracys_interval_stays_in_the_unit_interval() {
        // Two repetitions near 1: the t-interval runs past 1, the bootstrap cannot.
        let near_one = [0.9990, 0.9700];
        let i = mean_interval(&near_one, &mut stream(3, "x")).unwrap();
        assert!(i.low >= 0.97 && i.high <= 0.999, "{i:?}");
        let t = crate::summary::summarize(&near_one);
        assert!(t.ci95_high.unwrap() > 1.0, "{t:?}");
    }

    #[test]
    fn paired_improvement_counts_pairs_and_ties_half() {
        let i = improvement(
            &[0.9, 0.8, 0.7, 0.6],
            &[0.8, 0.8, 0.9, 0.5],
            true,
            &mut stream(1, "p"),
        )
        .unwrap();
        assert!((i.probability - 2.5 / 4.0).abs() < 1e-12, "{i:?}");
        assert!(i.interval.low >= 0.0 && i.interval.high <= 1.0);
    }
}
