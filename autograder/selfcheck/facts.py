"""Facts about the grade that the student checker states. In the student's release this module is
written by `release` with fixed values; here, in the kit, they come from the default rubric."""

from __future__ import annotations

from autograder.rubric import load_rubric

_rubric = load_rubric()
_hidden = [entry for entry in _rubric.entries.values() if entry.visibility != "visible"]

HIDDEN_CHECKS = len(_hidden)
HIDDEN_POINTS = sum(entry.points for entry in _hidden)
MAX_SCORE = _rubric.max_score
FLAVOUR = _rubric.flavour
STYLE = "inverted"  # the dropout style of the release's flavour (CS231n's is always inverted)

# The library files students are given, by their SHA-256 (none are compared in the kit).
GIVEN_FILES: dict[str, str] = {}
