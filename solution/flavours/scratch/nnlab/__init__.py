"""nnlab: a small numpy library for training fully-connected networks, written to be read.

This edition builds networks from layer objects, each with ``forward`` and ``backward`` methods, in
the style of Saito's "Deep Learning from Scratch".

Modules:
- layers: the layer objects Affine, Relu, SoftmaxWithLoss and Dropout.
- multi_layer_net: MultiLayerNet, a network of any depth with optional dropout after every ReLU.
- trainer: train(), plain minibatch SGD that records accuracy curves.
- settings: the course's choice of vanilla or inverted dropout.
- gradient_check: numerical gradients, to test backward passes.
- data_utils: the embedded digits set, and CIFAR-10 and MNIST when downloaded.

Randomness: the library draws all its random numbers from numpy's global generator, so
``np.random.seed(...)`` once at the top of a notebook makes a whole run repeatable.
"""
