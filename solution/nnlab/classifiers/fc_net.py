"""A fully-connected network of any depth, with optional dropout after every hidden layer."""

from __future__ import annotations

import numpy as np

from nnlab.layer_utils import affine_relu_backward, affine_relu_forward
from nnlab.layers import (
    check_dropout_param,
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    softmax_loss,
)
from nnlab.scaffold import require_filled


# Rules that give a layer's weight standard deviation from its number of inputs (fan-in).
INIT_RULES = {
    "he": lambda fan_in: np.sqrt(2.0 / fan_in),
    "xavier": lambda fan_in: np.sqrt(1.0 / fan_in),
}


def weight_scale_rule(weight_scale):
    """A function fan_in -> standard deviation, from a number or the name of a rule in INIT_RULES."""
    if isinstance(weight_scale, str):
        rule = INIT_RULES.get(weight_scale.lower())
        if rule is None:
            known = ", ".join(repr(name) for name in INIT_RULES)
            raise ValueError(f"unknown weight_scale {weight_scale!r}: give a number or one of {known}")
        return rule
    return lambda fan_in: weight_scale


class FullyConnectedNet:
    """A fully-connected network with ReLU hidden layers and a softmax loss.

    For a network with L layers the architecture is

        {affine - relu - [dropout]} x (L - 1) - affine - softmax

    where the dropout layers are there only when dropout_keep_ratio < 1. All hidden layers share one
    dropout_param dict, whose mode loss() sets from whether labels are given.

    Parameters live in self.params: W1, b1 for the first layer, W2, b2 for the second, and so on.
    """

    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        dropout_keep_ratio=1,
        reg=0.0,
        weight_scale=1e-2,
        dtype=np.float32,
        seed=None,
    ):
        """Build the network with random weights and zero biases.

        Inputs:
        - hidden_dims: list of the sizes of the hidden layers (may be empty: softmax regression).
        - input_dim: size of one flattened input example.
        - num_classes: number of classes.
        - dropout_keep_ratio: probability of KEEPING a hidden unit; 1 means no dropout at all.
        - reg: strength of the L2 regularization, which adds 0.5 * reg * sum(W ** 2) per layer.
        - weight_scale: standard deviation of the normal distribution the weights are drawn from, the
          same for every layer; or the name of a rule that sets it per layer from the layer's number
          of inputs n (its fan-in): "he" gives sqrt(2 / n), suited to ReLU layers, and "xavier" gives
          sqrt(1 / n), the form of Saito's book (Glorot and Bengio's paper uses the fan-out too).
          Deep networks need one of the rules: with a fixed small scale the activations shrink layer
          after layer and a network of six hidden layers barely learns.
        - dtype: floating type of the parameters and computations; float64 for gradient checks.
        - seed: when not None, passed to every dropout layer so that the dropout masks repeat.

        The weights are drawn from numpy's global generator in layer order (W1 first), so seeding
        it with np.random.seed before building a network makes the network repeatable.
        """
        check_dropout_param({"p": dropout_keep_ratio, "mode": "train"})
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype

        scale_of = weight_scale_rule(weight_scale)
        self.params = {}
        sizes = [input_dim, *hidden_dims, num_classes]
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            weights = scale_of(fan_in) * np.random.randn(fan_in, fan_out)
            self.params[f"W{layer}"] = weights.astype(dtype)
            self.params[f"b{layer}"] = np.zeros(fan_out, dtype=dtype)

        # One dict shared by all dropout layers, so that loss() switches them all at once.
        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed

    def loss(self, X, y=None):
        """Class scores, or the loss and its gradients.

        Inputs:
        - X: a minibatch, shape (N, d_1, ..., d_k); each example is flattened to input_dim values.
        - y: labels, shape (N,), or None.

        Returns:
        - if y is None (test mode, no dropout): scores, shape (N, num_classes).
        - otherwise (train mode): (loss, grads), where grads maps each parameter name to the
          gradient of the loss with respect to that parameter.
        """
        X = X.astype(self.dtype)
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode

        # Forward pass: each hidden layer keeps (affine-relu cache, dropout cache or None).
        hidden = X
        layer_caches = []
        for layer in range(1, self.num_layers):
            relu_out, affine_relu_cache = affine_relu_forward(
                hidden, self.params[f"W{layer}"], self.params[f"b{layer}"]
            )
            hidden, dropout_cache = relu_out, None
            if self.use_dropout:
                ###################################################################
                # TODO: Apply dropout to relu_out, the output of this layer's     #
                # ReLU, using the network's shared self.dropout_param. Store the  #
                # result in `hidden` and the cache in `dropout_cache`.            #
                ###################################################################
                # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

                hidden, dropout_cache = dropout_forward(relu_out, self.dropout_param)

                # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
                require_filled(
                    dropout_cache,
                    "FullyConnectedNet.loss with dropout (forward pass)",
                    "the first TODO block of FullyConnectedNet.loss",
                )
            layer_caches.append((affine_relu_cache, dropout_cache))

        last = self.num_layers
        scores, scores_cache = affine_forward(
            hidden, self.params[f"W{last}"], self.params[f"b{last}"]
        )
        if mode == "test":
            return scores

        loss, dscores = softmax_loss(scores, y)
        weights = [self.params[f"W{layer}"] for layer in range(1, last + 1)]
        loss += 0.5 * self.reg * sum(np.sum(w * w) for w in weights)

        # Backward pass, last layer first.
        grads = {}
        dhidden, grads[f"W{last}"], grads[f"b{last}"] = affine_backward(dscores, scores_cache)
        for layer in range(last - 1, 0, -1):
            affine_relu_cache, dropout_cache = layer_caches[layer - 1]
            if self.use_dropout:
                drelu_out = None
                ###################################################################
                # TODO: Backpropagate dhidden through this layer's dropout, using #
                # its dropout_cache. Store the gradient with respect to relu_out  #
                # in `drelu_out`.                                                 #
                ###################################################################
                # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

                drelu_out = dropout_backward(dhidden, dropout_cache)

                # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
                require_filled(
                    drelu_out,
                    "FullyConnectedNet.loss with dropout (backward pass)",
                    "the second TODO block of FullyConnectedNet.loss",
                )
            else:
                drelu_out = dhidden
            dhidden, grads[f"W{layer}"], grads[f"b{layer}"] = affine_relu_backward(
                drelu_out, affine_relu_cache
            )

        for layer in range(1, last + 1):
            grads[f"W{layer}"] += self.reg * self.params[f"W{layer}"]
        return loss, grads
