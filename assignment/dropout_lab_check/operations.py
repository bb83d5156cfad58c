"""The operations of the grader's child process (autograder/child_driver.py), taken from it
when the release is built: the student checker calls and observes your code with them."""

from __future__ import annotations

import contextlib

import os

import sys

import traceback

import numpy as np

TREE = os.path.realpath(sys.argv[1]) if __name__ == "__main__" else ""  # set by run() when forked

MAX_TEXT = 400

def _short(text) -> str:
    text = str(text)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."

def _student_frames(error: BaseException) -> list[str]:
    """Traceback lines from the student's own files only, paths relative to the submission."""
    lines = []
    for frame in traceback.extract_tb(error.__traceback__):
        path = os.path.realpath(frame.filename)
        if path.startswith(TREE + os.sep):
            where = os.path.relpath(path, TREE)
            lines.append(f'File "{where}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line.strip()}")
    if isinstance(error, SyntaxError) and error.filename:
        path = os.path.realpath(error.filename)
        if path.startswith(TREE + os.sep):
            lines.append(f'File "{os.path.relpath(path, TREE)}", line {error.lineno}')
            if error.text:
                lines.append(f"    {error.text.strip()}")
    return lines

def describe_error(error: BaseException, importing: bool = False) -> dict:
    """A JSON description of an exception raised by student code."""
    if importing:
        kind = "does_not_import"
    elif isinstance(error, NotImplementedError):  # TodoNotFilledError is one
        kind = "not_implemented"
    elif isinstance(error, MemoryError):
        kind = "memory"
    else:
        kind = "crash"
    return {
        "kind": kind,
        "type": type(error).__name__,
        "message": _short(error),
        "frames": _student_frames(error)[-12:],
    }

def _plain(value):
    """A value that JSON or .npy can carry, or a short description of what it was."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return _short(repr(value))

def _as_array(value):
    """A numeric/bool ndarray view of a student return value, or None with its type name."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value, type(value).__name__
    return None, type(value).__name__

def _dropout_param(p, mode, seed):
    param = {"p": p, "mode": mode}
    if seed is not None:
        param["seed"] = seed
    return param

def op_forward(x, p, mode, seed=None):
    """One dropout_forward call: what it returned and whether it touched x."""
    from nnlab import layers

    pristine = x.copy()
    out, cache = layers.dropout_forward(x, _dropout_param(p, mode, seed))
    out_array, out_type = _as_array(out)
    # Only the mask's type crosses back: the checks ask whether test mode cached None, and the
    # array itself would double every reply.
    mask = cache[1] if isinstance(cache, tuple) and len(cache) == 2 else "no (param, mask) cache"
    return {
        "out": out_array,
        "out_type": out_type,
        "out_is_x": out is x,
        "x_mutated": not np.array_equal(x, pristine, equal_nan=True),
        "mask_type": type(mask).__name__,
    }

def op_forward_backward(x, dout, p, mode, seed, directions, step):
    """A forward call, a backward call on its cache, and the objective sum(out * dout) at x +/- step
    along each direction (an array shaped like x), each from a fresh forward call with the same
    seed."""
    from nnlab import layers

    param = _dropout_param(p, mode, seed)
    out, cache = layers.dropout_forward(x.copy(), dict(param))
    dx = layers.dropout_backward(dout.copy(), cache)

    def objective(shifted):
        value, _ = layers.dropout_forward(shifted, dict(param))
        return float(np.sum(np.asarray(value, dtype=np.float64) * dout))

    plus = [objective(x + step * direction) for direction in directions]
    minus = [objective(x - step * direction) for direction in directions]
    out_array, out_type = _as_array(out)
    dx_array, dx_type = _as_array(dx)
    return {
        "out": out_array,
        "out_type": out_type,
        "dx": dx_array,
        "dx_type": dx_type,
        "plus": np.array(plus, dtype=np.float64),
        "minus": np.array(minus, dtype=np.float64),
    }

class TracedCache(tuple):
    """The (dropout_param, mask) cache of an instrumented call, which knows which call made it."""

    call_index = -1

class DropoutTrace:
    """A correct inverted dropout that records every call it gets, put in place of the student's
    dropout functions while the student's FullyConnectedNet runs, so the parent can see where the
    network applies dropout and with which parameters."""

    def __init__(self, net):
        self.net = net
        self.forwards: list[dict] = []
        self.backwards: list[dict] = []
        self.recording = True

    def forward(self, x, dropout_param):
        param = dropout_param if isinstance(dropout_param, dict) else {}
        mode, p = param.get("mode"), param.get("p")
        mask = None
        out = x
        if mode == "train":
            if "seed" in param:
                np.random.seed(param["seed"])
            mask = (np.random.rand(*np.shape(x)) < p) / p
            out = x * mask
        index = len(self.forwards)
        if self.recording:
            self.forwards.append({
                "mode": _plain(mode),
                "p": _plain(p),
                "has_seed": "seed" in param,
                "seed": _plain(param.get("seed")),
                "shared_param": dropout_param is self.net.dropout_param,
                "input": np.array(x, dtype=np.float64),
                "output": np.array(out, dtype=np.float64),
            })
        cache = TracedCache((dropout_param, mask))
        cache.call_index = index
        return out, cache

    def backward(self, dout, cache):
        ours = isinstance(cache, TracedCache)
        if self.recording:
            self.backwards.append({"forward_index": cache.call_index if ours else -1})
        mask = cache[1] if ours else None
        return dout if mask is None else dout * mask

    @contextlib.contextmanager
    def installed(self):
        """Replace dropout_forward/backward in the student's fc_net module and in nnlab.layers."""
        from nnlab import layers
        from nnlab.classifiers import fc_net

        saved = []
        for module in (fc_net, layers):
            for name, replacement in (("dropout_forward", self.forward), ("dropout_backward", self.backward)):
                saved.append((module, name, getattr(module, name, None)))
                setattr(module, name, replacement)
        try:
            yield self
        finally:
            for module, name, original in saved:
                setattr(module, name, original)

def op_fc_run(hidden_dims, num_classes, keep_ratio, net_seed, reg, params, X, y, directions, step):
    """The student's FullyConnectedNet on the parent's weights: test-mode scores, train-mode loss
    and gradients, the dropout calls each made, and train losses with the weights moved by
    +/- step along each direction (a dict of arrays shaped like the weights)."""
    from nnlab.classifiers import fc_net

    net = fc_net.FullyConnectedNet(
        list(hidden_dims), input_dim=X.shape[1], num_classes=num_classes,
        dropout_keep_ratio=keep_ratio, reg=reg, dtype=np.float64, seed=net_seed,
    )
    net.params = {name: value.copy() for name, value in params.items()}
    test_trace, train_trace = DropoutTrace(net), DropoutTrace(net)
    with test_trace.installed():
        scores = net.loss(X.copy())
    with train_trace.installed():
        loss, grads = net.loss(X.copy(), y.copy())
        train_trace.recording = False
        plus, minus = [], []
        for direction in directions:
            for sign, values in ((1, plus), (-1, minus)):
                for name, value in params.items():  # in place: the network may hold the arrays
                    np.copyto(net.params[name], value + sign * step * direction[name])
                values.append(float(net.loss(X.copy(), y.copy())[0]))
        for name, value in params.items():
            np.copyto(net.params[name], value)
    return {
        "scores": np.asarray(scores, dtype=np.float64),
        "loss": float(loss),
        "grads": {str(name): np.asarray(value, dtype=np.float64) for name, value in grads.items()},
        "test_forwards": test_trace.forwards,
        "train_forwards": train_trace.forwards,
        "train_backwards": train_trace.backwards,
        "plus": np.array(plus, dtype=np.float64),
        "minus": np.array(minus, dtype=np.float64),
    }

OPERATIONS = {"forward": op_forward, "forward_backward": op_forward_backward, "fc_run": op_fc_run}
