"""Checks of dropout_forward. Each runs in the parent; ``submission`` carries the calls to the child.

Inputs are drawn from ``rng`` (seeded from the grade's base seed and the check's name) and have no
zeros, so a zero in the output always means a dropped unit. No check compares a student's mask with
any reference mask: only properties that every correct inverted dropout has are tested.
"""

from __future__ import annotations

import numpy as np
import pytest

from dropout_lab_check.checks.bounds import equal_masks_probability, fraction_tolerance, hoeffding_tolerance, share
from dropout_lab_check.diagnoses import Misconception
from dropout_lab_check.observations import StudentFailure

# Keep probabilities that tell keeping from dropping apart: p and 1 - p are far from each other.
SEPARATING_PS = (0.2, 0.7, 0.9)


def nonzero_input(rng, shape, dtype=np.float64):
    """Values of magnitude 0.5 to 2 with random signs: never zero, never tiny."""
    return (rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)).astype(dtype)


def student_seed(rng) -> int:
    return int(rng.integers(0, 2**31 - 1))


def kept(out):
    return out != 0


# -- test mode ------------------------------------------------------------------------------------
@pytest.mark.diagnosis("dropped_at_test_time")
def test_forward_test_mode_returns_x(submission, rng):
    """In test mode dropout_forward returns x exactly (a copy is fine), in x's dtype, leaves x
    unchanged and caches no mask. Deterministic. Scaling by p at test time and dropping at test
    time are told apart by the output."""
    for dtype, p in ((np.float64, 0.3), (np.float32, 0.8)):
        x = nonzero_input(rng, (6, 7), dtype)
        obs = submission.dropout_forward(x, p=p, mode="test")
        if obs.x_mutated:
            raise Misconception("input_mutated")
        if obs.out.dtype != x.dtype:
            raise Misconception("dtype_changed")
        if np.any(obs.out == 0):
            raise Misconception("dropped_at_test_time")
        if not np.array_equal(obs.out, x):
            ratio = obs.out / x
            if np.allclose(ratio, ratio.flat[0]):
                raise Misconception("scaled_at_test_time")
            assert False
        assert obs.mask_type == "NoneType", "test mode must cache mask None"


# -- train mode: values and statistics ------------------------------------------------------------
@pytest.mark.diagnosis("missing_inverse_scaling")
def test_forward_train_values_are_zero_or_scaled(submission, rng, partial_credit):
    """In train mode every output is 0 or x / p (relative tolerance 1e-6, float64). Deterministic
    given the draws. Vanilla dropout (kept units equal x) and p taken as the drop probability with
    1 / (1 - p) scaling give other ratios and are named."""
    failures = []
    for p in SEPARATING_PS:
        x = nonzero_input(rng, (40, 50))
        obs = submission.dropout_forward(x, p=p, mode="train", seed=student_seed(rng))
        ratio = obs.out[kept(obs.out)] / x[kept(obs.out)]
        if partial_credit.case(np.allclose(ratio, 1 / p, rtol=1e-6, atol=0)):
            continue
        if ratio.size and np.allclose(ratio, 1, rtol=1e-6, atol=0):
            failures.append("missing_inverse_scaling")
        elif ratio.size and np.allclose(ratio, 1 / (1 - p), rtol=1e-6, atol=0):
            failures.append("p_as_drop_probability")
        else:
            failures.append(None)
    if failures:
        if failures[0] is None:
            assert False, "outputs must be 0 or x / p"
        raise Misconception(failures[0])


def shared_mask(out) -> str | None:
    """The diagnosis when the keep pattern shows draws shared by rows or columns, else None.

    Used only to explain a failure, never to decide one."""
    pattern = kept(out)
    if pattern.ndim == 1:
        return "mask_shared_across_batch" if np.all(pattern) or not np.any(pattern) else None
    rows = pattern.reshape(pattern.shape[0], -1)
    if np.all(rows == rows[:1]):
        return "mask_shared_across_batch"
    if np.all(rows == rows[:, :1]):
        return "mask_shared_across_features"
    return None


