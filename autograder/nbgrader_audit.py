"""``python -m autograder nbgrader-audit COURSE_DIR``: does the gradebook hold the kit's grade of everyone?

It grades every student folder in the course's ``submitted/`` with the kit's grader (the course's
rubric and seed, in parallel, exactly as ``nbgrader-autograde`` grades them) and compares each grade
with the autograded score in nbgrader's gradebook (the sum of the kit's test cells, manual overrides
included). It lists every student whose gradebook score differs or is missing, or whose grade the
kit could not compute in full (a check that failed in the grader itself), and exits 1 if there is
one, 0 when the gradebook agrees for everyone.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder.cli import UsageError


def audit(course: Path, jobs: int) -> tuple[list[str], int]:
    """(lines of the report, exit status)."""
    from autograder import nbgrader_bridge as bridge
    from autograder.nbgrader_fast import ClassGrades, course_settings, load_course, submitted_folders
    from autograder.nbgrader_summary import gradebook_scores

    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise UsageError(f"{course} has no nbgrader_config.py (make the course with nbgrader-course)")
    app = load_course(course, [bridge.ASSIGNMENT_ID, "--log-level=WARN"])
    rubric_path, seed, allow = course_settings(app)
    refusal = bridge.sandbox_refusal(allow, "nbgrader-audit", course / "nbgrader_config.py")
    if refusal:
        raise UsageError(refusal)
    folders = submitted_folders(app.coursedir)
    if not folders:
        raise UsageError(f"no student folder in {course / 'submitted'}")
    grades = ClassGrades(folders, rubric_path, seed, jobs)
    try:
        kit = grades.all_results()
    finally:
        grades.close()
    stored = gradebook_scores(app.coursedir.db_url, app.coursedir.course_id, sorted(folders))
    differ = []
    for student in sorted(folders):
        result, held = kit[student], stored.get(student)
        if isinstance(result, str):
            differ.append(f"  {student}: the kit could not grade it ({result}); gradebook "
                          f"{'no score' if held is None else f'{held:g}'}")
        elif result.extra_data.get("grader_errors"):
            failed = ", ".join(sorted(result.extra_data["grader_errors"]))
            differ.append(f"  {student}: the kit's grader failed on {failed}, so its grade ({result.score:g}) "
                          f"cannot be trusted; gradebook {'no score' if held is None else f'{held:g}'}")
        elif held is None:
            differ.append(f"  {student}: no autograded score in the gradebook; the kit gives {result.score:g} "
                          f"of {result.max_score:g}")
        elif abs(held - result.score) > 1e-6:
            differ.append(f"  {student}: gradebook {held:g}, the kit {result.score:g} of {result.max_score:g}")
    lines = [f"Dropout Lab audit of {course}: {len(folders)} student folder(s) in submitted/ graded by the kit "
             f"(rubric {rubric_path}, seed {seed})."]
    if differ:
        lines.append(f"{len(differ)} student(s) whose gradebook score differs from the kit's grade:")
        lines += differ
        lines.append(f"Autograde them again: {bridge.kit_command('nbgrader-autograde', str(course), '--force')}")
        return lines, 1
    lines.append("The gradebook holds the kit's grade for every student.")
    return lines, 0


def run(args: argparse.Namespace) -> int:
    lines, status = audit(Path(args.course_dir), max(1, args.jobs))
    print("\n".join(lines))
    sys.stdout.flush()
    return status


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "nbgrader-audit", help="grade an nbgrader course's submissions with the kit and list gradebook scores that differ",
        description="Grade every folder in COURSE_DIR/submitted/ with the kit's grader and list every student "
                    "whose autograded score in nbgrader's gradebook differs (exit status 1 if there is one).",
    )
    parser.add_argument("course_dir", metavar="COURSE_DIR", help="the course folder made by nbgrader-course")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="grading workers (default: %(default)s)")
    parser.set_defaults(run=run)
