"""Checks of the dropout layer's forward pass (CS231n's dropout_forward, the scratch flavour's
Dropout.forward). Each runs in the parent; ``submission`` carries the calls to the child.

Every check speaks of p, the probability of KEEPING a unit, and of the factors a kept unit gets in
training and at test time, ``convention.train_scale(p)`` and ``convention.test_scale(p)`` (1/p and
1 for inverted dropout, 1 and p for vanilla): the submission fixture hands p to the student's code
in the flavour's own terms (autograder.conventions).

Inputs are drawn from ``rng`` (seeded from the grade's base seed and the check's name). Where a
check infers kept and dropped units from the output, it reads them soundly even when x holds exact
zeros (autograder.checks.evidence). No check compares a student's mask with any reference mask:
only properties that every correct dropout of the convention has are tested, on the seeded path
and on the unseeded one that training uses.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from autograder.checks.bounds import (
    KEEP_PROBABILITY_RESOLUTION, binomial_interval, binomial_pmf, equal_masks_probability, hoeffding_tolerance,
    keep_count_power, share,
)
from autograder.checks.evidence import (
    activation_like, exercised, kept, nonzero_input, scale_of_kept, shared_mask, student_seed, train_output_problem,
)
from autograder.diagnoses import Measured, Misconception
from autograder.observations import StudentFailure

# Keep probabilities that tell keeping from dropping apart: p and 1 - p are far from each other.
SEPARATING_PS = (0.2, 0.7, 0.9)
# The keep-fraction inputs: 343 is a width where p * width is not whole for any p above, so a layer
# that keeps round(p * width) units of every row cannot hit p exactly; the rows per p are the fewest
# (in steps of 8, with a margin at 0.7) for which the keep-fraction check's power holds.
FRACTION_WIDTH = 343
FRACTION_ROWS = {0.2: 192, 0.7: 248, 0.9: 120}


# -- test mode ------------------------------------------------------------------------------------
@pytest.mark.diagnosis("dropped_at_test_time")
def test_forward_test_mode_output(submission, rng, convention):
    """In test mode the layer returns x times the convention's test-time factor (x itself for
    inverted dropout, a copy being fine; x times the keep probability for vanilla, to rounding:
    relative 1e-12 in float64 and 1e-6 in float32), in x's dtype, leaves x unchanged and caches no
    mask. Deterministic. A missing or wrong factor and dropping at test time are told apart by the
    output; inputs hold zeros, as after a ReLU."""
    for dtype, p in ((np.float64, 0.3), (np.float32, 0.8)):
        x = activation_like(rng, (6, 7), dtype)
        obs = submission.dropout_forward(x, p=p, mode="test", return_x=True)
        if obs.x_mutated:
            raise Misconception("input_mutated")
        if obs.out.dtype != x.dtype:
            raise Misconception("dtype_changed")
        factor = convention.test_scale(convention.keep_probability(p))
        rtol = 1e-12 if dtype == np.float64 else 1e-6
        correct = np.array_equal(obs.out, x) if factor == 1 else np.allclose(obs.out, x * factor, rtol=rtol, atol=0)
        if not correct:
            if np.any((obs.out == 0) & (x != 0)):
                raise Misconception("dropped_at_test_time")
            scale = scale_of_kept(obs.out, x)
            if scale is not None and np.all(obs.out[x == 0] == 0):
                if factor != 1 and np.isclose(scale, 1, rtol=1e-6, atol=0):
                    raise Misconception("missing_test_scaling", f"with {convention.setting(p)}")
                if factor != 1 and np.isclose(scale, 1 - p, rtol=1e-6, atol=0):
                    raise Misconception("p_as_drop_probability", f"test mode multiplied x by {scale:.6g}, not {factor:.6g}")
                raise Misconception("scaled_at_test_time", f"by {scale:.6g}") if factor == 1 else Measured(
                    "In test mode x was multiplied by another factor than the keep probability.",
                    f"by {scale:.6g} instead of {factor:.6g}")
            raise Measured("In test mode the output was not x times the test-time factor.")
        if obs.mask_type != "NoneType":
            raise Misconception("test_mode_cache_not_none", f"it cached {obs.mask_type}")


# -- train mode: values and statistics ------------------------------------------------------------
def test_forward_train_values_are_zero_or_scaled(submission, rng, partial_credit, convention):
    """In train mode every output is 0 or x times the training factor (1/p for inverted dropout, 1
    for vanilla; relative tolerance 1e-6), 0 wherever x is 0, and
    some units are kept and some dropped, for p in SEPARATING_PS on 2-D inputs with zeros (one
    without, so that a rescaling by the realized fraction shows exactly) and on 3-D and 4-D
    inputs, with a seed and, for two of the cases, without one. Deterministic given the draws; a correct layer keeps nothing, or drops nothing, among
    at least 1,000 non-zero units with probability below 0.9^1000 < 1e-45. The other style of
    dropout, p taken as the drop probability, low-precision scaling and division by the realized
    fraction give other factors and are named."""
    # (p, shape, zeros in x, seeded); the unseeded cases are the path training takes.
    cases = [(0.7, (40, 50), False, True), (0.2, (40, 50), True, True), (0.9, (40, 50), True, True),
             (0.7, (10, 12, 15), True, True), (0.2, (4, 6, 8, 10), True, True),
             (0.7, (40, 50), False, False), (0.2, (40, 50), True, False)]
    partial_credit.expect(len(cases))
    problems = []
    for p, shape, zeros, seeded in cases:
        x = activation_like(rng, shape) if zeros else nonzero_input(rng, shape)
        obs = submission.dropout_forward(x, p=p, mode="train", seed=student_seed(rng) if seeded else None)
        problem = train_output_problem(obs.out, x, p, convention)
        if not partial_credit.case(problem is None):
            problems.append(problem)
    if problems:
        raise problems[0]


def test_forward_keep_fraction(submission, rng, partial_credit, convention):
    """The number of kept units among n lies in the central interval of Binomial(n, p), for p in
    SEPARATING_PS, with a seed and without one, on inputs of FRACTION_ROWS[p] x 343 units (n =
    65,856, 85,064 and 41,160).

    Tolerance: the interval is computed from the exact binomial tails so that each of the 6 cases
    fails a correct layer with probability at most 1e-9 / 6: at most 1e-9 in all. Power: a layer
    that keeps units with a probability 0.02 or more away from p lands inside the interval with
    probability below 1e-10 (asserted below for each p), so it fails with probability at least
    1 - 1e-9; p taken as the drop probability is 0.2 or more away. x is all ones (built in the
    child, so the large input costs nothing to send): every kept unit shows as a non-zero output.
    """
    cases = [(p, seeded) for seeded in (True, False) for p in SEPARATING_PS]
    partial_credit.expect(len(cases))
    wrong = []
    for p, seeded in cases:
        n = FRACTION_ROWS[p] * FRACTION_WIDTH
        assert keep_count_power(n, p, share(len(cases))) <= share(1)  # an error of 0.02 is caught
        lo, hi = binomial_interval(n, p, share(len(cases)))
        x = np.ones((FRACTION_ROWS[p], FRACTION_WIDTH), dtype=np.float32)
        obs = submission.dropout_forward_on_ones(x.shape, p=p, seed=student_seed(rng) if seeded else None)
        count = int(np.sum(kept(obs.out, x)))
        if not partial_credit.case(lo <= count <= hi):
            wrong.append((p, seeded, n, count, lo, hi, obs.out, x))
    if wrong:
        p, seeded, n, count, lo, hi, out, x = wrong[0]
        detail = (f"with {convention.setting(p)} ({'seeded' if seeded else 'no seed'}), {count / n:.4f} of the units were kept; "
                  f"a correct layer keeps between {lo / n:.4f} and {hi / n:.4f}")
        problem = exercised(out, x) or shared_mask(out, x)
        if problem:
            raise problem
        drop_lo, drop_hi = binomial_interval(n, 1 - p, share(len(cases)))
        if drop_lo <= count <= drop_hi:
            raise Misconception("p_as_drop_probability", detail)
        raise Measured(f"The fraction of kept units was off from the keep probability by more than chance allows "
                       f"(the check catches any keep probability {KEEP_PROBABILITY_RESOLUTION} away from the right one).", detail)


def mean_ratio_misreadings(p, convention) -> dict[str, float]:
    """The mean output over the mean input that each known misreading of the convention gives."""
    if convention.style == "inverted":
        # unscaled (vanilla); p taken as the drop probability, still divided by p
        return {"missing_inverse_scaling": p, "p_as_drop_probability": (1 - p) / p}
    # divided by p (inverted); p taken as the drop probability, unscaled
    return {"scaled_in_training": 1.0, "p_as_drop_probability": 1 - p}


def test_forward_mean_is_preserved(submission, rng, partial_credit, convention):
    """The mean output equals p * train_scale(p) times the mean input (the mean input itself for
    inverted dropout, p times it for vanilla) within s, for p in SEPARATING_PS, with a seed and
    without one, over n = 10,000 units (a 100 x 100 input) with x in [1, 2].

    Tolerance: each output lies in [0, x_i * train_scale(p)], so Hoeffding gives s = sqrt(ln(2 / d)
    * sum((x_i * train_scale(p))^2) / 2) / n with d = 1e-9 / 6 per case: false failure at most
    1e-9. Each known misreading (mean_ratio_misreadings: the other style; p taken as the drop
    probability) has a mean more than 2s away, asserted below, so it fails with probability at
    least 1 - 1e-9.
    """
    cases = [(p, seeded) for seeded in (True, False) for p in SEPARATING_PS]
    partial_credit.expect(len(cases))
    n = 10_000
    wrong = []
    for p, seeded in cases:
        x = rng.uniform(1.0, 2.0, (100, n // 100))
        expected = p * convention.train_scale(p)
        tolerance = hoeffding_tolerance(x * convention.train_scale(p), share(len(cases))) / n
        assert min(abs(ratio - expected) for ratio in mean_ratio_misreadings(p, convention).values()) * x.mean() >= 2 * tolerance
        obs = submission.dropout_forward(x, p=p, mode="train", seed=student_seed(rng) if seeded else None)
        if not partial_credit.case(abs(obs.out.mean() - expected * x.mean()) <= tolerance):
            wrong.append((p, seeded, obs.out.mean() / x.mean(), obs.out, x))
    if wrong:
        p, seeded, ratio, out, x = wrong[0]
        expected = p * convention.train_scale(p)
        detail = (f"with {convention.setting(p)} ({'seeded' if seeded else 'no seed'}) the mean output was "
                  f"{ratio:.3f} times the mean input, not {expected:.3f} times")
        problem = exercised(out, x) or shared_mask(out, x)
        if problem:
            raise problem
        # What each misreading gives, up to the noise of 10,000 draws (well within 15%).
        for diagnosis, misread in mean_ratio_misreadings(p, convention).items():
            if ratio > 0 and abs(np.log(ratio / misread)) < np.log(1.15):
                raise Misconception(diagnosis, detail)
        raise Measured("The mean output differed from what dropout gives by more than chance allows.", detail)


def test_forward_p_one_keeps_everything(submission, rng, convention):
    """With p = 1 every unit is kept and unchanged (train_scale(1) = 1), zeros of x included. Deterministic:
    any correct comparison of a uniform draw in [0, 1) with p = 1 keeps the unit. A failure is
    named from what the output shows; where nothing was kept, a call at p = 0.7 tells p taken as
    the drop probability (keeps about 0.3) from a layer that drops everything."""
    x = activation_like(rng, (30, 40))
    obs = submission.dropout_forward(x, p=1.0, mode="train", seed=student_seed(rng))
    if np.allclose(obs.out, x, rtol=1e-12, atol=0):
        return
    if not np.any(kept(obs.out, x)):
        # Keeping nothing at p = 1 is what p taken as the drop probability does, and also what a
        # layer that drops everything does: a call at p = 0.7 tells them apart.
        x7 = nonzero_input(rng, (30, 40))
        out7 = submission.dropout_forward(x7, p=0.7, mode="train", seed=student_seed(rng)).out
        problem = exercised(out7, x7)
        if problem:
            raise problem
        if np.mean(kept(out7, x7)) < 0.5:  # about 0.3 kept at p = 0.7: the drop probability
            raise Misconception("p_as_drop_probability", f"with {convention.setting(1.0)} no unit was kept")
        raise Measured(f"With {convention.setting(1.0)} no unit was kept, though with {convention.setting(0.7)} "
                       "about 0.7 of them were.")
    lost = int(np.sum((obs.out == 0) & (x != 0)))
    raise Measured(f"With {convention.setting(1.0)} the output differed from x.",
                   f"{lost} units were dropped" if lost else "kept units were rescaled")


# -- train mode: shapes, dtypes, inputs -----------------------------------------------------------
@pytest.mark.diagnosis("only_2d_inputs")
def test_forward_handles_any_shape(submission, rng):
    """Inputs with 1, 3 and 4 dimensions work as a 2-D one does: an output of x's shape, some units
    kept and some dropped, the kept ones scaled by the same factor as in 2-D. (Whether that factor
    is right is another check's business, so that one mistake is not charged twice.) For p = 0.7
    and at least 64 units, a correct layer keeps all or none with probability below 2 * 0.7^64 <
    1e-9."""
    p = 0.7
    x2 = nonzero_input(rng, (8, 10))
    out2 = submission.dropout_forward(x2, p=p, mode="train", seed=student_seed(rng)).out
    problem = exercised(out2, x2)
    if problem:
        raise problem
    scale = scale_of_kept(out2, x2)
    for shape in ((64,), (4, 5, 6), (3, 4, 5, 6)):
        x = nonzero_input(rng, shape)
        try:
            obs = submission.dropout_forward(x, p=p, mode="train", seed=student_seed(rng))
        except StudentFailure as failure:
            if failure.kind == "crash":
                raise Misconception("only_2d_inputs", f"a {len(shape)}-D input failed: {failure.message}") from None
            raise
        problem = exercised(obs.out, x)
        if problem:
            raise Misconception(problem.diagnosis_id, f"for a {len(shape)}-D input")
        if scale is not None and scale_of_kept(obs.out, x) != pytest.approx(scale, rel=1e-6):
            raise Measured("Kept units of an input with other than two dimensions were scaled differently "
                           "from those of a 2-D input.", f"for a {len(shape)}-D input")


@pytest.mark.diagnosis("dtype_changed")
def test_forward_keeps_dtype(submission, rng):
    """The train-mode output has x's dtype, float32 and float64 alike. Deterministic."""
    for dtype in (np.float32, np.float64):
        x = activation_like(rng, (12, 10), dtype)
        obs = submission.dropout_forward(x, p=0.6, mode="train", seed=student_seed(rng))
        assert obs.out.dtype == dtype


@pytest.mark.diagnosis("input_mutated")
def test_forward_does_not_change_x(submission, rng):
    """Train and test mode leave the caller's x as it was: the parent compares the x the child
    holds after the call with the x it sent. Deterministic."""
    for dtype, mode in ((np.float64, "train"), (np.float32, "train"), (np.float64, "test")):
        x = activation_like(rng, (20, 30), dtype)
        obs = submission.dropout_forward(x, p=0.5, mode=mode, seed=student_seed(rng), return_x=True)
        assert not obs.x_mutated


@pytest.mark.only_in("cs231n")
def test_forward_leaves_dropout_param_unchanged(submission, rng):
    """Called the way FullyConnectedNet calls it (one dropout_param dict for every layer and every
    call, whose mode the network switches between calls), dropout_forward leaves the dict exactly
    as it was after every call, and a later train-mode call with the same seed gives the same
    output as the first. Deterministic for a layer that seeds numpy's generator from the dict on
    every call."""
    seed = student_seed(rng)
    x1, x2 = activation_like(rng, (8, 30)), activation_like(rng, (8, 25))
    param = {"mode": "train", "p": 0.6, "seed": seed}
    steps = [(x1, {}), (x2, {}), (x1, {"mode": "test"}), (x1, {"mode": "train"})]
    calls = submission.dropout_forward_sequence(param, steps)
    expected = dict(param)
    for number, ((_, update), obs) in enumerate(zip(steps, calls), start=1):
        expected.update(update)
        if obs.param_changed:
            changes = sorted(set(obs.param_after) ^ set(expected)
                             | {key for key in expected if key in obs.param_after and obs.param_after[key] != expected[key]})
            raise Misconception("dropout_param_changed", f"after call {number}, entries changed: {', '.join(changes)}")
    problem = exercised(calls[0].out, x1)
    if problem:
        raise problem
    if not np.array_equal(calls[0].out, calls[3].out):
        raise Measured("Called again with the same dict, as the network calls every layer, the same seed gave "
                       "a different output than on the first call.")


# -- randomness -----------------------------------------------------------------------------------
@pytest.mark.diagnosis("seed_ignored")
def test_forward_same_seed_same_output(submission, rng):
    """Two train-mode calls with the same seed give the same output, in which some units are kept
    and some dropped. Deterministic for code that seeds numpy's global generator with
    dropout_param['seed'] and draws from it; for p = 0.7 and 840 non-zero units a correct layer
    keeps all or none with probability below 1e-100."""
    x = activation_like(rng, (30, 40))
    seed = student_seed(rng)
    first = submission.dropout_forward(x, p=0.7, mode="train", seed=seed)
    second = submission.dropout_forward(x, p=0.7, mode="train", seed=seed)
    problem = exercised(first.out, x)
    if problem:
        raise problem
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
    problem = exercised(first.out, x)
    if problem:
        raise problem
    assert not np.array_equal(kept(first.out, x), kept(second.out, x))


@pytest.mark.diagnosis("same_mask_every_call")
def test_forward_unseeded_calls_differ(submission, rng):
    """Successive calls without a seed give different masks: three calls, n = 1200 units, p = 0.7;
    a correct implementation repeats a mask with probability at most 3 (p^2 + (1 - p)^2)^n < 1e-9.
    Code that seeds with a constant, or reuses a stored mask, repeats it every time."""
    x = nonzero_input(rng, (30, 40))
    assert 3 * equal_masks_probability(0.7, x.size) <= share(1)
    outs = [submission.dropout_forward(x, p=0.7, mode="train").out for _ in range(3)]
    problem = exercised(outs[0], x)
    if problem:
        raise problem
    masks = [kept(out, x) for out in outs]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.array_equal(masks[i], masks[j])


def axis_sharing(out, x) -> Misconception | None:
    """The misconception when the keep pattern of an input without zeros is constant along an
    axis: along the first, every example got the same pattern; along another, one draw served a
    whole row, channel or the like."""
    pattern = kept(out, x)
    for axis in range(pattern.ndim):
        if np.all(pattern == np.take(pattern, [0], axis=axis)):
            if axis == 0:
                return Misconception("mask_shared_across_batch", f"in a {pattern.ndim}-D input")
            return Misconception("mask_shared_along_axis", f"in a {pattern.ndim}-D input, along axis {axis}")
    return None


@functools.lru_cache(maxsize=16)
def narrow_range_probability(width: int, p: float, rows: int, spread: int) -> float:
    """An upper bound on the chance that ``rows`` independent Binomial(width, p) counts all lie in
    some window of ``spread`` consecutive values: (width + 1) windows, each holding all the rows
    with probability (largest window mass)^rows."""
    pmf = binomial_pmf(width, p)
    window = max(float(np.sum(pmf[k:k + spread])) for k in range(width + 1))
    return (width + 1) * window**rows


def test_forward_draws_per_element(submission, rng):
    """Every element gets its own, independent draw:
    - in a 40 x 50 input with p = 0.6, not all rows share one keep pattern (one mask for the batch)
      and not all columns do (one draw per example): a correct layer has every column constant
      with probability (0.6^40 + 0.4^40)^50 and every row constant with (0.6^50 + 0.4^50)^40;
    - in a 4 x 5 x 6 x 7 input, the pattern is not constant along any axis (per-channel or
      per-example dropout): for an axis of size m, probability (0.6^m + 0.4^m)^(840 / m) < 1e-60;
    - over the 64 rows of a 64 x 343 input with p = 0.7, the kept counts spread as independent
      draws do: a layer that keeps a fixed number of units per row (round(p * 343), which is not
      whole) has all counts within 3 consecutive values, which 64 Binomial(343, 0.7) counts do
      with probability below 1e-50 (narrow_range_probability).
    Together below 1e-9."""
    p = 0.6
    x = nonzero_input(rng, (40, 50))
    out = submission.dropout_forward(x, p=p, mode="train", seed=student_seed(rng)).out
    problem = exercised(out, x) or shared_mask(out, x)
    if problem:
        raise problem
    x4 = nonzero_input(rng, (4, 5, 6, 7))
    out4 = submission.dropout_forward(x4, p=p, mode="train", seed=student_seed(rng)).out
    problem = exercised(out4, x4) or axis_sharing(out4, x4)
    if problem:
        raise problem
    spread_rows = 64
    assert narrow_range_probability(FRACTION_WIDTH, 0.7, spread_rows, 3) <= share(1)
    x = np.ones((spread_rows, FRACTION_WIDTH), dtype=np.float32)
    out = submission.dropout_forward_on_ones(x.shape, p=0.7, seed=student_seed(rng)).out
    counts = np.sum(kept(out, x), axis=1)
    if counts.max() - counts.min() < 3:
        problem = exercised(out, x)
        raise problem or Misconception("fixed_count_per_row", f"every row kept {counts.min()} to {counts.max()} units")
