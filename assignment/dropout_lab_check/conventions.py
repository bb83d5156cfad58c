"""The conventions of the assignment's flavours, as the grader needs them.

Every check is written once, in terms of q, the probability of KEEPING a unit, and of the two
factors a kept unit is multiplied by: ``train_scale(q)`` in training and ``test_scale(q)`` at test
time. A flavour's convention says how q reaches the student's code and what the factors are:

==============================  ==================  ===================  =================
flavour                         the student's knob   kept unit, training  test mode
==============================  ==================  ===================  =================
cs231n (functions)              p = q                x / q                x
scratch, DROPOUT_STYLE vanilla  dropout_ratio = 1-q  x                    x * q
scratch, DROPOUT_STYLE inverted dropout_ratio = 1-q  x / q                x
==============================  ==================  ===================  =================

The scratch flavour's style is the instructor's one setting, DROPOUT_STYLE in the flavour's
``nnlab/settings.py`` under solution/; the grader reads it from the tree that release writes, which
is also the tree every submission is graded in (only the graded files come from the student): see
autograder.submission.release_convention. This module itself reads no file, so that the student
checker can ship it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from dropout_lab_check.paths import GRADED_FILES
from dropout_lab_check.regions import REGION_NAMES

SETTINGS_FILE = "nnlab/settings.py"
STYLES = ("inverted", "vanilla")


class ConventionError(ValueError):
    """A flavour that cannot be graded as configured (an unknown flavour or style)."""


@dataclass(frozen=True)
class Convention:
    flavour: str  # "cs231n" or a name of autograder.flavours.FLAVOURS
    style: str  # "inverted" or "vanilla"
    graded_files: tuple[str, ...]
    region_names: dict  # graded file -> names of its student regions, in order
    knob: str  # what the student's code calls its probability
    # How the student's functions are named in messages: forward, backward, loss, gradients, scores.
    names: dict

    def train_scale(self, q: float) -> float:
        """What a kept unit is multiplied by in training."""
        return 1.0 / q if self.style == "inverted" else 1.0

    def test_scale(self, q: float) -> float:
        """What every unit is multiplied by at test time."""
        return 1.0 if self.style == "inverted" else q

    def knob_value(self, q: float) -> float:
        """The value of the student's knob that means keep probability q (the drop ratio rounded to
        12 places, so that 1 - 0.7 is the 0.3 a person would write)."""
        return q if self.knob == "p" else round(1.0 - q, 12)

    def setting(self, q: float) -> str:
        """Keep probability q as the student's code is given it, for messages: "p = 0.7" or
        "dropout_ratio = 0.3"."""
        return f"{self.knob} = {self.knob_value(q):.6g}"

    def keep_probability(self, q: float) -> float:
        """The keep probability the student's code is actually asked for when the checks mean q."""
        return q if self.knob == "p" else 1.0 - self.knob_value(q)


CS231N = Convention(
    flavour="cs231n", style="inverted", graded_files=GRADED_FILES, region_names=REGION_NAMES,
    knob="p", names={"forward": "dropout_forward", "backward": "dropout_backward",
                     "loss": "FullyConnectedNet.loss (the loss)", "gradients": "FullyConnectedNet.loss",
                     "scores": "FullyConnectedNet.loss (the scores)"},
)
# The scratch flavour's graded files and their student regions, in order (autograder.flavours
# releases them; the bank fills them by these names).
SCRATCH_REGION_NAMES = {
    "nnlab/layers.py": ("Dropout.forward.train", "Dropout.forward.test", "Dropout.backward"),
    "nnlab/multi_layer_net.py": (
        "multi_layer_net.init.dropout",
        "multi_layer_net.predict.dropout",
        "multi_layer_net.gradient.dropout",
    ),
}
SCRATCH_NAMES = {"forward": "Dropout.forward", "backward": "Dropout.backward",
                 "loss": "MultiLayerNet.loss", "gradients": "MultiLayerNet.gradient", "scores": "MultiLayerNet.predict"}


def style_of(settings_source: str, where: str) -> str:
    """DROPOUT_STYLE as assigned in a settings file, read without running it."""
    for node in ast.parse(settings_source, where).body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "DROPOUT_STYLE" for t in node.targets)
                and isinstance(node.value, ast.Constant)):
            if node.value.value not in STYLES:
                raise ConventionError(f"{where}: DROPOUT_STYLE must be one of {', '.join(STYLES)}; got {node.value.value!r}")
            return node.value.value
    raise ConventionError(f"{where}: no DROPOUT_STYLE = \"vanilla\" or \"inverted\" line")


def convention(flavour: str = "cs231n", style: str = "inverted") -> Convention:
    """The convention of a flavour in a style (the CS231n flavour is inverted dropout only)."""
    if style not in STYLES:
        raise ConventionError(f"style must be one of {', '.join(STYLES)}; got {style!r}")
    if flavour == "cs231n":
        if style != "inverted":
            raise ConventionError("the cs231n flavour is inverted dropout; it has no other style")
        return CS231N
    if flavour != "scratch":
        raise ConventionError(f"unknown flavour {flavour!r} (known: cs231n, scratch)")
    return Convention(flavour="scratch", style=style, graded_files=tuple(SCRATCH_REGION_NAMES),
                      region_names=SCRATCH_REGION_NAMES, knob="dropout_ratio", names=SCRATCH_NAMES)


def settings_with_style(source: str, style: str) -> str:
    """A settings file's text with DROPOUT_STYLE set to ``style`` (for grading both styles' banks)."""
    lines = source.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("DROPOUT_STYLE ="):
            lines[index] = f'DROPOUT_STYLE = "{style}"\n'
            return "".join(lines)
    raise ConventionError("the settings file has no DROPOUT_STYLE line")
