"""The rubric: validated in full before grading, errors name the line at fault."""

from __future__ import annotations

import json

import pytest

from autograder.cli import main
from autograder.paths import SOLUTION_DIR
from autograder.rubric import DEFAULT_RUBRIC, RubricError, known_checks, load_rubric


def test_default_rubric_covers_every_check_in_file_order():
    rubric = load_rubric()
    assert sorted(rubric.entries) == sorted(known_checks())
    text = DEFAULT_RUBRIC.read_text()
    positions = [text.index(f"[checks.{name}]") for name in rubric.entries]
    assert positions == sorted(positions)
    assert all(entry.points >= 0 for entry in rubric.entries.values())


def write_rubric(tmp_path, edit) -> str:
    path = tmp_path / "rubric.toml"
    path.write_text(edit(DEFAULT_RUBRIC.read_text()))
    return str(path)


def line_of(path, needle) -> int:
    return next(n for n, line in enumerate(open(path).read().splitlines(), 1) if needle in line)


def test_negative_points_are_refused_with_their_line(tmp_path):
    path = write_rubric(tmp_path, lambda t: t.replace("[checks.forward_keeps_dtype]\npoints = 1", "[checks.forward_keeps_dtype]\npoints = -1"))
    with pytest.raises(RubricError) as error:
        load_rubric(path)
    assert f"rubric.toml:{line_of(path, 'points = -1')}:" in str(error.value)
    assert "negative" in str(error.value)


def test_unknown_check_is_refused_with_its_line(tmp_path):
    path = write_rubric(tmp_path, lambda t: t + "\n[checks.forward_reads_minds]\npoints = 3\n")
    with pytest.raises(RubricError) as error:
        load_rubric(path)
    assert f"rubric.toml:{line_of(path, 'forward_reads_minds')}:" in str(error.value)
    assert "unknown check 'forward_reads_minds'" in str(error.value)


def test_bad_toml_is_refused_with_its_line(tmp_path):
    path = write_rubric(tmp_path, lambda t: t.replace("[checks.forward_keeps_dtype]\npoints = 1", "[checks.forward_keeps_dtype]\npoints = = 1"))
    with pytest.raises(RubricError) as error:
        load_rubric(path)
    assert f"rubric.toml:{line_of(path, 'points = = 1')}:" in str(error.value)


def test_missing_check_and_bad_visibility_are_refused(tmp_path):
    path = write_rubric(tmp_path, lambda t: t.replace("[checks.fc_seed_honoured]\npoints = 1", ""))
    with pytest.raises(RubricError, match="fc_seed_honoured"):
        load_rubric(path)
    path = write_rubric(tmp_path, lambda t: t.replace("[checks.fc_seed_honoured]\npoints = 1", "[checks.fc_seed_honoured]\npoints = 1\nvisibility = \"secret\""))
    with pytest.raises(RubricError) as error:
        load_rubric(path)
    assert f":{line_of(path, 'secret')}:" in str(error.value)


def test_grade_refuses_a_bad_rubric_before_grading(tmp_path, capsys):
    path = write_rubric(tmp_path, lambda t: t.replace("[checks.forward_keeps_dtype]\npoints = 1", "[checks.forward_keeps_dtype]\npoints = -2"))
    assert main(["grade", str(SOLUTION_DIR), "--rubric", path]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "nothing was graded" in captured.err and "rubric.toml:" in captured.err


def test_own_rubric_sets_points_visibility_and_partial_credit(tmp_path, capsys):
    def edit(text):
        text = text.replace("[checks.forward_keep_fraction]\npoints = 3", "[checks.forward_keep_fraction]\npoints = 30\nvisibility = \"after_published\"")
        return text
    path = write_rubric(tmp_path, edit)
    assert main(["grade", str(SOLUTION_DIR), "--rubric", path, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    test = next(t for t in result["tests"] if t["name"] == "forward_keep_fraction")
    assert test["score"] == test["max_score"] == 30 and test["visibility"] == "after_published"
    assert result["max_score"] == load_rubric().max_score + 27


def test_partial_credit_counts_the_passed_cases_only_where_the_rubric_allows(tmp_path):
    """The network that loses its seed passes the gradient check at keep ratio 1 only: 1 of its 5 cases
    (two loss() calls at each of two keep ratios below 1, one call at keep ratio 1)."""
    from autograder.bank import load_bank, write_submission
    from autograder.grade import grade_submission

    entry = next(entry for entry in load_bank() if entry.name == "wrong_fc_seed_lost")
    folder = write_submission(entry, tmp_path / "seedless")
    partial = load_rubric()
    strict = load_rubric(write_rubric(tmp_path, lambda t: t.replace(
        "[checks.fc_gradients_match_numerical]\npoints = 4\npartial = true", "[checks.fc_gradients_match_numerical]\npoints = 4")))
    score = lambda rubric: next(t.score for t in grade_submission(folder, rubric).tests if t.name == "fc_gradients_match_numerical")  # noqa: E731
    assert score(partial) == round(4 / 5, 2)
    assert score(strict) == 0
