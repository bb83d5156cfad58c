"""Layers as objects: each remembers what its backward pass needs from its last forward pass.

Every layer has ``forward(...) -> out`` and ``backward(dout) -> dx``: dout is the gradient of the
loss with respect to the layer's last output, and dx the gradient with respect to its last input.
A layer with parameters also leaves their gradients on itself (Affine's ``dW`` and ``db``).

Shapes use N for the number of examples in a minibatch, D for the size of one flattened example and
M for the number of output units.
"""

from __future__ import annotations

import numbers

import numpy as np

from nnlab import settings
from nnlab.scaffold import require_filled


class Affine:
    """A fully-connected layer: ``out = x.reshape(N, D) @ W + b``.

    The layer holds no weights of its own: it reads ``params[weight_name]`` and ``params[bias_name]``
    at every call, so an update rule may change the arrays in place or replace them in the dict.
    """

    def __init__(self, params, weight_name, bias_name):
        self.params = params
        self.weight_name = weight_name
        self.bias_name = bias_name
        self.x = None
        self.x_shape = None
        self.dW = None
        self.db = None

    def forward(self, x):
        """x: shape (N, d_1, ..., d_k), flattened to (N, D). Returns shape (N, M)."""
        self.x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return self.x @ self.params[self.weight_name] + self.params[self.bias_name]

    def backward(self, dout):
        """dout: shape (N, M). Sets self.dW and self.db; returns dx with the shape of the last x."""
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return (dout @ self.params[self.weight_name].T).reshape(self.x_shape)


class Relu:
    """Rectified linear unit, ``out = max(0, x)`` elementwise; the gradient flows where x > 0."""

    def __init__(self):
        self.positive = None

    def forward(self, x):
        self.positive = x > 0
        return np.maximum(x, 0)

    def backward(self, dout):
        return dout * self.positive


class SoftmaxWithLoss:
    """Softmax of the scores followed by the cross-entropy loss, averaged over the minibatch."""

    def __init__(self):
        self.probs = None
        self.labels = None

    def forward(self, scores, t):
        """scores: shape (N, C). t: labels, shape (N,) (or one-hot rows, shape (N, C)). Returns the loss."""
        t = np.asarray(t)
        self.labels = t.argmax(axis=1) if t.ndim == 2 else t
        # Subtracting each row's maximum leaves the softmax unchanged and keeps exp() from overflowing.
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.probs = np.exp(log_probs)
        return -log_probs[np.arange(len(scores)), self.labels].mean()

    def backward(self, dout=1.0):
        """Gradient with respect to the scores of the last forward call (dout scales the loss)."""
        n = len(self.labels)
        dscores = self.probs.copy()
        dscores[np.arange(n), self.labels] -= 1
        return dscores * (dout / n)


def dropout_style():
    """The course's dropout style, "vanilla" or "inverted", from nnlab/settings.py."""
    style = settings.DROPOUT_STYLE
    if style not in settings.DROPOUT_STYLES:
        raise ValueError(
            f"nnlab/settings.py: DROPOUT_STYLE must be one of {settings.DROPOUT_STYLES}; got {style!r}"
        )
    return style


def check_dropout_ratio(dropout_ratio):
    """Return dropout_ratio as a float, or raise ValueError if it cannot be a probability of dropping."""
    # bool is a Number subclass, but True/False as a ratio is almost surely a mistake.
    if (isinstance(dropout_ratio, bool) or not isinstance(dropout_ratio, numbers.Real)
            or not 0 <= dropout_ratio < 1):
        raise ValueError(
            f"dropout_ratio is the probability of DROPPING a unit, a number in [0, 1); "
            f"got {dropout_ratio!r}"
        )
    return float(dropout_ratio)


class Dropout:
    """Dropout as a layer object.

    ``dropout_ratio`` is the probability of DROPPING a unit: Dropout(0.2) switches off about one
    unit in five in training and keeps the other four. (CS231n's ``p`` and the old ``keep_prob`` of
    TensorFlow are the probability of KEEPING a unit instead; PyTorch's ``p`` and Keras's ``rate`` are
    the probability of dropping, like this one.)

    What the layer does depends on the course's style (``self.style``, from nnlab/settings.py), with
    q = 1 - dropout_ratio the probability of keeping a unit:

    ==========  ==================  =====================  ==========================
    style       training, kept      training, dropped      test mode (train_flg=False)
    ==========  ==================  =====================  ==========================
    vanilla     x                   0                      x * q
    inverted    x / q               0                      x
    ==========  ==================  =====================  ==========================

    Either way a unit's expected output in training equals its output at test time.

    Attributes:
    - dropout_ratio: the probability of dropping a unit, a float in [0, 1).
    - style: "vanilla" or "inverted", read from the settings when the layer is made.
    - mask: after a training-mode forward, a boolean array with x's shape, True where the unit was
      kept; None before that and after a test-mode forward.
    """

    def __init__(self, dropout_ratio=0.5):
        self.dropout_ratio = check_dropout_ratio(dropout_ratio)
        self.style = dropout_style()
        self.mask = None

    def forward(self, x, train_flg=True):
        """Apply dropout to x (train_flg=True) or run the layer in test mode (train_flg=False).

        x may have any shape. Returns an array with x's shape and dtype.
        """
        out = None
        if train_flg:
            ###################################################################
            # TODO: Implement the training-mode forward pass.                 #
            # Draw one random number per element of x with np.random.rand    #
            # and keep each element with probability 1 - self.dropout_ratio.  #
            # Store the boolean mask (True = kept) in self.mask and the       #
            # result in `out`. Kept elements pass unchanged when self.style   #
            # is "vanilla", and are divided by 1 - self.dropout_ratio when    #
            # it is "inverted".                                               #
            ###################################################################
            # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

            self.mask = np.random.rand(*x.shape) >= self.dropout_ratio
            out = x * self.mask
            if self.style == "inverted":
                out = out / (1.0 - self.dropout_ratio)

            # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
            require_filled(out, "Dropout.forward, training mode", "the first TODO block of Dropout.forward")
        else:
            self.mask = None
            ###################################################################
            # TODO: Implement the test-mode forward pass and store it in      #
            # `out`. Every unit is on at test time; make its output match     #
            # what it gave on average in training, in the course's style.     #
            ###################################################################
            # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

            out = x * (1.0 - self.dropout_ratio) if self.style == "vanilla" else x

            # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
            require_filled(out, "Dropout.forward, test mode", "the second TODO block of Dropout.forward")
        # A float64 mask would silently turn float32 activations into float64 ones.
        return out.astype(x.dtype, copy=False)

    def backward(self, dout):
        """Gradient with respect to the input of the last training-mode forward call."""
        if self.mask is None:
            raise RuntimeError("Dropout.backward needs the mask of a training-mode forward call first")
        dx = None
        #######################################################################
        # TODO: Implement the backward pass and store it in `dx`. Use the    #
        # mask of the last forward call (do not draw a new one), and scale   #
        # each element's gradient exactly as its activation was scaled.      #
        #######################################################################
        # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

        dx = dout * self.mask
        if self.style == "inverted":
            dx = dx / (1.0 - self.dropout_ratio)

        # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
        return require_filled(dx, "Dropout.backward", "the TODO block of Dropout.backward")
