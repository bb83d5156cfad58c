"""End-to-end tests of `python -m autograder grade`: real submissions, real child processes."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.cli import main
from autograder.paths import ASSIGNMENT_DIR, GRADED_FILES, REPO_ROOT, SOLUTION_DIR
from autograder.rubric import load_rubric


def grade_json(capsys, *args) -> dict:
    assert main(["grade", *map(str, args), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def zip_tree(source: Path, target: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for graded in GRADED_FILES:
            archive.write(source / graded, prefix + graded)
    return target


def test_solution_gets_full_marks(capsys):
    result = grade_json(capsys, SOLUTION_DIR)
    assert result["max_score"] == load_rubric().max_score > 0
    assert result["score"] == result["max_score"]
    assert all(test["status"] == "passed" for test in result["tests"])


def test_untouched_assignment_gets_zero_with_not_implemented_everywhere(capsys):
    result = grade_json(capsys, ASSIGNMENT_DIR)
    assert result["score"] == 0
    assert {test["extra_data"]["diagnosis"] for test in result["tests"]} == {"not_implemented"}
    for test in result["tests"]:
        assert "TodoNotFilledError" in test["output"]
        assert "autograder" not in test["output"] and "Traceback" not in test["output"]


def test_text_output_has_a_line_per_check_and_the_diagnosis(capsys):
    assert main(["grade", str(ASSIGNMENT_DIR)]) == 0
    text = capsys.readouterr().out
    rubric = load_rubric()
    for name in rubric.entries:
        assert any(line.strip().startswith("\u2718 " + name) for line in text.splitlines()), name
    assert f"Score: 0 / {rubric.max_score:g}" in text
    assert "not implemented yet" in text


def test_json_has_the_gradescope_fields_with_their_types(capsys):
    result = grade_json(capsys, SOLUTION_DIR, "--seed", 7)
    assert isinstance(result["score"], float) and isinstance(result["max_score"], float)
    assert isinstance(result["execution_time"], float) and result["execution_time"] > 0
    assert isinstance(result["extra_data"], dict) and result["extra_data"]["base_seed"] == 7
    for test in result["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility", "extra_data"}
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
        assert set(test["extra_data"]) == {"diagnosis", "seeds"}
    seeded = [test for test in result["tests"] if test["extra_data"]["seeds"]]
    assert seeded and all(test["extra_data"]["seeds"]["base"] == 7 for test in seeded)


def test_the_same_seed_gives_the_same_seeds_and_another_seed_other_ones(capsys):
    first = grade_json(capsys, SOLUTION_DIR, "--seed", 11)
    again = grade_json(capsys, SOLUTION_DIR, "--seed", 11)
    other = grade_json(capsys, SOLUTION_DIR, "--seed", 12)
    seeds = lambda result: [test["extra_data"]["seeds"] for test in result["tests"]]  # noqa: E731
    assert seeds(first) == seeds(again) != seeds(other)


@pytest.mark.parametrize("prefix", ["", "dropout-lab/"])
def test_zip_submission_at_the_root_or_under_one_folder(capsys, tmp_path, prefix):
    archive = zip_tree(SOLUTION_DIR, tmp_path / "alice.zip", prefix)
    result = grade_json(capsys, archive)
    assert result["score"] == result["max_score"]
    assert result["extra_data"]["submission"] == "alice"


def test_folder_submission_under_one_top_level_folder(capsys, tmp_path):
    for graded in GRADED_FILES:
        target = tmp_path / "bob" / "assignment" / graded
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((SOLUTION_DIR / graded).read_bytes())
    result = grade_json(capsys, tmp_path / "bob")
    assert result["score"] == result["max_score"]


def test_only_graded_files_are_taken_from_the_submission(capsys, tmp_path):
    """A student's own copy of a given file (here a scaffold that never complains) is ignored."""
    for graded in GRADED_FILES:
        (tmp_path / graded).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / graded).write_bytes((ASSIGNMENT_DIR / graded).read_bytes())
    (tmp_path / "nnlab" / "scaffold.py").write_text(
        "class TodoNotFilledError(NotImplementedError): pass\ndef require_filled(value, where, block): return 0\n"
    )
    result = grade_json(capsys, tmp_path)
    assert result["score"] == 0


def test_syntax_error_gets_a_result_with_the_students_line(capsys, tmp_path):
    for graded in GRADED_FILES:
        (tmp_path / graded).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / graded).write_bytes((SOLUTION_DIR / graded).read_bytes())
    layers = tmp_path / "nnlab" / "layers.py"
    layers.write_text(layers.read_text().replace("out = x * mask", "out = x * (mask", 1))
    result = grade_json(capsys, tmp_path)
    assert result["score"] == 0
    for test in result["tests"]:
        assert test["extra_data"]["diagnosis"] == "does_not_import"
        assert "SyntaxError" in test["output"] and 'File "nnlab/layers.py", line' in test["output"]
        assert "child_driver" not in test["output"]


