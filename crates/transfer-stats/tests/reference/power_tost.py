"""Reference values for transfer-report's power, planning and equivalence tests.

Computed once with statsmodels 0.14 / scipy; the Rust tests in src/power.rs hold the crate's
implementation to them. Run: python3 power_tost.py
"""
import math

import numpy as np
from scipy import stats
from statsmodels.stats.power import TTestIndPower, TTestPower
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

print("# noncentral t CDF: (t, df, nc, cdf)")
for t, df, nc in [(1.5, 9, 2.0), (-0.7, 4, 0.5), (2.262, 9, 4.1), (0.0, 19, 1.0), (3.0, 1, -1.0)]:
    print((t, df, nc, repr(stats.nct.cdf(t, df, nc))))

print("# one-sample / paired power, one-sided larger at 5%: (d, n, power)")
for d, n in [(0.5, 10), (1.2, 10), (0.3, 2), (2.0, 5), (0.1, 50)]:
    print((d, n, repr(TTestPower().power(effect_size=d, nobs=n, alpha=0.05, alternative="larger"))))

print("# two-sample power (equal groups): (d, n per group, power)")
for d, n in [(0.5, 10), (1.2, 10), (0.8, 3), (2.0, 5)]:
    print((d, n, repr(TTestIndPower().power(effect_size=d, nobs1=n, ratio=1.0, alpha=0.05, alternative="larger"))))

print("# detectable effect at 80%: paired (n, d), two-sample (n, d)")
for n in [2, 5, 10, 30]:
    print(("paired", n, repr(TTestPower().solve_power(nobs=n, power=0.8, alpha=0.05, alternative="larger"))))
for n in [3, 10, 30]:
    print(("two", n, repr(TTestIndPower().solve_power(nobs1=n, power=0.8, alpha=0.05, ratio=1.0, alternative="larger"))))

print("# repetitions for 80% at d (statsmodels' real nobs; the crate gives its ceiling)")
for d in [0.3, 0.8, 1.5, 3.0]:
    print(("paired", d, repr(TTestPower().solve_power(effect_size=d, power=0.8, alpha=0.05, alternative="larger"))))
for d in [0.5, 1.0, 2.0]:
    print(("two", d, repr(TTestIndPower().solve_power(effect_size=d, power=0.8, alpha=0.05, ratio=1.0, alternative="larger"))))

print("# TOST, margin 0.002: paired p, Welch p")
a = np.array([0.9921, 0.9930, 0.9915, 0.9925, 0.9932, 0.9919, 0.9927, 0.9922, 0.9918, 0.9929])
b = np.array([0.9919, 0.9926, 0.9920, 0.9921, 0.9928, 0.9915, 0.9925, 0.9924, 0.9914, 0.9926])
print(("paired", repr(ttost_paired(a, b, -0.002, 0.002)[0])))
print(("welch", repr(ttost_ind(a, b, -0.002, 0.002, usevar="unequal")[0])))
c = np.array([0.90, 0.91, 0.93, 0.89])
e = np.array([0.89, 0.92, 0.90, 0.88])
print(("paired-wide", repr(ttost_paired(c, e, -0.002, 0.002)[0])))
print(("welch-wide", repr(ttost_ind(c, e, -0.002, 0.002, usevar="unequal")[0])))
