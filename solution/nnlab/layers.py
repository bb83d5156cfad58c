"""Layers of a fully-connected network, each as a pair of functions.

Every layer comes as ``*_forward(inputs...) -> (out, cache)`` and ``*_backward(dout, cache) -> grads``.
The forward function returns, besides its output, a ``cache`` holding exactly what the backward
function needs; the backward function receives the upstream gradient ``dout`` (the gradient of the
loss with respect to ``out``) and returns the gradients with respect to the forward's inputs.

Shapes use N for the number of examples in a minibatch, D for the size of one flattened example and
M for the number of output units.
"""

from __future__ import annotations

import numbers

import numpy as np

from nnlab.scaffold import require_filled


def affine_forward(x, w, b):
    """Forward pass of a fully-connected (affine) layer: ``out = x.reshape(N, D) @ w + b``.

    Inputs:
    - x: array of shape (N, d_1, ..., d_k); each example is flattened to length D = d_1 * ... * d_k.
    - w: weights, shape (D, M).
    - b: biases, shape (M,).

    Returns (out, cache):
    - out: shape (N, M).
    - cache: (x, w, b), kept for the backward pass.
    """
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    """Backward pass of an affine layer.

    Inputs:
    - dout: upstream gradient, shape (N, M).
    - cache: (x, w, b) from affine_forward.

    Returns (dx, dw, db) with the shapes of x, w and b.
    """
    x, w, _ = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """Forward pass of a rectified linear unit: ``out = max(0, x)`` elementwise.

    Input: x, an array of any shape. Returns (out, cache) where out has x's shape and cache is x.
    """
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """Backward pass of a ReLU: the gradient flows only where the input was positive.

    Inputs: dout, the upstream gradient (any shape); cache, the input x of relu_forward.
    Returns dx, with x's shape.
    """
    x = cache
    return dout * (x > 0)


def softmax_loss(x, y):
    """Softmax (cross-entropy) loss averaged over a minibatch, and its gradient.

    Inputs:
    - x: class scores, shape (N, C); x[i, j] is the score of class j for example i.
    - y: labels, shape (N,), integers with 0 <= y[i] < C.

    Returns (loss, dx): the mean loss (a float) and its gradient with respect to x, shape (N, C).
    """
    # Subtracting each row's maximum leaves the softmax unchanged and keeps exp() from overflowing.
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -log_probs[np.arange(n), y].mean()
    dx = np.exp(log_probs)
    dx[np.arange(n), y] -= 1
    dx /= n
    return loss, dx


def check_dropout_param(dropout_param):
    """Return (p, mode) from dropout_param, raising ValueError on a value dropout cannot use."""
    p = dropout_param.get("p")
    mode = dropout_param.get("mode")
    # bool is a Number subclass, but True/False as a keep probability is almost surely a mistake.
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 < p <= 1:
        raise ValueError(
            f"dropout_param['p'] must be the probability of KEEPING a unit, a number in (0, 1]; "
            f"got {p!r}"
        )
    if mode not in ("train", "test"):
        raise ValueError(f"dropout_param['mode'] must be 'train' or 'test'; got {mode!r}")
    return float(p), mode


def dropout_forward(x, dropout_param):
    """Forward pass of inverted dropout.

    In training, every unit is kept with probability p and zeroed otherwise, and the kept units are
    divided by p. A unit's expected output is then p * (x / p) = x, the same as at test time, so at
    test time the layer simply passes its input through and needs no rescaling.

    Inputs:
    - x: input activations, an array of any shape.
    - dropout_param: a dict with keys
      - p: the probability of KEEPING each unit, a number in (0, 1]. (Some frameworks' dropout
        argument is the probability of dropping instead; here it is always the keep probability.)
      - mode: "train" applies dropout; "test" returns the input unchanged.
      - seed (optional): when present, numpy's global generator is seeded with it on every call, so
        that a seeded call always draws the same mask. This makes gradient checking possible.

    Returns (out, cache):
    - out: an array with x's shape and dtype.
    - cache: (dropout_param, mask). In train mode mask is the array that multiplies x, holding 0 for
      dropped units and 1 / p for kept ones; in test mode mask is None.
    """
    p, mode = check_dropout_param(dropout_param)
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])

    mask = None
    out = None

    if mode == "train":
        #######################################################################
        # TODO: Implement the training-mode forward pass of inverted dropout. #
        # Draw one random number per element of x with np.random.rand, keep   #
        # each element with probability p, and divide the kept ones by p.     #
        # Store the mask that multiplies x in `mask` and the result in `out`. #
        #######################################################################
        # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

        mask = (np.random.rand(*x.shape) < p) / p
        out = x * mask

        # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
        require_filled(
            out, "dropout_forward, train mode", "the first TODO block of dropout_forward"
        )
    else:
        #######################################################################
        # TODO: Implement the test-mode forward pass of inverted dropout and  #
        # store it in `out`. (Think: what did the 1 / p in training buy us?)  #
        #######################################################################
        # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

        out = x

        # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
        require_filled(
            out, "dropout_forward, test mode", "the second TODO block of dropout_forward"
        )

    cache = (dropout_param, mask)
    # A float64 mask would silently turn a float32 network into a float64 one.
    out = out.astype(x.dtype, copy=False)
    return out, cache


