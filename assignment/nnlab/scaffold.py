"""Guards that turn an unfinished TODO block into a message that says which block to fill.

Without them, an empty TODO block leaves a variable at None and the first sign of trouble is an
AttributeError somewhere else (``'NoneType' object has no attribute 'astype'``), which tells a
student nothing about what to do.
"""

from __future__ import annotations


class TodoNotFilledError(NotImplementedError):
    """Raised when code runs through a TODO block that is still empty."""


def require_filled(value, where, block):
    """Raise TodoNotFilledError if ``value`` is None, naming the place and the TODO block to fill.

    Inputs:
    - value: the variable the TODO block is meant to set.
    - where: what was running, e.g. "dropout_forward, train mode".
    - block: which TODO block sets the variable, e.g. "the first TODO block of dropout_forward".
    """
    if value is None:
        raise TodoNotFilledError(
            f"{where} is not implemented yet: fill in {block} (between the START OF YOUR CODE "
            f"and END OF YOUR CODE lines)."
        )
    return value
