"""The diagnosis catalogue: for every known way to lose points, one plain sentence that says what
the student most likely did and what to do instead.

Ids are stable: results, the rubric, the bank (autograder/bank/) and instructors' scripts refer to
them. A new id comes with a bank entry that earns it (tests/test_bank.py checks that every id has
one). A check names a diagnosis by raising ``Misconception(id)``, or by its
``@pytest.mark.diagnosis(id)`` marker for a plain ``assert``; failures of the student's code
(not implemented, crash, timeout, memory, does not import) are diagnosed by the grading plugin.
"""

from __future__ import annotations

SENTENCES = {
    # dropout_forward
    "p_as_drop_probability": (
        "About 1 - p of the units were kept: you most likely treated p as the probability of dropping "
        "a unit, but here p is the probability of KEEPING one, so keep a unit when its random number is below p."
    ),
    "missing_inverse_scaling": (
        "Kept units came out unscaled: this is vanilla dropout; inverted dropout divides the kept units "
        "by p during training, so that the expected output equals the input."
    ),
    "scaled_at_test_time": (
        "The test-mode output was scaled: with inverted dropout the 1/p scaling already happens in "
        "training, so test mode must return x unchanged."
    ),
    "dropped_at_test_time": (
        "Units were dropped in test mode: dropout acts only during training, so test mode must return x unchanged."
    ),
    "mask_shared_across_batch": (
        "Every example in the batch got the same dropout pattern: draw one random number per element "
        "of x, e.g. np.random.rand(*x.shape), not one per feature."
    ),
    "mask_shared_across_features": (
        "All the features of an example were kept or dropped together: draw one random number per "
        "element of x, e.g. np.random.rand(*x.shape), not one per example."
    ),
    "only_2d_inputs": (
        "dropout_forward works on 2-D inputs only: build the mask from x.shape (np.random.rand(*x.shape)) "
        "so that inputs of any shape work."
    ),
    "dtype_changed": (
        "The output's dtype differs from the input's: a float64 mask turns float32 activations into "
        "float64; keep the given `out.astype(x.dtype, copy=False)` line or build the mask in x's dtype."
    ),
    "input_mutated": (
        "dropout_forward changed its input array in place (for instance with x *= mask): compute a new "
        "array, out = x * mask, so that the caller's x stays as it was."
    ),
    "drops_everything": (
        "In train mode dropout_forward dropped every unit (the output was all zeros where x was not): "
        "keep each unit with probability p, for instance where np.random.rand(*x.shape) < p."
    ),
    "keeps_everything": (
        "In train mode with p < 1 dropout_forward dropped no unit at all: each unit must be zeroed with "
        "probability 1 - p, for instance where np.random.rand(*x.shape) >= p."
    ),
    "imprecise_scaling": (
        "Kept units were scaled by a factor close to, but not exactly, 1/p: the mask or the division "
        "was most likely done in low precision (float16, or a rounded 1/p); divide by p itself in "
        "float32 or float64."
    ),
    "scaled_by_realized_fraction": (
        "Kept units were divided by the fraction of units this call happened to keep instead of by p: "
        "inverted dropout divides by p itself, so that every unit's expected output equals its input."
    ),
    "mask_shared_along_axis": (
        "For an input with more than two dimensions, the keep pattern was the same all along one axis "
        "(one draw per channel or per example, for instance): draw one random number per element, "
        "np.random.rand(*x.shape)."
    ),
    "fixed_count_per_row": (
        "Every row kept (almost) exactly the same number of units: that is not dropout, where each "
        "unit is kept or dropped by its own independent draw; compare one random number per element with p."
    ),
    "dropout_param_changed": (
        "dropout_forward changed the dropout_param dict it was given (added, removed or changed an "
        "entry, such as the seed or a stored mask): FullyConnectedNet passes one dict to every layer on "
        "every call, so read it but never write to it; keep what backward needs in the cache."
    ),
    "test_mode_cache_not_none": (
        "In test mode dropout_forward cached a mask: there is no mask in test mode, so the cache must "
        "be (dropout_param, None)."
    ),
    "mask_from_output": (
        "The mask was worked out from the output (out / x or out != 0), which is wrong wherever x is 0, "
        "as it often is after a ReLU: keep the random mask you drew (zeros and 1/p) and use it in backward."
    ),
    "seed_ignored": (
        "Two calls with the same seed gave different outputs: when dropout_param has a seed, call "
        "np.random.seed with it before drawing the mask, and draw the mask from np.random."
    ),
    "same_mask_every_call": (
        "Different calls drew the same mask: you most likely seed the generator with a fixed number or "
        "reuse a stored mask; seed only from dropout_param['seed'] and draw a fresh mask on every call."
    ),
    # dropout_backward
    "backward_mask_misused": (
        "dropout_backward does not scale the gradient exactly as the forward pass scaled each unit: "
        "multiply dout by the very mask (zeros and 1/p) the forward pass used, with no extra factor."
    ),
    "backward_new_mask": (
        "dropout_backward zeroes other units than the forward pass dropped: you most likely drew a new "
        "random mask; use the mask saved in the cache instead."
    ),
    # the student's code returned something of the wrong form
    "wrong_return_type": (
        "Your function returned something of the wrong type (see below): return numpy arrays, and "
        "from FullyConnectedNet.loss a number and a dict of gradients."
    ),
    "wrong_return_shape": (
        "Your function returned an array of the wrong shape (see below): dropout's output and dx have "
        "x's shape, and each gradient has its parameter's shape."
    ),
    "not_finite": (
        "Your code produced NaN or infinite values: look for a division by x, by the output or by a "
        "mask, which fails where they are 0."
    ),
    # the student's code did not answer
    "not_implemented": "This part is not implemented yet: fill in the TODO block named below.",
    "crash": "Your code raised an error; the lines below, from your own files, show where.",
    "timeout": (
        "Your code did not finish in time: look for an endless loop, or for a Python loop over elements "
        "that one numpy operation could do."
    ),
    "memory": (
        "Your code ran out of memory: look for an array far larger than x, for instance one built with "
        "x.size along every dimension."
    ),
    "does_not_import": (
        "Your files could not be imported, so nothing could be graded: fix the error below (running the "
        "notebook's first cells shows it too)."
    ),
    # FullyConnectedNet
    "fc_dropout_missing": (
        "Some hidden layer of FullyConnectedNet does not apply dropout, or throws its result away: in "
        "every hidden layer, apply dropout to the output of the ReLU and pass what dropout returns on "
        "to the next layer."
    ),
    "fc_dropout_on_input": (
        "FullyConnectedNet applies dropout to the input data: apply it only to the output of each "
        "hidden layer's ReLU."
    ),
    "fc_dropout_on_scores": (
        "FullyConnectedNet applies dropout to the class scores: the output of the last affine layer "
        "must never be dropped."
    ),
    "fc_dropout_at_test_time": (
        "FullyConnectedNet drops units when it is called without labels (test mode): pass the network's "
        "shared self.dropout_param, whose mode loss() sets, instead of forcing train mode."
    ),
    "fc_dropout_never_active": (
        "FullyConnectedNet never drops a unit during training: pass self.dropout_param (mode 'train', "
        "p = the keep ratio) to dropout_forward instead of a test-mode or p = 1 setting."
    ),
    "fc_seed_lost": (
        "FullyConnectedNet did not pass its seed on to dropout: pass self.dropout_param itself, which "
        "holds the seed, instead of building a new dict."
    ),
    "fc_dropout_applied_twice": (
        "FullyConnectedNet applies dropout twice to a hidden layer (some units came out scaled by 1/p "
        "squared): apply it once per hidden layer, to the ReLU's output."
    ),
    "fc_dropout_at_keep_ratio_one": (
        "FullyConnectedNet calls dropout although dropout_keep_ratio is 1, which means no dropout: "
        "leave dropout out entirely when self.use_dropout is False."
    ),
    "fc_wrong_keep_probability": (
        "FullyConnectedNet drops units with another keep probability than dropout_keep_ratio (for "
        "instance 1 - ratio): pass self.dropout_param, whose p is the keep ratio, unchanged."
    ),
    "fc_stale_caches": (
        "FullyConnectedNet's backward pass used dropout caches from an earlier call of loss(): each "
        "call must backpropagate through the masks of its own forward pass."
    ),
    "fc_layers_not_observed": (
        "The grader could not follow your network's layers, so its dropout could not be checked: keep "
        "the given affine_relu_forward and affine_forward calls (one per layer, in order) around your code."
    ),
    "fc_backward_skips_dropout": (
        "FullyConnectedNet's backward pass does not go through dropout: set drelu_out = "
        "dropout_backward(dhidden, dropout_cache), so that dropped units get no gradient."
    ),
    "fc_dropout_layer_shared": (
        "A hidden layer's backward pass used the dropout cache of another layer's forward pass: keep "
        "one cache per hidden layer and pass each layer its own."
    ),
    # ids of the scratch flavour's vanilla style (its wording below); kept here so that ids are one set
    "scaled_in_training": (
        "Kept units were divided by the keep probability in training: that is inverted dropout, but "
        "this assignment asks for vanilla dropout, which passes kept units unchanged."
    ),
    "missing_test_scaling": (
        "Test mode returned x unchanged: with vanilla dropout every unit is multiplied at test time "
        "by the probability of keeping it."
    ),
}