def test_forward_keep_fraction(submission, rng, partial_credit):
    """The fraction of kept units is within t of p, for p in SEPARATING_PS, over n = 20,000 units
    (a 200 x 100 input).

    Tolerance: Hoeffding, t = sqrt(ln(2 / d) / (2 n)) with d = 1e-9 / 3 per p (about 0.024), so a
    correct implementation fails with probability at most 1e-9. Taking p as the drop probability
    keeps a fraction near 1 - p, at least 0.4 away from p here, which exceeds 2t: such code fails
    every p with probability at least 1 - 1e-9 (the same bound around 1 - p).
    """
    n = 20_000
    tolerance = fraction_tolerance(n, share(len(SEPARATING_PS)))
    assert min(abs(1 - 2 * p) for p in SEPARATING_PS) >= 2 * tolerance  # the misconception is caught
    wrong = []
    for p in SEPARATING_PS:
        x = nonzero_input(rng, (200, n // 200))
        obs = submission.dropout_forward(x, p=p, mode="train", seed=student_seed(rng))
        fraction = kept(obs.out).mean()
        if not partial_credit.case(abs(fraction - p) <= tolerance):
            wrong.append((p, fraction, shared_mask(obs.out)))
    if wrong:
        p, fraction, shared = wrong[0]
        detail = f"with p = {p}, {fraction:.3f} of the units were kept"
        if shared:
            raise Misconception(shared, detail)
        if abs(fraction - (1 - p)) <= tolerance:
            raise Misconception("p_as_drop_probability", detail)
        assert False, detail


@pytest.mark.diagnosis("missing_inverse_scaling")
def test_forward_mean_is_preserved(submission, rng, partial_credit):
    """The mean output equals the mean input within s, for p in SEPARATING_PS, over n = 20,000
    units (a 200 x 100 input) with x in [1, 2].

    Tolerance: each output lies in [0, x_i / p], so Hoeffding gives s = sqrt(ln(2 / d) *
    sum((x_i / p)^2) / 2) / n with d = 1e-9 / 3 per p: false failure at most 1e-9. Vanilla dropout
    has mean p * mean(x), at least 0.1 * mean(x) away, more than 2s for every p here; p taken as the
    drop probability with 1 / p scaling has mean (1 - p) / p * mean(x), also more than 2s away; so
    each fails with probability at least 1 - 1e-9.
    """
    n = 20_000
    wrong = []
    for p in SEPARATING_PS:
        x = rng.uniform(1.0, 2.0, (200, n // 200))
        tolerance = hoeffding_tolerance(x / p, share(len(SEPARATING_PS))) / n
        assert min(abs(p - 1), abs((1 - p) / p - 1)) * x.mean() >= 2 * tolerance
        obs = submission.dropout_forward(x, p=p, mode="train", seed=student_seed(rng))
        ratio = obs.out.mean() / x.mean()
        if not partial_credit.case(abs(obs.out.mean() - x.mean()) <= tolerance):
            wrong.append((p, ratio, shared_mask(obs.out)))
    if wrong:
        p, ratio, shared = wrong[0]
        detail = f"with p = {p} the mean output was {ratio:.3f} times the mean input"
        if shared:
            raise Misconception(shared, detail)
        if abs(ratio - p) < abs(ratio - (1 - p) / p):
            raise Misconception("missing_inverse_scaling", detail)
        raise Misconception("p_as_drop_probability", detail)


@pytest.mark.diagnosis("p_as_drop_probability")
def test_forward_p_one_keeps_everything(submission, rng):
    """With p = 1 every unit is kept and unchanged (x / 1 = x). Deterministic: any correct
    comparison of a uniform draw in [0, 1) with p = 1 keeps the unit."""
    x = nonzero_input(rng, (30, 40))
    obs = submission.dropout_forward(x, p=1.0, mode="train", seed=student_seed(rng))
    assert np.allclose(obs.out, x, rtol=1e-12, atol=0)


# -- train mode: shapes, dtypes, inputs -----------------------------------------------------------
def scale_of_kept(obs, x) -> float | None:
    """The common factor out / x of the kept units, or None if there is none (or nothing kept)."""
    ratio = obs.out[kept(obs.out)] / x[kept(obs.out)]
    return float(ratio[0]) if ratio.size and np.allclose(ratio, ratio[0], rtol=1e-6, atol=0) else None


@pytest.mark.diagnosis("only_2d_inputs")
def test_forward_handles_any_shape(submission, rng):
    """Inputs with 1, 3 and 4 dimensions work as a 2-D one does: an output of x's shape whose kept
    units are scaled by the same factor as in 2-D. (Whether that factor is right is another
    check's business, so that one mistake is not charged twice.) Deterministic given the draws;
    for p = 0.7 and at least 50 units, keeping nothing has probability at most 0.3^50 < 1e-26."""
    p = 0.7
    x2 = nonzero_input(rng, (5, 10))
    scale = scale_of_kept(submission.dropout_forward(x2, p=p, mode="train", seed=student_seed(rng)), x2)
    for shape in ((50,), (4, 5, 6), (3, 4, 5, 6)):
        x = nonzero_input(rng, shape)
        try:
            obs = submission.dropout_forward(x, p=p, mode="train", seed=student_seed(rng))
        except StudentFailure as failure:
            if failure.kind == "crash":
                raise Misconception("only_2d_inputs", f"a {len(shape)}-D input failed: {failure.message}") from None
            raise
        if scale is not None and scale_of_kept(obs, x) != pytest.approx(scale, rel=1e-6):
            raise Misconception(shared_mask(obs.out) or "only_2d_inputs")


@pytest.mark.diagnosis("dtype_changed")
def test_forward_keeps_dtype(submission, rng):
    """The train-mode output has x's dtype, float32 and float64 alike. Deterministic."""
    for dtype in (np.float32, np.float64):
        x = nonzero_input(rng, (12, 10), dtype)
        obs = submission.dropout_forward(x, p=0.6, mode="train", seed=student_seed(rng))
        assert obs.out.dtype == dtype


@pytest.mark.diagnosis("input_mutated")
def test_forward_does_not_change_x(submission, rng):
    """Train mode leaves the caller's x as it was. Deterministic."""
    for dtype in (np.float64, np.float32):
        obs = submission.dropout_forward(nonzero_input(rng, (20, 30), dtype), p=0.5, mode="train", seed=student_seed(rng))
        assert not obs.x_mutated


# -- randomness -----------------------------------------------------------------------------------
@pytest.mark.diagnosis("seed_ignored")
def test_forward_same_seed_same_output(submission, rng):
    """Two train-mode calls with the same seed give the same output. Deterministic for code that
    seeds numpy's global generator with dropout_param['seed'] and draws from it."""
    x = nonzero_input(rng, (30, 40))
    seed = student_seed(rng)
    first = submission.dropout_forward(x, p=0.7, mode="train", seed=seed)
    second = submission.dropout_forward(x, p=0.7, mode="train", seed=seed)
    assert np.array_equal(first.out, second.out)


@pytest.mark.diagnosis("same_mask_every_call")
def test_forward_different_seeds_differ(submission, rng):
    """Calls with different seeds give different masks. For independent masks of n = 1200 units
    with p = 0.7 they agree with probability (p^2 + (1 - p)^2)^n < 1e-280, far below 1e-9. Code that
    seeds with a constant, or reuses a stored mask, agrees every time."""
    x = nonzero_input(rng, (30, 40))
    assert equal_masks_probability(0.7, x.size) <= share(1)
    first_seed = student_seed(rng)
    second_seed = (first_seed + 1 + int(rng.integers(0, 1000))) % (2**31 - 1)
    first = submission.dropout_forward(x, p=0.7, mode="train", seed=first_seed)
    second = submission.dropout_forward(x, p=0.7, mode="train", seed=second_seed)
    assert not np.array_equal(kept(first.out), kept(second.out))




