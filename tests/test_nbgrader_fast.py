"""The kit's `nbgrader-autograde` and `nbgrader-audit` on a real nbgrader 0.9 course, and the checks
that protect a course: the sandbox, and a rubric that no longer matches the gradebook.

The course is laid out by `nbgrader-course` and generated with nbgrader's own command (a copy of the
course test_nbgrader_course makes once per session); the students' folders are put in `submitted/`
as `nbgrader collect` leaves them. Every gradebook score must be the kit's own grade of the same
files. (generate_feedback and export after this command are run in test_nbgrader_course, on a class
graded partly by it.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from autograder.grade import grade_submission
from autograder.nbgrader_bridge import SUBMITTED_LABEL
from autograder.nbgrader_course import ASSIGNMENT_ID
from autograder.paths import NOTEBOOK_NAME
from autograder.rubric import load_rubric
from test_nbgrader_course import (EXPERIMENT_OUTPUT, KERNEL_KILLERS, autograded_notebook, autograded_total,
                                  buggy_sources, finish_kit, generated_course, gradebook_scores, hand_in, insert_cell,
                                  kit, nbgrader, run_experiment_cells, solution_sources, start, start_kit)

COURSE_ID = "dropout-test"
SETUP_OUTPUT = "set-up done (student's own run)\n"


def setup_output(path: Path) -> None:
    """The student ran the notebook: the set-up cell shows its output."""
    notebook = nbformat.read(path, as_version=4)
    cell = next(c for c in notebook.cells if c.cell_type == "code")
    cell.execution_count, cell.outputs = 1, [nbformat.v4.new_output("stream", name="stdout", text=SETUP_OUTPUT)]
    path.chmod(0o644)
    nbformat.write(notebook, path)
    run_experiment_cells(path)


# dee's notebook would kill a kernel (test_nbgrader_course runs every way of killing it in
# nbgrader autograde's kernel; this command starts none, so one of them is enough here).
KILLERS = {"dee": KERNEL_KILLERS["kim"]}


@pytest.fixture(scope="module")
def fast_course(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbgrader-fast")
    course, home = generated_course(tmp_path_factory, root / "course"), root / "home"
    home.mkdir()
    hand_in(course, "amy", solution_sources(), setup_output)
    hand_in(course, "ben", None)  # the stubs
    hand_in(course, "cid", buggy_sources())
    for student, cell in KILLERS.items():
        hand_in(course, student, solution_sources(), lambda path, cell=cell: insert_cell(path, cell))
    hand_in(course, "eve", solution_sources(), notebook=False)
    fast = kit("nbgrader-autograde", str(course), "--jobs", "2")
    assert fast.returncode == 0, fast.stdout + fast.stderr
    students = sorted(["amy", "ben", "cid", "eve", *KILLERS])
    rubric = load_rubric(course / "rubric.toml")
    grades = {s: grade_submission(course / "submitted" / s / ASSIGNMENT_ID, rubric) for s in students}
    return dict(course=course, home=home, fast=fast, students=students, kit=grades, rubric=rubric)


@pytest.mark.slow
def test_every_student_gets_the_kit_grade_in_the_gradebook(fast_course):
    course, grades = fast_course["course"], fast_course["kit"]
    for student in fast_course["students"]:
        assert autograded_total(gradebook_scores(course, student)) == pytest.approx(grades[student].score), student
    full = fast_course["rubric"].max_score
    assert grades["amy"].score == grades["eve"].score == full
    assert all(grades[student].score == full for student in KILLERS)
    assert grades["ben"].score == 0 and 0 < grades["cid"].score < full
    assert f"Graded in this run: {len(fast_course['students'])} student(s)" in fast_course["fast"].stdout
    assert "eve: no Dropout.ipynb was submitted" in fast_course["fast"].stdout


@pytest.mark.slow
def test_no_notebook_is_run_and_the_submitted_outputs_are_kept(fast_course):
    notebook = autograded_notebook(fast_course["course"], "amy")
    first = next(c for c in notebook.cells if c.cell_type == "code")
    assert [o.text for o in first.outputs] == [SETUP_OUTPUT] and first.execution_count == 1
    for cell in notebook.cells:
        if "autograde-skip" in cell.metadata.get("tags", []):
            assert [o.text for o in cell.outputs] == [SUBMITTED_LABEL.format(tag="autograde-skip"), EXPERIMENT_OUTPUT]


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(KILLERS))
def test_a_notebook_that_would_kill_its_kernel_is_not_run_and_its_files_get_their_grade(fast_course, student):
    notebook = autograded_notebook(fast_course["course"], student)
    assert any(cell.source == KILLERS[student] for cell in notebook.cells)  # the killer is there ...
    assert "kernel_stopped" not in notebook.metadata.get("dropout_lab", {})  # ... and nothing ran it
    assert fast_course["kit"][student].score == fast_course["rubric"].max_score
    assert autograded_total(gradebook_scores(fast_course["course"], student)) == fast_course["kit"][student].score


@pytest.mark.slow
def test_without_the_sandbox_grading_is_refused_unless_the_course_opts_out(fast_course, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(fast_course["course"], course)
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text().replace("c.SandboxedGrades.allow_unsandboxed = True",
                                                 "c.SandboxedGrades.allow_unsandboxed = False"))
    before = sorted(p.name for p in (course / "autograded").iterdir())
    os.environ["DROPOUT_LAB_BWRAP"] = "0"  # as on a machine without bubblewrap
    try:  # both commands at once: each refuses before it writes anything
        process = start(["autograde", ASSIGNMENT_ID, "--force"], course, fast_course["home"])
        refusing = start_kit("nbgrader-autograde", str(course), "--force")
    finally:
        del os.environ["DROPOUT_LAB_BWRAP"]
    output, _ = process.communicate(timeout=600)
    refused = finish_kit(refusing)
    assert process.returncode != 0
    # The kit's one sandbox policy (autograder.sandbox.require_sandbox), in each command's words.
    config_line = f"`c.SandboxedGrades.allow_unsandboxed = True` in {config}"
    for text, command in ((output, "nbgrader autograde"), (refused.stderr, "nbgrader-autograde")):
        assert f"{command} refuses to grade other people's code without its sandbox" in text, text[-3000:]
        assert "turned off by DROPOUT_LAB_BWRAP=0" in text and "no network" in text
        assert config_line in text and "DROPOUT_LAB_ALLOW_UNSANDBOXED=1" in text
        assert "Nothing was graded or removed." in text
    assert refused.returncode == 2
    assert sorted(p.name for p in (course / "autograded").iterdir()) == before
    for student in before:
        assert (course / "autograded" / student / ASSIGNMENT_ID / NOTEBOOK_NAME).is_file()


@pytest.mark.slow
def test_a_rubric_change_is_refused_before_anything_is_removed_and_the_suggested_fix_works(fast_course, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(fast_course["course"], course)
    rubric_path = course / "rubric.toml"
    text = rubric_path.read_text()
    # Two more points for the first forward check.
    changed = re.sub(r"(\[checks\.forward_\w+\]\npoints = )(\d+)", lambda m: f"{m.group(1)}{int(m.group(2)) + 2}",
                     text, count=1)
    assert changed != text
    rubric_path.write_text(changed)
    process = start(["autograde", ASSIGNMENT_ID, "--force"], course, fast_course["home"])
    refusing = start_kit("nbgrader-autograde", str(course), "--force")  # at once: each refuses before writing
    output, _ = process.communicate(timeout=600)
    refused = finish_kit(refusing)
    assert process.returncode != 0
    for expected in (f"the rubric {rubric_path} and nbgrader's gradebook", "nothing was graded or removed",
                     f"nbgrader-course {course} --force --rubric {rubric_path}",
                     "generate_assignment dropout --force", "release_assignment dropout --force"):
        assert expected in output, (expected, output[-3000:])
    for student in fast_course["students"]:  # nbgrader's --force removed nothing
        assert (course / "autograded" / student / ASSIGNMENT_ID / NOTEBOOK_NAME).is_file(), student
    assert refused.returncode == 2 and "disagree" in refused.stderr

    # The suggested fix, command by command as the message gives them.
    fix = re.search(r"(\S+ -m autograder nbgrader-course .*)", output).group(1).split()
    rebuilt = subprocess.run(fix, capture_output=True, text=True, timeout=600)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rubric_path.read_text() == changed
    nbgrader(["generate_assignment", ASSIGNMENT_ID, "--force"], course, fast_course["home"])
    grading = start_kit("nbgrader-autograde", str(course), "--force", "--jobs", "2")
    rubric = load_rubric(rubric_path)  # meanwhile, the test's own grades with the new rubric
    expected = {s: grade_submission(course / "submitted" / s / ASSIGNMENT_ID, rubric).score
                for s in fast_course["students"]}
    again = finish_kit(grading)
    assert again.returncode == 0, again.stdout + again.stderr
    assert rubric.max_score == fast_course["rubric"].max_score + 2
    for student in fast_course["students"]:
        assert autograded_total(gradebook_scores(course, student)) == pytest.approx(expected[student]), student
    audit = kit("nbgrader-audit", str(course))
    assert audit.returncode == 0, audit.stdout
    assert "The gradebook holds the kit's grade for every student." in audit.stdout


def test_the_cell_report_groups_reasons_wraps_and_counts_hidden_checks():
    from autograder.nbgrader_bridge import REPORT_WIDTH, cell_report
    from autograder.verdicts import CheckResult

    long_reason = "Your dropout scales the kept units by p instead of 1/p, " * 4
    tests = [
        CheckResult("forward_a", 0, 2, "failed", long_reason, "visible"),
        CheckResult("forward_b", 0, 1, "failed", long_reason, "visible"),
        CheckResult("forward_secret_one", 0, 3, "failed", long_reason, "hidden"),
        CheckResult("forward_secret_two", 2, 2, "passed", "Passed.", "hidden"),
    ]
    report = cell_report(tests, 2, 8, "passed in the submitted notebook")
    assert max(len(line) for line in report.splitlines()) <= REPORT_WIDTH
    assert "secret" not in report
    assert "hidden checks: 1 of 2 passed, 2/5 points" in report
    # One explanation (its four sentences) for the three checks that failed for the same reason.
    assert re.sub(r"\s+", " ", report).count("Your dropout scales") == 4
    assert "forward_a, forward_b, a hidden check:" in report
