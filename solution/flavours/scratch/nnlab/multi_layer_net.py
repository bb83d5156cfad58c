"""A fully-connected network of any depth built from layer objects, with optional dropout."""

from __future__ import annotations

import numpy as np

from nnlab.layers import Affine, Dropout, Relu, SoftmaxWithLoss, check_dropout_ratio
from nnlab.scaffold import require_filled

# Rules that give a layer's weight standard deviation from its number of inputs (fan-in).
INIT_RULES = {
    "he": lambda fan_in: np.sqrt(2.0 / fan_in),
    "xavier": lambda fan_in: np.sqrt(1.0 / fan_in),
}


def weight_std(weight_init_std, fan_in):
    """The standard deviation of a layer's weights, from a number or the name of a rule in INIT_RULES."""
    if isinstance(weight_init_std, str):
        rule = INIT_RULES.get(weight_init_std.lower())
        if rule is None:
            known = ", ".join(repr(name) for name in INIT_RULES)
            raise ValueError(f"unknown weight_init_std {weight_init_std!r}: give a number or one of {known}")
        return rule(fan_in)
    return weight_init_std


class MultiLayerNet:
    """A fully-connected network with ReLU hidden layers and a softmax loss.

    With L - 1 hidden layers the architecture is

        {Affine - Relu - [Dropout]} x (L - 1) - Affine - SoftmaxWithLoss

    where the Dropout layers are there only when use_dropout is true: one per hidden layer, right
    after its ReLU, never on the input and never on the scores.

    Parameters live in self.params: W1, b1 for the first layer, W2, b2 for the second, and so on.
    The layers read them from there, so updating self.params (in place or by replacing an array)
    updates the network.
    """

    def __init__(self, input_size, hidden_size_list, output_size, weight_init_std="he",
                 weight_decay_lambda=0.0, use_dropout=False, dropout_ratio=0.5):
        """Build the network with random weights and zero biases.

        Inputs:
        - input_size: size of one flattened input example.
        - hidden_size_list: list of the sizes of the hidden layers (may be empty).
        - output_size: number of classes.
        - weight_init_std: standard deviation of the normal distribution the weights are drawn from,
          the same for every layer; or "he" (sqrt(2 / n), for ReLU layers) or "xavier" (sqrt(1 / n)),
          where n is the layer's number of inputs. He, the default, is what lets a deep ReLU network
          train: with a small fixed scale the activations shrink layer after layer.
        - weight_decay_lambda: strength of the L2 penalty 0.5 * lambda * sum(W ** 2) per layer.
        - use_dropout: put a Dropout layer after every hidden ReLU.
        - dropout_ratio: probability of DROPPING a hidden unit, in [0, 1).

        The weights are drawn from numpy's global generator in layer order (W1 first).
        """
        self.hidden_size_list = list(hidden_size_list)
        self.weight_decay_lambda = weight_decay_lambda
        self.use_dropout = bool(use_dropout)
        self.dropout_ratio = check_dropout_ratio(dropout_ratio)
        self.num_layers = 1 + len(self.hidden_size_list)

        self.params = {}
        sizes = [input_size, *self.hidden_size_list, output_size]
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            self.params[f"W{layer}"] = weight_std(weight_init_std, fan_in) * np.random.randn(fan_in, fan_out)
            self.params[f"b{layer}"] = np.zeros(fan_out)

        self.affine_layers = [Affine(self.params, f"W{i}", f"b{i}") for i in range(1, self.num_layers + 1)]
        self.relu_layers = [Relu() for _ in self.hidden_size_list]
        self.dropout_layers = []
        if self.use_dropout:
            self.dropout_layers = None
            ###################################################################
            # TODO: Make one Dropout layer per hidden layer, each dropping    #
            # units with this network's dropout_ratio, and store the list of  #
            # them in self.dropout_layers, first hidden layer first.          #
            ###################################################################
            # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

            self.dropout_layers = [Dropout(self.dropout_ratio) for _ in self.hidden_size_list]

            # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
            require_filled(
                self.dropout_layers,
                "MultiLayerNet with dropout (making the layers)",
                "the first TODO block of multi_layer_net.py, in MultiLayerNet.__init__",
            )
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x, train_flg=False):
        """Class scores for a minibatch x of shape (N, input_size): an array of shape (N, output_size).

        train_flg=True runs the dropout layers in training mode (units dropped at random); the default
        runs them in test mode.
        """
        for i in range(len(self.hidden_size_list)):
            x = self.relu_layers[i].forward(self.affine_layers[i].forward(x))
            if self.use_dropout:
                out = None
                ###############################################################
                # TODO: Pass x through this hidden layer's Dropout layer,      #
                # self.dropout_layers[i], in training mode exactly when       #
                # train_flg is true. Store the result in `out`.               #
                ###############################################################
                # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

                out = self.dropout_layers[i].forward(x, train_flg)

                # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
                x = require_filled(
                    out,
                    "MultiLayerNet with dropout (forward pass)",
                    "the second TODO block of multi_layer_net.py, in MultiLayerNet.predict",
                )
        return self.affine_layers[-1].forward(x)

    def loss(self, x, t, train_flg=False):
        """The mean cross-entropy loss on (x, t) plus the L2 penalty. t: labels, shape (N,)."""
        scores = self.predict(x, train_flg)
        penalty = sum(np.sum(self.params[f"W{i}"] ** 2) for i in range(1, self.num_layers + 1))
        return self.last_layer.forward(scores, t) + 0.5 * self.weight_decay_lambda * penalty

    def accuracy(self, x, t):
        """The fraction of x classified correctly, with the dropout layers in test mode."""
        return float(np.mean(self.predict(x).argmax(axis=1) == np.asarray(t)))

    def gradient(self, x, t):
        """The gradients of loss(x, t, train_flg=True) with respect to every parameter.

        Runs one training-mode forward pass (drawing new dropout masks) and the backward pass through
        the same masks. Returns a dict with the keys of self.params.
        """
        self.loss(x, t, train_flg=True)
        dout = self.affine_layers[-1].backward(self.last_layer.backward(1.0))
        for i in reversed(range(len(self.hidden_size_list))):
            if self.use_dropout:
                ddropout = None
                ###############################################################
                # TODO: Backpropagate dout through this hidden layer's        #
                # Dropout layer, self.dropout_layers[i]. Store the gradient   #
                # with respect to the Dropout layer's input in `ddropout`.    #
                ###############################################################
                # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

                ddropout = self.dropout_layers[i].backward(dout)

                # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
                dout = require_filled(
                    ddropout,
                    "MultiLayerNet with dropout (backward pass)",
                    "the third TODO block of multi_layer_net.py, in MultiLayerNet.gradient",
                )
            dout = self.affine_layers[i].backward(self.relu_layers[i].backward(dout))

        grads = {}
        for i, layer in enumerate(self.affine_layers, start=1):
            grads[f"W{i}"] = layer.dW + self.weight_decay_lambda * self.params[f"W{i}"]
            grads[f"b{i}"] = layer.db
        return grads
