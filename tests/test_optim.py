"""Tests for nnlab.optim: each update rule minimises a quadratic and takes the textbook step.

The hand-worked cases all use ``w = [1, -2]`` and ``dw = [0.5, 1]``; the expected values in
the comments are computed from the formulas in the CS231n notes, so a rule with a wrong
formula (a missing bias correction, a sign slip, the wrong decay term) fails them.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnlab import optim

RULES = ["sgd", "sgd_momentum", "nesterov", "adagrad", "rmsprop", "adam"]

W = np.array([1.0, -2.0])
DW = np.array([0.5, 1.0])


def _rule(name):
    return getattr(optim, name)


# --- every rule minimises a quadratic -------------------------------------------------------

# Learning rates that suit f below; the defaults are tuned for networks, not for this bowl.
QUADRATIC_LR = {
    "sgd": 0.1,
    "sgd_momentum": 0.05,
    "nesterov": 0.05,
    "adagrad": 0.5,
    "rmsprop": 0.01,
    "adam": 0.05,
}


@pytest.mark.parametrize("name", RULES)
def test_rule_minimises_quadratic(name):
    """f(w) = 0.5 * sum(a * w**2) with a positive diagonal a; its gradient is a * w."""
    a = np.array([0.5, 1.0, 4.0])
    w = np.array([2.0, -1.0, 0.5])
    f0 = 0.5 * np.sum(a * w**2)
    config = {"learning_rate": QUADRATIC_LR[name]}
    for _ in range(300):
        w, config = _rule(name)(w, a * w, config)
    assert np.all(np.isfinite(w))
    assert 0.5 * np.sum(a * w**2) < f0 / 1e3


# --- first steps worked out by hand ---------------------------------------------------------


def test_sgd_step():
    next_w, _ = optim.sgd(W, DW, {"learning_rate": 0.1})
    # w - 0.1 * dw
    np.testing.assert_allclose(next_w, [0.95, -2.1])


def test_sgd_momentum_step_uses_velocity():
    config = {"learning_rate": 0.1, "momentum": 0.9, "velocity": np.array([0.2, -0.1])}
    next_w, config = optim.sgd_momentum(W, DW, config)
    # v = 0.9 * [0.2, -0.1] - 0.1 * [0.5, 1] = [0.13, -0.19]; w + v
    np.testing.assert_allclose(config["velocity"], [0.13, -0.19])
    np.testing.assert_allclose(next_w, [1.13, -2.19])


def test_sgd_momentum_carries_velocity_between_calls():
    config = {"learning_rate": 0.1}
    w, config = optim.sgd_momentum(W, DW, config)
    w, config = optim.sgd_momentum(w, DW, config)
    # v1 = -0.1 * dw; v2 = 0.9 * v1 - 0.1 * dw = -0.19 * dw; w2 = W - 0.29 * dw
    np.testing.assert_allclose(config["velocity"], -0.19 * DW)
    np.testing.assert_allclose(w, W - 0.29 * DW)


def test_nesterov_first_step_from_rest():
    next_w, config = optim.nesterov(W, DW, {"learning_rate": 0.1})
    # v = -0.1 * dw = [-0.05, -0.1]; w - 0.9 * 0 + 1.9 * v
    np.testing.assert_allclose(config["velocity"], [-0.05, -0.1])
    np.testing.assert_allclose(next_w, [0.905, -2.19])


def test_nesterov_step_uses_previous_velocity():
    config = {"learning_rate": 0.1, "momentum": 0.9, "velocity": np.array([0.2, -0.1])}
    next_w, config = optim.nesterov(W, DW, config)
    # v = [0.13, -0.19]; w - 0.9 * [0.2, -0.1] + 1.9 * [0.13, -0.19]
    #   = [1 - 0.18 + 0.247, -2 + 0.09 - 0.361]
    np.testing.assert_allclose(config["velocity"], [0.13, -0.19])
    np.testing.assert_allclose(next_w, [1.067, -2.271])


def test_adagrad_step():
    config = {"learning_rate": 0.1, "cache": np.array([0.75, 3.0])}
    next_w, config = optim.adagrad(W, DW, config)
    # cache = [0.75 + 0.25, 3 + 1] = [1, 4]; step = 0.1 * [0.5 / 1, 1 / 2] = [0.05, 0.05]
    np.testing.assert_allclose(config["cache"], [1.0, 4.0])
    np.testing.assert_allclose(next_w, [0.95, -2.05])


def test_rmsprop_first_step():
    next_w, config = optim.rmsprop(W, DW, {"learning_rate": 0.1})
    # cache = 0.01 * [0.25, 1] = [0.0025, 0.01]; sqrt = [0.05, 0.1];
    # step = 0.1 * [0.5 / 0.05, 1 / 0.1] = [1, 1]
    np.testing.assert_allclose(config["cache"], [0.0025, 0.01])
    np.testing.assert_allclose(next_w, [0.0, -3.0], atol=1e-6)


def test_adam_first_step_is_bias_corrected():
    next_w, config = optim.adam(W, DW, {"learning_rate": 0.1})
    # t = 1: m = 0.1 * dw, v = 0.001 * dw**2, so m_hat = dw and v_hat = dw**2 and the step
    # is learning_rate * sign(dw). Without bias correction it would be about 0.316.
    assert config["t"] == 1
    np.testing.assert_allclose(config["m"], 0.1 * DW)
    np.testing.assert_allclose(config["v"], 0.001 * DW**2)
    np.testing.assert_allclose(next_w, [0.9, -2.1], rtol=1e-6)


def test_adam_counts_steps():
    config = {"learning_rate": 0.1}
    w = W
    for _ in range(3):
        w, config = optim.adam(w, DW, config)
    # With a constant gradient the corrected moments are exactly dw and dw**2 at every t
    # (m_t = (1 - beta1**t) * dw), so each step is 0.1 * sign(dw); a stale t would not be.
    assert config["t"] == 3
    np.testing.assert_allclose(config["m"], (1 - 0.9**3) * DW)
    np.testing.assert_allclose(w, [0.7, -2.3], rtol=1e-6)


# --- the calling convention ------------------------------------------------------------------

DEFAULTS = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "nesterov": {"learning_rate": 1e-2, "momentum": 0.9},
    "adagrad": {"learning_rate": 1e-2, "epsilon": 1e-8},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 1},
}
STATE = {
    "sgd": [],
    "sgd_momentum": ["velocity"],
    "nesterov": ["velocity"],
    "adagrad": ["cache"],
    "rmsprop": ["cache"],
    "adam": ["m", "v"],
}


@pytest.mark.parametrize("name", RULES)
def test_config_defaults_filled(name):
    _, config = _rule(name)(W, DW)
    for key, value in DEFAULTS[name].items():
        assert config[key] == value, key
    for key in STATE[name]:
        assert config[key].shape == W.shape, key


@pytest.mark.parametrize("name", RULES)
def test_given_hyperparameters_kept_and_same_dict_returned(name):
    config = {"learning_rate": 0.123}
    _, returned = _rule(name)(W, DW, config)
    assert returned is config
    assert config["learning_rate"] == 0.123


@pytest.mark.parametrize("name", RULES)
def test_inputs_not_modified_and_dtype_kept(name, rng):
    w = rng.standard_normal((3, 4)).astype(np.float32)
    dw = rng.standard_normal((3, 4)).astype(np.float32)
    w0, dw0 = w.copy(), dw.copy()
    next_w, config = _rule(name)(w, dw, {"learning_rate": 0.1})
    next_w, config = _rule(name)(next_w, dw, config)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(dw, dw0)
    assert next_w.shape == w.shape
    assert next_w.dtype == np.float32
    assert not np.array_equal(next_w, w)
