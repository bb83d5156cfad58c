"""``check [PATH]``: the grader's public checks on the student's own folder, with its messages.

The checks, their seeds, the way each call into the student's code is observed and the sentences
of the verdicts are the grader's own (the release copies them); only the process that runs the
student's code differs: a plain child process here, a sandbox in the grader. So for every public
check the verdict, the points and the explanation are the ones the grader will give.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

from dropout_lab_check.limits import DEFAULT_BASE_SEED, DEFAULT_LIMITS
from dropout_lab_check.plugin import GraderError, GradingJob, run_grading
from dropout_lab_check.reports import as_text
from dropout_lab_check.rubric import DEFAULT_RUBRIC, Rubric, RubricError, load_rubric
from dropout_lab_check import facts as facts
from dropout_lab_check.runner import PACKAGE, SubmissionRefused, graded_files, library_root, prepare


class CheckRefused(Exception):
    """The folder cannot be checked; the message says what to do."""


def public_rubric(rubric: Rubric) -> Rubric:
    return Rubric(rubric.path, {name: entry for name, entry in rubric.entries.items() if entry.visibility == "visible"},
                  rubric.flavour)


def locate(path: Path | None) -> Path:
    """The student's folder: ``path`` (or the current folder), refusing one without nnlab/."""
    given = path is not None
    folder = Path(path) if given else Path.cwd()
    if not folder.exists():
        raise CheckRefused(f"{folder} does not exist: give the folder that holds nnlab/ and Dropout.ipynb")
    if folder.is_file() and folder.suffix.lower() == ".zip":
        return folder
    if library_root(folder) is None:
        where = str(folder.resolve())
        raise CheckRefused(
            f"{where} holds no {graded_files()[0]}, so there is nothing to check. Run the command from "
            f"your assignment folder (the one that holds nnlab/ and Dropout.ipynb), or name it: "
            f"python -m {PACKAGE} check path/to/your/folder"
        )
    return folder


def changed_given_files(tree: Path) -> list[str]:
    """Library files (other than the graded two) that differ from the ones the student was given."""
    changed = []
    for name, digest in facts.GIVEN_FILES.items():
        path = tree / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            changed.append(name)
    return changed


NETWORK_NOTE = (
    "Note: here the network checks (fc_*) ran on your own dropout layer, which failed some of its "
    "checks above. The grader runs the network checks on a correct dropout of its own, so fix the "
    "layer first: your network's results may change."
)


def network_ran_on_a_failing_layer(result) -> bool:
    """The checker runs the student's network on the student's own layer (a release holds no correct
    dropout), so network verdicts may differ from the grader's when the layer checks failed."""
    return any(test.status != "passed" and not test.name.startswith("fc_") for test in result.tests)


def hidden_summary() -> str:
    if not facts.HIDDEN_CHECKS:
        return "The grader runs no other check: this is your grade, unless your instructor changes the rubric."
    return (f"Not run here: {facts.HIDDEN_CHECKS} hidden check(s) worth {facts.HIDDEN_POINTS:g} of "
            f"{facts.MAX_SCORE:g} points. The grader runs them on your submission; passing every public "
            "check does not guarantee them.")


def check_folder(path: Path, rubric: Rubric, base_seed: int = DEFAULT_BASE_SEED):
    """(GradeResult of the public checks, library files changed, graded files missing)."""
    rubric = public_rubric(rubric)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dropout-lab-check-") as workdir:
        prepared = prepare(Path(path), Path(workdir))
        job = GradingJob(prepared.name, prepared.name, prepared.tree, base_seed, prepared.missing)
        changed = changed_given_files(prepared.tree)
        result = run_grading([job], rubric, DEFAULT_LIMITS)[job.key]
    result.execution_time = time.perf_counter() - started
    return result, changed, prepared.missing


def run(args: argparse.Namespace) -> int:
    try:
        folder = locate(Path(args.path) if args.path else None)
        rubric = load_rubric(DEFAULT_RUBRIC)
        result, changed, missing = check_folder(folder, rubric)
    except (CheckRefused, SubmissionRefused) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (GraderError, RubricError) as error:
        print(f"error: the checks could not run: {error}", file=sys.stderr)
        return 2
    notes = [NETWORK_NOTE] if network_ran_on_a_failing_layer(result) else []
    if args.format == "json":
        data = result.to_json()
        data["extra_data"].update(changed_files=changed, hidden_checks=facts.HIDDEN_CHECKS,
                                  hidden_points=facts.HIDDEN_POINTS, notes=notes)
        print(json.dumps(data, indent=2))
    else:
        print(f"Public checks of {Path(folder).resolve()}")
        print(as_text(result))
        for note in notes:
            print()
            print(note)
        if changed:
            print()
            print("You changed " + ", ".join(changed) + ". The grader uses the files you were given for "
                  f"everything but {' and '.join(graded_files())}, so these changes do not count.")
        print()
        print(hidden_summary())
        print(f"(checked in {result.execution_time:.1f} s)")
    sys.stdout.flush()
    return 0 if all(test.status == "passed" for test in result.tests) and not missing else 1


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="run the grader's public checks on your work, with the grader's messages",
        description=f"Run the grader's public checks on your {' and '.join(graded_files())}. "
                    "Exit status 0 when every public check passed, 1 when one failed, 2 when nothing could be checked.",
    )
    parser.add_argument("path", nargs="?", help="your assignment folder, the one holding nnlab/ (default: the "
                        "current folder), or a zip made by collect")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.set_defaults(run=run)
