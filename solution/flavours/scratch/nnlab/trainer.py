"""Plain minibatch SGD that records training and test accuracy as it goes."""

from __future__ import annotations

import numpy as np


def train(network, X_train, y_train, X_test, y_test, epochs, batch_size=100, learning_rate=0.01,
          record_every=1, verbose=False):
    """Train a network (for instance a MultiLayerNet) with plain SGD; returns its accuracy curves.

    One epoch is one pass over the training set in a fresh random order, in minibatches of
    batch_size (the last one may be smaller). Every update is W -= learning_rate * dW, in place.

    Inputs:
    - network: has params (a dict of arrays), gradient(x, t) (a dict with the same keys) and
      accuracy(x, t).
    - X_train, y_train, X_test, y_test: the data; y_* are integer labels.
    - epochs: number of passes over the training set.
    - record_every: measure both accuracies before training and after every record_every epochs
      (and after the last one). Measuring costs a pass over both sets, so a long run measures less often.
    - verbose: print each measurement.

    Returns a dict of lists: "epoch", "train_acc" and "test_acc", one entry per measurement.
    """
    history = {"epoch": [], "train_acc": [], "test_acc": []}

    def record(epoch):
        history["epoch"].append(epoch)
        history["train_acc"].append(network.accuracy(X_train, y_train))
        history["test_acc"].append(network.accuracy(X_test, y_test))
        if verbose:
            print(f"epoch {epoch:5d}: train accuracy {history['train_acc'][-1]:.3f}, "
                  f"test accuracy {history['test_acc'][-1]:.3f}")

    record(0)
    n = len(X_train)
    for epoch in range(1, epochs + 1):
        order = np.random.permutation(n)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            grads = network.gradient(X_train[batch], y_train[batch])
            for name, grad in grads.items():
                network.params[name] -= learning_rate * grad
        if epoch % record_every == 0 or epoch == epochs:
            record(epoch)
    return history
