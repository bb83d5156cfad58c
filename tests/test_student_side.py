"""The student's side: `check` says what the grader says about the public checks, and `collect`
builds the submission zip, refusing work that is not ready.

Buggy submissions come from the self-validation bank (autograder/bank); the complete student tree
is the solution's graded files with the solution notebook run for real in a Jupyter kernel.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.bank import load_bank, write_submission
from autograder.cli import main
from autograder.paths import ASSIGNMENT_DIR, GRADED_FILES, NOTEBOOK_NAME, SOLUTION_DIR
from autograder.regions import REGION_NAMES
from autograder.rubric import load_rubric
from autograder.student import check

# Bank entries (a layer bug, an FC bug, a crash, and one that a hidden check catches too) -> whether
# a public check fails: every one does, so that failures are compared, not passes only.
BUGGY = {"wrong_vanilla_dropout": True, "wrong_mask_shared_across_batch": True,
         "wrong_fc_dropout_on_input": True, "wrong_crash": True}


def run_json(capsys, *args) -> tuple[int, dict]:
    code = main([*map(str, args), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def run_text(capsys, *args) -> tuple[int, str]:
    code = main(list(map(str, args)))
    return code, capsys.readouterr().out


@pytest.fixture(scope="module")
def bank():
    return {entry.name: entry for entry in load_bank()}


@pytest.mark.parametrize("name", sorted(BUGGY))
def test_check_gives_the_graders_verdicts_on_public_checks(name, bank, tmp_path, capsys):
    submission = write_submission(bank[name], tmp_path / name)
    rubric = load_rubric()
    public = [n for n, e in rubric.entries.items() if e.visibility == "visible"]
    hidden = [n for n in rubric.entries if n not in public]
    _, graded = run_json(capsys, "grade", submission)
    code, checked = run_json(capsys, "check", submission)
    assert [t["name"] for t in checked["tests"]] == public
    graded_by_name = {t["name"]: t for t in graded["tests"]}
    for test in checked["tests"]:
        assert test == graded_by_name[test["name"]], test["name"]  # score, status, output, diagnosis, seeds
    assert checked["extra_data"]["not_run"] == hidden
    public_failure = any(t["status"] == "failed" for t in checked["tests"])
    assert public_failure == BUGGY[name]
    assert code == (1 if public_failure else 0)


def test_check_text_has_the_graders_sentences_and_no_hidden_check(bank, tmp_path, capsys):
    submission = write_submission(bank["wrong_vanilla_dropout"], tmp_path / "student")
    rubric = load_rubric()
    hidden = [n for n, e in rubric.entries.items() if e.visibility != "visible"]
    _, graded = run_json(capsys, "grade", submission)
    _, grade_text = run_text(capsys, "grade", submission)
    _, check_text = run_text(capsys, "check", submission)
    failed = [t for t in graded["tests"] if t["status"] == "failed" and t["name"] not in hidden]
    assert failed
    for test in failed:
        assert any(line.strip().startswith("\u2718 " + test["name"]) for line in check_text.splitlines())
        for line in test["output"].splitlines():
            assert line in check_text and line in grade_text
    assert not any(name in check_text for name in hidden)
    assert f"Not run here: {len(hidden)} hidden check(s)" in check_text


def test_check_on_the_solution_passes_and_exits_zero(capsys):
    code, text = run_text(capsys, "check", SOLUTION_DIR)
    public_points = sum(e.points for e in load_rubric().entries.values() if e.visibility == "visible")
    assert code == 0 and f"Score: {public_points:g} / {public_points:g}" in text


def test_notebook_check_prints_what_the_command_prints(bank, tmp_path, capsys):
    submission = write_submission(bank["wrong_vanilla_dropout"], tmp_path / "student")
    _, command_text = run_text(capsys, "check", submission)
    assert check(submission) is None
    assert capsys.readouterr().out == command_text
    assert "no 1/p" in command_text.lower() or "scal" in command_text.lower()


# -- collect --------------------------------------------------------------------------------------
def student_tree(folder: Path) -> Path:
    """The assignment tree with the solution's graded files: the library is done, the notebook not run."""
    shutil.copytree(ASSIGNMENT_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for graded in GRADED_FILES:
        shutil.copyfile(SOLUTION_DIR / graded, folder / graded)
    return folder


@pytest.fixture(scope="module")
def finished_tree(executed_notebooks) -> Path:
    """A finished student tree: solution code and the notebook executed in a real kernel (the run
    that tests/test_notebook.py checks; the tests here copy the tree before changing it)."""
    run = executed_notebooks["solution"]
    if run.error is not None:
        raise run.error
    return run.folder


def test_collect_refuses_the_stub_naming_every_empty_region(tmp_path, capsys):
    out = tmp_path / "submission.zip"
    assert main(["collect", str(ASSIGNMENT_DIR), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert not out.exists() and "Nothing was collected" in err
    # Each block is named by the words its file uses for it, never by an internal id.
    for words in ("the first TODO block of dropout_forward", "the second TODO block of dropout_forward",
                  "the TODO block of dropout_backward", "the first TODO block of FullyConnectedNet.loss",
                  "the second TODO block of FullyConnectedNet.loss"):
        assert f"{words} is still empty" in err
        assert words in (ASSIGNMENT_DIR / "nnlab/layers.py").read_text() + (ASSIGNMENT_DIR / "nnlab/classifiers/fc_net.py").read_text()
    assert not any(name in err for names in REGION_NAMES.values() for name in names)
    assert "was not run" in err


def test_collect_refuses_a_notebook_that_was_not_run(tmp_path, capsys):
    tree = student_tree(tmp_path / "student")
    out = tmp_path / "submission.zip"
    assert main(["collect", str(tree), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert not out.exists()
    assert "was not run (no code cell has an execution count)" in err and "TODO region" not in err


def test_collect_refuses_a_region_holding_only_comments_and_a_broken_marker(tmp_path, capsys):
    tree = student_tree(tmp_path / "student")
    layers = tree / "nnlab" / "layers.py"
    text = (ASSIGNMENT_DIR / "nnlab" / "layers.py").read_text(encoding="utf-8")
    marker = "# *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****\n"
    layers.write_text(text.replace(marker, marker + "        # TODO later\n        pass\n", 1), encoding="utf-8")
    fc_net = tree / "nnlab" / "classifiers" / "fc_net.py"
    fc_net.write_text(fc_net.read_text(encoding="utf-8").replace("END OF YOUR CODE (DO NOT", "END OF YOUR CODE (DO", 1),
                      encoding="utf-8")
    assert main(["collect", str(tree), "--out", str(tmp_path / "s.zip")]) == 1
    err = capsys.readouterr().err
    assert "the first TODO block of dropout_forward is still empty" in err
    broken = next(number for number, line in enumerate(fc_net.read_text(encoding="utf-8").splitlines(), start=1)
                  if "END OF YOUR CODE (DO DELETE" in line)
    assert f"fc_net.py:{broken}: a marker line was changed" in err and "Restore the marker lines" in err


@pytest.mark.slow
def test_collect_refuses_a_notebook_with_an_error_or_a_cell_not_run(finished_tree, tmp_path, capsys):
    tree = tmp_path / "student"
    shutil.copytree(finished_tree, tree)
    notebook = nbformat.read(tree / NOTEBOOK_NAME, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    code_cells[-1].execution_count = None
    code_cells[1].outputs.append(nbformat.v4.new_output("error", ename="ValueError", evalue="bad p", traceback=[]))
    nbformat.write(notebook, tree / NOTEBOOK_NAME)
    assert main(["collect", str(tree), "--out", str(tmp_path / "s.zip")]) == 1
    err = capsys.readouterr().err
    # Cells are named by the heading they sit under, as Jupyter shows them, not by a number.
    assert 'the first code cell under "Vanilla versus inverted dropout"' in err and "not run" in err
    assert 'the first code cell under "Dropout" (it starts "# Set-up' in err
    assert "ends in ValueError: bad p" in err
    assert "cell 2" not in err and "cell 21" not in err


@pytest.mark.slow
@pytest.mark.parametrize("placeholder", ["YOUR ANSWER HERE", "*Write your answer here.*", "  "])
def test_collect_refuses_an_unanswered_question(placeholder, finished_tree, tmp_path, capsys):
    """nbgrader's placeholder counts as unanswered, like release's own and an emptied cell."""
    tree = tmp_path / "student"
    shutil.copytree(finished_tree, tree)
    notebook = nbformat.read(tree / NOTEBOOK_NAME, as_version=4)
    answers = [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("solution")]
    answers[1].source = placeholder
    nbformat.write(notebook, tree / NOTEBOOK_NAME)
    assert main(["collect", str(tree), "--out", str(tmp_path / "s.zip")]) == 1
    err = capsys.readouterr().err
    assert 'the answer cell of "Inline question 2": this inline question is not answered yet' in err
    assert "Inline question 1" not in err and "Inline question 3" not in err


@pytest.mark.slow
def test_collect_builds_the_zip_that_grades_to_full_marks(finished_tree, tmp_path, capsys):
    out = tmp_path / "upload" / "dropout_submission.zip"
    assert main(["collect", str(finished_tree), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == sorted([*GRADED_FILES, NOTEBOOK_NAME])
        for graded in GRADED_FILES:
            assert archive.read(graded) == (finished_tree / graded).read_bytes()
        notebook = nbformat.reads(archive.read(NOTEBOOK_NAME).decode("utf-8"), as_version=4)
    assert all(c.execution_count for c in notebook.cells if c.cell_type == "code" and c.source.strip())
    html = out.with_name("Dropout.html")
    assert html.is_file() and "<html" in html.read_text(encoding="utf-8")[:2000].lower()
    assert "data:image/png;base64" in html.read_text(encoding="utf-8")  # the plots are inside the page
    pdf = out.with_name("Dropout.pdf")
    if pdf.exists():
        assert pdf.read_bytes().startswith(b"%PDF") and f"Wrote {pdf}" in printed
    else:
        assert "No PDF: this machine cannot make one" in printed and "print it to PDF" in printed
    code, graded = run_json(capsys, "grade", out)
    assert code == 0 and graded["score"] == graded["max_score"] == load_rubric().max_score


# -- the wrong folder ------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["check", "collect"])
def test_a_folder_without_nnlab_is_refused_not_replaced(command, tmp_path, monkeypatch, capsys):
    """Run from a folder without nnlab/, neither command falls back on the kit's untouched tree."""
    monkeypatch.chdir(tmp_path)
    assert main([command]) == 2
    captured = capsys.readouterr()
    assert "holds no nnlab/" in captured.err and str(tmp_path) in captured.err
    assert "Score" not in captured.out and not (tmp_path / "dropout_submission.zip").exists()
