"""Reference values for transfer-stats' variance module (src/variance.rs).

Computed once with scipy 1.17: the sample standard deviation's 95% chi-square interval,
sqrt((n-1) s^2 / chi2.ppf(0.975, n-1)) to sqrt((n-1) s^2 / chi2.ppf(0.025, n-1)); the binomial
standard error of an accuracy; the smallest n whose 95% t-interval of a mean has a half-width
of at most 0.005. Run: python3 variance.py
"""
import numpy as np
from scipy import stats


def sd_interval(x):
    x = np.asarray(x)
    n = len(x)
    s2 = x.var(ddof=1)
    low = np.sqrt((n - 1) * s2 / stats.chi2.ppf(0.975, n - 1))
    high = np.sqrt((n - 1) * s2 / stats.chi2.ppf(0.025, n - 1))
    return np.sqrt(s2), low, high


sample = [0.8512, 0.8566, 0.8479, 0.8601, 0.8534, 0.8490, 0.8555, 0.8523, 0.8580, 0.8502]
sd, low, high = sd_interval(sample)
print(f"REF_SD = {float(sd)!r}\nREF_SD_LOW = {float(low)!r}\nREF_SD_HIGH = {float(high)!r}")
_, low, high = sd_interval([0.9, 0.92])
print(f"REF_TWO_LOW = {float(low)!r}\nREF_TWO_HIGH = {float(high)!r}")
print(f"REF_BINOMIAL = {float(np.sqrt(0.85 * 0.15 / 3969))!r}")


def reps(sd, half):
    n = 2
    while stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n) > half:
        n += 1
    return n


print(f"REF_REPS_01 = {reps(0.01, 0.005)}\nREF_REPS_014 = {reps(0.014, 0.005)}")
