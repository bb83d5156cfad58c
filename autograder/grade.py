"""``python -m autograder grade PATH``: grade one submission and print its result.

A grade goes through the stages in order: autograder.submission (private tree) ->
autograder.sandbox (child process) -> autograder.observations (validated replies) ->
autograder/checks (pytest checks, driven by autograder.plugin) -> autograder.verdicts (points and
diagnoses) -> autograder.reports (text or JSON).

Exit status 0 whenever a result was produced, whatever the score; 2 with a message when the grader
itself cannot run (unreadable rubric, no assignment/ tree, a broken check). Grading one folder is
never refused for want of bubblewrap, but the output says which protections were missing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from autograder.cli import UsageError
from autograder.limits import DEFAULT_BASE_SEED, DEFAULT_LIMITS, ChildLimits
from autograder.plugin import GraderError, GradingJob, run_grading
from autograder.reports import as_json, as_text, protection_warning
from autograder.conventions import STYLES, Convention, ConventionError, convention as style_convention
from autograder.rubric import FLAVOUR_RUBRICS, Rubric, RubricError, load_rubric
from autograder.sandbox import bubblewrap_advice
from autograder.submission import SubmissionRefused, prepare, release_convention, submission_name
from autograder.verdicts import GradeResult, refused_result


def grade_submission(path: Path, rubric: Rubric, base_seed: int = DEFAULT_BASE_SEED,
                     limits: ChildLimits = DEFAULT_LIMITS, only_checks: frozenset | None = None,
                     convention: Convention | None = None) -> GradeResult:
    """The result of one submission (folder or .zip). Raises GraderError only for grader faults.

    ``only_checks`` limits the grade to those checks (the student's public ``check`` uses it); the
    result then lists and counts only them. ``convention`` defaults to the rubric's flavour as its
    release sets it (autograder.conventions).
    """
    path = Path(path)
    shown = rubric if only_checks is None else Rubric(
        rubric.path, {name: entry for name, entry in rubric.entries.items() if name in only_checks}, rubric.flavour
    )
    started = time.perf_counter()
    try:
        convention = convention or release_convention(rubric.flavour)
    except ConventionError as error:
        raise GraderError(str(error)) from None
    with tempfile.TemporaryDirectory(prefix="dropout-lab-") as workdir:
        try:
            prepared = prepare(path, Path(workdir), convention)
        except SubmissionRefused as refusal:
            return refused_result(submission_name(path), shown, str(refusal), time.perf_counter() - started)
        except FileNotFoundError as error:
            raise GraderError(str(error)) from None
        job = GradingJob(prepared.name, prepared.name, prepared.tree, base_seed, prepared.missing,
                         only_checks=only_checks)
        result = run_grading([job], rubric, limits, convention=convention)[job.key]
    result.execution_time = time.perf_counter() - started
    return result


def load_rubric_or_refuse(path) -> Rubric:
    try:
        return load_rubric(path)
    except RubricError as error:
        raise UsageError(f"rubric refused, nothing was graded: {error}") from None


def rubric_for(args: argparse.Namespace) -> Rubric:
    """The rubric of ``--rubric``, or the default one of ``--flavour``; they must agree."""
    rubric = load_rubric_or_refuse(args.rubric or FLAVOUR_RUBRICS[args.flavour or "cs231n"])
    if args.flavour and rubric.flavour != args.flavour:
        raise UsageError(f"the rubric {rubric.path} grades flavour {rubric.flavour}, not {args.flavour}: "
                         f"drop --flavour, or give a rubric with flavour = \"{args.flavour}\"")
    return rubric


def run(args: argparse.Namespace) -> int:
    rubric = rubric_for(args)
    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    try:
        chosen = style_convention(rubric.flavour, args.style) if args.style else None
    except ConventionError as error:
        raise UsageError(str(error)) from None
    try:
        result = grade_submission(path, rubric, args.seed, convention=chosen)
    except GraderError as error:
        raise UsageError(f"the grader could not run: {error}") from None
    warning = protection_warning(result)
    if warning:  # the sandbox was not all there: say so where the instructor reads, JSON or text
        warning += " " + bubblewrap_advice()
    if args.format == "json":
        print(as_json(result))
        if warning:
            print(warning, file=sys.stderr)
    else:
        print(as_text(result))
        if warning:
            print("\n" + "\n".join(textwrap.wrap(warning, 100, break_on_hyphens=False)))
    sys.stdout.flush()
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "grade", help="grade one submission (a folder or a .zip)",
        description="Grade one submission in a sandboxed child process and print the result.",
    )
    parser.add_argument("path", help="the submission: a folder holding nnlab/ or a .zip of one")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.add_argument("--flavour", choices=tuple(FLAVOUR_RUBRICS),
                        help="the flavour of the assignment (default: the rubric's, cs231n without --rubric)")
    parser.add_argument("--rubric", help="rubric TOML file (default: the flavour's, autograder/rubric.toml for cs231n)")
    parser.add_argument("--style", choices=STYLES,
                        help="scratch flavour only: grade in this dropout style instead of the one its release sets "
                             "(solution/flavours/scratch/nnlab/settings.py), to try the other style")
    parser.add_argument("--seed", type=int, default=DEFAULT_BASE_SEED,
                        help="base seed of every random input; the same seed replays the same grade (default: %(default)s)")
    parser.set_defaults(run=run)
