"""The one-screen summary that ends every autograde of an nbgrader course.

It is printed by ``python -m autograder nbgrader-autograde`` and, when the run ends, by ``nbgrader
autograde`` (``SandboxedGrades`` registers it). It says how many students were graded in the run and
their autograded scores, then every student whose grade could not be computed or deserves a look, and
why: a student folder in ``submitted/`` with no autograded score in the gradebook, a submission the
grader refused, missing graded files, a notebook that was not submitted, a kernel that died, a
notebook whose own asserts passed where the sandboxed grade did not.
"""

from __future__ import annotations

import glob
import statistics
import textwrap
from pathlib import Path

ASSIGNMENT_ID = "dropout"
NOTEBOOK_ID = "Dropout"
WIDTH = 100
MOST_LINES = 15


def gradebook_scores(db_url: str, course_id: str, students) -> dict[str, float | None]:
    """Each student's autograded score in the gradebook (the kit's test cells), None when there is none."""
    from nbgrader.api import Gradebook, MissingEntry

    from autograder.nbgrader_bridge import TEST_CELLS

    found: dict[str, float | None] = {}
    with Gradebook(db_url, course_id) as gradebook:
        for student in students:
            try:
                notebook = gradebook.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT_ID, student)
            except MissingEntry:
                found[student] = None
                continue
            grades = {grade.name: grade for grade in notebook.grades if grade.name in TEST_CELLS}
            if len(grades) < len(TEST_CELLS) or any(grade.auto_score is None for grade in grades.values()):
                found[student] = None
            else:
                found[student] = round(sum(float(grade.score) for grade in grades.values()), 4)
    return found


def _points(value: float) -> str:
    return f"{value:g}"


def summary_text(course: Path, db_url: str, course_id: str, notes: dict[str, dict], students=None) -> str:
    """The summary; ``notes`` are what the run recorded per student (score, max_score, notes)."""
    course = Path(course)
    if students is None:
        students = sorted(Path(p).parent.name for p in glob.glob(str(course / "submitted" / "*" / ASSIGNMENT_ID)))
    students = sorted(set(students) | set(notes))
    stored = gradebook_scores(db_url, course_id, students)
    graded = {s: notes[s]["score"] for s in students if "score" in notes.get(s, {})}
    out_of = next((notes[s]["max_score"] for s in graded), None)
    lines = [f"Dropout Lab: autograde of {course} (assignment {ASSIGNMENT_ID})"]
    if graded:
        values = sorted(graded.values())
        lines.append(f"Graded in this run: {len(graded)} student(s), autograded scores out of {_points(out_of)}: "
                     f"lowest {_points(values[0])}, median {_points(statistics.median(values))}, highest "
                     f"{_points(values[-1])}; full marks {sum(v >= out_of for v in values)}, zero {sum(v == 0 for v in values)}.")
        wrapped = [""]
        for entry in (f"{s} {_points(graded[s])}" for s in sorted(graded)):  # a name and its score stay together
            if wrapped[-1] and len(wrapped[-1]) + 2 + len(entry) > WIDTH - 2:
                wrapped.append("")
            wrapped[-1] += ("  " if wrapped[-1] else "") + entry
        lines += ["  " + line for line in wrapped[:4]]
        if len(wrapped) > 4:
            lines.append("  ... (every score: `nbgrader export`, or the formgrader)")
    else:
        lines.append("Graded in this run: nobody.")
    without = [s for s in students if stored.get(s) is None]
    flagged = []
    for student in students:
        reasons = list(dict.fromkeys(notes.get(student, {}).get("notes", [])))
        if student in without and not any(r.startswith("not graded") for r in reasons):
            reasons.insert(0, "no autograded score in the gradebook (see the errors above)")
        elif student in graded and stored.get(student) is not None and abs(stored[student] - graded[student]) > 1e-6:
            reasons.insert(0, f"the gradebook holds {_points(stored[student])}, the kit's grade is "
                              f"{_points(graded[student])} (a manual override?)")
        if reasons:
            flagged.append((student, reasons))
    if flagged:
        lines.append(f"Needs a look ({len(flagged)} student(s)):")
        shown = 0
        for student, reasons in flagged:
            for reason in reasons:
                if shown >= MOST_LINES:
                    break
                lines += textwrap.wrap(f"{student}: {reason}", WIDTH, initial_indent="  ", subsequent_indent="      ")
                shown += 1
        if sum(len(r) for _, r in flagged) > MOST_LINES:
            lines.append("  ... and more, in the log above.")
    else:
        lines.append("Needs a look: nobody; every student has an autograded score and nothing looked wrong.")
    if without:
        lines.append(f"Students without an autograded score: {len(without)} ({', '.join(without[:20])}"
                     f"{', ...' if len(without) > 20 else ''}).")
    return "\n".join(lines)
