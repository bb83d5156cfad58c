"""The scratch flavour's reference library, in both dropout styles: the Dropout layer, MultiLayerNet
and train().

The flavour's nnlab is a different package from solution/nnlab, which the rest of the test session
imports under the same name, so a fixture imports it from the instructor's copy of the flavour and
puts the session's own nnlab back afterwards.
"""

from __future__ import annotations

import importlib
import math
import sys

import numpy as np
import pytest

from autograder import flavours
from autograder.release import write_tree
from nnlab.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error

STYLES = ("vanilla", "inverted")


def hoeffding_tolerance(n: int, false_failure: float = 1e-9) -> float:
    """Deviation t of a mean of n independent [0, 1] draws with P(|mean - expectation| > t) <= false_failure."""
    return math.sqrt(math.log(2 / false_failure) / (2 * n))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """The flavour's modules as a namespace: scratch.layers, scratch.multi_layer_net, ..."""
    tree = tmp_path_factory.mktemp("scratch-solution")
    write_tree(flavours.released_tree(flavours.FLAVOURS["scratch"], answers=True), tree)
    saved = {name: module for name, module in sys.modules.items() if name == "nnlab" or name.startswith("nnlab.")}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(tree))
    try:
        modules = {name: importlib.import_module(f"nnlab.{name}")
                   for name in ("settings", "layers", "multi_layer_net", "trainer", "data_utils")}
    finally:
        sys.path.remove(str(tree))
        for name in [n for n in sys.modules if n == "nnlab" or n.startswith("nnlab.")]:
            del sys.modules[name]
        sys.modules.update(saved)
    return type("Scratch", (), modules)


@pytest.fixture(autouse=True)
def seeded_masks():
    """Masks come from numpy's global generator: seeding it makes every run of these tests the same."""
    np.random.seed(20261202)


@pytest.fixture(params=STYLES)
def style(request, scratch, monkeypatch):
    monkeypatch.setattr(scratch.settings, "DROPOUT_STYLE", request.param)
    return request.param


def test_the_committed_setting_is_a_known_style(scratch):
    assert scratch.settings.DROPOUT_STYLE in STYLES == scratch.settings.DROPOUT_STYLES


@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.5, 0.8])
def test_training_forward_drops_the_ratio_and_scales_kept_units_by_style(scratch, style, ratio, rng):
    """The dropped fraction is within Hoeffding's bound of dropout_ratio (false failure 1e-9 per case);
    a ratio read as a keep probability misses it by at least 0.2, far beyond the bound (0.009)."""
    x = rng.standard_normal((4, 150, 200)) + 10  # no exact zeros: a zero output is a dropped unit
    layer = scratch.layers.Dropout(ratio)
    out = layer.forward(x, train_flg=True)
    kept = out != 0
    assert abs((~kept).mean() - ratio) <= hoeffding_tolerance(x.size)
    scale = 1.0 if style == "vanilla" else 1.0 / (1.0 - ratio)
    np.testing.assert_allclose(out[kept], x[kept] * scale, rtol=1e-12)
    assert layer.mask.dtype == bool and np.array_equal(layer.mask, kept)
    assert out.shape == x.shape


@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.75])
def test_test_mode_matches_the_training_mean_in_each_style(scratch, style, ratio, rng):
    x = rng.standard_normal((30, 40))
    layer = scratch.layers.Dropout(ratio)
    out = layer.forward(x, train_flg=False)
    np.testing.assert_array_equal(out, x * (1.0 - ratio) if style == "vanilla" else x)
    assert layer.mask is None


def test_expected_training_output_equals_the_test_output(scratch, style, rng):
    """Over 1,000 masks each element's mean training output is within Hoeffding's bound of its test
    output (false failure at most 1e-9 over the 50 elements); forgetting the test-time factor in
    vanilla dropout, or the 1 / q in inverted dropout, misses by 0.3 of the value, beyond the bound."""
    x = rng.uniform(1, 2, size=50)
    layer = scratch.layers.Dropout(0.3)
    draws = np.array([layer.forward(x, train_flg=True) for _ in range(1000)])
    test_out = layer.forward(x, train_flg=False)
    largest = x * (1.0 if style == "vanilla" else 1 / 0.7)  # each draw lies in [0, largest]
    tolerance = largest * math.sqrt(math.log(2 * 50 / 1e-9) / (2 * 1000))
    assert np.all(np.abs(draws.mean(axis=0) - test_out) <= tolerance)


def test_float32_stays_float32_and_zero_ratio_keeps_everything(scratch, style, rng):
    x = rng.standard_normal((20, 30)).astype(np.float32)
    assert scratch.layers.Dropout(0.4).forward(x).dtype == np.float32
    assert scratch.layers.Dropout(0.4).forward(x, train_flg=False).dtype == np.float32
    np.testing.assert_array_equal(scratch.layers.Dropout(0).forward(x), x)


def test_backward_matches_the_numerical_gradient_of_the_same_mask(scratch, style, rng):
    x = rng.standard_normal((8, 9)) + 3
    dout = rng.standard_normal(x.shape)
    layer = scratch.layers.Dropout(0.35)

    def forward(xx):
        np.random.seed(7)
        return layer.forward(xx, train_flg=True)

    numerical = eval_numerical_gradient_array(forward, x, dout)
    out = forward(x)
    dx = layer.backward(dout)
    assert rel_error(dx, numerical) < 1e-9
    assert np.all(dx[out == 0] == 0)


