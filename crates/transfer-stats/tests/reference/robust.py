"""Reference values for transfer-report's robust intervals (src/robust.rs).

Computed once with scipy 1.x: the percentile bootstrap of a mean and of a paired or unpaired
difference (10,000 resamples; a bootstrap from another generator agrees to sampling error, so
the Rust tests allow 5% of the interval's width), and the Mann-Whitney estimate of P(A > B)
(U / (na nb), exact). Run: python3 robust.py
"""
import numpy as np
from scipy import stats

a = np.array([0.8512, 0.8566, 0.8479, 0.8601, 0.8534, 0.8490, 0.8555, 0.8523, 0.8580, 0.8502])
b = np.array([0.8988, 0.9001, 0.8972, 0.9010, 0.8995, 0.8969, 0.8990, 0.8983, 0.9004, 0.8977])
rng = np.random.default_rng(2016)
mean = stats.bootstrap((a,), np.mean, n_resamples=10000, method="percentile", confidence_level=0.95, random_state=rng)
print("mean a", repr(mean.confidence_interval.low), repr(mean.confidence_interval.high))
d = b - a
paired = stats.bootstrap((d,), np.mean, n_resamples=10000, method="percentile", random_state=rng)
print("paired b-a", repr(paired.confidence_interval.low), repr(paired.confidence_interval.high))
unpaired = stats.bootstrap((b, a), lambda x, y: np.mean(x) - np.mean(y), n_resamples=10000, method="percentile", random_state=rng)
print("unpaired b-a", repr(unpaired.confidence_interval.low), repr(unpaired.confidence_interval.high))
x = np.array([0.91, 0.93, 0.92, 0.95, 0.92])
y = np.array([0.90, 0.92, 0.92, 0.96, 0.89, 0.91])
u = stats.mannwhitneyu(x, y, alternative="greater").statistic
print("mann-whitney U", repr(u), "P(x > y) =", repr(u / (len(x) * len(y))))
