"""Tests for nnlab.solver.Solver: training, histories, best parameters, decay and errors.

Three models serve here:
- FullyConnectedNet, the course's own network, for the end-to-end overfitting run;
- SoftmaxRegression, a tiny linear classifier, for the bookkeeping tests (fast, and
  independent of the rest of the library);
- ScriptedModel, whose validation accuracy follows a script, so that the test knows in
  advance which epoch is best.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from nnlab import optim
from nnlab.classifiers.fc_net import FullyConnectedNet
from nnlab.solver import Solver


@pytest.fixture(autouse=True)
def seeded_global_rng():
    """Seed numpy's global generator (the Solver's RNG) and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(231)
    yield
    np.random.set_state(state)


class SoftmaxRegression:
    """scores = X @ W + b with a softmax loss: the smallest model with the Solver's interface."""

    def __init__(self, input_dim, num_classes):
        self.params = {
            "W": np.zeros((input_dim, num_classes)),
            "b": np.zeros(num_classes),
        }

    def loss(self, X, y=None):
        scores = X @ self.params["W"] + self.params["b"]
        if y is None:
            return scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=1, keepdims=True)
        n = X.shape[0]
        loss = -np.mean(np.log(probs[np.arange(n), y]))
        dscores = probs
        dscores[np.arange(n), y] -= 1
        dscores /= n
        return loss, {"W": X.T @ dscores, "b": dscores.sum(axis=0)}


class ScriptedModel:
    """A model whose accuracy after k updates is ``accuracies[k]``.

    Its one parameter ``w`` starts at 0 and its gradient is always -1, so plain SGD with
    learning rate 1 adds 1 to ``w`` per step. Inputs are one column of distinct values in
    (0, 1) and every label is 0; an example is classified correctly when its value is below
    the scripted accuracy, which makes the accuracy on evenly spread inputs exactly that.
    """

    def __init__(self, accuracies):
        self.accuracies = accuracies
        self.params = {"w": np.zeros(1)}
        self.trained_at = []  # the value of w at every training call

    def loss(self, X, y=None):
        if y is not None:
            self.trained_at.append(float(self.params["w"][0]))
            return 0.0, {"w": -np.ones(1)}
        k = min(int(np.floor(self.params["w"][0])), len(self.accuracies) - 1)
        correct = X[:, 0] < self.accuracies[k]
        return np.where(correct[:, None], [1.0, 0.0], [0.0, 1.0])


def scripted_data(n=10):
    """n evenly spread inputs (cell midpoints, so no value sits on a boundary), all class 0."""
    X = ((np.arange(n) + 0.5) / n)[:, None]
    y = np.zeros(n, dtype=int)
    return {"X_train": X, "y_train": y, "X_val": X.copy(), "y_val": y.copy()}


def blob_data(rng, n_train=50, n_val=30, dim=5, classes=3):
    """Gaussian blobs around random class centres: learnable by a linear model."""
    centres = 3 * rng.standard_normal((classes, dim))

    def sample(n):
        y = rng.integers(classes, size=n)
        return centres[y] + rng.standard_normal((n, dim)), y

    X_train, y_train = sample(n_train)
    X_val, y_val = sample(n_val)
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}


def quiet_solver(model, data, **kwargs):
    kwargs.setdefault("verbose", False)
    return Solver(model, data, **kwargs)


# --- end to end ------------------------------------------------------------------------------


def test_overfits_small_digits_subset():
    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    data = {"X_train": X[:50], "y_train": y[:50], "X_val": X[50:150], "y_val": y[50:150]}
    model = FullyConnectedNet(
        [50], input_dim=64, num_classes=10, weight_scale=1e-1, dtype=np.float64
    )
    solver = quiet_solver(
        model,
        data,
        update_rule="adam",
        optim_config={"learning_rate": 2e-2},
        batch_size=25,
        num_epochs=40,
    )
    solver.train()

    assert solver.train_acc_history[-1] == 1.0
    assert solver.loss_history[-1] < 0.1 * solver.loss_history[0]
    # The model now holds the best parameters, and they reach the best validation accuracy.
    assert solver.best_val_acc == max(solver.val_acc_history)
    assert solver.best_val_acc > 0.5  # well above chance (0.1) even from 50 examples
    assert solver.check_accuracy(data["X_val"], data["y_val"]) == solver.best_val_acc
    for name, w in model.params.items():
        np.testing.assert_array_equal(w, solver.best_params[name])
        assert w.dtype == np.float64


@pytest.mark.parametrize(
    "rule, lr",
    [("sgd", 0.5), ("sgd_momentum", 0.1), ("nesterov", 0.1), ("adagrad", 0.5),
     ("rmsprop", 0.05), ("adam", 0.05)],
)
def test_every_update_rule_trains(rng, rule, lr):
    data = blob_data(rng)
    solver = quiet_solver(
        SoftmaxRegression(5, 3), data, update_rule=rule,
        optim_config={"learning_rate": lr}, batch_size=10, num_epochs=5,
    )
    solver.train()
    assert np.mean(solver.loss_history[-5:]) < 0.5 * solver.loss_history[0]
    assert solver.best_val_acc >= 0.8