# The same misconceptions in the words of another flavour (autograder.conventions), by flavour;
# an id a flavour does not reword keeps its sentence in SENTENCES.
FLAVOUR_SENTENCES = {
    "scratch": {
        "p_as_drop_probability": (
            "About dropout_ratio of the units were kept: you most likely treated dropout_ratio as the "
            "probability of keeping a unit, but it is the probability of DROPPING one (as in PyTorch "
            "and Keras; CS231n counts the other way round), so keep a unit when its random number is "
            "at least dropout_ratio."
        ),
        "missing_inverse_scaling": (
            "Kept units came out unscaled: this course's nnlab/settings.py asks for inverted dropout, "
            "which divides kept units by 1 - dropout_ratio in training."
        ),
        "scaled_in_training": (
            "Kept units were divided by 1 - dropout_ratio in training: that is inverted dropout, but "
            "this course's nnlab/settings.py asks for vanilla dropout (the book's), which passes kept "
            "units unchanged and multiplies by 1 - dropout_ratio at test time instead."
        ),
        "missing_test_scaling": (
            "Test mode (train_flg=False) returned x unchanged: with vanilla dropout every unit is on at "
            "test time and must be multiplied by 1 - dropout_ratio, what it gave on average in training."
        ),
        "scaled_at_test_time": (
            "The test-mode output was scaled: with inverted dropout the scaling already happens in "
            "training, so Dropout.forward(x, train_flg=False) must return x unchanged."
        ),
        "dropped_at_test_time": (
            "Units were dropped in test mode (train_flg=False): every unit is on at test time, only "
            "scaled as the course's dropout style says."
        ),
        "mask_shared_across_batch": (
            "Every example in the batch got the same dropout pattern: draw one random number per element "
            "of x, np.random.rand(*x.shape), not one per feature."
        ),
        "only_2d_inputs": (
            "Dropout.forward works on 2-D inputs only: build the mask from x.shape "
            "(np.random.rand(*x.shape)) so that inputs of any shape work."
        ),
        "input_mutated": (
            "Dropout.forward changed its input array in place (for instance with x *= self.mask): compute "
            "a new array, out = x * self.mask, so that the caller's x stays as it was."
        ),
        "drops_everything": (
            "In training Dropout.forward dropped every unit (the output was all zeros where x was not): "
            "keep each unit with probability 1 - dropout_ratio, where np.random.rand(*x.shape) >= dropout_ratio."
        ),
        "keeps_everything": (
            "In training with dropout_ratio > 0 Dropout.forward dropped no unit at all: each unit must be "
            "zeroed with probability dropout_ratio."
        ),
        "imprecise_scaling": (
            "Kept units were scaled by a factor close to, but not exactly, 1 / (1 - dropout_ratio): the "
            "mask or the division was most likely done in low precision; divide in float32 or float64."
        ),
        "scaled_by_realized_fraction": (
            "Kept units were divided by the fraction of units this call happened to keep: inverted "
            "dropout divides by 1 - dropout_ratio itself."
        ),
        "test_mode_cache_not_none": (
            "In test mode Dropout.forward left a mask in self.mask: there is no mask at test time, and "
            "self.mask must stay None."
        ),
        "mask_from_output": (
            "The mask was worked out from the output (out != 0), which is wrong wherever x is 0, as it "
            "often is after a ReLU: keep the random mask you drew in self.mask and use it in backward."
        ),
        "seed_ignored": (
            "Two forward passes after the same np.random.seed(...) call gave different outputs: draw the "
            "mask from numpy's global generator (np.random.rand), so that seeding it makes a run repeatable."
        ),
        "same_mask_every_call": (
            "Different forward passes drew the same mask: you most likely seed the generator with a fixed "
            "number or reuse a stored mask; draw a fresh mask with np.random.rand on every call."
        ),
        "backward_mask_misused": (
            "Dropout.backward does not scale the gradient exactly as the forward pass scaled each unit: "
            "multiply dout by self.mask, and by the same factor the forward pass used, if any."
        ),
        "backward_new_mask": (
            "Dropout.backward zeroes other units than the forward pass dropped: you most likely drew a "
            "new random mask; use self.mask from the last forward pass instead."
        ),
        "wrong_return_type": (
            "Your code returned something of the wrong type (see below): Dropout.forward and backward "
            "return numpy arrays, and MultiLayerNet.gradient a dict of gradients."
        ),
        "wrong_return_shape": (
            "Your code returned an array of the wrong shape (see below): Dropout's output and dx have "
            "x's shape, and each gradient has its parameter's shape."
        ),
        "fc_dropout_missing": (
            "Some hidden layer of MultiLayerNet does not apply dropout, or throws its result away: in "
            "predict, pass every hidden layer's ReLU output through its Dropout layer and keep what it returns."
        ),
        "fc_dropout_on_input": (
            "MultiLayerNet applies dropout to the input data: apply it only to the output of each hidden "
            "layer's ReLU."
        ),
        "fc_dropout_on_scores": (
            "MultiLayerNet applies dropout to the class scores: the output of the last Affine layer must "
            "never be dropped."
        ),
        "fc_dropout_at_test_time": (
            "MultiLayerNet drops units in test mode: pass train_flg on to every Dropout layer "
            "(self.dropout_layers[i].forward(x, train_flg)) instead of leaving it at its default True."
        ),
        "fc_dropout_never_active": (
            "MultiLayerNet never drops a unit during training: pass train_flg on to the Dropout layers, "
            "which gradient() runs with train_flg=True."
        ),
        "fc_seed_lost": (
            "Two passes of MultiLayerNet after the same np.random.seed(...) call dropped different units: "
            "draw masks only inside the Dropout layers, from numpy's global generator."
        ),
        "fc_dropout_applied_twice": (
            "MultiLayerNet applies dropout twice to a hidden layer: pass each hidden layer's ReLU output "
            "through its Dropout layer once."
        ),
        "fc_dropout_at_keep_ratio_one": (
            "MultiLayerNet dropped units although its dropout_ratio is 0, which means no unit is dropped."
        ),
        "fc_wrong_keep_probability": (
            "MultiLayerNet's Dropout layers drop units with another ratio than the network's "
            "dropout_ratio (for instance Dropout()'s default, or 1 - ratio): make each one with "
            "Dropout(self.dropout_ratio)."
        ),
        "fc_stale_caches": (
            "MultiLayerNet's backward pass used Dropout layers other than those of its last forward pass: "
            "backpropagate through self.dropout_layers[i], the layer that hidden layer i's forward used."
        ),
        "fc_layers_not_observed": (
            "The grader could not follow your network's layers, so its dropout could not be checked: keep "
            "the given Affine layers (one call per layer, in order) around your code."
        ),
        "fc_backward_skips_dropout": (
            "MultiLayerNet's backward pass does not go through dropout: set ddropout = "
            "self.dropout_layers[i].backward(dout), so that dropped units get no gradient."
        ),
        "fc_dropout_layer_shared": (
            "A hidden layer's backward pass used the mask of another layer's forward pass: make one "
            "Dropout layer per hidden layer (a list comprehension, not [Dropout(...)] * n), and send "
            "hidden layer i's gradient back through self.dropout_layers[i], the layer its forward used."
        ),
    },
}

