"""A ``Solver`` that trains a classification model with minibatch gradient descent.

The solver knows nothing about the model's architecture. It relies on two things only:

- ``model.params``: a dict mapping parameter names to numpy arrays; the solver replaces
  its entries with updated arrays after every step.
- ``model.loss(X, y=None)``: with ``y`` omitted, returns class scores of shape
  ``(N, C)``; with ``y`` given, returns ``(loss, grads)`` where ``grads`` has the same
  keys as ``params``.

Typical use::

    data = {"X_train": ..., "y_train": ..., "X_val": ..., "y_val": ...}
    model = FullyConnectedNet([100, 100], input_dim=64, num_classes=10)
    solver = Solver(model, data, update_rule="adam",
                    optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, num_epochs=10, batch_size=100)
    solver.train()
    solver.loss_history, solver.train_acc_history, solver.val_acc_history

After ``train()`` returns, ``model.params`` holds the parameters that reached the best
validation accuracy, which are usually what one wants to evaluate on the test set.

Randomness: minibatches and the subsamples used to estimate accuracy are drawn from
numpy's global generator (``np.random.choice``), the single RNG convention of this
library. Seed it once with ``np.random.seed`` to make a whole run repeatable.

A model built with a dropout seed (``FullyConnectedNet(..., seed=s)``, or a ``Dropout`` layer
object with a seed) calls ``np.random.seed(s)`` on every forward pass, which is what gradient
checks need. Trained, it would draw the same dropout masks at every step and, since the solver's
minibatches come from the same generator, nearly the same few minibatches over and over. So
the solver refuses such a model with a ``ValueError`` that says so.
"""

from __future__ import annotations

import copy

import numpy as np

from . import optim

# Every keyword option Solver accepts, with its default.
_DEFAULTS = {
    "update_rule": "sgd",
    "optim_config": None,
    "lr_decay": 1.0,
    "batch_size": 100,
    "num_epochs": 10,
    "num_train_samples": 1000,
    "num_val_samples": None,
    "print_every": 100,
    "verbose": True,
}

_DATA_KEYS = ("X_train", "y_train", "X_val", "y_val")


def _resolve_update_rule(rule):
    """Turn ``rule`` (a callable, or the name of a function in ``optim``) into a callable."""
    if callable(rule):
        return rule
    if isinstance(rule, str) and rule in optim.__all__:
        return getattr(optim, rule)
    raise ValueError(
        f"unknown update_rule {rule!r}; use one of {', '.join(optim.__all__)}, "
        "or pass a callable rule(w, dw, config) -> (next_w, config)"
    )


def seeded_dropout(model):
    """Where ``model`` would reseed numpy's global generator on every forward pass, in words, or
    None when it does not: a dropout_param with a seed (and dropout on), or a Dropout layer object
    with a seed among the model's attributes (directly, or in a list, tuple or dict)."""
    param = getattr(model, "dropout_param", None)
    if isinstance(param, dict) and param.get("seed") is not None and param.get("p", 1) != 1:
        return f"its dropout_param holds the seed {param['seed']!r}"
    for name, value in vars(model).items() if hasattr(model, "__dict__") else ():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if type(item).__name__ == "Dropout" and getattr(item, "seed", None) is not None:
                return f"its Dropout layer (in model.{name}) holds the seed {item.seed!r}"
    return None


def _refuse_seeded(model):
    where = seeded_dropout(model)
    if where is not None:
        raise ValueError(
            f"Solver will not train this model: {where}, so every forward pass calls np.random.seed "
            "with it. Every step would then draw the same dropout masks and nearly the same minibatches, "
            "and training would quietly go wrong. A dropout seed is for gradient checks only: build the "
            "model you train without seed= (call np.random.seed once before training for a repeatable run)."
        )