# --- histories and epochs -------------------------------------------------------------------


def test_history_lengths(rng):
    solver = quiet_solver(SoftmaxRegression(5, 3), blob_data(rng), batch_size=10, num_epochs=3)
    solver.train()
    # 50 examples / batch 10 = 5 steps per epoch; accuracy before training and after each epoch.
    assert len(solver.loss_history) == 15
    assert len(solver.train_acc_history) == 4
    assert len(solver.val_acc_history) == 4
    assert solver.epoch == 3


def test_second_train_call_continues(rng):
    solver = quiet_solver(SoftmaxRegression(5, 3), blob_data(rng), batch_size=10, num_epochs=2)
    solver.train()
    solver.train()
    assert solver.epoch == 4
    assert len(solver.loss_history) == 20
    assert len(solver.val_acc_history) == 5  # one before training, then one per epoch


def test_batch_larger_than_training_set_is_one_step_per_epoch(rng):
    solver = quiet_solver(SoftmaxRegression(5, 3), blob_data(rng), batch_size=500, num_epochs=2)
    solver.train()
    assert len(solver.loss_history) == 2


def test_same_seed_same_run(rng):
    data = blob_data(rng)
    histories = []
    for _ in range(2):
        np.random.seed(7)
        solver = quiet_solver(SoftmaxRegression(5, 3), data, batch_size=10, num_epochs=2)
        solver.train()
        histories.append(solver.loss_history)
    assert histories[0] == histories[1]


# --- best parameters ------------------------------------------------------------------------


def test_best_params_are_from_best_epoch_and_put_back():
    # Validation accuracy by epoch: 0.2, 0.8, 0.4, 0.6, 0.8 -> epoch 1 is best (earliest on ties).
    model = ScriptedModel([0.2, 0.8, 0.4, 0.6, 0.8])
    solver = quiet_solver(
        model, scripted_data(), update_rule="sgd", optim_config={"learning_rate": 1.0},
        batch_size=10, num_epochs=4,
    )
    solver.train()

    assert solver.val_acc_history == [0.2, 0.8, 0.4, 0.6, 0.8]
    assert solver.best_val_acc == 0.8
    np.testing.assert_array_equal(solver.best_params["w"], [1.0])
    np.testing.assert_array_equal(model.params["w"], [1.0])  # not the last value, 4
    # best_params is a copy, not an alias of the model's arrays.
    model.params["w"][0] = 99.0
    np.testing.assert_array_equal(solver.best_params["w"], [1.0])


def test_best_params_set_even_if_accuracy_never_rises():
    model = ScriptedModel([0.0])
    solver = quiet_solver(
        model, scripted_data(), optim_config={"learning_rate": 1.0}, batch_size=10, num_epochs=3
    )
    solver.train()
    assert solver.best_val_acc == 0.0
    np.testing.assert_array_equal(model.params["w"], [0.0])  # the parameters before training


# --- optimiser configuration ----------------------------------------------------------------


def test_lr_decay_applied_once_per_epoch():
    model = ScriptedModel([0.5])
    config = {"learning_rate": 1.0}
    solver = quiet_solver(
        model, scripted_data(), update_rule="sgd", optim_config=config,
        lr_decay=0.5, batch_size=10, num_epochs=3,
    )
    solver.train()
    # One step per epoch, of size 1, then 0.5, then 0.25.
    assert model.trained_at == [0.0, 1.0, 1.5]
    assert solver.optim_configs["w"]["learning_rate"] == 0.125
    assert config == {"learning_rate": 1.0}  # the caller's dict is untouched


def test_optim_config_copied_per_parameter(rng):
    config = {"learning_rate": 1e-2}
    solver = quiet_solver(
        SoftmaxRegression(5, 3), blob_data(rng), update_rule="adam", optim_config=config,
        batch_size=10, num_epochs=1,
    )
    solver.train()
    w_config, b_config = solver.optim_configs["W"], solver.optim_configs["b"]
    assert w_config is not b_config
    assert w_config["m"].shape == (5, 3) and b_config["m"].shape == (3,)
    assert w_config["t"] == b_config["t"] == 5
    assert config == {"learning_rate": 1e-2}


def test_callable_update_rule(rng):
    calls = []

    def counting_sgd(w, dw, config=None):
        calls.append(w.shape)
        return optim.sgd(w, dw, config)

    solver = quiet_solver(
        SoftmaxRegression(5, 3), blob_data(rng), update_rule=counting_sgd,
        batch_size=10, num_epochs=1,
    )
    solver.train()
    assert len(calls) == 2 * 5  # two parameters, five steps
    assert set(calls) == {(5, 3), (3,)}


# --- errors ---------------------------------------------------------------------------------


def test_unknown_update_rule_lists_the_rules(rng):
    with pytest.raises(ValueError, match="adamw") as info:
        Solver(SoftmaxRegression(5, 3), blob_data(rng), update_rule="adamw")
    for name in ["sgd", "sgd_momentum", "nesterov", "adagrad", "rmsprop", "adam"]:
        assert name in str(info.value)


