"""FullyConnectedNet: parameters, gradients with and without dropout, and where dropout acts."""

from __future__ import annotations

import numpy as np
import pytest

from nnlab.classifiers import fc_net
from nnlab.classifiers.fc_net import FullyConnectedNet
from nnlab.data_utils import get_digits_data
from nnlab.gradient_check import eval_numerical_gradient, rel_error


def small_problem(seed=231):
    np.random.seed(seed)
    X = np.random.randn(2, 15)
    y = np.random.randint(10, size=(2,))
    return X, y


@pytest.mark.parametrize("keep_ratio", [1, 0.75, 0.5])
def test_gradients_match_numerical_ones(keep_ratio):
    X, y = small_problem()
    model = FullyConnectedNet(
        [20, 30], input_dim=15, num_classes=10, weight_scale=5e-2, dtype=np.float64,
        dropout_keep_ratio=keep_ratio, reg=0.1, seed=123,
    )
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name in sorted(grads):
        numerical = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], h=1e-5)
        assert rel_error(numerical, grads[name]) < 1e-4, name


def test_initial_losses_match_the_course_figures():
    """Seeded as the notebook is (one seed, networks built in turn), the start losses are the known ones."""
    X, y = small_problem()
    losses = []
    for keep_ratio in [1, 0.75, 0.5]:
        model = FullyConnectedNet([20, 30], input_dim=15, num_classes=10, weight_scale=5e-2,
                                  dtype=np.float64, dropout_keep_ratio=keep_ratio, seed=123)
        losses.append(model.loss(X, y)[0])
    np.testing.assert_allclose(losses, [2.3004790897684924, 2.302371489704412, 2.3042759220785896],
                               rtol=0, atol=1e-12)


def test_parameters_have_the_documented_shapes_and_draw_order():
    np.random.seed(0)
    model = FullyConnectedNet([4, 3], input_dim=5, num_classes=2, weight_scale=0.1)
    assert {k: v.shape for k, v in model.params.items()} == {
        "W1": (5, 4), "b1": (4,), "W2": (4, 3), "b2": (3,), "W3": (3, 2), "b3": (2,),
    }
    np.random.seed(0)
    w1 = 0.1 * np.random.randn(5, 4)
    w2 = 0.1 * np.random.randn(4, 3)
    np.testing.assert_allclose(model.params["W1"], w1.astype(np.float32))
    np.testing.assert_allclose(model.params["W2"], w2.astype(np.float32))
    assert not model.params["b2"].any()
    assert model.params["W1"].dtype == np.float32


def test_regularization_adds_half_reg_times_squared_weights():
    X, y = small_problem()
    np.random.seed(1)
    plain = FullyConnectedNet([6], input_dim=15, num_classes=10, dtype=np.float64)
    np.random.seed(1)
    regularized = FullyConnectedNet([6], input_dim=15, num_classes=10, dtype=np.float64, reg=3.0)
    penalty = 0.5 * 3.0 * sum(np.sum(plain.params[w] ** 2) for w in ("W1", "W2"))
    assert regularized.loss(X, y)[0] == pytest.approx(plain.loss(X, y)[0] + penalty)


class RecordingDropout:
    """Stands in for dropout_forward in fc_net's namespace and records what each call received."""

    def __init__(self):
        self.calls = []
        self.real = fc_net.dropout_forward

    def __call__(self, x, dropout_param):
        self.calls.append((x.shape, dict(dropout_param), bool(np.all(x >= 0))))
        return self.real(x, dropout_param)


def test_dropout_acts_after_every_hidden_relu_in_training_only(monkeypatch):
    recorder = RecordingDropout()
    monkeypatch.setattr(fc_net, "dropout_forward", recorder)
    X, y = small_problem()
    model = FullyConnectedNet([20, 30, 40], input_dim=15, num_classes=10, dropout_keep_ratio=0.6, seed=9)
    model.loss(X, y)
    # One call per hidden layer, on non-negative (post-ReLU) activations, in train mode.
    assert [shape for shape, _, _ in recorder.calls] == [(2, 20), (2, 30), (2, 40)]
    assert all(param["mode"] == "train" and param["p"] == 0.6 and param["seed"] == 9
               for _, param, _ in recorder.calls)
    assert all(non_negative for _, _, non_negative in recorder.calls)

    recorder.calls.clear()
    scores = model.loss(X)
    assert scores.shape == (2, 10)
    assert all(param["mode"] == "test" for _, param, _ in recorder.calls)


def test_keep_ratio_one_means_no_dropout(monkeypatch):
    recorder = RecordingDropout()
    monkeypatch.setattr(fc_net, "dropout_forward", recorder)
    X, y = small_problem()
    FullyConnectedNet([20], input_dim=15, num_classes=10).loss(X, y)
    assert recorder.calls == []


def test_test_mode_scores_do_not_depend_on_dropout():
    X, _ = small_problem()
    np.random.seed(3)
    with_dropout = FullyConnectedNet([20], input_dim=15, num_classes=10, dropout_keep_ratio=0.5,
                                     dtype=np.float64)
    np.random.seed(3)
    without = FullyConnectedNet([20], input_dim=15, num_classes=10, dtype=np.float64)
    np.testing.assert_array_equal(with_dropout.loss(X), without.loss(X))


def test_a_bad_keep_ratio_is_refused():
    with pytest.raises(ValueError, match="1.5"):
        FullyConnectedNet([3], input_dim=2, num_classes=2, dropout_keep_ratio=1.5)


@pytest.mark.parametrize("rule, factor", [("he", 2.0), ("xavier", 1.0), ("He", 2.0), ("XAVIER", 1.0)])
def test_named_initialisation_scales_each_layer_by_its_fan_in(rule, factor):
    """Wi = sqrt(factor / fan_in) * randn(...), drawn in layer order as for a numeric weight_scale."""
    np.random.seed(5)
    model = FullyConnectedNet([40, 30, 20], input_dim=64, num_classes=10, weight_scale=rule,
                              dtype=np.float64)
    np.random.seed(5)
    for layer, (fan_in, fan_out) in enumerate([(64, 40), (40, 30), (30, 20), (20, 10)], start=1):
        expected = np.sqrt(factor / fan_in) * np.random.randn(fan_in, fan_out)
        np.testing.assert_array_equal(model.params[f"W{layer}"], expected)
        assert not model.params[f"b{layer}"].any()


def test_an_unknown_initialisation_name_is_refused():
    with pytest.raises(ValueError, match="'kaiming'.*'he', 'xavier'"):
        FullyConnectedNet([3], input_dim=2, num_classes=2, weight_scale="kaiming")


def test_he_initialisation_keeps_a_deep_nets_signal_where_the_default_loses_it():
    """Six hidden layers of 100: with the default scale 1e-2 the scores all but vanish; with He they do not."""
    X = get_digits_data(num_training=100, num_validation=0, num_test=0)["X_train"]
    spread = {}
    for scale in (1e-2, "he"):
        np.random.seed(0)
        model = FullyConnectedNet([100] * 6, input_dim=64, num_classes=10, weight_scale=scale,
                                  dtype=np.float64)
        spread[scale] = model.loss(X).std()
    assert spread[1e-2] < 1e-6
    assert spread["he"] > 0.1
