"""The scratch flavour as an nbgrader course, through nbgrader's own commands: `nbgrader-course
--flavour scratch` lays it out, `nbgrader generate_assignment` releases it with empty TODO blocks,
and the kit's nbgrader-autograde puts the sandboxed grade of each student's Dropout class and
MultiLayerNet into the gradebook, test cell by test cell."""

from __future__ import annotations

import re

import pytest

from autograder.bank import load_bank, graded_sources
from autograder.conventions import convention
from autograder.nbgrader_bridge import TEST_CELLS
from autograder.paths import NOTEBOOK_NAME
from autograder.regions import find_regions
from autograder.rubric import FLAVOUR_RUBRICS, load_rubric
from test_nbgrader_course import (ASSIGNMENT_ID, COURSE_ID, UNSANDBOXED, autograded_total, gradebook_scores, hand_in,
                                  kit, nbgrader)

pytestmark = pytest.mark.slow
SCRATCH = convention("scratch", "vanilla")  # the style the release sets
BANK = {entry.name: entry for entry in load_bank(convention=SCRATCH)}


@pytest.fixture(scope="module")
def scratch_course(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbgrader-scratch")
    course, home = root / "course", root / "home"
    home.mkdir()
    made = kit("nbgrader-course", str(course), "--flavour", "scratch", "--exchange", str(root / "exchange"),
               "--course-id", COURSE_ID, *UNSANDBOXED)
    assert made.returncode == 0, made.stderr
    nbgrader(["generate_assignment", ASSIGNMENT_ID], course, home)
    students = {"right": "right_reference", "wrong": "wrong_ratio_as_keep_probability", "netbug": "wrong_net_always_training"}
    for student, entry in students.items():
        hand_in(course, student, graded_sources(BANK[entry], convention=SCRATCH))
    graded = kit("nbgrader-autograde", str(course), *UNSANDBOXED)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    return course, students


def test_the_released_assignment_is_the_scratch_flavours_with_empty_todo_blocks(scratch_course):
    course, _ = scratch_course
    release = course / "release" / ASSIGNMENT_ID
    for graded in SCRATCH.graded_files:
        text = (release / graded).read_text(encoding="utf-8")
        for region in find_regions(text, graded):
            body = text.splitlines()[region.start + 1: region.end]
            assert not [line for line in body if line.strip() and not line.strip().startswith("#")], graded
    assert not (release / "nnlab" / "classifiers").exists()
    config = (course / "nbgrader_config.py").read_text(encoding="utf-8")
    assert "nnlab/multi_layer_net.py" in config and re.search(r'flavour = "scratch"', (course / "rubric.toml").read_text())
    notebook = (release / NOTEBOOK_NAME).read_text(encoding="utf-8")
    assert "nnlab/multi_layer_net.py" in notebook and "BEGIN SOLUTION" not in notebook


def test_the_gradebook_holds_the_sandboxed_grade_of_each_students_files(scratch_course):
    course, _ = scratch_course
    rubric = load_rubric(FLAVOUR_RUBRICS["scratch"])
    right, wrong, netbug = (gradebook_scores(course, student) for student in ("right", "wrong", "netbug"))
    assert autograded_total(right) == rubric.max_score == 36
    assert set(TEST_CELLS) <= set(right)
    assert right["test_dropout_forward"] > wrong["test_dropout_forward"]  # the ratio read as a keep probability
    assert wrong["test_fc_net_dropout"] == right["test_fc_net_dropout"]  # the network runs on a correct layer
    assert netbug["test_fc_net_dropout"] < right["test_fc_net_dropout"]
    assert netbug["test_dropout_forward"] == right["test_dropout_forward"]
