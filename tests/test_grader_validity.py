"""What a grade means: full marks only for correct dropout, and no credit for what was never
exercised or for a check that crashed. Real grades of bank entries, in the sandboxed child."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.bank import load_bank, write_submission
from autograder.grade import grade_submission
from autograder.plugin import PartialCredit
from autograder.regions import fill_regions
from autograder.rubric import load_rubric

RUBRIC = load_rubric()
BANK = {entry.name: entry for entry in load_bank()}
# What a layer whose training output is all zeros may still earn: test mode, hygiene, the network.
NEVER_EXERCISED_ALLOWANCE = {"forward_test_mode_output", "backward_test_mode_passes_dout", "forward_keeps_dtype",
                             "forward_does_not_change_x"} | {name for name in RUBRIC.entries if name.startswith("fc_")}


def graded(name: str, folder: Path):
    return grade_submission(write_submission(BANK[name], folder), RUBRIC)


def test_a_layer_whose_training_output_is_all_zero_earns_only_test_mode_hygiene_and_network_points(tmp_path):
    result = graded("wrong_drops_everything", tmp_path / "zeros")
    earned = {test.name for test in result.tests if test.score > 0}
    assert earned <= NEVER_EXERCISED_ALLOWANCE, earned - NEVER_EXERCISED_ALLOWANCE
    assert result.score <= sum(RUBRIC.entries[name].points for name in NEVER_EXERCISED_ALLOWANCE)
    lost = [test for test in result.tests if test.status == "failed"]
    assert lost and all(test.diagnosis in ("drops_everything", "p_as_drop_probability") for test in lost), \
        {test.name: test.diagnosis for test in lost}


def test_partial_credit_counts_every_case_a_check_would_have_run():
    credit = PartialCredit()
    credit.expect(6)
    credit.case(True)
    credit.case(True)  # then the check stops: a crash, or a misconception raised mid-way
    assert credit.fraction == pytest.approx(2 / 6)
    credit = PartialCredit()
    credit.case(True)
    assert credit.fraction == 1.0  # a check that declares nothing is judged on what it ran


def test_a_crash_pays_no_more_than_a_wrong_answer_in_the_same_case(tmp_path):
    crash = {test.name: test for test in graded("wrong_crash_at_high_p", tmp_path / "crash").tests}
    # The same layer, answering wrongly (p taken as the drop probability) where the other one crashed.
    wrong_entry = BANK["wrong_crash_at_high_p"]
    wrong_body = wrong_entry.regions["dropout_forward.train"].replace(
        'raise ValueError("this dropout only supports p <= 0.8")',
        "mask = (np.random.rand(*x.shape) < 1 - p) / (1 - p)\n    out = x * mask\n    return out.astype(x.dtype), (dropout_param, mask)")
    folder = write_submission(wrong_entry, tmp_path / "wrong")
    layers = folder / "nnlab" / "layers.py"
    layers.write_text(fill_regions(layers.read_text(), [wrong_body, None, None], "layers.py"))
    wrong = {test.name: test for test in grade_submission(folder, RUBRIC).tests}
    keep = crash["forward_keep_fraction"]
    assert keep.diagnosis == "crash"
    # Seeded cases run p = 0.2, 0.7 and then crash at 0.9: 2 of the 6 cases passed.
    assert keep.score == pytest.approx(round(keep.max_score * 2 / 6, 2))
    for name in ("forward_keep_fraction", "forward_train_values_are_zero_or_scaled"):
        assert crash[name].score <= wrong[name].score < wrong[name].max_score, name


def test_the_sandboxed_tree_holds_the_library_only(tmp_path):
    """The release ships a student checker with a correct dropout inside (for its network checks):
    a submission's private tree must not offer it to the student's code."""
    from autograder.paths import ASSIGNMENT_DIR
    from autograder.submission import prepare

    assert (ASSIGNMENT_DIR / "dropout_lab_check").is_dir()
    tree = prepare(write_submission(BANK["right_reference"], tmp_path / "s"), tmp_path / "work").tree
    assert sorted(path.name for path in tree.iterdir()) == ["nnlab"]