def dropout_backward(dout, cache):
    """Backward pass of inverted dropout.

    Inputs:
    - dout: upstream gradient, with the shape of dropout_forward's input.
    - cache: (dropout_param, mask) from dropout_forward.

    Returns dx, the gradient with respect to dropout_forward's input x. In train mode each element's
    gradient is scaled exactly as its activation was in the forward pass; in test mode the layer is
    the identity, so dx is dout.
    """
    dropout_param, mask = cache
    mode = dropout_param["mode"]

    dx = None
    if mode == "train":
        #######################################################################
        # TODO: Implement the training-mode backward pass of inverted dropout #
        # and store it in `dx`. Use the mask saved in the cache: do not draw  #
        # a new one.                                                          #
        #######################################################################
        # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

        dx = dout * mask

        # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
        require_filled(dx, "dropout_backward, train mode", "the TODO block of dropout_backward")
    elif mode == "test":
        dx = dout
    return dx


class Dropout:
    """Dropout as a layer object, for readers who know the object style of Saito's book.

    ``Dropout(keep_prob=0.8)`` wraps dropout_forward and dropout_backward above. Its argument is the
    probability of KEEPING a unit, and it must be given by name: the book's layer takes
    ``dropout_ratio``, the probability of DROPPING a unit, as its first argument, so a positional
    ``Dropout(0.2)`` would be ambiguous and is refused with a TypeError that says so.
    ``Dropout(keep_prob=1 - dropout_ratio)`` drops as many units as the book's layer. It is inverted
    dropout, so outputs are divided by keep_prob in training and are not rescaled at test time.
    """

    def __init__(self, *args, keep_prob=0.5, seed=None, **kwargs):
        if args:
            raise TypeError(
                f"Dropout takes the probability of KEEPING a unit, by name: Dropout(keep_prob=...). "
                f"It got {args[0]!r} by position, which reads as the book's dropout_ratio (the "
                f"probability of DROPPING a unit) just as easily; if you meant to drop {args[0]!r} "
                f"of the units, write Dropout(keep_prob=1 - {args[0]!r})."
            )
        if "dropout_ratio" in kwargs:
            ratio = kwargs["dropout_ratio"]
            raise TypeError(
                f"Dropout takes the probability of KEEPING a unit, Dropout(keep_prob=...), not the "
                f"book's dropout_ratio (the probability of DROPPING one); for dropout_ratio={ratio!r} "
                f"write Dropout(keep_prob=1 - {ratio!r})."
            )
        if kwargs:
            raise TypeError(f"Dropout got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        check_dropout_param({"p": keep_prob, "mode": "train"})
        self.keep_prob = keep_prob
        self.seed = seed
        self.cache = None

    def forward(self, x, train=True):
        """Apply dropout to x (train=True) or pass x through (train=False); returns the output."""
        param = {"p": self.keep_prob, "mode": "train" if train else "test"}
        if self.seed is not None:
            param["seed"] = self.seed
        out, self.cache = dropout_forward(x, param)
        return out

    def backward(self, dout):
        """Gradient with respect to the input of the last forward call."""
        if self.cache is None:
            raise RuntimeError("Dropout.backward was called before Dropout.forward")
        return dropout_backward(dout, self.cache)
