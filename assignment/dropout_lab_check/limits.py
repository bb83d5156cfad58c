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

# Setting this environment variable to 0 makes the grader run without bubblewrap even where it
# works (to measure its cost, or to exercise the fallback); results then list what was missing.
BWRAP_ENVIRONMENT_VARIABLE = "DROPOUT_LAB_BWRAP"

# When the grader runs as root inside bubblewrap, each child drops to a uid of its own taken from
# this range, so that RLIMIT_NPROC (which the kernel never applies to uid 0) holds.
CHILD_UID_BASE = 200_000
CHILD_UID_SPAN = 100_000


@dataclass(frozen=True)
class ChildLimits:
    """Resource limits of the child process that runs student code."""

    call_seconds: float = 5.0  # wall clock for one call into student code (a correct call takes < 30 ms)
    startup_seconds: float = 20.0  # wall clock for starting Python and importing the submission
    submission_seconds: float = 180.0  # wall clock for all the calls of one submission together
    cpu_seconds: int = 120  # RLIMIT_CPU over the child's whole life
    memory_bytes: int = 1024 * 1024 * 1024  # RLIMIT_AS: 1 GiB, so a few GB can never be taken
    file_bytes: int = 16 * 1024 * 1024  # RLIMIT_FSIZE (the captured output file counts too)
    open_files: int = 64  # RLIMIT_NOFILE
    processes: int = 64  # RLIMIT_NPROC for a child with a uid of its own (threads count too)
    shared_uid_processes: int = 512  # RLIMIT_NPROC when the child shares the grader's uid
    scratch_bytes: int = 64 * 1024 * 1024  # size of the tmpfs holding the child's private copy (bwrap)
    use_bubblewrap: bool = True  # run the child inside bwrap where it works


DEFAULT_LIMITS = ChildLimits()
