"""The grader grades its own bank (autograder/bank/) correctly, over 20 base seeds each.

Every known-wrong entry must lose points on each check it lists, with its diagnosis there; every
known-right variant must get full marks. Every diagnosis of the catalogue has a wrong entry.

The entries are graded in one pytest session per core (one child per entry serves all its seeds;
tests/parallel_grading.py), and a wrong entry runs only the checks it lists. Set DROPOUT_LAB_BANK_SEED to move
the 20 base seeds (default 0..19).
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from autograder.bank import load_bank, write_submission
from autograder.conventions import convention
from autograder.diagnoses import DIAGNOSIS_IDS
from autograder.limits import DEFAULT_LIMITS
from autograder.plugin import GradingJob, run_grading
from autograder.rubric import load_rubric
from autograder.submission import prepare
from parallel_grading import grade_in_parallel

FIRST_SEED = int(os.environ.get("DROPOUT_LAB_BANK_SEED", "0"))
SEEDS = range(FIRST_SEED, FIRST_SEED + 20)
BANK = load_bank()
WRONG = [entry for entry in BANK if entry.kind == "wrong"]
RIGHT = [entry for entry in BANK if entry.kind == "right"]
# Legitimate calls take milliseconds, but a busy machine can stall one for longer: every entry gets
# the grader's own deadlines, except the endless-loop ones, whose short deadline keeps them cheap.
SHORT_LIMITS = replace(DEFAULT_LIMITS, call_seconds=0.5)


@pytest.fixture(scope="module")
def bank_results(tmp_path_factory):
    rubric = load_rubric()
    root = tmp_path_factory.mktemp("bank")
    groups, endless = [], []
    for entry in BANK:
        folder = write_submission(entry, root / "submissions" / entry.name)
        workdir = root / "work" / entry.name
        workdir.mkdir(parents=True)
        tree = prepare(folder, workdir).tree
        only = frozenset(entry.fails) if entry.kind == "wrong" else None
        entry_jobs = [GradingJob(f"{entry.name}@{seed}", entry.name, tree, seed, only_checks=only) for seed in SEEDS]
        if entry.diagnosis == "timeout":
            endless.extend(entry_jobs)
        else:
            groups.append(entry_jobs)
    results = grade_in_parallel(groups, rubric, DEFAULT_LIMITS)
    results.update(run_grading(endless, rubric, SHORT_LIMITS))
    return results


def test_every_diagnosis_has_a_wrong_entry():
    """In this bank or in the scratch flavour's (tests/test_scratch_bank.py), whose vanilla style
    has misconceptions of its own."""
    scratch = load_bank(convention=convention("scratch", "vanilla"))
    assert DIAGNOSIS_IDS == {entry.diagnosis for entry in WRONG} | {entry.diagnosis for entry in scratch if entry.kind == "wrong"}


def test_the_bank_lists_only_known_checks():
    checks = set(load_rubric().entries)
    for entry in WRONG:
        assert set(entry.fails) <= checks, entry.name


def test_right_variants_include_the_named_implementations():
    names = {entry.name for entry in RIGHT}
    assert {"right_reference", "right_random", "right_uniform_le", "right_binomial", "right_boolean_mask",
            "right_float32_mask", "right_masked_assignment", "right_copy_at_test_time",
            "right_fc_dropout_before_relu"} <= names


@pytest.mark.parametrize("entry", WRONG, ids=lambda entry: entry.name)
def test_wrong_entry_loses_points_with_its_diagnosis(bank_results, entry):
    for seed in SEEDS:
        result = bank_results[f"{entry.name}@{seed}"]
        tests = {test.name: test for test in result.tests}
        for check in entry.fails:
            test = tests[check]
            assert test.score < test.max_score, f"{entry.name} seed {seed}: {check} gave full marks"
            assert test.diagnosis == entry.diagnosis, f"{entry.name} seed {seed}: {check} said {test.diagnosis}"
            assert test.output.startswith(test.output.split("\n")[0]) and test.output


@pytest.mark.parametrize("entry", RIGHT, ids=lambda entry: entry.name)
def test_right_variant_gets_full_marks(bank_results, entry):
    for seed in SEEDS:
        result = bank_results[f"{entry.name}@{seed}"]
        lost = {test.name: test.diagnosis for test in result.tests if test.status != "passed"}
        assert not lost and result.score == result.max_score > 0, f"{entry.name} seed {seed}: {lost}"
