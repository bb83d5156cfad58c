"""The program that runs inside the sandboxed child: it imports the submission and serves calls.

It is started as ``python -I child_driver.py TREE REQUEST_FD REPLY_FD [UID]`` from a directory that
holds a copy of this file and of ``wire.py`` only (the grader package itself is not importable here).
Before any student code runs it moves the two protocol pipes to fresh close-on-exec descriptors
(closing the numbers given on its command line), drops to UID when given one (inside bwrap, as
root), and says so. It then answers one request at a time, echoing each request's id; the student's
prints go to stdout/stderr, which the parent captures separately, so they can never be mistaken for
a reply, and the parent treats anything malformed or out of turn on the pipes as a failed call.

Replies hold plain arrays and JSON values only. Every verdict is computed by the parent.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

import numpy as np

# `python -I` leaves the script's directory off sys.path; wire.py was copied beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402

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
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "biuf"):
        return value.item()
    return _short(repr(value))


def _plain_dict(value):
    """A JSON copy of a dict's items (keys as strings, values plain), or a description of a non-dict."""
    if not isinstance(value, dict):
        return {"<not a dict>": _plain(type(value).__name__)}
    return {str(key): (_short(repr(item)) if isinstance(item, np.ndarray) else _plain(item)) for key, item in value.items()}


