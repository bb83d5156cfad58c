"""Checks of the dropout lines of FullyConnectedNet.loss.

In the child, the student's network calls an instrumented dropout (child_driver.DropoutTrace) in
place of dropout_forward/dropout_backward: a correct inverted dropout that records what it got. So
these checks see where the network applies dropout and with which dropout_param, and a bug in the
student's own dropout layer costs points in the layer checks only, never twice.

The network's weights and inputs come from the parent: all non-negative, biases at least 0.1, so
every pre-activation is at least 0.1 and every ReLU works in its linear part. No finite difference
can cross a ReLU kink, the gradient checks are exact up to rounding (no false failures), and
dropout before the ReLU is indistinguishable from dropout after it, as it should be.
"""

from __future__ import annotations

import numpy as np
import pytest

from dropout_lab_check.checks.test_forward import student_seed
from dropout_lab_check.diagnoses import Misconception

INPUT_DIM, HIDDEN, CLASSES, BATCH = 7, (6, 5), 4, 8  # all different, so a shape names the layer
REG = 0.05
STEP = 1e-6
DIRECTIONS = 3  # per keep ratio; see test_fc_gradients_match_numerical


def network_case(rng):
    """Parameters, inputs and labels of a small network whose ReLUs are all active."""
    sizes = [INPUT_DIM, *HIDDEN, CLASSES]
    params = {}
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{layer}"] = rng.uniform(0.0, 0.5, (fan_in, fan_out))
        params[f"b{layer}"] = rng.uniform(0.1, 0.5, fan_out)
    X = rng.uniform(0.0, 1.0, (BATCH, INPUT_DIM))
    y = rng.integers(0, CLASSES, BATCH)
    return params, X, y


def run_network(submission, rng, keep_ratio, net_seed, directions=()):
    params, X, y = network_case(rng)
    obs = submission.network(hidden_dims=HIDDEN, num_classes=CLASSES, keep_ratio=keep_ratio, params=params,
                             X=X, y=y, net_seed=net_seed, reg=REG, directions=directions, step=STEP)
    return obs, params, X, y


def softmax_loss(scores, y):
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(y)), y].mean()


def regularized_loss(scores, y, params):
    weights = [value for name, value in params.items() if name.startswith("W")]
    return softmax_loss(scores, y) + 0.5 * REG * sum(np.sum(w * w) for w in weights)


def affine(inputs, params, layer):
    return inputs @ params[f"W{layer}"] + params[f"b{layer}"]


def clean_scores(X, params):
    """Scores without any dropout (the ReLUs are all active here, so relu(a) = a)."""
    hidden = X
    for layer in range(1, len(HIDDEN) + 1):
        hidden = np.maximum(affine(hidden, params, layer), 0)
    return affine(hidden, params, len(HIDDEN) + 1)


def random_directions(rng, count):
    """``count`` directions in weight space (one array per weight, shaped like it), each drawn
    uniformly from the unit sphere, so that every coordinate of every weight takes part."""
    shapes = {name: value.shape for name, value in network_case(np.random.default_rng(0))[0].items()}
    directions = []
    for _ in range(count):
        draw = {name: rng.normal(size=shape) for name, shape in shapes.items()}
        norm = np.sqrt(sum(np.sum(value * value) for value in draw.values()))
        directions.append({name: value / norm for name, value in draw.items()})
    return directions


def gradients_match(obs) -> bool:
    """The analytic gradient's slope along each direction equals the numerical one."""
    analytic = np.array([sum(np.sum(obs.grads[name] * direction[name]) for name in direction)
                         for direction in obs.directions])
    return bool(np.allclose(analytic, obs.numerical_slopes, rtol=1e-5, atol=1e-7))


