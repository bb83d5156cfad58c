"""The placeholder texts that stand where a student has not answered yet.

Release writes ``CODE_STUB`` and ``ANSWER_STUB`` into the student's notebook; nbgrader writes its
own placeholders (``NBGRADER_STUBS``) when it generates an assignment from a notebook with
solution markers. ``collect`` refuses a notebook in which any of them is still the whole answer.
"""

from __future__ import annotations

CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError('Write your answer here, then run this cell again.')"
ANSWER_STUB = "*Write your answer here.*"

# What nbgrader's ClearSolutions puts in a text answer cell and in a code answer cell.
NBGRADER_STUBS = ("YOUR ANSWER HERE", "# YOUR CODE HERE\nraise NotImplementedError()")

ANSWER_STUBS = (ANSWER_STUB, *NBGRADER_STUBS)


def is_unanswered(source: str) -> bool:
    """Whether a markdown answer cell still holds nothing but a placeholder (or nothing at all)."""
    text = source.strip().strip("*_ ").strip()
    return not text or any(text == stub.strip("*_ ").strip() for stub in ANSWER_STUBS)
