"""``python -m autograder demo``: what the grader does, in one command.

Grades, in one session, the reference solution (full marks), the untouched assignment (zero, with
"not implemented" everywhere) and a few buggy submissions from the bank, and prints the feedback
each student would read.
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

from autograder.bank import load_bank, write_submission
from autograder.limits import DEFAULT_BASE_SEED
from autograder.paths import ASSIGNMENT_DIR, SOLUTION_DIR
from autograder.plugin import GradingJob, run_grading
from autograder.reports import as_text, protection_warning
from autograder.rubric import load_rubric
from autograder.submission import prepare

EXAMPLES = ("wrong_vanilla_dropout", "wrong_backward_new_mask", "wrong_fc_seed_lost")


def demo_submissions(root: Path) -> list[tuple[str, str, Path]]:
    """(label, name, folder) of each submission the demo grades."""
    entries = {entry.name: entry for entry in load_bank()}
    shown = [
        ("the reference solution", "solution", SOLUTION_DIR),
        ("the untouched assignment", "assignment", ASSIGNMENT_DIR),
    ]
    for name in EXAMPLES:
        entry = entries[name]
        shown.append((f"a buggy submission: {entry.summary}", name, write_submission(entry, root / "bank" / name)))
    return shown


def run(args: argparse.Namespace) -> int:
    rubric = load_rubric()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dropout-lab-demo-") as workdir:
        root = Path(workdir)
        shown, jobs = demo_submissions(root), []
        for label, name, folder in shown:
            workspace = root / "work" / name
            workspace.mkdir(parents=True)
            prepared = prepare(folder, workspace)
            jobs.append(GradingJob(name, name, prepared.tree, args.seed, prepared.missing))
        results = run_grading(jobs, rubric)
    for label, name, _ in shown:
        print("=" * 78)
        print(f"Grading {label}")
        print("=" * 78)
        print(as_text(results[name]))
        print()
    print(f"Graded {len(shown)} submissions in {time.perf_counter() - started:.1f} s. "
          "Grade your own with: python -m autograder grade PATH")
    # The demo grades the kit's own examples, so it runs without bubblewrap too, and says so.
    warning = protection_warning(results[shown[0][1]])
    if warning:
        print()
        print("\n".join(textwrap.wrap(warning + " (The demo runs anyway: it grades only the kit's own "
                                       "examples. grade-batch refuses other people's code in this state.)",
                                       100, break_on_hyphens=False)))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="grade the solution, the assignment and buggy examples, and show the feedback",
        description="Grade the reference solution, the untouched assignment and example buggy submissions.",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_BASE_SEED, help="base seed (default: %(default)s)")
    parser.set_defaults(run=run)
