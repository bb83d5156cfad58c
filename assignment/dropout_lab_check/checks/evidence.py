"""What a dropout layer's outputs show, read soundly: the inputs the checks draw and the inferences
they make from outputs, stated once for every check that needs them.

Inputs may hold exact zeros, as activations after a ReLU do (about a third of the units here). A
zero output then proves a drop only where x was not zero: every inference below looks at the units
whose x is known to be non-zero, and requires the output to be zero where x is.
"""

from __future__ import annotations

import numpy as np

from dropout_lab_check.diagnoses import Measured, Misconception

ZERO_SHARE = 0.3  # of the units of an activation-like input


def nonzero_input(rng, shape, dtype=np.float64):
    """Values of magnitude 0.5 to 2 with random signs: never zero, never tiny (one uniform draw in
    [-1.5, 1.5) per unit, pushed 0.5 away from zero on its own side)."""
    draw = rng.uniform(-1.5, 1.5, shape)
    return (draw + np.copysign(0.5, draw)).astype(dtype)


def activation_like(rng, shape, dtype=np.float64):
    """Like nonzero_input, with exact zeros at a random ZERO_SHARE of the units (as after a ReLU)."""
    x = nonzero_input(rng, shape, dtype)
    x[rng.random(shape) < ZERO_SHARE] = 0
    return x


def student_seed(rng) -> int:
    return int(rng.integers(0, 2**31 - 1))


def kept(out, x):
    """Units known to be kept: x and the output are both non-zero."""
    return (out != 0) & (x != 0)


def dropped(out, x):
    """Units known to be dropped: x is non-zero and the output is zero."""
    return (out == 0) & (x != 0)


def exercised(out, x) -> Misconception | None:
    """In train mode with p < 1, some units with non-zero x must be kept and some dropped: a
    property of the training output is only credited where it was exercised. Returns the
    misconception when it was not."""
    if not np.any(kept(out, x)):
        return Misconception("drops_everything")
    if not np.any(dropped(out, x)):
        if scale_of_kept(out, x) is None:  # not a dropout that kept everything: something else
            return Measured("In train mode no output was 0, and the outputs were not x times one factor: "
                            "dropout either zeroes a unit or keeps it, times one factor.")
        return Misconception("keeps_everything")
    return None


def scale_of_kept(out, x) -> float | None:
    """The common factor out / x of the kept units, or None if they share none (or none is kept)."""
    ratio = out[kept(out, x)] / x[kept(out, x)]
    return float(ratio[0]) if ratio.size and np.allclose(ratio, ratio[0], rtol=1e-6, atol=0) else None


def train_output_problem(out, x, p, convention) -> Misconception | None:
    """None when the train-mode output with keep probability p is the convention's dropout: every
    unit 0 or x times convention.train_scale(p) (relative tolerance 1e-6), 0 wherever x is 0, some
    units kept and some dropped. Otherwise the misconception it shows, or a plain statement of what
    was measured."""
    if np.any(out[x == 0] != 0):
        return Measured("Where x was 0 the output was not 0: a dropped or kept 0 is still 0.",
                        f"with {convention.setting(p)}, {int(np.sum(out[x == 0] != 0))} such units")
    problem = exercised(out, x)
    if problem:
        return problem
    expected = convention.train_scale(p)
    ratio = out[kept(out, x)] / x[kept(out, x)]
    if np.allclose(ratio, expected, rtol=1e-6, atol=0):
        return None
    scale = scale_of_kept(out, x)
    detail = (f"with {convention.setting(p)}, kept units were multiplied by {float(ratio.min()):.6g} to "
              f"{float(ratio.max()):.6g} instead of {expected:.6g}")
    if scale is None:
        return Measured("Kept units were not all multiplied by the same factor.", detail)
    if np.isclose(scale, 1, rtol=1e-6, atol=0):
        return Misconception("missing_inverse_scaling", detail)
    if np.isclose(scale, 1 / p, rtol=1e-6, atol=0):  # expected is 1: vanilla dropout was asked for
        return Misconception("scaled_in_training", detail)
    if np.isclose(scale, 1 / (1 - p), rtol=1e-6, atol=0):
        return Misconception("p_as_drop_probability", detail)
    if expected == 1:
        return Measured("Kept units were multiplied by a factor; vanilla dropout passes them unchanged.", detail)
    known = x != 0
    fraction = np.sum(kept(out, x)) / np.sum(known)
    if known.all() and abs(scale * fraction - 1) <= 1e-9:  # exact: every unit's draw is visible
        return Misconception("scaled_by_realized_fraction", detail)
    if abs(scale / expected - 1) < 2e-3:
        return Misconception("imprecise_scaling", detail)
    # With zeros in x the layer's own kept fraction (over all units) is estimated from the units
    # with non-zero x: within 4 standard deviations of it.
    if not known.all() and abs(scale * fraction - 1) <= 4 * np.sqrt(p * (1 - p) / np.sum(~known)) / fraction:
        return Misconception("scaled_by_realized_fraction", detail)
    return Measured("Kept units were multiplied by another factor than dropout's.", detail)


def shared_mask(out, x) -> Misconception | None:
    """The misconception when a 2-D keep pattern shows draws shared by all rows or all columns."""
    pattern = kept(out, x)
    rows = pattern.reshape(pattern.shape[0], -1)
    if np.all(rows == rows[:1]):
        return Misconception("mask_shared_across_batch")
    if np.all(rows == rows[:, :1]):
        return Misconception("mask_shared_across_features")
    return None
