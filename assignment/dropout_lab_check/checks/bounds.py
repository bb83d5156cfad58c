"""Tail bounds that size the stochastic checks' tolerances.

Every stochastic check has a budget ``FALSE_FAILURE_PROBABILITY`` for failing a correct
implementation, split over the statistical tests it makes (union bound). Hoeffding's inequality
turns a test's share into a tolerance: for n independent variables with values in ranges of widths
w_i, P(|sum - E sum| >= s) <= 2 exp(-2 s^2 / sum(w_i^2)).
"""

from __future__ import annotations

import math

import numpy as np

from dropout_lab_check.limits import FALSE_FAILURE_PROBABILITY


def hoeffding_tolerance(widths, probability: float) -> float:
    """Deviation s of a sum from its mean that is exceeded with probability at most ``probability``
    (two-sided), for independent terms whose ranges have the given widths."""
    widths = np.asarray(widths, dtype=np.float64)
    return float(math.sqrt(math.log(2 / probability) * np.sum(widths**2) / 2))


def fraction_tolerance(n: int, probability: float) -> float:
    """Tolerance on the fraction of successes among n Bernoulli draws (Hoeffding)."""
    return hoeffding_tolerance(np.ones(n), probability) / n


def share(tests: int) -> float:
    """Each test's share of a check's false-failure budget."""
    return FALSE_FAILURE_PROBABILITY / tests


def equal_masks_probability(p: float, n: int) -> float:
    """Probability that two independent masks of n units, each kept with probability p, are equal."""
    return (p * p + (1 - p) * (1 - p)) ** n
