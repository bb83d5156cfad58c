"""Checks of the dropout layer's backward pass (CS231n's dropout_backward, the scratch flavour's
Dropout.backward), always against the student's own forward pass."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks.evidence import activation_like, exercised, kept, student_seed
from autograder.diagnoses import Misconception

STEP = 1e-5
DIRECTIONS = 3  # per case; see test_backward_matches_numerical_gradient


def unit_directions(rng, count, shape):
    """``count`` directions shaped like x, each uniform on the unit sphere."""
    directions = rng.normal(size=(count, *shape))
    return directions / np.sqrt(np.sum(directions**2, axis=tuple(range(1, directions.ndim)), keepdims=True))


def slopes(gradient, directions):
    """The slope of a function with this gradient along each direction."""
    return np.array([np.sum(gradient * direction) for direction in directions])


def backward_problem(obs, x, dout) -> Misconception | None:
    """None when dx is right, else the misconception it shows.

    With a repeatable (seeded) forward, dx must give the numerical slopes. Otherwise dx is compared
    with dout * (out / x) from the same forward call, on the units whose x is not zero (there the
    mask is known), so that a forward bug does not cost backward points twice.
    """
    problem = exercised(obs.out, x)
    if problem:  # nothing to backpropagate through: the backward pass was never exercised
        return problem
    known = x != 0
    applied = np.where(known, obs.out / np.where(known, x, 1), 0)  # the factor each known unit got
    if obs.repeatable:
        correct = np.allclose(slopes(obs.dx, obs.directions), obs.numerical_slopes, rtol=1e-6, atol=1e-7)
    else:
        correct = np.allclose(obs.dx[known], (dout * applied)[known], rtol=1e-9, atol=1e-12)
    if correct:
        return None
    right_where_known = np.allclose(obs.dx[known], (dout * applied)[known], rtol=1e-9, atol=1e-12)
    if right_where_known and not known.all():
        return Misconception("mask_from_output", "dx was wrong only where x was 0")
    if not np.all(np.isfinite(obs.dx)):
        return Misconception("not_finite", "dropout_backward returned NaN or infinite values")
    if np.any((obs.dx == 0) & kept(obs.out, x) & (dout != 0)):
        return Misconception("backward_new_mask")
    return Misconception("backward_mask_misused")


def test_backward_matches_numerical_gradient(submission, rng, partial_credit):
    """dropout_backward's dx matches the numerical gradient of sum(dropout_forward(x) * dout),
    taken with the same seed by central differences (step 1e-5) along three random unit
    directions, within 1e-7 + 1e-6 |numerical|, for p = 0.3 and 0.8 on 20 x 30 inputs and p = 0.5
    on a 4 x 5 x 6 input, all with exact zeros in x as after a ReLU (a mask worked out from the
    output is wrong exactly there). The forward is linear in x for a fixed mask, so a correct
    backward meets this up to rounding: no false failures. Each direction involves every unit, so
    a wrong dx escapes only if its error e is nearly orthogonal to all three: P(|e . v| < t) <
    t sqrt(600) / |e| per direction, for the 600 units here. The forward must keep some units and
    drop some (else the backward pass is not exercised): a correct layer fails that with
    probability below 0.8^400 < 1e-38. A mask ignored or rescaled in backward gives the right
    zeros with wrong factors; a new mask gives other zeros.
    """
    cases = [(0.3, (20, 30)), (0.8, (20, 30)), (0.5, (4, 5, 6))]
    partial_credit.expect(len(cases))
    problems = []
    for p, shape in cases:
        x = activation_like(rng, shape)
        dout = rng.normal(size=shape)
        directions = unit_directions(rng, DIRECTIONS, shape)
        obs = submission.dropout_gradient(x, dout, p=p, seed=student_seed(rng), directions=directions, step=STEP)
        problem = backward_problem(obs, x, dout)
        if not partial_credit.case(problem is None):
            problems.append(problem)
    if problems:
        raise problems[0]


@pytest.mark.only_in("cs231n")  # the scratch flavour's given code refuses backward after test mode
@pytest.mark.diagnosis("backward_mask_misused")
def test_backward_test_mode_passes_dout(submission, rng):
    """After a test-mode forward call, dropout_backward returns dout unchanged. Deterministic."""
    x = activation_like(rng, (8, 9))
    dout = rng.normal(size=x.shape)
    assert np.array_equal(submission.dropout_backward_test_mode(x, dout, p=0.6), dout)