def test_backward_before_a_training_forward_is_refused(scratch, style):
    layer = scratch.layers.Dropout(0.5)
    with pytest.raises(RuntimeError, match="training-mode forward"):
        layer.backward(np.ones(3))
    layer.forward(np.ones(3), train_flg=True)
    layer.forward(np.ones(3), train_flg=False)
    with pytest.raises(RuntimeError):
        layer.backward(np.ones(3))


@pytest.mark.parametrize("ratio", [1, 1.0, -0.1, 2, True, "0.2", None, float("nan")])
def test_a_ratio_that_is_not_a_drop_probability_is_refused(scratch, ratio):
    with pytest.raises(ValueError, match=r"DROPPING.*\[0, 1\); got"):
        scratch.layers.Dropout(ratio)
    with pytest.raises(ValueError, match="DROPPING"):
        scratch.multi_layer_net.MultiLayerNet(4, [3], 2, use_dropout=True, dropout_ratio=ratio)


def test_an_unknown_style_in_the_settings_is_refused(scratch, monkeypatch):
    monkeypatch.setattr(scratch.settings, "DROPOUT_STYLE", "gaussian")
    with pytest.raises(ValueError, match="settings.py.*'gaussian'"):
        scratch.layers.Dropout(0.5)


def small_problem():
    rng = np.random.RandomState(0)
    return rng.randn(4, 12), rng.randint(6, size=4)


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5])
def test_network_gradients_match_numerical_ones(scratch, style, ratio):
    X, y = small_problem()
    np.random.seed(1)
    net = scratch.multi_layer_net.MultiLayerNet(12, [10, 9, 8], 6, use_dropout=True, dropout_ratio=ratio,
                                                weight_decay_lambda=0.1)
    # Nonzero biases: a unit whose inputs were all dropped would otherwise sit exactly at the ReLU's
    # corner, where the centred difference is not the gradient.
    for name in [n for n in net.params if n.startswith("b")]:
        net.params[name] += np.random.RandomState(4).uniform(0.05, 0.1, size=net.params[name].shape)

    def loss(_):
        np.random.seed(2)
        return net.loss(X, y, train_flg=True)

    np.random.seed(2)
    grads = net.gradient(X, y)
    assert set(grads) == set(net.params)
    for name in sorted(grads):
        assert rel_error(eval_numerical_gradient(loss, net.params[name]), grads[name]) < 1e-6, name


def test_network_drops_after_every_hidden_relu_only_and_only_in_training(scratch, style, monkeypatch):
    calls = []
    real_forward = scratch.layers.Dropout.forward

    def recording_forward(self, x, train_flg=True):
        calls.append((x.shape, bool(train_flg), bool(np.all(x >= 0))))
        return real_forward(self, x, train_flg)

    monkeypatch.setattr(scratch.layers.Dropout, "forward", recording_forward)
    X, y = small_problem()
    np.random.seed(3)
    net = scratch.multi_layer_net.MultiLayerNet(12, [10, 9, 8], 6, use_dropout=True, dropout_ratio=0.2)
    assert [layer.dropout_ratio for layer in net.dropout_layers] == [0.2] * 3
    net.gradient(X, y)
    assert calls == [((4, 10), True, True), ((4, 9), True, True), ((4, 8), True, True)]
    calls.clear()
    net.predict(X)
    assert [train for _, train, _ in calls] == [False] * 3

    calls.clear()
    scratch.multi_layer_net.MultiLayerNet(12, [10], 6).gradient(X, y)
    assert calls == []


def test_inverted_networks_test_scores_do_not_depend_on_dropout(scratch, monkeypatch):
    monkeypatch.setattr(scratch.settings, "DROPOUT_STYLE", "inverted")
    X, _ = small_problem()
    np.random.seed(5)
    with_dropout = scratch.multi_layer_net.MultiLayerNet(12, [10, 9], 6, use_dropout=True, dropout_ratio=0.4)
    np.random.seed(5)
    without = scratch.multi_layer_net.MultiLayerNet(12, [10, 9], 6)
    np.testing.assert_array_equal(with_dropout.predict(X), without.predict(X))


@pytest.mark.parametrize("rule, factor", [("he", 2.0), ("xavier", 1.0)])
def test_named_initialisation_scales_each_layer_by_its_fan_in(scratch, rule, factor):
    np.random.seed(6)
    net = scratch.multi_layer_net.MultiLayerNet(64, [40, 30], 10, weight_init_std=rule)
    np.random.seed(6)
    for layer, (fan_in, fan_out) in enumerate([(64, 40), (40, 30), (30, 10)], start=1):
        np.testing.assert_array_equal(net.params[f"W{layer}"], np.sqrt(factor / fan_in) * np.random.randn(fan_in, fan_out))
    with pytest.raises(ValueError, match="'kaiming'"):
        scratch.multi_layer_net.MultiLayerNet(4, [3], 2, weight_init_std="kaiming")


def test_train_records_curves_and_learns(scratch):
    data = scratch.data_utils.get_digits_data(num_training=100, num_validation=0, num_test=200)
    np.random.seed(0)
    net = scratch.multi_layer_net.MultiLayerNet(64, [50, 50], 10)
    history = scratch.trainer.train(net, data["X_train"], data["y_train"], data["X_test"], data["y_test"],
                                    epochs=23, batch_size=30, learning_rate=0.1, record_every=5)
    assert history["epoch"] == [0, 5, 10, 15, 20, 23]
    assert len(history["train_acc"]) == len(history["test_acc"]) == 6
    # Seeded, so deterministic: from chance level to a fitted training set.
    assert history["train_acc"][0] < 0.3 and history["train_acc"][-1] > 0.9
    assert history["test_acc"][-1] > 0.7
