"""What the checks see of a submission (stage 3 of a grade): validated observations.

``Submission`` is the object behind the checks' ``submission`` fixture. Each method carries one
call into the sandboxed child (autograder.sandbox) and turns the raw reply into a small frozen
dataclass of plain numpy arrays and Python values, after checking every type, dtype and shape.

Two kinds of bad reply are told apart:
- what the STUDENT's code returned in the wrong form (not an array, the wrong shape, NaN where a
  number is needed) is the student's fault: it raises ``Misconception`` with a diagnosis of its own;
- what the grader's own driver code in the child should have produced (its records, its lists) can
  only be malformed if the child was tampered with: that counts as a crash of the student's code.
When the student's code raises, overruns its deadline or kills the child, the method raises
``ChildFailure``, which the grading plugin turns into a diagnosis.

Every judgement is made here or in the checks, in the parent: whether x was changed is decided by
comparing the x the child returns after the call with the x the parent sent, and numerical slopes
are differences the parent takes of the outputs the child returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dropout_lab_check.conventions import CS231N, Convention
from dropout_lab_check.diagnoses import Misconception
from dropout_lab_check.runner import Child, ChildFailure

StudentFailure = ChildFailure  # the name checks use: the student's code failed to answer


def _malformed(what: str) -> ChildFailure:
    return ChildFailure("crash", f"the submission's process returned something unexpected ({what})")


def _array(value, what: str, shape=None, kinds="biuf") -> np.ndarray:
    """An array the grader's own driver code sent (malformed only if the child was tampered with)."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in kinds:
        raise _malformed(f"{what} is not a numeric array")
    if shape is not None and value.shape != tuple(shape):
        raise _malformed(f"{what} has the wrong shape")
    return value


def _flag(value, what: str) -> bool:
    if not isinstance(value, bool):
        raise _malformed(f"{what} is not a boolean")
    return value


