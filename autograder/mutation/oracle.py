"""The mutation analysis's oracle: ``python -m autograder.mutation.oracle SUBMISSION [--seed N]``.

Cosmic Ray runs this as its test command after each mutation. It grades SUBMISSION exactly as an
instructor would, with the command line's ``grade SUBMISSION --format json`` (run in this process,
the submission in the grader's sandboxed child), and exits 0 only when the grade is full marks, so
that Cosmic Ray counts the mutant as surviving. It exits 1 (the mutant is killed) when the score is
below the maximum, and also when the grader produced no result (it stopped with an error, or its
output is not a result); Cosmic Ray also counts a grade that outlasts its timeout as killed. It
prints one line saying which, with the checks that lost points and their diagnosis ids; Cosmic Ray
keeps that line in its session.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys

FULL_MARKS, KILLED = 0, 1


def verdict(returncode: int, stdout: str) -> tuple[int, str]:
    """(exit status, one-line summary) for one run of ``grade --format json``."""
    if returncode != 0:
        return KILLED, f"killed: the grader produced no result (exit status {returncode})"
    try:
        result = json.loads(stdout)
        score, max_score = float(result["score"]), float(result["max_score"])
    except (ValueError, KeyError, TypeError):
        return KILLED, "killed: the grader's output is not a result"
    if score >= max_score:
        return FULL_MARKS, f"full marks: {score:g} / {max_score:g}"
    lost = [
        f"{test.get('name')} ({(test.get('extra_data') or {}).get('diagnosis', '?')})"
        for test in result.get("tests", [])
        if float(test.get("score", 0)) < float(test.get("max_score", 0))
    ]
    return KILLED, f"killed: {score:g} / {max_score:g}; lost points: {', '.join(lost) or '?'}"


def grade(submission: str, seed: int | None, flavour: str = "cs231n") -> tuple[int, str]:
    """Grade ``submission`` with the command line's own ``grade`` (in this process) and return its verdict.

    The grade runs the submission in the grader's sandboxed child, as ``python -m autograder grade``
    does; only the grader's own code runs here. The scratch flavour's reference serves both dropout
    styles, so a mutant of it is graded in each, and is killed when either grade loses points: code
    that only the inverted style runs can only be caught there.
    """
    if flavour == "cs231n":
        return _grade_once(submission, seed, [])
    from autograder.conventions import STYLES

    summaries = []
    for style in STYLES:
        status, summary = _grade_once(submission, seed, ["--flavour", flavour, "--style", style])
        if status == KILLED:
            return KILLED, f"{summary} ({style})"
        summaries.append(f"{summary} ({style})")
    return FULL_MARKS, "; ".join(summaries)


def _grade_once(submission: str, seed: int | None, options: list[str]) -> tuple[int, str]:
    from autograder.cli import main as autograder_main

    argv = ["grade", submission, "--format", "json", *options] + ([] if seed is None else ["--seed", str(seed)])
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            returncode = autograder_main(argv)
    except SystemExit as stop:  # argparse's way out
        returncode = stop.code if isinstance(stop.code, int) else 2
    except Exception as error:  # noqa: BLE001 - any fault of the grader is a grade that was not produced
        return KILLED, f"killed: the grader failed ({type(error).__name__}: {error})"
    return verdict(returncode, captured.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.mutation.oracle", description=__doc__.splitlines()[0])
    parser.add_argument("submission", help="a folder holding the flavour's graded files under nnlab/")
    parser.add_argument("--seed", type=int, default=None, help="the grader's base seed (default: the grader's)")
    parser.add_argument("--flavour", default="cs231n", help="the assignment's flavour (default: %(default)s)")
    args = parser.parse_args(argv)
    status, summary = grade(args.submission, args.seed, args.flavour)
    print(summary, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