def test_import_error_shows_only_the_students_frames(capsys, tmp_path):
    for graded in GRADED_FILES:
        (tmp_path / graded).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / graded).write_bytes((SOLUTION_DIR / graded).read_bytes())
    fc_net = tmp_path / "nnlab" / "classifiers" / "fc_net.py"
    fc_net.write_text(fc_net.read_text().replace("import numpy as np", "import numpy as np\nimport torch_is_not_here", 1))
    result = grade_json(capsys, tmp_path)
    test = result["tests"][0]
    assert test["extra_data"]["diagnosis"] == "does_not_import"
    assert "ModuleNotFoundError" in test["output"] and 'File "nnlab/classifiers/fc_net.py", line' in test["output"]
    assert "importlib" not in test["output"] and "autograder" not in test["output"]


def test_missing_graded_file_is_graded_as_its_stub_and_named(capsys, tmp_path):
    (tmp_path / "nnlab").mkdir()
    (tmp_path / "nnlab" / "layers.py").write_bytes((SOLUTION_DIR / "nnlab" / "layers.py").read_bytes())
    result = grade_json(capsys, tmp_path)
    assert result["extra_data"]["missing_files"] == ["nnlab/classifiers/fc_net.py"]
    for test in result["tests"]:  # layers.py was there and right; fc_net.py was its empty stub
        expected = "not_implemented" if test["name"].startswith("fc_") else None
        assert test["extra_data"]["diagnosis"] == expected, test["name"]
    assert 0 < result["score"] < result["max_score"]


def test_unsafe_zip_is_refused_with_a_result(capsys, tmp_path):
    archive = tmp_path / "mallory.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../nnlab/layers.py", "x = 1\n")
    result = grade_json(capsys, archive)
    assert result["score"] == 0 and "unsafe path" in result["extra_data"]["error"]


def test_symlink_leaving_the_submission_is_refused(capsys, tmp_path):
    outside = tmp_path / "secret.py"
    outside.write_text("x = 1\n")
    (tmp_path / "eve" / "nnlab").mkdir(parents=True)
    (tmp_path / "eve" / "nnlab" / "layers.py").symlink_to(outside)
    result = grade_json(capsys, tmp_path / "eve")
    assert result["score"] == 0 and "outside the submission" in result["extra_data"]["error"]


def test_command_line_exit_codes():
    """The real command: 0 with a result (even a zero score), 2 with a message when it cannot run."""
    run = lambda *args: subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, cwd=REPO_ROOT)  # noqa: E731
    zero = run("grade", str(ASSIGNMENT_DIR), "--format", "json")
    assert zero.returncode == 0 and json.loads(zero.stdout)["score"] == 0
    missing = run("grade", "/no/such/submission")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_pytest_runs_the_checks_directly_on_a_submission():
    """`pytest autograder/checks --submission PATH`: the same checks and feedback, pytest's exit code."""
    command = [sys.executable, "-m", "pytest", "autograder/checks", "-q", "-p", "no:cacheprovider", "--submission"]
    passed = subprocess.run([*command, str(SOLUTION_DIR)], capture_output=True, text=True, cwd=REPO_ROOT)
    maximum = f"{load_rubric().max_score:g}"
    assert passed.returncode == 0 and f"Score: {maximum} / {maximum}" in passed.stdout
    failed = subprocess.run([*command, str(ASSIGNMENT_DIR), "--grade-seed", "3"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert failed.returncode == 1 and f"Score: 0 / {maximum}" in failed.stdout and "not implemented yet" in failed.stdout


# -- the sandbox's protections in the output ------------------------------------------------------
def grade_command(*args, **environment) -> subprocess.CompletedProcess:
    """`grade` in a fresh interpreter, so that the environment decides whether bubblewrap is used."""
    import os

    return subprocess.run([sys.executable, "-m", "autograder", "grade", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, **environment})


def test_with_bubblewrap_nothing_is_missing_and_nothing_is_said():
    text = grade_command(SOLUTION_DIR)
    assert text.returncode == 0, text.stderr
    assert "WITHOUT the full sandbox" not in text.stdout + text.stderr
    data = json.loads(grade_command(SOLUTION_DIR, "--format", "json").stdout)
    assert data["extra_data"]["missing_protections"] == []
    assert "bubblewrap" in data["extra_data"]["protections"]


def test_without_bubblewrap_one_folder_is_graded_and_the_text_names_what_was_missing():
    result = grade_command(SOLUTION_DIR, DROPOUT_LAB_BWRAP="0")
    assert result.returncode == 0, result.stderr  # grading one folder is not refused
    max_score = load_rubric().max_score
    assert f"Score: {max_score:g} / {max_score:g}" in result.stdout
    warning = result.stdout[result.stdout.index("Warning: graded WITHOUT the full sandbox"):]
    for protection in ("bubblewrap", "no network", "private filesystem view"):
        assert protection in warning
    assert "DROPOUT_LAB_BWRAP" in warning  # why, and what to do about it
    # In JSON the same warning goes to stderr, and the result lists what was missing.
    as_json = grade_command(SOLUTION_DIR, "--format", "json", DROPOUT_LAB_BWRAP="0")
    assert as_json.returncode == 0
    assert "no network" in json.loads(as_json.stdout)["extra_data"]["missing_protections"]
    assert "WITHOUT the full sandbox" in as_json.stderr