@pytest.mark.diagnosis("fc_backward_skips_dropout")
def test_fc_gradients_match_numerical(submission, rng, partial_credit):
    """For keep ratios 0.75, 0.5 and 1 (seeded), the network's analytic gradient, taken along three
    random unit directions in weight space, matches central differences (step 1e-6) of its loss
    along them, within 1e-7 + 1e-5 |numerical|. Exact up to rounding (no kinks, fixed masks): no
    false failures.

    Each direction involves every weight, so a wrong gradient shows unless its error e is nearly
    orthogonal to all three directions: for v uniform on the unit sphere of the d = 107 weights,
    P(|e . v| < t) < t sqrt(d) / |e| for each. (In the bank's wrong networks, over 20 seeds, every
    single direction misses by at least 80 times the tolerance; the right ones stay within a
    thousandth of it.) A backward pass that skips dropout gives dropped units' weights a gradient
    they do not have; a lost seed makes each loss draw new masks."""
    diagnoses = []
    for keep_ratio in (0.75, 0.5, 1.0):
        seed = student_seed(rng)
        directions = random_directions(rng, DIRECTIONS)
        obs, params, X, y = run_network(submission, rng, keep_ratio, seed, directions)
        if partial_credit.case(gradients_match(obs)):
            continue
        drops = [call for call in obs.train_calls if call.drops]
        # A forward pass with dropout in the wrong place has its own, more telling diagnosis.
        misplaced = placement_problem(obs, params, X, y) if keep_ratio < 1 else None
        if misplaced:
            diagnoses.append(misplaced)
        elif len(obs.backward_calls) < len(drops) or -1 in obs.backward_calls:
            diagnoses.append("fc_backward_skips_dropout")
        elif any(not call.has_seed for call in drops):
            diagnoses.append("fc_seed_lost")
        else:
            diagnoses.append(None)
    if diagnoses:
        if diagnoses[0] is None:
            assert False, "gradients differ from the numerical ones"
        raise Misconception(diagnoses[0])


def placement_problem(obs, params, X, y):
    """The misconception that the train-mode dropout calls show, or None if they are right."""
    input_shape, scores_shape = X.shape, (X.shape[0], CLASSES)
    shapes = [call.input.shape for call in obs.train_calls]
    if input_shape in shapes:
        return "fc_dropout_on_input"
    if scores_shape in shapes:
        return "fc_dropout_on_scores"
    if shapes != [(X.shape[0], size) for size in HIDDEN]:
        return "fc_dropout_missing"
    # Each call must get its layer's activation, computed from the previous call's output, and the
    # loss must come from the last call's output: otherwise a dropout result was thrown away.
    hidden = X
    for layer, call in enumerate(obs.train_calls, start=1):
        if not np.allclose(call.input, np.maximum(affine(hidden, params, layer), 0), rtol=1e-9, atol=1e-12):
            return "fc_dropout_missing"
        hidden = call.output
    expected = regularized_loss(affine(hidden, params, len(HIDDEN) + 1), y, params)
    if not np.isclose(obs.loss, expected, rtol=1e-9, atol=1e-12):
        return "fc_dropout_missing"
    return None


@pytest.mark.diagnosis("fc_dropout_missing")
def test_fc_dropout_after_every_hidden_layer(submission, rng):
    """In train mode with keep ratio 0.5 the network calls dropout exactly once per hidden layer,
    on that layer's ReLU output, never on the input or the scores, and uses each result; with keep
    ratio 1 it never calls dropout. Deterministic."""
    obs, params, X, y = run_network(submission, rng, 0.5, student_seed(rng))
    problem = placement_problem(obs, params, X, y)
    if problem:
        raise Misconception(problem)
    obs, _, _, _ = run_network(submission, rng, 1.0, student_seed(rng))
    assert not obs.train_calls and not obs.test_calls, "keep ratio 1 must mean no dropout at all"


@pytest.mark.diagnosis("fc_dropout_at_test_time")
def test_fc_no_dropout_at_test_time(submission, rng):
    """Called without labels, the network drops nothing (any dropout call it makes is in test
    mode) and its scores equal those of the same network without dropout (rtol 1e-9).
    Deterministic."""
    obs, params, X, _ = run_network(submission, rng, 0.5, student_seed(rng))
    if any(call.drops for call in obs.test_calls):
        raise Misconception("fc_dropout_at_test_time")
    assert np.allclose(obs.scores, clean_scores(X, params), rtol=1e-9, atol=1e-12)


@pytest.mark.diagnosis("fc_dropout_never_active")
def test_fc_dropout_active_in_training(submission, rng):
    """Called with labels and keep ratio 0.75, every dropout call is in train mode with p = 0.75,
    so that units really are dropped. Deterministic."""
    obs, _, _, _ = run_network(submission, rng, 0.75, student_seed(rng))
    if not obs.train_calls:
        raise Misconception("fc_dropout_missing")
    for call in obs.train_calls:
        assert call.mode == "train" and call.p == 0.75


@pytest.mark.diagnosis("fc_seed_lost")
def test_fc_seed_honoured(submission, rng):
    """A network built with a seed passes that seed to every dropout call. Deterministic."""
    seed = student_seed(rng)
    obs, _, _, _ = run_network(submission, rng, 0.5, seed)
    if not obs.train_calls:
        raise Misconception("fc_dropout_missing")
    for call in obs.train_calls:
        assert call.has_seed and call.seed == seed