def test_unknown_keyword_is_named(rng):
    with pytest.raises(TypeError, match="learning_rate"):
        Solver(SoftmaxRegression(5, 3), blob_data(rng), learning_rate=1e-3)


def test_missing_data_key_is_named(rng):
    data = blob_data(rng)
    del data["y_val"]
    with pytest.raises(KeyError, match="y_val"):
        Solver(SoftmaxRegression(5, 3), data)


# --- check_accuracy -------------------------------------------------------------------------


def test_check_accuracy_independent_of_batch_size(rng):
    data = blob_data(rng, n_train=237)
    model = SoftmaxRegression(5, 3)
    model.params["W"] = rng.standard_normal((5, 3))
    solver = quiet_solver(model, data)
    X, y = data["X_train"], data["y_train"]
    expected = np.mean(np.argmax(model.loss(X), axis=1) == y)
    for batch_size in [1, 7, 100, 237, 1000]:
        assert solver.check_accuracy(X, y, batch_size=batch_size) == expected


def test_check_accuracy_subsample(rng):
    data = blob_data(rng, n_train=237)
    model = SoftmaxRegression(5, 3)
    model.params["W"] = rng.standard_normal((5, 3))
    solver = quiet_solver(model, data)
    X, y = data["X_train"], data["y_train"]

    np.random.seed(3)
    first = solver.check_accuracy(X, y, num_samples=40)
    np.random.seed(3)
    assert solver.check_accuracy(X, y, num_samples=40, batch_size=9) == first
    assert round(first * 40) == pytest.approx(first * 40)  # a fraction of 40 examples
    # Asking for more samples than there are uses the whole set.
    assert solver.check_accuracy(X, y, num_samples=1000) == solver.check_accuracy(X, y)


# --- progress output ------------------------------------------------------------------------


def test_verbose_progress_lines(rng, capsys):
    solver = Solver(
        SoftmaxRegression(5, 3), blob_data(rng), batch_size=10, num_epochs=3, print_every=4
    )
    solver.train()
    lines = capsys.readouterr().out.splitlines()
    iteration_lines = [line for line in lines if line.startswith("(Iteration")]
    epoch_lines = [line for line in lines if line.startswith("(Epoch")]
    # Iterations 1, 5, 9, 13 of 15; epochs 0 (before training) to 3.
    assert [line.split(")")[0] for line in iteration_lines] == [
        "(Iteration 1 / 15", "(Iteration 5 / 15", "(Iteration 9 / 15", "(Iteration 13 / 15"
    ]
    assert all("loss:" in line for line in iteration_lines)
    assert [line.split(")")[0] for line in epoch_lines] == [
        f"(Epoch {e} / 3" for e in range(4)
    ]
    assert all("train acc:" in line and "val acc:" in line for line in epoch_lines)


def test_quiet_when_not_verbose(rng, capsys):
    quiet_solver(SoftmaxRegression(5, 3), blob_data(rng), batch_size=10, num_epochs=2).train()
    assert capsys.readouterr().out == ""


# -- the seed trap --------------------------------------------------------------------------------
def tiny_data():
    rng = np.random.default_rng(0)
    return {"X_train": rng.normal(size=(20, 6)), "y_train": rng.integers(0, 3, 20),
            "X_val": rng.normal(size=(10, 6)), "y_val": rng.integers(0, 3, 10)}


def test_solver_refuses_a_network_with_a_dropout_seed():
    """A seeded network reseeds numpy on every forward pass: same masks, same few minibatches."""
    model = FullyConnectedNet([5], input_dim=6, num_classes=3, dropout_keep_ratio=0.5, seed=123)
    with pytest.raises(ValueError, match="dropout_param holds the seed 123") as raised:
        Solver(model, tiny_data(), verbose=False)
    message = str(raised.value)
    assert "same dropout masks" in message and "without seed=" in message


def test_solver_refuses_a_seed_set_after_it_was_built():
    model = FullyConnectedNet([5], input_dim=6, num_classes=3, dropout_keep_ratio=0.5)
    solver = Solver(model, tiny_data(), num_epochs=1, verbose=False)
    model.dropout_param["seed"] = 7
    with pytest.raises(ValueError, match="seed 7"):
        solver.train()
    assert solver.loss_history == []  # refused before the first step


def test_solver_refuses_a_seeded_dropout_layer_object():
    from nnlab.layers import Dropout

    class LayerModel(SoftmaxRegression):
        def __init__(self):
            super().__init__(6, 3)
            self.layers = [Dropout(keep_prob=0.5, seed=5)]

    with pytest.raises(ValueError, match=r"Dropout layer \(in model.layers\) holds the seed 5"):
        Solver(LayerModel(), tiny_data(), verbose=False)


def test_solver_trains_seedless_and_no_dropout_networks():
    for model in (FullyConnectedNet([5], input_dim=6, num_classes=3, dropout_keep_ratio=0.5),
                  FullyConnectedNet([5], input_dim=6, num_classes=3, seed=3)):  # keep ratio 1: no dropout, no reseeding
        solver = Solver(model, tiny_data(), num_epochs=1, batch_size=5, verbose=False)
        solver.train()
        assert len(solver.loss_history) == 4
