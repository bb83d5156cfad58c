"""Checks of dropout_backward, always against the student's own dropout_forward."""

from __future__ import annotations

import numpy as np
import pytest

from dropout_lab_check.checks.test_forward import nonzero_input, student_seed
from dropout_lab_check.diagnoses import Misconception

STEP = 1e-5
DIRECTIONS = 3  # per p; see test_backward_matches_numerical_gradient


def effective_mask(out, x):
    """The factor the forward call applied to each unit: out / x (x has no zeros)."""
    return out / x


def diagnose_backward(dx, dout, mask):
    """The misconception behind a dx that is not dout * mask: a unit the forward pass kept but
    whose gradient is zero means another mask; otherwise the mask was ignored or rescaled."""
    if np.any((dx == 0) & (dout * mask != 0)):
        return "backward_new_mask"
    return "backward_mask_misused"


def unit_directions(rng, count, shape):
    """``count`` directions shaped like x, each uniform on the unit sphere."""
    directions = rng.normal(size=(count, *shape))
    return directions / np.sqrt(np.sum(directions**2, axis=tuple(range(1, directions.ndim)), keepdims=True))


def slopes(gradient, directions):
    """The slope of a function with this gradient along each direction."""
    return np.array([np.sum(gradient * direction) for direction in directions])


@pytest.mark.diagnosis("backward_mask_misused")
def test_backward_matches_numerical_gradient(submission, rng, partial_credit):
    """dropout_backward's dx matches the numerical gradient of sum(dropout_forward(x) * dout),
    taken with the same seed by central differences (step 1e-5) along three random unit
    directions, for p = 0.3 and 0.8, within 1e-7 + 1e-6 |numerical|. The forward is linear in x
    for a fixed mask, so a correct backward meets this up to rounding: no false failures. Each
    direction involves every unit, so a wrong dx escapes only if its error e is nearly orthogonal
    to all three: P(|e . v| < t) < t sqrt(600) / |e| per direction, for the 600 units here. (Over
    20 seeds, the bank's wrong backward passes miss by at least 200,000 times the tolerance in
    every case; the right ones stay within a seventieth of it.)

    If the student's forward ignores the seed (its own check fails for that), the numerical
    gradient is meaningless, and dx is compared with dout * (out / x) from the same forward call
    instead, so that a forward bug does not cost backward points twice. A mask ignored or rescaled
    in backward gives the right zeros with wrong factors; a new mask gives other zeros.
    """
    diagnoses = []
    for p in (0.3, 0.8):
        x = nonzero_input(rng, (20, 30))
        dout = rng.normal(size=x.shape)
        directions = unit_directions(rng, DIRECTIONS, x.shape)
        obs = submission.dropout_gradient(x, dout, p=p, seed=student_seed(rng), directions=directions, step=STEP)
        mask = effective_mask(obs.out, x)
        seeded_forward_is_repeatable = np.allclose(obs.numerical_slopes, slopes(dout * mask, directions),
                                                   rtol=1e-6, atol=1e-7)
        if seeded_forward_is_repeatable:
            correct = np.allclose(slopes(obs.dx, directions), obs.numerical_slopes, rtol=1e-6, atol=1e-7)
        else:
            correct = np.allclose(obs.dx, dout * mask, rtol=1e-9, atol=1e-12)
        if not partial_credit.case(correct):
            diagnoses.append(diagnose_backward(obs.dx, dout, mask))
    if diagnoses:
        raise Misconception(diagnoses[0])


@pytest.mark.diagnosis("backward_mask_misused")
def test_backward_test_mode_passes_dout(submission, rng):
    """After a test-mode forward call, dropout_backward returns dout unchanged. Deterministic."""
    x = nonzero_input(rng, (8, 9))
    dout = rng.normal(size=x.shape)
    obs = submission.dropout_gradient(x, dout, p=0.6, seed=student_seed(rng), mode="test")
    assert np.array_equal(obs.dx, dout)
