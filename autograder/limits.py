"""Every limit and default of the grader, in one place.

The sandbox, the checks and the commands read their numbers from here, so that an instructor who
wants a longer deadline or a stricter false-failure rate changes one line.
"""

from __future__ import annotations

from dataclasses import dataclass

# Largest probability that a stochastic check fails a correct implementation. Each check splits
# this budget over the statistical tests it makes (a union bound), and sizes its tolerances from it.
FALSE_FAILURE_PROBABILITY = 1e-9

# The base seed of a grade when --seed is not given; a grade is reproducible from its base seed.
DEFAULT_BASE_SEED = 231

# Largest message the parent accepts from the child, so a hostile child cannot exhaust its memory.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# How much of the child's own stdout/stderr a result keeps.
MAX_CHILD_OUTPUT_BYTES = 8 * 1024


@dataclass(frozen=True)
class ChildLimits:
    """Resource limits of the child process that runs student code."""

    call_seconds: float = 2.0  # wall clock for one call into student code
    startup_seconds: float = 20.0  # wall clock for starting Python and importing the submission
    cpu_seconds: int = 120  # RLIMIT_CPU over the child's whole life
    memory_bytes: int = 1536 * 1024 * 1024  # RLIMIT_AS
    file_bytes: int = 16 * 1024 * 1024  # RLIMIT_FSIZE
    open_files: int = 64  # RLIMIT_NOFILE
    processes: int = 512  # RLIMIT_NPROC (per user, so generous; threads count too)


DEFAULT_LIMITS = ChildLimits()
