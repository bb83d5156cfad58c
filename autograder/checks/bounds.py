"""Tail bounds that size the stochastic checks' tolerances.

Every stochastic check has a budget ``FALSE_FAILURE_PROBABILITY`` for failing a correct
implementation, split over the statistical tests it makes (union bound).

- Counts of kept units are binomial, and their tails are computed exactly (``binomial_interval``),
  which needs several times fewer draws than Hoeffding's bound for the same guarantees.
- Sums of bounded values (the mean output) use Hoeffding's inequality: for n independent variables
  with values in ranges of widths w_i, P(|sum - E sum| >= s) <= 2 exp(-2 s^2 / sum(w_i^2)).

The binomial tails are summed here in log space rather than taken from scipy.stats, whose import
alone costs about a second, more than a whole grade.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from autograder.limits import FALSE_FAILURE_PROBABILITY

# A keep probability this far from p must fail the keep-fraction check (with probability at least
# 1 - FALSE_FAILURE_PROBABILITY).
KEEP_PROBABILITY_RESOLUTION = 0.02


def hoeffding_tolerance(widths, probability: float) -> float:
    """Deviation s of a sum from its mean that is exceeded with probability at most ``probability``
    (two-sided), for independent terms whose ranges have the given widths."""
    widths = np.asarray(widths, dtype=np.float64)
    return float(math.sqrt(math.log(2 / probability) * np.sum(widths**2) / 2))


def share(tests: int) -> float:
    """Each test's share of a check's false-failure budget."""
    return FALSE_FAILURE_PROBABILITY / tests


def equal_masks_probability(p: float, n: int) -> float:
    """Probability that two independent masks of n units, each kept with probability p, are equal."""
    return (p * p + (1 - p) * (1 - p)) ** n


@functools.lru_cache(maxsize=64)
def binomial_pmf(n: int, p: float) -> np.ndarray:
    """P(K = k) for k = 0..n, K ~ Binomial(n, p), from the ratio of successive terms in log space."""
    k = np.arange(n, dtype=np.float64)
    steps = np.log((n - k) / (k + 1)) + math.log(p) - math.log1p(-p)
    log_pmf = n * math.log1p(-p) + np.concatenate(([0.0], np.cumsum(steps)))
    return np.exp(log_pmf)


@functools.lru_cache(maxsize=64)
def binomial_interval(n: int, p: float, probability: float) -> tuple[int, int]:
    """The narrowest central interval [lo, hi] of counts that K ~ Binomial(n, p) leaves with
    probability at most ``probability`` (each tail at most half of it)."""
    pmf = binomial_pmf(n, p)
    lower = np.cumsum(pmf)
    upper = np.cumsum(pmf[::-1])[::-1]
    lo = int(np.searchsorted(lower, probability / 2, side="right"))  # P(K < lo) <= probability / 2
    hi = n - int(np.searchsorted(upper[::-1], probability / 2, side="right"))  # P(K > hi) <= probability / 2
    return lo, hi


def binomial_miss(n: int, q: float, interval: tuple[int, int]) -> float:
    """P(lo <= K <= hi) for K ~ Binomial(n, q): the chance that a layer keeping units with
    probability q lands inside the interval a correct layer is held to."""
    lo, hi = interval
    return float(np.sum(binomial_pmf(n, q)[lo:hi + 1]))


def keep_count_power(n: int, p: float, probability: float) -> float:
    """The largest chance that a keep probability KEEP_PROBABILITY_RESOLUTION away from p passes
    the test of ``binomial_interval(n, p, probability)``."""
    interval = binomial_interval(n, p, probability)
    return max(binomial_miss(n, q, interval) for q in (p - KEEP_PROBABILITY_RESOLUTION, p + KEEP_PROBABILITY_RESOLUTION)
               if 0 < q < 1)