# A check that can name no misconception states what it measured against what it expected; its
# sentence is that statement (see Measured).
SENTENCES["measured"] = "This check measured something other than what it expected."

DIAGNOSIS_IDS = frozenset(SENTENCES)


def sentence(diagnosis_id: str, flavour: str = "cs231n") -> str:
    """The diagnosis's sentence in the words of ``flavour`` (autograder.conventions)."""
    return FLAVOUR_SENTENCES.get(flavour, {}).get(diagnosis_id) or SENTENCES[diagnosis_id]


class Misconception(AssertionError):
    """Raised by a check: the submission shows the misconception ``diagnosis_id``.

    ``detail`` is an optional short fact for the student (never a hidden input).
    """

    def __init__(self, diagnosis_id: str, detail: str = ""):
        if diagnosis_id not in DIAGNOSIS_IDS:
            raise ValueError(f"unknown diagnosis id {diagnosis_id!r}")
        super().__init__(f"{diagnosis_id}: {detail}" if detail else diagnosis_id)
        self.diagnosis_id = diagnosis_id
        self.detail = detail


class Measured(Misconception):
    """Raised by a check that can name no misconception: ``statement`` says, in plain words and
    without the check's inputs, what was measured against what was expected (hidden checks show it
    too); ``detail`` adds the numbers (public checks only)."""

    def __init__(self, statement: str, detail: str = ""):
        super().__init__("measured", detail)
        self.statement = statement
        self.args = (f"{statement} {detail}".strip(),)
