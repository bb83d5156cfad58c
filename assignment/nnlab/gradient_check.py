"""Numerical gradients by centred differences, to test analytic backward passes.

The centred difference (f(x + h) - f(x - h)) / (2h) has an error of order h**2, so with h = 1e-5
in float64 an analytic gradient that is right agrees to about 1e-7 relative error or better.
"""

from __future__ import annotations

import numpy as np


def eval_numerical_gradient(f, x, verbose=False, h=1e-5):
    """Numerical gradient of a scalar function f at x.

    Inputs:
    - f: a function of one array argument returning a float; it is called on x itself, which is
      changed in place and restored, so f must read x each time it is called.
    - x: the point (an array of floats), restored on return.
    - verbose: print each coordinate's gradient as it is computed.
    - h: the step of the centred difference.

    Returns an array of x's shape with df/dx.
    """
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        original = x[index]
        x[index] = original + h
        f_plus = f(x)
        x[index] = original - h
        f_minus = f(x)
        x[index] = original
        grad[index] = (f_plus - f_minus) / (2 * h)
        if verbose:
            print(index, grad[index])
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Numerical gradient of an array-valued function, contracted with an upstream gradient.

    For out = f(x), returns the array d(sum(out * df))/dx, which is what a layer's backward pass
    computes from the upstream gradient df.

    Inputs:
    - f: a function of one array argument returning an array; called on x, which is changed in place
      and restored.
    - x: the point, an array of floats.
    - df: the upstream gradient, with the shape of f(x).
    - h: the step of the centred difference.
    """
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        original = x[index]
        x[index] = original + h
        f_plus = np.array(f(x), copy=True)
        x[index] = original - h
        f_minus = np.array(f(x), copy=True)
        x[index] = original
        grad[index] = np.sum((f_plus - f_minus) * df) / (2 * h)
    return grad


def rel_error(x, y):
    """Largest elementwise relative error between two arrays, with a floor that avoids 0 / 0."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))
