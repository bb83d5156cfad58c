"""Convenience layers that chain an affine layer and a ReLU, so networks read as a list of blocks."""

from __future__ import annotations

from nnlab.layers import affine_backward, affine_forward, relu_backward, relu_forward


def affine_relu_forward(x, w, b):
    """Affine layer followed by a ReLU.

    Inputs: x, w, b as for affine_forward.
    Returns (out, cache): out = relu(x @ w + b), shape (N, M); cache = (affine cache, relu cache).
    """
    a, affine_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (affine_cache, relu_cache)


def affine_relu_backward(dout, cache):
    """Backward pass of affine_relu_forward: returns (dx, dw, db)."""
    affine_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, affine_cache)
