"""nnlab: a small numpy library for training fully-connected networks, written to be read.

Modules:
- layers: forward and backward passes of affine, ReLU, softmax loss and dropout layers.
- layer_utils: "sandwich" layers that chain an affine layer and a ReLU.
- classifiers.fc_net: FullyConnectedNet, a network of any depth with optional dropout.
- optim: update rules (SGD, momentum, Nesterov, Adagrad, RMSProp, Adam).
- solver: Solver, which trains a model with minibatches and keeps the best parameters.
- gradient_check: numerical gradients, to test backward passes.
- data_utils: the embedded digits set, and CIFAR-10 and MNIST when downloaded.

Randomness: the library draws all its random numbers from numpy's global generator, as CS231n's
code does, so ``np.random.seed(...)`` once at the top of a notebook makes a whole run repeatable.
"""
