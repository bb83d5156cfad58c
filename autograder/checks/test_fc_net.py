"""Checks of the dropout lines of the student's network: CS231n's FullyConnectedNet.loss, or the
scratch flavour's MultiLayerNet (its Dropout layers made in __init__, run in predict, backpropagated
in gradient). The properties are stated once, with the convention's factors (training: 0 or
train_scale(p); test: test_scale(p)); the submission fixture runs whichever network the flavour has
and returns the same observations.

The checks observe what the network does, not how its code spells it. In the child
(child_driver.NetworkTrace), every affine_forward call of loss() is recorded: the input of each
affine layer, compared with the ReLU output of the layer before, shows exactly what the network
did to its hidden activations in between, whether it called dropout_forward by name, through an
alias, through the Dropout layer object, with keyword arguments, or wrote dropout inline. Where
the network calls the library's dropout functions (under any name), they are replaced by a correct
inverted dropout that also records its calls, so that a bug of the student's own dropout layer
costs points in the layer checks only, never twice.

The network's weights and inputs come from the parent: all non-negative, biases at least 0.1, so
every pre-activation is at least 0.1 and every ReLU works in its linear part. No finite difference
can cross a ReLU kink, the gradient checks are exact up to rounding (no false failures), and
dropout before the ReLU is indistinguishable from dropout after it, as it should be. Networks with
two and with three hidden layers are checked, each over two loss() calls in a row on batches of
different sizes.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.checks.evidence import student_seed
from autograder.diagnoses import Measured, Misconception

INPUT_DIM, CLASSES = 7, 4
SHALLOW, DEEP = (6, 5), (6, 5, 9)  # all widths differ, so a weight's shape names its layer
BATCHES = (8, 11)
REG = 0.05
STEP = 1e-6
DIRECTIONS = 3  # per loss call; see test_fc_gradients_match_numerical


def network_params(rng, hidden):
    """Weights and biases of a network whose ReLUs are all active."""
    sizes = [INPUT_DIM, *hidden, CLASSES]
    params = {}
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{layer}"] = rng.uniform(0.0, 0.5, (fan_in, fan_out))
        params[f"b{layer}"] = rng.uniform(0.1, 0.5, fan_out)
    return params


def batch(rng, size):
    return rng.uniform(0.1, 1.0, (size, INPUT_DIM)), rng.integers(0, CLASSES, size)


def random_directions(rng, params, count):
    """``count`` directions in weight space (one array per weight, shaped like it), each drawn
    uniformly from the unit sphere, so that every coordinate of every weight takes part."""
    directions = []
    for _ in range(count):
        draw = {name: rng.normal(size=value.shape) for name, value in params.items()}
        norm = np.sqrt(sum(np.sum(value * value) for value in draw.values()))
        directions.append({name: value / norm for name, value in draw.items()})
    return directions


def run_network(submission, rng, hidden, keep_ratio, seed, batches=BATCHES, directions=0):
    params = network_params(rng, hidden)
    return submission.network(
        hidden_dims=hidden, num_classes=CLASSES, keep_ratio=keep_ratio, params=params,
        batches=[(*batch(rng, size), seed if index == 0 else student_seed(rng)) for index, size in enumerate(batches)],
        net_seed=seed, reg=REG,
        directions=random_directions(rng, params, directions), step=STEP, test_X=batch(rng, BATCHES[0])[0],
    )


# -- what the network did, read from the affine layers' inputs and outputs ----------------------
def softmax_loss(scores, y):
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(y)), y].mean()


def regularized_loss(scores, y, params):
    return softmax_loss(scores, y) + 0.5 * REG * sum(np.sum(w * w) for name, w in params.items() if name.startswith("W"))


def clean_scores(X, params, hidden_factor=1.0):
    """Scores with every hidden activation multiplied by ``hidden_factor``: the network without
    dropout (1), or in test mode (the convention's test-time factor)."""
    layers = len(params) // 2
    activation = X
    for layer in range(1, layers):
        activation = hidden_factor * np.maximum(activation @ params[f"W{layer}"] + params[f"b{layer}"], 0)
    return activation @ params[f"W{layers}"] + params[f"b{layers}"]


def affine_output(call, params, layer):
    """What the given affine_forward returned for layer ``layer`` (1-based), from its recorded input."""
    return call.affine[layer - 1].input @ params[f"W{layer}"] + params[f"b{layer}"]


def factors(call, params):
    """What the network multiplied each unit by on its way into each affine layer: entry 0 for the
    input data, entry l for hidden layer l's ReLU output. Raises fc_layers_not_observed when the
    affine layers were not called once each, in order."""
    layers = len(params) // 2
    layer_of_shape = {params[f"W{layer}"].shape: layer for layer in range(1, layers + 1)}
    order = [layer_of_shape.get(affine.w_shape) for affine in call.affine]
    if order != list(range(1, layers + 1)):
        raise Misconception("fc_layers_not_observed", f"affine layers seen, in order: {order}")
    result = [call.affine[0].input / call.X.reshape(len(call.X), -1)]
    for layer in range(1, layers):
        relu = np.maximum(affine_output(call, params, layer), 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            result.append(np.where(relu > 0, call.affine[layer].input / np.where(relu > 0, relu, 1), np.nan))
    return result


def scaling_problem(factor, p, where, convention) -> Misconception | None:
    """None when a hidden layer's factors are the convention's dropout with keep probability p in
    training: each unit 0 or train_scale(p). Otherwise what the factors show. (Whether any unit
    was dropped at all is train_problem's question: for vanilla dropout, whose kept units pass
    unchanged, a layer that happened to drop nothing looks like no dropout.)"""
    expected = convention.train_scale(p)
    finite = factor[np.isfinite(factor)]
    nonzero = finite[~np.isclose(finite, 0, rtol=0, atol=1e-12)]
    dropped = nonzero.size < finite.size
    if finite.size == factor.size and np.allclose(nonzero, expected, rtol=1e-9, atol=0):
        return None
    if nonzero.size and np.allclose(nonzero, 1, rtol=1e-9, atol=0):
        if not dropped:
            return Misconception("fc_dropout_missing", where)
        return Misconception("missing_inverse_scaling", f"in the network, {where}")
    if expected != 1 and np.any(np.isclose(nonzero, expected**2, rtol=1e-9, atol=0)):
        return Misconception("fc_dropout_applied_twice", where)
    if nonzero.size and np.allclose(nonzero, nonzero[0], rtol=1e-9, atol=0):
        if expected == 1:
            return Misconception("scaled_in_training", f"in the network, {where}")
        return Misconception("fc_wrong_keep_probability",
                             f"{where}: kept units were scaled by {nonzero[0]:.6g}, which is 1/{1 / nonzero[0]:.4g}, "
                             f"while the network has {convention.setting(p)}")
    return Measured("Between a hidden layer's ReLU and the next affine layer the activations were changed in a "
                    "way dropout does not change them.", where)


def loss_problem(call, params) -> Misconception | None:
    """None when the loss is the softmax loss of the last affine layer's output plus the L2 term."""
    scores = affine_output(call, params, len(params) // 2)
    if np.isclose(call.loss, regularized_loss(scores, call.y, params), rtol=1e-9, atol=1e-12):
        return None
    if any(dropout.drops and dropout.shape == scores.shape for dropout in call.dropout):
        return Misconception("fc_dropout_on_scores")
    if np.isclose(call.loss, regularized_loss(clean_scores(call.X, params), call.y, params), rtol=1e-9, atol=1e-12):
        return Misconception("fc_dropout_missing", "the loss came from scores computed without dropout")
    return Measured("The loss was not the softmax loss of the last affine layer's scores plus the L2 term.")


def train_problem(call, params, p, convention) -> Misconception | None:
    """None when a train-mode loss() call with keep ratio p < 1 dropped units the way the
    convention's dropout does in every hidden layer, and nowhere else. Otherwise what it shows."""
    found = factors(call, params)
    if not np.allclose(found[0], 1, rtol=1e-12, atol=0):
        return Misconception("fc_dropout_on_input")
    wrong_p = [dropout.p for dropout in call.dropout
               if dropout.drops and not (isinstance(dropout.p, float) and np.isclose(dropout.p, p, rtol=1e-9, atol=0))]
    if wrong_p:  # the network's dropout calls asked for another keep probability than its own
        return Misconception("fc_wrong_keep_probability", f"its dropout kept units with probability {wrong_p[0]!r} "
                             f"while the network has {convention.setting(p)}")
    problems = [scaling_problem(factor, p, f"after hidden layer {layer}", convention)
                for layer, factor in enumerate(found[1:], 1)]
    if not any(np.any(np.isclose(factor, 0, rtol=0, atol=1e-12)) for factor in found[1:]):
        # No hidden unit was dropped: say why, when the calls the network made tell it.
        if any(dropout.mode != "train" or dropout.p == 1 for dropout in call.dropout):
            return Misconception("fc_dropout_never_active")
        if all(problem is None or problem.diagnosis_id == "fc_dropout_missing" for problem in problems):
            return Misconception("fc_dropout_missing", "no hidden unit was dropped")
    for problem in problems:
        if problem is not None:
            return problem
    return loss_problem(call, params)


def identity_problem(call, params, diagnosis, hidden_factor=1.0) -> Misconception | None:
    """None when a loss() call left the input as it was and multiplied every hidden activation by
    ``hidden_factor`` (1: no dropout; in test mode, the convention's test-time factor)."""
    found = factors(call, params)
    if not np.allclose(found[0], 1, rtol=1e-12, atol=0):
        return Misconception(diagnosis)
    for factor in found[1:]:
        if not np.allclose(factor, hidden_factor, rtol=1e-9, atol=0):
            if hidden_factor != 1 and np.allclose(factor, 1, rtol=1e-12, atol=0):
                return Misconception("missing_test_scaling", "in the network's test mode")
            return Misconception(diagnosis)
    return None


def masks_repeat(call) -> bool:
    """The second loss() call with the same weights and batch multiplied every unit as the first."""
    if len(call.repeat_affine) != len(call.affine):
        return False
    return all(np.array_equal(first.input, second.input) for first, second in zip(call.affine, call.repeat_affine))


# -- the checks -----------------------------------------------------------------------------------
def gradients_match(call) -> bool:
    """The analytic gradient's slope along each direction equals the numerical one."""
    analytic = np.array([sum(np.sum(call.grads[name] * direction[name]) for name in direction)
                         for direction in call.directions])
    return bool(np.allclose(analytic, call.numerical_slopes, rtol=1e-5, atol=1e-7))


def gradient_problem(obs, call, index, convention) -> Misconception:
    """Why a loss() call's gradients are wrong, as far as the calls show it."""
    if obs.keep_ratio < 1:
        problem = train_problem(call, obs.params, obs.keep_ratio, convention)
        if problem:
            return problem
    if any(not backward.same_call for backward in call.backward if backward.ours):
        return Misconception("fc_stale_caches")
    if any(not backward.same_shape for backward in call.backward if backward.ours):
        return Misconception("fc_dropout_layer_shared")
    drops = [dropout for dropout in call.dropout if dropout.drops]
    if any(not backward.ours for backward in call.backward):
        return Measured("The network's backward pass gave dropout_backward something other than a cache "
                        "its forward pass got from dropout_forward.")
    if len(call.backward) < len(drops):
        return Misconception("fc_backward_skips_dropout")
    if not masks_repeat(call):
        return Misconception("fc_seed_lost", "two loss() calls of one seeded network dropped different units")
    where = f"{convention.setting(obs.keep_ratio)}, {len(obs.hidden_dims)} hidden layers"
    if index > 0 and gradients_match(obs.batches[0]):
        return Measured("The gradients of a second loss() call disagreed with its numerical gradients, though "
                        "the first call's agreed: the backward pass must use its own call's dropout masks.", where)
    return Measured("FullyConnectedNet.loss's gradients disagreed with the numerical gradients of the loss it "
                    "computes.", where)


def test_fc_gradients_match_numerical(submission, rng, partial_credit, convention):
    """For keep ratios 0.75 (two hidden layers) and 0.5 (three), seeded, over two loss() calls in a
    row on batches of 8 and 11 examples with different seeds, and for keep ratio 1 (two hidden
    layers, one call), the network's analytic gradient, taken along
    three random unit directions in weight space, matches central differences (step 1e-6) of its
    loss along them, within 1e-7 + 1e-5 |numerical|. Exact up to rounding (no kinks, fixed masks):
    no false failures.

    Each direction involves every weight, so a wrong gradient shows unless its error e is nearly
    orthogonal to all three directions: for v uniform on the unit sphere of the d weights (107 or
    161), P(|e . v| < t) < t sqrt(d) / |e| for each. A backward pass that skips dropout gives
    dropped units' weights a gradient they do not have; a lost seed makes each loss draw new
    masks; caches kept from an earlier call give the second call the first call's masks."""
    # Without dropout (keep ratio 1) there are no caches to go stale: one loss() call is enough.
    cases = ((SHALLOW, 0.75, BATCHES), (DEEP, 0.5, BATCHES), (SHALLOW, 1.0, BATCHES[:1]))
    partial_credit.expect(sum(len(batches) for _, _, batches in cases))
    problems = []
    for hidden, keep_ratio, batches in cases:
        obs = run_network(submission, rng, hidden, keep_ratio, student_seed(rng), batches, directions=DIRECTIONS)
        for index, call in enumerate(obs.batches):
            if not partial_credit.case(gradients_match(call)):
                problems.append(gradient_problem(obs, call, index, convention))
    if problems:
        raise problems[0]


def test_fc_dropout_after_every_hidden_layer(submission, rng, convention):
    """In train mode with keep ratio 0.5, in networks of two and of three hidden layers, every
    hidden layer's ReLU output reaches the next layer multiplied by the convention's factors (0 or
    train_scale(0.5), some of each), once, and neither the input nor the scores are dropped; with
    keep ratio 1 the network applies no dropout (CS231n's network calls none; the scratch
    flavour's Dropout layers, at dropout_ratio 0, drop nothing). A correct network keeps all or
    none of a layer's 40 or more units with probability below 2 * 0.5^40 per layer: below 1e-11
    in all."""
    for hidden in (SHALLOW, DEEP):
        obs = run_network(submission, rng, hidden, 0.5, student_seed(rng), batches=BATCHES[:1])
        call = obs.batches[0]
        problem = train_problem(call, obs.params, 0.5, convention)
        if problem:
            raise problem
        for layer, factor in enumerate(factors(call, obs.params)[1:], start=1):
            if np.all(factor == 0) or np.all(factor != 0):
                raise Measured("A hidden layer's units were all kept or all dropped.", f"hidden layer {layer}")
    obs = run_network(submission, rng, SHALLOW, 1.0, student_seed(rng), batches=BATCHES[:1])
    call = obs.batches[0]
    calls = [dropout for dropout in call.dropout if dropout.drops or convention.flavour == "cs231n"]
    if calls or identity_problem(call, obs.params, "fc_dropout_at_keep_ratio_one"):
        raise Misconception("fc_dropout_at_keep_ratio_one")
    problem = loss_problem(call, obs.params)
    if problem:
        raise problem


@pytest.mark.diagnosis("fc_dropout_at_test_time")
def test_fc_no_dropout_at_test_time(submission, rng, convention):
    """In test mode (CS231n: loss() without labels; scratch: predict() with its default
    train_flg), the network leaves its input as it was, multiplies every hidden activation by the
    convention's test-time factor (1 for inverted dropout, the keep ratio for vanilla) and returns
    the last affine layer's output, equal to the scores computed that way (rtol 1e-9).
    Deterministic."""
    for hidden in (SHALLOW, DEEP):
        obs = run_network(submission, rng, hidden, 0.5, student_seed(rng), batches=())
        test = obs.test
        hidden_factor = convention.test_scale(convention.keep_probability(0.5))
        problem = identity_problem(test, obs.params, "fc_dropout_at_test_time", hidden_factor)
        if problem:
            raise problem
        expected = clean_scores(test.X, obs.params, hidden_factor)
        if not np.allclose(test.scores, expected, rtol=1e-9, atol=1e-12):
            if np.any(test.scores == 0):
                raise Misconception("fc_dropout_at_test_time", "on the scores")
            raise Measured("In test mode the scores differed from the network's test-mode scores.")


def test_fc_dropout_active_in_training(submission, rng, convention):
    """Called in training (CS231n: loss() with labels; scratch: gradient()) with keep ratio 0.75,
    the network drops units with keep probability 0.75: every hidden unit reaches the next layer
    multiplied by 0 or train_scale(0.75), and some unit is dropped. A correct network keeps no
    unit of a layer with probability below 0.25^40 < 1e-24, and drops none of its 88 hidden units
    with probability 0.75^88 < 1e-10."""
    obs = run_network(submission, rng, SHALLOW, 0.75, student_seed(rng), batches=BATCHES[:1])
    problem = train_problem(obs.batches[0], obs.params, 0.75, convention)
    if problem:
        raise problem


@pytest.mark.only_in("cs231n")  # the scratch flavour's network has no seed of its own
@pytest.mark.diagnosis("fc_seed_lost")
def test_fc_seed_honoured(submission, rng, convention):
    """A network built with a seed drops the same units on every loss() call with the same input,
    passes that seed to every dropout call it makes, and two networks built with different seeds
    drop different units. With keep ratio 0.5 and 70 hidden units, two independent draws agree with
    probability 0.5^70 < 1e-21."""
    seed = student_seed(rng)
    first = run_network(submission, rng, SHALLOW, 0.5, seed, batches=BATCHES[:1])
    call = first.batches[0]
    problem = train_problem(call, first.params, 0.5, convention)
    if problem:
        raise problem
    if not masks_repeat(call) or any(not dropout.has_seed or dropout.seed != seed for dropout in call.dropout):
        raise Misconception("fc_seed_lost")
    other_seed = (seed + 1 + int(rng.integers(0, 1000))) % (2**31 - 1)
    second = submission.network(
        hidden_dims=SHALLOW, num_classes=CLASSES, keep_ratio=0.5, params=first.params,
        batches=[(call.X, call.y, None)], net_seed=other_seed, reg=REG, test_X=first.test.X,
    )
    if all(np.array_equal(a.input, b.input) for a, b in zip(call.affine, second.batches[0].affine)):
        raise Misconception("same_mask_every_call", "two networks built with different seeds dropped the same units")