class Solver:
    """Train a classification model with minibatch gradient descent.

    ``Solver(model, data, **options)``; see the module docstring for what ``model`` must
    provide. ``data`` is a dict with ``X_train``, ``y_train``, ``X_val`` and ``y_val``.

    A model with a dropout seed is refused with ValueError (see the module docstring).

    Options (keyword only; an unknown keyword raises TypeError):

    - update_rule: the name of a rule in ``nnlab.optim`` (``"sgd"``, ``"sgd_momentum"``,
      ``"nesterov"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``) or any callable with the
      same signature. Default ``"sgd"``.
    - optim_config: dict of hyperparameters for the rule, e.g. ``{"learning_rate": 1e-3}``.
      Every parameter gets its own copy, because the rule stores per-parameter state
      (velocities, caches) in it.
    - lr_decay: after each epoch, every parameter's ``learning_rate`` is multiplied by this
      factor (default 1.0, no decay). Rules whose config has no ``learning_rate`` are left alone.
    - batch_size: examples per minibatch (default 100).
    - num_epochs: epochs that ``train()`` runs (default 10).
    - num_train_samples: training examples used to estimate the training accuracy after each
      epoch (default 1000); a subsample keeps this cheap on large training sets.
    - num_val_samples: validation examples used likewise (default None: all of them).
    - print_every: print the loss every this many iterations while verbose (default 100).
    - verbose: print progress (default True).

    Attributes filled in by training:

    - loss_history: the minibatch loss of every iteration.
    - train_acc_history, val_acc_history: accuracies measured once before training and
      once after every epoch, so ``num_epochs + 1`` entries after one ``train()``.
    - best_val_acc, best_params: the best validation accuracy seen and a copy of the
      parameters that reached it (the earliest, on ties).
    - epoch: number of epochs completed.
    """

    def __init__(self, model, data, **kwargs):
        unknown = sorted(set(kwargs) - set(_DEFAULTS))
        if unknown:
            raise TypeError(
                f"Solver got unexpected keyword argument(s): {', '.join(unknown)}; "
                f"valid options are {', '.join(_DEFAULTS)}"
            )
        missing = [key for key in _DATA_KEYS if key not in data]
        if missing:
            raise KeyError(f"data is missing {', '.join(missing)}")

        _refuse_seeded(model)
        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]

        options = {**_DEFAULTS, **kwargs}
        self.update_rule = _resolve_update_rule(options["update_rule"])
        self.optim_config = dict(options["optim_config"] or {})
        self.lr_decay = options["lr_decay"]
        self.batch_size = int(options["batch_size"])
        self.num_epochs = int(options["num_epochs"])
        self.num_train_samples = options["num_train_samples"]
        self.num_val_samples = options["num_val_samples"]
        self.print_every = options["print_every"]
        self.verbose = options["verbose"]
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

        self._reset()

    def _reset(self):
        """Set up the bookkeeping for a fresh run."""
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params = {}
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        # Deep copies: a config may hold state arrays, and no two parameters may share them.
        self.optim_configs = {
            name: copy.deepcopy(self.optim_config) for name in self.model.params
        }

    def step(self):
        """Take one gradient step on a random minibatch of the training data.

        The minibatch is drawn with replacement, as in CS231n, so that a seeded run draws
        the same examples as the course's reference solver.
        """
        num_train = self.X_train.shape[0]
        idx = np.random.choice(num_train, self.batch_size)
        loss, grads = self.model.loss(self.X_train[idx], self.y_train[idx])
        self.loss_history.append(float(loss))

        for name, w in self.model.params.items():
            next_w, config = self.update_rule(w, grads[name], self.optim_configs[name])
            self.model.params[name] = next_w
            self.optim_configs[name] = config

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Return the fraction of ``X`` that the model classifies as ``y``.

        When ``num_samples`` is given and smaller than ``len(X)``, accuracy is estimated on
        a random subsample of that size. Scores are computed ``batch_size`` rows at a time,
        so that large inputs do not need one huge forward pass; the result does not depend
        on ``batch_size``.
        """
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            idx = np.random.choice(N, num_samples)
            X, y = X[idx], y[idx]
            N = num_samples
        if N == 0:
            raise ValueError("check_accuracy needs at least one example")

        predictions = []
        for start in range(0, N, batch_size):
            scores = self.model.loss(X[start : start + batch_size])
            predictions.append(np.argmax(scores, axis=1))
        y_pred = np.concatenate(predictions)
        return float(np.mean(y_pred == y))

    def _record_accuracy(self, target_epoch):
        """Measure train and val accuracy, log them, and keep the best parameters."""
        train_acc = self.check_accuracy(
            self.X_train, self.y_train, num_samples=self.num_train_samples
        )
        val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if self.verbose:
            print(
                f"(Epoch {self.epoch} / {target_epoch}) "
                f"train acc: {train_acc:.6f}; val acc: {val_acc:.6f}",
                flush=True,
            )
        # The first measurement always sets best_params, so there is something to restore
        # even if validation accuracy never rises above zero.
        if not self.best_params or val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            self.best_params = {name: w.copy() for name, w in self.model.params.items()}

    def train(self):
        """Run ``num_epochs`` epochs of optimisation, then load the best parameters.

        One epoch is ``max(num_train // batch_size, 1)`` steps. Accuracies are measured
        before the first step and after every epoch; the learning rate decays at the end of
        every epoch. Calling ``train()`` again continues from where the last call stopped,
        for another ``num_epochs`` epochs.
        """
        _refuse_seeded(self.model)  # a seed may have been set after the solver was built
        num_train = self.X_train.shape[0]
        steps_per_epoch = max(num_train // self.batch_size, 1)
        target_epoch = self.epoch + self.num_epochs
        total_steps = self.num_epochs * steps_per_epoch

        if not self.val_acc_history:
            self._record_accuracy(target_epoch)

        iteration = 0
        for _ in range(self.num_epochs):
            for _ in range(steps_per_epoch):
                self.step()
                iteration += 1
                if self.verbose and (iteration - 1) % self.print_every == 0:
                    print(
                        f"(Iteration {iteration} / {total_steps}) "
                        f"loss: {self.loss_history[-1]:.6f}",
                        flush=True,
                    )

            self.epoch += 1
            for config in self.optim_configs.values():
                if "learning_rate" in config:
                    config["learning_rate"] *= self.lr_decay
            self._record_accuracy(target_epoch)

        # Hand back the best model, not merely the last one.
        for name, w in self.best_params.items():
            self.model.params[name] = w.copy()