def _as_array(value):
    """A numeric/bool ndarray view of a student return value, or None with its type name."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value, type(value).__name__
    return None, type(value).__name__


def _layer_forward(x, param):
    """One forward call through the student's layer API: (out, cache, mask). The flavour shows in
    ``param``: CS231n's dict {p, mode[, seed]} goes to dropout_forward as it is; {dropout_ratio,
    mode[, seed]} makes the scratch flavour's Dropout(dropout_ratio) and runs its forward(x,
    train_flg), after np.random.seed(seed) when there is a seed (the book's layer has no seed of its
    own: a run is made repeatable by seeding numpy's global generator). The cache is what backward
    needs: CS231n's (param, mask) tuple, or the layer object itself."""
    from nnlab import layers

    if "dropout_ratio" not in param:
        out, cache = layers.dropout_forward(x, param)
        mask = cache[1] if isinstance(cache, tuple) and len(cache) == 2 else "no (param, mask) cache"
        return out, cache, mask
    if "seed" in param:
        np.random.seed(param["seed"])
    layer = layers.Dropout(param["dropout_ratio"])
    out = layer.forward(x, train_flg=param["mode"] == "train")
    return out, layer, getattr(layer, "mask", "no mask attribute")


def _layer_backward(dout, cache, param):
    """The backward call that goes with _layer_forward's cache."""
    if "dropout_ratio" not in param:
        from nnlab import layers

        return layers.dropout_backward(dout, cache)
    return cache.backward(dout)


def _forward_reply(x, out, mask, return_x):
    """What crosses back of one forward call. Only the cached mask's type crosses: the checks ask
    whether test mode cached None, and the array itself would double every reply."""
    out_array, out_type = _as_array(out)
    reply = {"out": out_array, "out_type": out_type, "out_is_x": out is x, "mask_type": type(mask).__name__}
    if return_x:
        reply["x_after"] = x  # the parent compares it with what it sent
    return reply


def op_forward(x, param, return_x=True, fill=None):
    """One forward call with a dict holding ``param``: what it returned, x as it is after the call
    and the dict as it is after the call. ``fill`` = [value, shape] builds a constant float32 x here
    instead of receiving one: the large statistical inputs need not cross the pipe, and their
    outputs cross at half the size."""
    if fill is not None:
        x = np.full(tuple(fill[1]), float(fill[0]), dtype=np.float32)
    dropout_param = dict(param)
    out, _, mask = _layer_forward(x, dropout_param)
    reply = _forward_reply(x, out, mask, return_x)
    reply["param_after"] = _plain_dict(dropout_param)
    return reply


def op_forward_sequence(param, steps):
    """dropout_forward called the way FullyConnectedNet calls it: ONE dict for every call, whose
    entries the caller updates between calls (each step: ``x`` and the ``update`` to apply first)."""
    dropout_param = dict(param)
    replies = []
    for step in steps:
        dropout_param.update(step.get("update", {}))
        out, _, mask = _layer_forward(step["x"], dropout_param)
        reply = _forward_reply(step["x"], out, mask, return_x=False)
        reply["param_after"] = _plain_dict(dropout_param)
        replies.append(reply)
    return replies


def op_forward_backward(x, dout, param, shifted):
    """A forward call and a backward call on its cache, a second forward call on x with the same
    dict contents (is a seeded forward repeatable?), and the forward's outputs at each of the
    parent's ``shifted`` inputs, each from a fresh call: the parent takes the differences."""
    out, cache, _ = _layer_forward(x.copy(), dict(param))
    dx = _layer_backward(dout.copy(), cache, param)
    again, _, _ = _layer_forward(x.copy(), dict(param))
    outputs = [_as_array(_layer_forward(point, dict(param))[0]) for point in shifted]
    out_array, out_type = _as_array(out)
    dx_array, dx_type = _as_array(dx)
    again_array, again_type = _as_array(again)
    return {
        "out": out_array, "out_type": out_type,
        "dx": dx_array, "dx_type": dx_type,
        "again": again_array, "again_type": again_type,
        "shifted_outs": [array for array, _ in outputs],
        "shifted_types": [kind for _, kind in outputs],
    }


def op_backward_test_mode(x, dout, param):
    """A test-mode forward call and dropout_backward on its cache."""
    _, cache, _ = _layer_forward(x.copy(), dict(param))
    dx, dx_type = _as_array(_layer_backward(dout.copy(), cache, param))
    return {"dx": dx, "dx_type": dx_type}


class TracedCache(tuple):
    """The (dropout_param, mask) cache of an instrumented call, which knows which loss() call made
    it and the shape of the input it dropped."""

    loss_call = -1
    shape = ()


def _replace_everywhere(modules, original, replacement, saved):
    """Bind ``replacement`` to every global name that holds ``original`` in ``modules`` (so that
    an alias such as ``from nnlab.layers import dropout_forward as drop`` is replaced too)."""
    for module in modules:
        for name, value in list(vars(module).items()):
            if value is original:
                saved.append((module, name, value))
                setattr(module, name, replacement)


class CorrectDropout:
    """A correct inverted dropout, put in place of the student's dropout functions while their
    network runs, so that a bug of the student's own layer never costs network points."""

    def __init__(self, student_forward, student_backward):
        pass  # the student's functions are not used

    def forward(self, x, dropout_param, p, mode):
        """(out, what backward needs)."""
        if mode != "train":
            return x, None
        if "seed" in dropout_param:
            np.random.seed(dropout_param["seed"])
        mask = (np.random.rand(*np.shape(x)) < p) / p
        return x * mask, mask

    def backward(self, dout, mask):
        if mask is None or np.shape(mask) != np.shape(dout):  # a stale cache: the parent is told
            return dout
        return dout * mask


class StudentsDropout:
    """The student's own dropout functions, traced as they are. The student checker runs the network
    checks on them (``release`` sets NETWORK_DROPOUT to this class there), because a release must not
    ship a correct dropout: its network results then include the layer's own mistakes."""

    def __init__(self, student_forward, student_backward):
        self.student_forward, self.student_backward = student_forward, student_backward

    def forward(self, x, dropout_param, p, mode):
        return self.student_forward(x, dropout_param)

    def backward(self, dout, cache):
        return self.student_backward(dout, cache)


class CorrectDropoutLayer:
    """A correct Dropout layer of the scratch flavour, in the course's style (nnlab/settings.py),
    put in place of the student's class while their MultiLayerNet runs."""

    def __init__(self, dropout_ratio=0.5):
        from nnlab import settings

        if isinstance(dropout_ratio, bool) or not isinstance(dropout_ratio, (int, float, np.floating)) or not 0 <= dropout_ratio < 1:
            raise ValueError(f"dropout_ratio is the probability of DROPPING a unit, in [0, 1); got {dropout_ratio!r}")
        self.dropout_ratio = float(dropout_ratio)
        self.style = settings.DROPOUT_STYLE
        self.mask = None

    def forward(self, x, train_flg=True):
        keep = 1.0 - self.dropout_ratio
        if not train_flg:
            self.mask = None
            return x * keep if self.style == "vanilla" else x
        self.mask = np.random.rand(*np.shape(x)) >= self.dropout_ratio
        return x * self.mask / keep if self.style == "inverted" else x * self.mask

    def backward(self, dout):
        if self.mask is None or np.shape(self.mask) != np.shape(dout):  # another layer's mask: the parent is told
            return dout
        dx = dout * self.mask
        return dx / (1.0 - self.dropout_ratio) if self.style == "inverted" else dx


# The dropout that the student's network runs on while the network checks observe it: functions
# for the CS231n flavour, a layer class for the scratch flavour (None: the student's own class).
NETWORK_DROPOUT, NETWORK_DROPOUT_LAYER = CorrectDropout, CorrectDropoutLayer


class NetworkTrace:
    """What the student's FullyConnectedNet does inside loss(), seen at the boundaries of the given
    code, whatever form the student's dropout lines take.

    - Every affine_forward call is recorded (its input and output), however it is reached (through
      affine_relu_forward or directly): between two affine layers the parent sees exactly what the
      network did to the activations, which is how it judges the network's dropout.
    - dropout_forward and dropout_backward, under any name the student's module binds them to and as
      used by nnlab.layers.Dropout, are replaced by NETWORK_DROPOUT (in the grader a correct
      inverted dropout, so that a bug of the student's own layer never costs network points), and
      their calls recorded. Dropout written inline is the student's own, and is judged by the same
      boundary records.
    """

    def __init__(self):
        self.layer = None  # the NETWORK_DROPOUT in use, made when the trace is installed
        self.loss_call = -1
        self.current = None  # what the current loss call did, when it is recorded

    def start_loss_call(self, record=True):
        self.loss_call += 1
        self.current = {"affine": [], "dropout": [], "backward": []} if record else None

    def affine(self, original):
        def affine_forward(x, w, b):
            out, cache = original(x, w, b)
            if self.current is not None:
                # The input only: the layer is the given one, so the parent computes its output.
                self.current["affine"].append({
                    "w_shape": list(np.shape(w)),
                    "input": np.array(x, dtype=np.float64).reshape(np.shape(x)[0], -1),
                })
            return out, cache
        return affine_forward

    def dropout_forward(self, x, dropout_param):
        param = dropout_param if isinstance(dropout_param, dict) else {}
        mode, p = param.get("mode"), param.get("p")
        if mode not in ("train", "test"):
            raise ValueError(f"dropout_param['mode'] must be 'train' or 'test'; got {mode!r}")
        if mode == "train" and (isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 < p <= 1):
            raise ValueError(f"dropout_param['p'] must be the probability of KEEPING a unit, in (0, 1]; got {p!r}")
        out, inner = self.layer.forward(x, dropout_param, p, mode)
        if self.current is not None:
            self.current["dropout"].append({
                "mode": _plain(mode), "p": _plain(p), "has_seed": "seed" in param, "seed": _plain(param.get("seed")),
                "shape": [int(size) for size in np.shape(x)],
            })
        cache = TracedCache((dropout_param, inner))
        cache.loss_call, cache.shape = self.loss_call, tuple(np.shape(x))
        return out, cache

    def dropout_backward(self, dout, cache):
        ours = isinstance(cache, TracedCache)
        if self.current is not None:
            self.current["backward"].append({"ours": ours, "same_call": ours and cache.loss_call == self.loss_call,
                                             "same_shape": ours and cache.shape == tuple(np.shape(dout))})
        return self.layer.backward(dout, cache[1]) if ours else dout

    @contextlib.contextmanager
    def installed(self):
        from nnlab import layer_utils, layers
        from nnlab.classifiers import fc_net

        modules = (fc_net, layer_utils, layers)
        self.layer = NETWORK_DROPOUT(layers.dropout_forward, layers.dropout_backward)
        saved = []
        _replace_everywhere(modules, layers.affine_forward, self.affine(layers.affine_forward), saved)
        _replace_everywhere(modules, layers.dropout_forward, self.dropout_forward, saved)
        _replace_everywhere(modules, layers.dropout_backward, self.dropout_backward, saved)
        try:
            yield self
        finally:
            for module, name, original in reversed(saved):
                setattr(module, name, original)


def _moved_weights(params, directions, step):
    """The weights moved by +step and -step along each direction; a direction is one flat array
    over all the weights, in the order of ``params``."""
    ends = np.cumsum([value.size for value in params.values()])[:-1]
    moved = []
    for direction in directions:
        parts = dict(zip(params, np.split(direction, ends)))
        for sign in (1, -1):
            moved.append({name: value + sign * step * parts[name].reshape(value.shape) for name, value in params.items()})
    return moved


def _set_weights(net_params: dict, values: dict) -> None:
    """Copy ``values`` into the network's weight arrays in place: its layers may hold the arrays."""
    for name, value in values.items():
        np.copyto(net_params[name], value)


def _batch_reply(loss, grads, record, repeat, losses) -> dict:
    """What crosses back of one batch's loss calls (see op_fc_run)."""
    grads_plain = ({str(name): _as_array(value)[0] for name, value in grads.items()}
                   if isinstance(grads, dict) else None)
    return {
        "loss": _plain(loss), "grads": grads_plain, "grads_type": type(grads).__name__,
        "affine": record["affine"], "dropout": record["dropout"], "backward": record["backward"],
        "repeat_affine": repeat["affine"], "perturbed_losses": losses,
    }


def _network_reply(replies, scores, test_record) -> dict:
    scores_array, scores_type = _as_array(scores)
    return {
        "batches": replies,
        "test": {"scores": scores_array, "scores_type": scores_type,
                 "affine": test_record["affine"], "dropout": test_record["dropout"]},
    }


def op_fc_run(hidden_dims, num_classes, keep_ratio, net_seed, reg, params, batches, directions, step, test_X):
    """The student's FullyConnectedNet on the parent's weights. For each batch in turn: a train-mode
    loss call (loss, gradients, what the trace saw), a second call with the same weights (do the
    masks repeat?), and the loss with the weights moved by +/- step along each of the parent's
    ``directions`` (the parent takes the differences). Then test-mode
    scores for ``test_X``."""
    from nnlab.classifiers import fc_net

    net = fc_net.FullyConnectedNet(
        list(hidden_dims), input_dim=test_X.shape[1], num_classes=num_classes,
        dropout_keep_ratio=keep_ratio, reg=reg, dtype=np.float64, seed=net_seed,
    )
    net.params = {name: value.copy() for name, value in params.items()}

    perturbed = _moved_weights(params, directions, step)
    trace = NetworkTrace()
    replies = []
    with trace.installed():
        for batch in batches:
            _set_weights(net.params, params)
            if batch.get("seed") is not None and isinstance(net.dropout_param, dict) and "seed" in net.dropout_param:
                net.dropout_param["seed"] = batch["seed"]  # a new seed for each batch, as if a new network
            trace.start_loss_call()
            loss, grads = net.loss(batch["X"].copy(), batch["y"].copy())
            record = trace.current
            trace.start_loss_call()
            net.loss(batch["X"].copy(), batch["y"].copy())
            repeat = trace.current
            losses = []
            for values in perturbed:
                _set_weights(net.params, values)
                trace.start_loss_call(record=False)
                losses.append(_plain(net.loss(batch["X"].copy(), batch["y"].copy())[0]))
            _set_weights(net.params, params)
            replies.append(_batch_reply(loss, grads, record, repeat, losses))
        trace.start_loss_call()
        scores = net.loss(test_X.copy())
    return _network_reply(replies, scores, trace.current)


class LayerNetworkTrace:
    """What the scratch flavour's MultiLayerNet does, seen at the boundaries of the given code, as
    NetworkTrace sees FullyConnectedNet: every Affine layer's input is recorded, and the Dropout
    class, under any name the student's modules bind it to, is replaced by a traced subclass of
    NETWORK_DROPOUT_LAYER (in the grader a correct layer, so that a bug of the student's own layer
    never costs network points) that records its calls and which forward pass each backward call's
    mask came from."""

    def __init__(self):
        self.loss_call = -1
        self.current = None

    def start_loss_call(self, record=True):
        self.loss_call += 1
        self.current = {"affine": [], "dropout": [], "backward": []} if record else None

    def traced_class(self, base):
        trace = self

        class TracedDropout(base):
            def forward(self, x, train_flg=True):
                out = super().forward(x, train_flg)
                self.traced_call, self.traced_shape = trace.loss_call, tuple(np.shape(x))
                if trace.current is not None:
                    ratio = getattr(self, "dropout_ratio", None)
                    trace.current["dropout"].append({
                        "mode": "train" if train_flg else "test",
                        "p": _plain(1.0 - ratio) if isinstance(ratio, (int, float)) else _plain(ratio),
                        "has_seed": False, "seed": None, "shape": [int(size) for size in np.shape(x)],
                    })
                return out

            def backward(self, dout):
                if trace.current is not None:
                    trace.current["backward"].append({
                        "ours": True, "same_call": getattr(self, "traced_call", None) == trace.loss_call,
                        "same_shape": getattr(self, "traced_shape", None) == tuple(np.shape(dout)),
                    })
                return super().backward(dout)

        return TracedDropout

    @contextlib.contextmanager
    def installed(self):
        from nnlab import layers, multi_layer_net

        saved = []
        traced = self.traced_class(NETWORK_DROPOUT_LAYER or layers.Dropout)
        _replace_everywhere((multi_layer_net, layers), layers.Dropout, traced, saved)
        original_forward = layers.Affine.forward
        trace = self

        def affine_forward(layer, x):
            out = original_forward(layer, x)
            if trace.current is not None:
                trace.current["affine"].append({
                    "w_shape": list(np.shape(layer.params[layer.weight_name])),
                    "input": np.array(x, dtype=np.float64).reshape(np.shape(x)[0], -1),
                })
            return out

        layers.Affine.forward = affine_forward
        try:
            yield self
        finally:
            layers.Affine.forward = original_forward
            for module, name, original in reversed(saved):
                setattr(module, name, original)


def op_layer_net_run(hidden_dims, num_classes, dropout_ratio, reg, params, batches, directions, step, test_X):
    """The scratch flavour's MultiLayerNet on the parent's weights, as op_fc_run runs
    FullyConnectedNet. For each batch: np.random.seed(seed) and gradient() (what the trace saw),
    the same seed and loss(train_flg=True) (the loss of the same masks, and do they repeat?), and
    that loss with the weights moved by +/- step along each direction. Then predict() for
    ``test_X`` with its default train_flg (as accuracy() calls it)."""
    from nnlab import multi_layer_net

    trace = LayerNetworkTrace()
    replies = []
    with trace.installed():
        net = multi_layer_net.MultiLayerNet(
            test_X.shape[1], list(hidden_dims), num_classes, weight_init_std=0.01,
            weight_decay_lambda=reg, use_dropout=True, dropout_ratio=dropout_ratio,
        )

        perturbed = _moved_weights(params, directions, step)
        for batch in batches:
            _set_weights(net.params, params)
            np.random.seed(batch["seed"])
            trace.start_loss_call()
            grads = net.gradient(batch["X"].copy(), batch["y"].copy())
            record = trace.current
            np.random.seed(batch["seed"])
            trace.start_loss_call()
            loss = net.loss(batch["X"].copy(), batch["y"].copy(), train_flg=True)
            repeat = trace.current
            losses = []
            for values in perturbed:
                _set_weights(net.params, values)
                np.random.seed(batch["seed"])
                trace.start_loss_call(record=False)
                losses.append(_plain(net.loss(batch["X"].copy(), batch["y"].copy(), train_flg=True)))
            replies.append(_batch_reply(loss, grads, record, repeat, losses))
        _set_weights(net.params, params)
        trace.start_loss_call()
        scores = net.predict(test_X.copy())
    return _network_reply(replies, scores, trace.current)


def import_student_library() -> None:
    """Import the student's graded modules before any call, so that an import error is reported
    once, as such: the layers, and the flavour's network module (the grader built the tree, so
    which one is there is its choice, not the student's)."""
    import nnlab.layers  # noqa: F401

    if os.path.exists(os.path.join(TREE, "nnlab", "multi_layer_net.py")):
        import nnlab.multi_layer_net  # noqa: F401
    else:
        import nnlab.classifiers.fc_net  # noqa: F401


OPERATIONS = {
    "forward": op_forward, "forward_sequence": op_forward_sequence, "forward_backward": op_forward_backward,
    "backward_test_mode": op_backward_test_mode, "fc_run": op_fc_run, "layer_net_run": op_layer_net_run,
}


class Channel:
    """The protocol's two pipes, moved to fresh close-on-exec descriptors before student code runs."""

    def __init__(self, request_fd: int, reply_fd: int):
        import fcntl

        self.requests = fcntl.fcntl(request_fd, fcntl.F_DUPFD_CLOEXEC, 40)
        self.replies = fcntl.fcntl(reply_fd, fcntl.F_DUPFD_CLOEXEC, 40)
        os.close(request_fd)  # the numbers on the command line now lead nowhere
        os.close(reply_fd)
        self._write = os.write  # bound now, so a student who patches os.write does not reach us

    def send(self, message) -> None:
        view = memoryview(wire.encode(message))
        while view:
            view = view[self._write(self.replies, view):]


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = os.read(fd, missing)
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def receive(channel: Channel):
    header = _read_exact(channel.requests, wire.LENGTH.size)
    if header is None:
        return None
    body = _read_exact(channel.requests, wire.LENGTH.unpack(header)[0])
    return None if body is None else wire.decode_body(body)


def drop_privileges(uid: int) -> None:
    """Become ``uid`` (root in bwrap only), holding no capability in any set: RLIMIT_NPROC never
    applies to uid 0, and the zygote's capabilities must not reach student code. Fails loudly."""
    import ctypes

    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # empties the permitted and effective sets
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    empty = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable; capabilities 0-31, 32-63
    if ctypes.CDLL(None, use_errno=True).capset(header, empty) != 0:  # the inheritable set too
        raise OSError(ctypes.get_errno(), "could not clear the capability sets")


def serve(channel: Channel) -> None:
    try:
        import_student_library()
    except BaseException as error:  # anything the student's module does on import
        channel.send({"error": describe_error(error, importing=True)})
        return
    channel.send({"ready": True})
    while True:
        request = receive(channel)
        if request is None:
            return
        try:
            reply = {"id": request["id"], "value": OPERATIONS[request["op"]](**request["args"])}
        except BaseException as error:  # student code may raise anything, SystemExit included
            reply = {"id": request.get("id"), "error": describe_error(error)}
        channel.send(reply)


def run(tree: str, request_fd: int, reply_fd: int, uid: int | None) -> None:
    """Serve one submission: from main() in a fresh interpreter, or in a process forked by the
    zygote (autograder/zygote_driver.py), which has already dropped to ``uid`` itself."""
    global TREE
    TREE = os.path.realpath(tree)
    channel = Channel(request_fd, reply_fd)
    if uid is not None:
        drop_privileges(uid)
    channel.send({"sandboxed": True})  # before any student code: the parent knows we got here
    sys.path.insert(1, TREE)  # after this file's directory, so the submission cannot shadow wire
    serve(channel)


def main() -> None:
    run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)


if __name__ == "__main__":
    main()
