"""The student's own check: ``python -m autograder check [PATH]``, or ``check()`` in a notebook.

It runs the rubric's public checks (visibility "visible") on the student's graded files with the very
grader that grades submissions: the same sandboxed child, the same seeds (the default base seed) and
so the same verdicts, points and diagnosis sentences. Checks that are not public (hidden, or shown
after the due date or after publication) are not run; the output says how many there are and what
they are worth, never what they test.

In a notebook cell::

    from autograder.student import check
    check()          # checks the folder the notebook runs in

``check()`` runs the command in a separate process with the kernel's own Python, so nothing the
notebook has defined or changed (a redefined numpy function, a half-imported module) takes part,
and it reads the files as saved on disk: save your .py files first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from autograder.limits import DEFAULT_BASE_SEED
from autograder.paths import GRADED_FILES
from autograder.rubric import DEFAULT_RUBRIC, Rubric

CHECK_TIMEOUT_SECONDS = 600


def default_tree(cwd: Path | None = None) -> Path:
    """The folder a student means: the current one, which must hold the library.

    A folder without nnlab/ is refused with a message rather than replaced by the kit's own
    untouched assignment/, whose all-zero result would look like the student's."""
    from autograder.cli import UsageError

    cwd = Path.cwd() if cwd is None else cwd
    if not (cwd / GRADED_FILES[0]).is_file():
        raise UsageError(f"{cwd.resolve()} holds no {GRADED_FILES[0]}, so there is nothing to check: run the "
                         "command from your assignment folder (the one that holds nnlab/), or name it: "
                         "python -m autograder check path/to/your/folder")
    return cwd


def public_checks(rubric: Rubric) -> list[str]:
    return [name for name, entry in rubric.entries.items() if entry.visibility == "visible"]


def check_submission(path: Path, rubric: Rubric, base_seed: int = DEFAULT_BASE_SEED):
    """The GradeResult of the public checks only, graded exactly as ``grade`` grades them."""
    from autograder.grade import grade_submission

    return grade_submission(Path(path), rubric, base_seed, only_checks=frozenset(public_checks(rubric)))


def hidden_summary(rubric: Rubric) -> str:
    others = [entry for entry in rubric.entries.values() if entry.visibility != "visible"]
    if not others:
        return "Every check of the grader is public: this is your grade, unless your instructor changes the rubric."
    points = sum(entry.points for entry in others)
    return (f"Not run here: {len(others)} hidden check(s) worth {points:g} of {rubric.max_score:g} points. "
            "The grader runs them on your submission; passing every public check does not guarantee them.")


def run(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError
    from autograder.grade import load_rubric_or_refuse
    from autograder.plugin import GraderError
    from autograder.reports import as_text

    rubric = load_rubric_or_refuse(args.rubric)
    path = Path(args.path) if args.path else default_tree()
    if not path.exists():
        raise UsageError(f"{path} does not exist: give the folder that holds nnlab/ (your copy of the assignment)")
    try:
        result = check_submission(path, rubric)
    except GraderError as error:
        raise UsageError(f"the checks could not run: {error}") from None
    if args.format == "json":
        data = result.to_json()
        data["extra_data"]["not_run"] = [n for n in rubric.entries if n not in public_checks(rubric)]
        print(json.dumps(data, indent=2))
    else:
        print(f"Public checks of {path.resolve()}")
        print(as_text(result))
        print()
        print(hidden_summary(rubric))
    sys.stdout.flush()
    return 0 if all(test.status == "passed" for test in result.tests) else 1


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="run the public checks on your work, with the grader's messages",
        description="Run the rubric's public checks on your graded files, exactly as the grader runs them. "
                    "Exit status 0 when every public check passed, 1 when one failed.",
    )
    parser.add_argument("path", nargs="?", help="your assignment folder or a .zip of it (default: the current "
                        "folder, which must hold nnlab/)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.add_argument("--rubric", default=str(DEFAULT_RUBRIC), help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def check(path: str | Path | None = None) -> None:
    """Run the public checks from a notebook and print what the grader would say about them.

    ``path`` defaults to the folder the notebook runs in (when it holds nnlab/).
    """
    tree = Path(path) if path is not None else Path.cwd()
    command = [sys.executable, "-m", "autograder", "check", str(tree)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=CHECK_TIMEOUT_SECONDS,
                                   stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        print(f"The checks did not finish within {CHECK_TIMEOUT_SECONDS} s. Run `python -m autograder check` "
              "in a terminal to see where they stop.")
        return
    print(completed.stdout, end="")
    if completed.returncode not in (0, 1):
        print(completed.stderr, end="")
        if "No module named autograder" in completed.stderr:
            print(f"The kernel's Python ({sys.executable}) does not have the kit installed: choose the "
                  "'Python (Dropout Lab)' kernel, or run `bash setup.sh` in the kit's folder.")
