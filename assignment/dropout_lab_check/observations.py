"""What the checks see of a submission (stage 3 of a grade): validated observations.

``Submission`` is the object behind the checks' ``submission`` fixture. Each method carries one
call into the sandboxed child (autograder.sandbox) and turns the raw reply into a small frozen
dataclass of plain numpy arrays and Python values, after checking every type, dtype and shape: the
child is untrusted, so a reply that does not have the expected form counts as a crash of the
student's code, never as data. When the student's code raises, overruns its deadline or kills the
child, the method raises ``ChildFailure``, which the grading plugin turns into a diagnosis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dropout_lab_check.runner import Child, ChildFailure

StudentFailure = ChildFailure  # the name checks use: the student's code failed to answer


def _malformed(what: str) -> ChildFailure:
    return ChildFailure("crash", f"the submission's process returned something unexpected ({what})")


def _array(value, what: str, shape=None, kinds="biuf") -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in kinds:
        raise _malformed(f"{what} is not a numeric array")
    if shape is not None and value.shape != tuple(shape):
        raise _malformed(f"{what} has the wrong shape")
    return value


def _flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise _malformed(f"{what} is not a boolean")
    return value


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _malformed(f"{what} is not a number")
    return float(value)


def _record(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise _malformed(f"{what} is not an object")
    return value


def _returned_array(reply: dict, key: str, function: str, shape) -> np.ndarray:
    """An array the student's function returned, which must have the input's shape."""
    value = reply.get(key)
    if value is None:
        kind = reply.get(f"{key}_type")
        raise ChildFailure("crash", f"{function} returned {kind if isinstance(kind, str) else 'something'}, not a numpy array")
    array = _array(value, key)
    if array.shape != tuple(shape):
        raise ChildFailure("crash", f"{function} returned an array whose shape differs from its input's")
    return array


@dataclass(frozen=True)
class ForwardObservation:
    """One call of the student's dropout_forward."""

    out: np.ndarray
    mask_type: str  # type name of the cache's mask ("NoneType" when it is None)
    x_mutated: bool  # the call changed its input array
    out_is_x: bool  # the call returned its input object itself


@dataclass(frozen=True)
class BackwardObservation:
    """A dropout_forward call, dropout_backward on its cache, and numerical slopes."""

    out: np.ndarray
    dx: np.ndarray
    directions: np.ndarray  # directions[k] is shaped like x
    numerical_slopes: np.ndarray  # central differences of sum(forward(x) * dout) along each direction


@dataclass(frozen=True)
class DropoutCall:
    """One call that the student's network made to the (instrumented) dropout_forward."""

    mode: object
    p: object
    has_seed: bool
    seed: object
    shared_param: bool  # the network passed its own shared dropout_param dict
    input: np.ndarray
    output: np.ndarray

    @property
    def drops(self) -> bool:
        """Whether this call drew a mask (train mode)."""
        return self.mode == "train"


@dataclass(frozen=True)
class NetworkObservation:
    """The student's FullyConnectedNet run once in test mode and once in train mode."""

    scores: np.ndarray
    loss: float
    grads: dict[str, np.ndarray]
    test_calls: tuple[DropoutCall, ...]
    train_calls: tuple[DropoutCall, ...]
    backward_calls: tuple[int, ...]  # index of the forward call whose cache each backward got
    directions: tuple[dict[str, np.ndarray], ...]
    numerical_slopes: np.ndarray  # central differences of the loss along each direction


def _dropout_calls(value, what: str) -> tuple[DropoutCall, ...]:
    if not isinstance(value, list):
        raise _malformed(f"{what} is not a list")
    calls = []
    for record in value:
        record = _record(record, what)
        calls.append(DropoutCall(
            mode=record.get("mode"), p=record.get("p"),
            has_seed=_flag(record.get("has_seed"), "has_seed"), seed=record.get("seed"),
            shared_param=_flag(record.get("shared_param"), "shared_param"),
            input=_array(record.get("input"), "dropout input"),
            output=_array(record.get("output"), "dropout output"),
        ))
    return tuple(calls)


class Submission:
    """The student's code, as the checks call it; every call runs in the sandboxed child."""

    def __init__(self, child: Child):
        self._child = child

    def dropout_forward(self, x: np.ndarray, p: float, mode: str = "train", seed: int | None = None) -> ForwardObservation:
        reply = _record(self._child.call("forward", x=x, p=p, mode=mode, seed=seed), "reply")
        return ForwardObservation(
            out=_returned_array(reply, "out", "dropout_forward", x.shape),
            mask_type=str(reply.get("mask_type")),
            x_mutated=_flag(reply.get("x_mutated"), "x_mutated"),
            out_is_x=_flag(reply.get("out_is_x"), "out_is_x"),
        )

    def dropout_gradient(self, x, dout, p, seed, directions=(), step=1e-5, mode="train") -> BackwardObservation:
        """Forward with ``seed``, backward on its cache, and numerical slopes along ``directions``."""
        directions = np.asarray(directions, dtype=np.float64).reshape((-1, *x.shape))
        reply = _record(self._child.call(
            "forward_backward", x=x, dout=dout, p=p, mode=mode, seed=seed,
            directions=list(directions), step=step,
        ), "reply")
        plus = _array(reply.get("plus"), "plus", shape=(len(directions),), kinds="f")
        minus = _array(reply.get("minus"), "minus", shape=(len(directions),), kinds="f")
        return BackwardObservation(
            out=_returned_array(reply, "out", "dropout_forward", x.shape),
            dx=_returned_array(reply, "dx", "dropout_backward", x.shape),
            directions=directions,
            numerical_slopes=(plus - minus) / (2 * step),
        )

    def network(self, *, hidden_dims, num_classes, keep_ratio, params, X, y, net_seed, reg=0.0,
                directions=(), step=1e-6) -> NetworkObservation:
        """The student's FullyConnectedNet with the given weights (see child_driver.op_fc_run)."""
        directions = tuple(directions)
        reply = _record(self._child.call(
            "fc_run", hidden_dims=list(hidden_dims), num_classes=num_classes, keep_ratio=keep_ratio,
            net_seed=net_seed, reg=reg, params=params, X=X, y=y,
            directions=list(directions), step=step,
        ), "reply")
        grads = _record(reply.get("grads"), "grads")
        if set(grads) != set(params):
            raise ChildFailure("crash", "FullyConnectedNet.loss returned gradients for the wrong parameters")
        backward = reply.get("train_backwards")
        if not isinstance(backward, list):
            raise _malformed("train_backwards is not a list")
        plus = _array(reply.get("plus"), "plus", shape=(len(directions),), kinds="f")
        minus = _array(reply.get("minus"), "minus", shape=(len(directions),), kinds="f")
        return NetworkObservation(
            scores=_array(reply.get("scores"), "scores", shape=(X.shape[0], num_classes), kinds="f"),
            loss=_number(reply.get("loss"), "loss"),
            grads={name: _array(grads[name], name, shape=params[name].shape, kinds="f") for name in params},
            test_calls=_dropout_calls(reply.get("test_forwards"), "test_forwards"),
            train_calls=_dropout_calls(reply.get("train_forwards"), "train_forwards"),
            backward_calls=tuple(int(_number(_record(b, "backward").get("forward_index"), "index")) for b in backward),
            directions=directions,
            numerical_slopes=(plus - minus) / (2 * step),
        )
