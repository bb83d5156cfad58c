"""First-order update rules for training neural networks.

Every rule in this module has the same signature::

    next_w, config = rule(w, dw, config=None)

- ``w`` is the current value of one parameter (a numpy array of any shape);
- ``dw`` is the gradient of the loss with respect to ``w``, with the same shape;
- ``config`` is a dict holding the rule's hyperparameters (such as ``learning_rate``) and,
  for the rules that have memory, its state (such as a momentum ``velocity``).

A rule fills in any missing hyperparameter with its default (``config.setdefault``), so the
caller may pass ``None``, an empty dict, or only the values it wants to change. The rule
returns the updated parameter together with the same ``config`` dict, whose state entries
now describe the step just taken. The caller keeps one ``config`` per parameter and hands it
back on the next call; that is how momentum, caches and step counts carry over from one
iteration to the next. ``Solver`` does exactly this.

The rules never modify ``w`` or ``dw`` in place: ``next_w`` is a new array. A caller can
therefore hold on to an old parameter (for example the best one seen so far) without copying
it defensively before every update.

The formulas follow the CS231n lecture notes (https://cs231n.github.io/neural-networks-3/).
"""

from __future__ import annotations

import numpy as np

__all__ = ["sgd", "sgd_momentum", "nesterov", "adagrad", "rmsprop", "adam"]


def _state(config: dict, key: str, like: np.ndarray) -> np.ndarray:
    """Return the state array ``config[key]``, creating it as zeros shaped like ``like``."""
    return config.setdefault(key, np.zeros_like(like))


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: ``w - learning_rate * dw``.

    config keys:
    - learning_rate: step size (default 1e-2).
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)

    next_w = w - config["learning_rate"] * dw
    return next_w, config


def sgd_momentum(w, dw, config=None):
    """Stochastic gradient descent with (classical) momentum.

    The velocity is a running, decaying sum of past steps; moving along it damps the
    zig-zag of plain SGD across narrow valleys and speeds up travel along them::

        v = momentum * v - learning_rate * dw
        w = w + v

    config keys:
    - learning_rate: step size (default 1e-2).
    - momentum: how much of the previous velocity survives each step, in [0, 1)
      (default 0.9); 0 gives plain SGD.
    - velocity: state, an array shaped like w (starts at zeros).
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = _state(config, "velocity", w)

    v = config["momentum"] * v - config["learning_rate"] * dw
    next_w = w + v

    config["velocity"] = v
    return next_w, config


def nesterov(w, dw, config=None):
    """Stochastic gradient descent with Nesterov momentum.

    Nesterov's method evaluates the gradient at the "looked-ahead" point ``w + mu * v``
    rather than at ``w``. The CS231n notes rewrite it in terms of that looked-ahead point,
    so that the gradient the caller already has (taken at the stored ``w``) is the right
    one, and the look-ahead is folded into the update::

        v_prev = v
        v = mu * v - learning_rate * dw
        w = w - mu * v_prev + (1 + mu) * v

    config keys:
    - learning_rate: step size (default 1e-2).
    - momentum: ``mu`` above, in [0, 1) (default 0.9).
    - velocity: state, an array shaped like w (starts at zeros).
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v_prev = _state(config, "velocity", w)
    mu = config["momentum"]

    v = mu * v_prev - config["learning_rate"] * dw
    next_w = w - mu * v_prev + (1 + mu) * v

    config["velocity"] = v
    return next_w, config


def adagrad(w, dw, config=None):
    """Adagrad: a per-coordinate learning rate that shrinks with the gradients seen so far.

    Coordinates that have had large gradients take smaller steps, and rarely updated ones
    keep large steps::

        cache = cache + dw ** 2
        w = w - learning_rate * dw / (sqrt(cache) + epsilon)

    Because the cache only grows, the effective step size decays monotonically, which is
    often too aggressive for deep networks; RMSProp addresses that.

    config keys:
    - learning_rate: step size (default 1e-2).
    - epsilon: small constant that avoids division by zero (default 1e-8).
    - cache: state, the running sum of squared gradients, shaped like w (starts at zeros).
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("epsilon", 1e-8)
    cache = _state(config, "cache", w)

    cache = cache + dw**2
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])

    config["cache"] = cache
    return next_w, config


def rmsprop(w, dw, config=None):
    """RMSProp: Adagrad with a leaky (exponentially decaying) cache of squared gradients.

    Forgetting old gradients keeps the step size from decaying to zero::

        cache = decay_rate * cache + (1 - decay_rate) * dw ** 2
        w = w - learning_rate * dw / (sqrt(cache) + epsilon)

    config keys:
    - learning_rate: step size (default 1e-2).
    - decay_rate: how much of the cache survives each step, in [0, 1) (default 0.99).
    - epsilon: small constant that avoids division by zero (default 1e-8).
    - cache: state, the moving average of squared gradients, shaped like w (starts at zeros).
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    cache = _state(config, "cache", w)
    decay = config["decay_rate"]

    cache = decay * cache + (1 - decay) * dw**2
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])

    config["cache"] = cache
    return next_w, config


def adam(w, dw, config=None):
    """Adam: momentum on the gradient plus an RMSProp-style scale, both bias-corrected.

    ``m`` and ``v`` are moving averages of the gradient and of its square. Both start at
    zero, so early on they are biased towards zero; dividing by ``1 - beta ** t`` removes
    that bias. The step counter ``t`` is incremented *before* it is used, so the first
    update uses ``t = 1``::

        t = t + 1
        m = beta1 * m + (1 - beta1) * dw
        v = beta2 * v + (1 - beta2) * dw ** 2
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    config keys:
    - learning_rate: step size (default 1e-3).
    - beta1: decay rate of the gradient's moving average (default 0.9).
    - beta2: decay rate of the squared gradient's moving average (default 0.999).
    - epsilon: small constant that avoids division by zero (default 1e-8).
    - m: state, the first-moment estimate, shaped like w (starts at zeros).
    - v: state, the second-moment estimate, shaped like w (starts at zeros).
    - t: state, the number of updates taken so far (starts at 0).
    """
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    m = _state(config, "m", w)
    v = _state(config, "v", w)
    config.setdefault("t", 0)
    beta1, beta2 = config["beta1"], config["beta2"]

    t = config["t"] + 1
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])

    config["t"], config["m"], config["v"] = t, m, v
    return next_w, config
