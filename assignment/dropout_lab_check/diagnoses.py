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
    "fc_backward_skips_dropout": (
        "FullyConnectedNet's backward pass does not go through dropout: set drelu_out = "
        "dropout_backward(dhidden, dropout_cache), so that dropped units get no gradient."
    ),
}

DIAGNOSIS_IDS = frozenset(SENTENCES)


def sentence(diagnosis_id: str) -> str:
    return SENTENCES[diagnosis_id]


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
