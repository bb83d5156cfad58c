"""The grader grades the scratch flavour's bank (autograder/bank/scratch/) correctly, in both dropout
styles, over 20 base seeds each: the same engine and checks as the CS231n bank, through the
flavour's convention (a Dropout class, dropout_ratio = probability of dropping, vanilla or
inverted as the course's settings say).

Every wrong entry loses points on each check it lists, with its diagnosis, worded in the flavour's
own terms; every right entry gets full marks; the reference gets full marks and the untouched
release 0. The entries of each style are graded in one pytest session per core
(tests/parallel_grading.py).
"""

from __future__ import annotations

import os
import re

import pytest

from autograder.bank import load_bank, write_submission
from autograder.conventions import STYLES, convention
from autograder.diagnoses import SENTENCES, sentence
from autograder.flavours import SCRATCH, released_tree
from autograder.grade import grade_submission
from autograder.limits import DEFAULT_LIMITS
from autograder.plugin import GradingJob
from autograder.rubric import FLAVOUR_RUBRICS, load_rubric
from autograder.submission import prepare
from parallel_grading import grade_in_parallel

FIRST_SEED = int(os.environ.get("DROPOUT_LAB_BANK_SEED", "0"))
SEEDS = range(FIRST_SEED, FIRST_SEED + 20)
CONVENTIONS = {style: convention("scratch", style) for style in STYLES}
BANK = load_bank(convention=CONVENTIONS["vanilla"])
RUBRIC = load_rubric(FLAVOUR_RUBRICS["scratch"])
CASES = [(entry, style) for entry in BANK for style in entry.styles]


def case_id(case) -> str:
    entry, style = case
    return f"{entry.name}-{style}"


@pytest.fixture(scope="module")
def bank_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("scratch-bank")
    results = {}
    for style, conv in CONVENTIONS.items():
        groups = []
        for entry in BANK:
            if style not in entry.styles:
                continue
            folder = write_submission(entry, root / style / "submissions" / entry.name, conv)
            workdir = root / style / "work" / entry.name
            workdir.mkdir(parents=True)
            tree = prepare(folder, workdir, conv).tree
            only = frozenset(entry.fails) if entry.kind == "wrong" else None
            groups.append([GradingJob(f"{entry.name}-{style}@{seed}", entry.name, tree, seed, only_checks=only)
                           for seed in SEEDS])
        results.update(grade_in_parallel(groups, RUBRIC, DEFAULT_LIMITS, convention=conv))
    return results


def test_both_styles_have_right_and_wrong_entries():
    for style in STYLES:
        kinds = {entry.kind for entry, case_style in CASES if case_style == style}
        assert kinds == {"right", "wrong"}, style


def test_the_bank_lists_only_checks_of_the_flavour():
    for entry in BANK:
        assert set(entry.fails) <= set(RUBRIC.entries), entry.name


@pytest.mark.parametrize("case", [case for case in CASES if case[0].kind == "wrong"], ids=case_id)
def test_wrong_entry_loses_points_with_its_diagnosis(bank_results, case):
    entry, style = case
    for seed in SEEDS:
        tests = {test.name: test for test in bank_results[f"{entry.name}-{style}@{seed}"].tests}
        for check in entry.fails:
            test = tests[check]
            assert test.score < test.max_score, f"{entry.name} ({style}) seed {seed}: {check} gave full marks"
            assert test.diagnosis == entry.diagnosis, f"{entry.name} ({style}) seed {seed}: {check} said {test.diagnosis}"
            assert test.output.startswith(sentence(entry.diagnosis, "scratch"))


@pytest.mark.parametrize("case", [case for case in CASES if case[0].kind == "right"], ids=case_id)
def test_right_entry_gets_full_marks(bank_results, case):
    entry, style = case
    for seed in SEEDS:
        result = bank_results[f"{entry.name}-{style}@{seed}"]
        lost = {test.name: test.diagnosis for test in result.tests if test.status != "passed"}
        assert not lost and result.score == result.max_score == 36, f"{entry.name} ({style}) seed {seed}: {lost}"


def test_diagnoses_speak_the_flavours_terms(bank_results):
    """What a scratch student reads names dropout_ratio, Dropout and MultiLayerNet, never CS231n's
    p, dropout_param or FullyConnectedNet."""
    for result in bank_results.values():
        for test in result.tests:
            if test.status == "failed":
                assert not re.search(r"\bp\b|dropout_param|FullyConnectedNet|dropout_forward", test.output), test.output
    assert sentence("p_as_drop_probability", "scratch") != SENTENCES["p_as_drop_probability"]
    assert "dropout_ratio" in sentence("p_as_drop_probability", "scratch")


@pytest.mark.parametrize("style", STYLES)
def test_release_scores_zero_and_the_style_follows_the_settings(tmp_path, style):
    """The untouched release scores 0 in either style, and a tree graded in the style its settings
    file does not set is graded in the instructor's style all the same (the settings file is not
    taken from the student)."""
    tree = released_tree(SCRATCH)
    for name, content in tree.items():
        target = tmp_path / "stubs" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    result = grade_submission(tmp_path / "stubs", RUBRIC, convention=CONVENTIONS[style])
    assert result.score == 0 and {test.diagnosis for test in result.tests} == {"not_implemented"}

    other = "inverted" if style == "vanilla" else "vanilla"
    book = next(entry for entry in BANK if entry.name == ("right_book_literal" if style == "vanilla" else "right_inverted_literal"))
    folder = write_submission(book, tmp_path / "book", CONVENTIONS[style])
    settings = folder / "nnlab" / "settings.py"
    settings.write_text(f'DROPOUT_STYLE = "{other}"\nDROPOUT_STYLES = ("vanilla", "inverted")\n')
    assert grade_submission(folder, RUBRIC, convention=CONVENTIONS[style]).score == 36