def _record(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise _malformed(f"{what} is not an object")
    return value


def _records(value, what: str) -> list:
    if not isinstance(value, list):
        raise _malformed(f"{what} is not a list")
    return [_record(item, what) for item in value]


def returned_array(value, type_name, function: str, shape, finite: bool = True) -> np.ndarray:
    """An array the student's function returned, which must be a numeric array of ``shape`` (and,
    where ``finite``, hold no NaN or infinity): anything else is the student's to fix."""
    if value is None:
        kind = type_name if isinstance(type_name, str) else "something else"
        raise Misconception("wrong_return_type", f"{function} returned {kind}, not a numpy array")
    array = _array(value, function)
    if array.shape != tuple(shape):
        raise Misconception("wrong_return_shape",
                            f"{function} returned an array of shape {array.shape} where {tuple(shape)} was expected")
    if finite and not np.all(np.isfinite(array)):
        raise Misconception("not_finite", f"{function} returned NaN or infinite values")
    return array


def returned_number(value, function: str) -> float:
    """A number the student's function returned (finite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = "something else" if not isinstance(value, str) else value[:60]
        raise Misconception("wrong_return_type", f"{function} returned {shown}, not a number")
    if not np.isfinite(value):
        raise Misconception("not_finite", f"{function} returned {value}")
    return float(value)


@dataclass(frozen=True)
class ForwardObservation:
    """One call of the student's dropout_forward."""

    out: np.ndarray
    mask_type: str  # type name of the cache's mask ("NoneType" when it is None)
    out_is_x: bool  # the call returned its input object itself
    x_mutated: bool | None  # the call changed its input array (None: not asked)
    param_changed: bool  # the dropout_param dict differs after the call
    param_after: dict


def dropout_param(p, mode, seed=None, convention: Convention = CS231N) -> dict:
    """What one call is given for keep probability p: CS231n's dropout_param {p, mode[, seed]}, or
    for the scratch flavour {dropout_ratio, mode[, seed]} (the child makes Dropout(dropout_ratio),
    seeds numpy's generator with the seed and calls forward(x, train_flg=mode == "train"))."""
    param = {"p": p, "mode": mode} if convention.knob == "p" else {"dropout_ratio": convention.knob_value(p), "mode": mode}
    if seed is not None:
        param["seed"] = seed
    return param


def _param_as_sent(param: dict) -> dict:
    return {str(key): value for key, value in param.items()}


def _forward_observation(reply: dict, x: np.ndarray, param: dict, return_x: bool, names: dict) -> ForwardObservation:
    out = returned_array(reply.get("out"), reply.get("out_type"), names["forward"], x.shape)
    x_mutated = None
    if return_x:
        after = _array(reply.get("x_after"), "x after the call", shape=x.shape)
        x_mutated = not np.array_equal(after, x, equal_nan=True)
    param_after = _record(reply.get("param_after"), "param_after")
    return ForwardObservation(
        out=out, mask_type=str(reply.get("mask_type")), out_is_x=_flag(reply.get("out_is_x"), "out_is_x"),
        x_mutated=x_mutated, param_changed=param_after != _param_as_sent(param), param_after=param_after,
    )


@dataclass(frozen=True)
class BackwardObservation:
    """A dropout_forward call, dropout_backward on its cache, a repeat of the forward call, and the
    numerical slopes of sum(forward(x) * dout) along each direction."""

    out: np.ndarray
    dx: np.ndarray  # may hold NaN: the check explains where it came from
    repeatable: bool  # a second forward call with the same dropout_param gave the same output
    directions: np.ndarray  # directions[k] is shaped like x
    numerical_slopes: np.ndarray


@dataclass(frozen=True)
class AffineCall:
    """One affine_forward call made inside the student's FullyConnectedNet.loss."""

    w_shape: tuple
    input: np.ndarray  # flattened to (N, D); the output is input @ W + b (the layer is the given one)


@dataclass(frozen=True)
class DropoutCall:
    """One call the student's network made to the (instrumented) dropout_forward."""

    mode: object
    p: object
    has_seed: bool
    seed: object
    shape: tuple  # of the input it was given

    @property
    def drops(self) -> bool:
        """Whether this call drew a mask (train mode with p < 1)."""
        return self.mode == "train" and self.p != 1


@dataclass(frozen=True)
class BackwardCall:
    """One call of the instrumented dropout_backward (or Dropout.backward): was its cache from an
    instrumented forward call, from the same loss() call, and from an input of dout's shape?"""

    ours: bool
    same_call: bool
    same_shape: bool


@dataclass(frozen=True)
class LossCall:
    """One train-mode FullyConnectedNet.loss call on one batch."""

    X: np.ndarray
    y: np.ndarray
    loss: float
    grads: dict[str, np.ndarray]
    affine: tuple[AffineCall, ...]
    dropout: tuple[DropoutCall, ...]
    backward: tuple[BackwardCall, ...]
    repeat_affine: tuple[AffineCall, ...]  # a second call with the same weights and batch
    directions: tuple[dict[str, np.ndarray], ...]
    numerical_slopes: np.ndarray  # central differences of the loss along each direction


@dataclass(frozen=True)
class ScoresCall:
    """One test-mode FullyConnectedNet.loss call (no labels)."""

    X: np.ndarray
    scores: np.ndarray
    affine: tuple[AffineCall, ...]
    dropout: tuple[DropoutCall, ...]


@dataclass(frozen=True)
class NetworkObservation:
    keep_ratio: float
    hidden_dims: tuple
    params: dict[str, np.ndarray]
    batches: tuple[LossCall, ...]
    test: ScoresCall


def _affine_calls(value, what: str) -> tuple[AffineCall, ...]:
    calls = []
    for record in _records(value, what):
        shape = record.get("w_shape")
        if not isinstance(shape, list) or not all(isinstance(size, int) for size in shape):
            raise _malformed(f"{what} w_shape")
        calls.append(AffineCall(tuple(shape), _array(record.get("input"), what)))
    return tuple(calls)


def _dropout_calls(value, what: str) -> tuple[DropoutCall, ...]:
    calls = []
    for record in _records(value, what):
        shape = record.get("shape")
        if not isinstance(shape, list) or not all(isinstance(size, int) for size in shape):
            raise _malformed(f"{what} shape")
        calls.append(DropoutCall(mode=record.get("mode"), p=record.get("p"),
                                 has_seed=_flag(record.get("has_seed"), "has_seed"), seed=record.get("seed"),
                                 shape=tuple(shape)))
    return tuple(calls)


def _backward_calls(value, what: str) -> tuple[BackwardCall, ...]:
    return tuple(BackwardCall(_flag(record.get("ours"), "ours"), _flag(record.get("same_call"), "same_call"),
                              _flag(record.get("same_shape"), "same_shape"))
                 for record in _records(value, what))


def _loss_call(reply, batch, params, directions, step, names) -> LossCall:
    X, y, _ = batch
    loss = returned_number(reply.get("loss"), names["loss"])
    grads = reply.get("grads")
    if not isinstance(grads, dict):
        raise Misconception("wrong_return_type",
                            f"{names['gradients']} returned {reply.get('grads_type')!s:.40} as the gradients, not a dict")
    if set(grads) != set(params):
        raise Misconception("wrong_return_type", f"{names['gradients']} returned gradients for other parameters "
                            f"({', '.join(sorted(grads)) or 'none'}) than the network has")
    grads = {name: returned_array(grads[name], "something else", f"the gradient of {name}", params[name].shape)
             for name in params}
    losses = reply.get("perturbed_losses")
    if not isinstance(losses, list) or len(losses) != 2 * len(directions):
        raise _malformed("perturbed losses")
    losses = [returned_number(value, names["loss"]) for value in losses]
    plus, minus = np.array(losses[0::2]), np.array(losses[1::2])
    return LossCall(
        X=X, y=y, loss=loss, grads=grads,
        affine=_affine_calls(reply.get("affine"), "affine calls"),
        dropout=_dropout_calls(reply.get("dropout"), "dropout calls"),
        backward=_backward_calls(reply.get("backward"), "backward calls"),
        repeat_affine=_affine_calls(reply.get("repeat_affine"), "repeated affine calls"),
        directions=tuple(directions), numerical_slopes=(plus - minus) / (2 * step),
    )


class Submission:
    """The student's code, as the checks call it; every call runs in the sandboxed child."""

    def __init__(self, child: Child, convention: Convention = CS231N):
        self._child = child
        self.convention = convention

    def _param(self, p, mode, seed=None) -> dict:
        return dropout_param(p, mode, seed, self.convention)

    def dropout_forward(self, x: np.ndarray, p: float, mode: str = "train", seed: int | None = None,
                        return_x: bool = False) -> ForwardObservation:
        """One call with a fresh dropout_param {p, mode[, seed]}. With ``return_x`` the child sends
        x back as it is after the call, and ``x_mutated`` says whether it changed (else None)."""
        param = self._param(p, mode, seed)
        reply = _record(self._child.call("forward", x=x, param=param, return_x=return_x), "reply")
        return _forward_observation(reply, x, param, return_x, self.convention.names)

    def dropout_forward_on_ones(self, shape, p: float, seed: int | None = None) -> ForwardObservation:
        """A train-mode call on x = ones(shape), float32, which the child builds itself: a large
        input for the statistical checks that costs nothing to send."""
        param = self._param(p, "train", seed)
        reply = _record(self._child.call("forward", x=None, param=param, return_x=False, fill=[1.0, list(shape)]), "reply")
        return _forward_observation(reply, np.ones(shape, dtype=np.float32), param, False, self.convention.names)

    def dropout_forward_sequence(self, param: dict, steps: list[tuple[np.ndarray, dict]]) -> list[ForwardObservation]:
        """Calls with ONE dropout_param dict, as FullyConnectedNet makes them: before each call the
        dict is updated with that step's entries (the network setting the mode)."""
        reply = self._child.call("forward_sequence", param=param,
                                 steps=[{"x": x, "update": update} for x, update in steps])
        replies = _records(reply, "sequence")
        if len(replies) != len(steps):
            raise _malformed("sequence length")
        observations, current = [], dict(param)
        for (x, update), step_reply in zip(steps, replies):
            current.update(update)
            observations.append(_forward_observation(step_reply, x, current, False, self.convention.names))
        return observations

    def dropout_gradient(self, x, dout, p, seed, directions, step=1e-5) -> BackwardObservation:
        """Forward with ``seed``, backward on its cache, and numerical slopes along ``directions``."""
        directions = np.asarray(directions, dtype=np.float64).reshape((-1, *x.shape))
        shifted = [x + sign * step * direction for direction in directions for sign in (1, -1)]
        param = self._param(p, "train", seed)
        reply = _record(self._child.call("forward_backward", x=x, dout=dout, param=param, shifted=shifted), "reply")
        names = self.convention.names
        out = returned_array(reply.get("out"), reply.get("out_type"), names["forward"], x.shape)
        dx = returned_array(reply.get("dx"), reply.get("dx_type"), names["backward"], x.shape, finite=False)
        again = returned_array(reply.get("again"), reply.get("again_type"), names["forward"], x.shape)
        outs = reply.get("shifted_outs")
        types = reply.get("shifted_types")
        if not isinstance(outs, list) or not isinstance(types, list) or not len(outs) == len(types) == len(shifted):
            raise _malformed("shifted outputs")
        values = [float(np.sum(returned_array(value, kind, names["forward"], x.shape).astype(np.float64) * dout))
                  for value, kind in zip(outs, types)]
        slopes = (np.array(values[0::2]) - np.array(values[1::2])) / (2 * step)
        return BackwardObservation(out=out, dx=dx, repeatable=bool(np.array_equal(out, again)),
                                   directions=directions, numerical_slopes=slopes)

    def dropout_backward_test_mode(self, x, dout, p) -> np.ndarray:
        """dx from dropout_backward after a test-mode forward call."""
        reply = _record(self._child.call("backward_test_mode", x=x, dout=dout, param=self._param(p, "test")), "reply")
        return returned_array(reply.get("dx"), reply.get("dx_type"), self.convention.names["backward"], x.shape)

    def network(self, *, hidden_dims, num_classes, keep_ratio, params, batches, net_seed, reg=0.0,
                directions=(), step=1e-6, test_X) -> NetworkObservation:
        """The student's network with the given weights and keep ratio: FullyConnectedNet (see
        child_driver.op_fc_run) or the scratch flavour's MultiLayerNet with dropout_ratio = 1 -
        keep_ratio (op_layer_net_run). ``batches`` are (X, y, seed): each batch's loss() calls run
        with that seed in the network's dropout_param (None: the network's own), or after
        np.random.seed(seed) in the scratch flavour, whose network has no seed of its own."""
        directions = tuple(directions)
        flat = np.array([np.concatenate([direction[name].ravel() for name in params]) for direction in directions])
        flat = flat.reshape(len(directions), sum(value.size for value in params.values()))
        common = dict(hidden_dims=list(hidden_dims), num_classes=num_classes, reg=reg, params=params,
                      batches=[{"X": X, "y": y, "seed": seed} for X, y, seed in batches],
                      directions=flat, step=step, test_X=test_X)
        if self.convention.knob == "p":
            reply = self._child.call("fc_run", keep_ratio=keep_ratio, net_seed=net_seed, **common)
        else:
            if any(seed is None for _, _, seed in batches):
                raise ValueError("the scratch flavour's network has no seed of its own: give every batch one")
            reply = self._child.call("layer_net_run", dropout_ratio=self.convention.knob_value(keep_ratio), **common)
        reply = _record(reply, "reply")
        replies = _records(reply.get("batches"), "batches")
        if len(replies) != len(batches):
            raise _malformed("batch count")
        test = _record(reply.get("test"), "test")
        scores = returned_array(test.get("scores"), test.get("scores_type"), self.convention.names["scores"],
                                (test_X.shape[0], num_classes))
        return NetworkObservation(
            keep_ratio=keep_ratio, hidden_dims=tuple(hidden_dims), params=params,
            batches=tuple(_loss_call(r, b, params, directions, step, self.convention.names) for r, b in zip(replies, batches)),
            test=ScoresCall(test_X, scores, _affine_calls(test.get("affine"), "affine calls"),
                            _dropout_calls(test.get("dropout"), "dropout calls")),
        )
