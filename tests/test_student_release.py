"""The student checker in the release: built from the grader's code, public checks only, the
grader's verdicts.

The release is written for real (``release``'s own functions) into a temporary folder, and its
checker runs there as a student runs it: ``python -m dropout_lab_check check`` in a separate
process, importing nothing from the kit. Its results are compared with the kit's sandboxed grader
on the same files.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.bank import load_bank, write_submission
from autograder.grade import grade_submission
from autograder.paths import ASSIGNMENT_DIR, GRADED_FILES, NOTEBOOK_NAME, REPO_ROOT, SOLUTION_DIR
from autograder.regions import HIDDEN_BEGIN, HIDDEN_END, SOLUTION_BEGIN, SOLUTION_END, find_regions
from autograder.release import expected_tree, write_tree
from autograder.rubric import CHECKS_DIR, load_rubric
from autograder.student_release import PACKAGE, CheckerBuildError, _verify_imports

# Wrong entries whose public verdicts are compared: a layer bug, a bug a hidden check catches too,
# a network bug, a crash, a file that does not import, an endless loop and a huge allocation.
WRONG = ("wrong_vanilla_dropout", "wrong_mask_shared_across_batch", "wrong_fc_dropout_on_input", "wrong_crash",
         "wrong_does_not_import", "wrong_timeout", "wrong_memory")


@pytest.fixture(scope="module")
def released():
    """What release writes, by relative path."""
    return expected_tree()


@pytest.fixture(scope="module")
def release_dir(released, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("student") / "dropout"
    write_tree(released, folder)
    return folder


def public_and_hidden():
    rubric = load_rubric()
    public = [name for name, entry in rubric.entries.items() if entry.visibility == "visible"]
    return rubric, public, [name for name in rubric.entries if name not in public]


def student_tree(release_dir: Path, folder: Path, graded_from: Path | None) -> Path:
    """A student's folder: the release, with the graded files of ``graded_from`` when given."""
    shutil.copytree(release_dir, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if graded_from is not None:
        for graded in GRADED_FILES:
            shutil.copyfile(graded_from / graded, folder / graded)
    return folder


def student_environment() -> dict[str, str]:
    """The environment a student's terminal has: nothing that points Python at the kit, and Python
    keeps the bytecode it compiles (a fresh environment installed with --no-compile would otherwise
    compile numpy, matplotlib and the kernel's modules again in every process)."""
    return {name: value for name, value in os.environ.items()
            if name not in ("PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")}


def start_checker(python: str, folder: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([python, "-m", PACKAGE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, encoding="utf-8", cwd=cwd or folder, stdin=subprocess.DEVNULL,
                            env=student_environment())


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_checker(python: str, folder: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return finish(start_checker(python, folder, *args, cwd=cwd))


def grader_public_json(path: Path) -> dict:
    rubric, public, _ = public_and_hidden()
    return grade_submission(path, rubric, only_checks=frozenset(public)).to_json()


def comparable(test: dict) -> dict:
    """What a student is shown of a check, and what replays it."""
    return {key: test[key] for key in ("name", "score", "max_score", "status", "output")} | {
        "diagnosis": test["extra_data"]["diagnosis"], "seeds": test["extra_data"]["seeds"]}


NETWORK_NOTE = "the network checks (fc_*) ran on your own dropout layer"


def assert_same_as_grader(python: str, folder: Path) -> dict:
    """The checker's JSON on ``folder`` has the grader's public verdicts, points and sentences."""
    checker = start_checker(python, folder, "check", str(folder), "--format", "json")
    try:
        graded = grader_public_json(folder)  # meanwhile: separate processes, each on its own copy
    finally:
        result = finish(checker)
    assert result.returncode in (0, 1), result.stderr
    checked = json.loads(result.stdout)
    _, public, _ = public_and_hidden()
    assert [test["name"] for test in checked["tests"]] == public
    # The checker runs the network checks on the student's own layer (a release holds no correct
    # dropout): where the layer fails its checks, the network's verdicts may differ, and it says so.
    layer_failed = any(test["status"] != "passed" and not test["name"].startswith("fc_") for test in graded["tests"])

    def comparable_tests(tests):
        return [comparable(test) for test in tests if not (layer_failed and test["name"].startswith("fc_"))]

    assert comparable_tests(checked["tests"]) == comparable_tests(graded["tests"])
    notes = checked["extra_data"]["notes"]  # the text output prints the same notes (see the unfilled tree's test)
    if not layer_failed:
        assert (checked["score"], checked["max_score"]) == (graded["score"], graded["max_score"])
        assert notes == []
    else:
        assert len(notes) == 1 and NETWORK_NOTE in notes[0]
    assert result.returncode == (0 if checked["score"] == checked["max_score"] else 1)
    return checked


# -- what the release holds ---------------------------------------------------------------------------
def test_committed_release_holds_the_checker(released):
    names = set(released)
    assert {f"{PACKAGE}/__main__.py", f"{PACKAGE}/checks/test_forward.py", f"{PACKAGE}/operations.py",
            f"{PACKAGE}/rubric.toml", "README.md", "requirements.txt", NOTEBOOK_NAME} <= names
    for name, content in released.items():
        assert (ASSIGNMENT_DIR / name).read_bytes() == content, name


def _distinctive(lines, elsewhere: set[str], length: int = 20) -> set[str]:
    return {line.strip() for line in lines if len(line.strip()) >= length and line.strip() not in elsewhere}


def hidden_check_lines() -> dict[str, set[str]]:
    """For each hidden check, the lines of its code that no public part of the checks has."""
    _, _, hidden = public_and_hidden()
    spans, public_lines = {}, set()
    for module in sorted(CHECKS_DIR.glob("*.py")):  # helpers' lines are public too
        text = module.read_text(encoding="utf-8")
        lines = text.splitlines()
        taken = set()
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef) and node.name[len("test_"):] in hidden:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
                spans[node.name[len("test_"):]] = lines[first:node.end_lineno]
                taken |= set(range(first, node.end_lineno))
        public_lines |= {line.strip() for number, line in enumerate(lines) if number not in taken}
    return {name: _distinctive(lines, public_lines) for name, lines in spans.items()}


def notebook_block_lines(begin: str, end: str) -> set[str]:
    """Distinctive lines between nbgrader's markers in the solution notebook."""
    notebook = nbformat.read(SOLUTION_DIR / NOTEBOOK_NAME, as_version=4)
    inside, outside = [], set()
    for cell in notebook.cells:
        within = False
        for line in cell.source.splitlines():
            if line.strip() == begin:
                within = True
            elif line.strip() == end:
                within = False
            elif within:
                inside.append(line)
            else:
                outside.add(line.strip())
    return _distinctive(inside, outside)


def reference_lines() -> set[str]:
    """Every line of code in the solution's student regions."""
    found = set()
    for graded in GRADED_FILES:
        text = (SOLUTION_DIR / graded).read_text(encoding="utf-8")
        lines = text.splitlines()
        for region in find_regions(text):
            found |= {line.strip() for line in lines[region.start + 1 : region.end] if line.strip()}
    return found


def test_release_holds_no_hidden_check_no_answer_and_no_reference_code(released):
    _, _, hidden = public_and_hidden()
    assert hidden, "the default rubric has hidden checks; this test must see them"
    code = hidden_check_lines()
    assert all(code.values())
    hidden_tests = notebook_block_lines(HIDDEN_BEGIN, HIDDEN_END)
    answers = notebook_block_lines(SOLUTION_BEGIN, SOLUTION_END)
    assert hidden_tests and answers
    references = reference_lines()
    leaks = []
    for name, content in released.items():
        text = content.decode("utf-8")
        for check in hidden:
            if check in text:
                leaks.append(f"{name}: names the hidden check {check}")
        if name.endswith(".ipynb"):
            notebook = nbformat.reads(text, as_version=4)
            lines = [line for cell in notebook.cells for line in cell.source.splitlines()]
        else:
            lines = text.splitlines()
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            for check, check_lines in code.items():
                if stripped in check_lines:
                    leaks.append(f"{name}:{number}: code of the hidden check {check}: {stripped}")
            if stripped in hidden_tests:
                leaks.append(f"{name}:{number}: a hidden notebook test: {stripped}")
            if stripped in answers:
                leaks.append(f"{name}:{number}: a model answer: {stripped}")
            if stripped in references:
                leaks.append(f"{name}:{number}: reference code of a student region: {stripped}")
    assert leaks == []
    assert not any(name.startswith(("solution/", "autograder/")) or "/bank/" in name for name in released)


def test_release_check_guards_the_checker(tmp_path):
    copy = tmp_path / "assignment"
    shutil.copytree(ASSIGNMENT_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    forward = copy / PACKAGE / "checks" / "test_forward.py"
    forward.write_text(forward.read_text(encoding="utf-8") + "\n# edited by hand\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "autograder", "release", "--check", "--assignment", str(copy)],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 1 and f"differs: {forward}" in result.stderr


def test_a_grader_change_the_checker_cannot_follow_stops_the_release():
    files = {"plugin.py": "from dropout_lab_check.runner import Child, bwrap_status\n",
             "runner.py": "class Child:\n    pass\n"}
    with pytest.raises(CheckerBuildError, match="imports bwrap_status from dropout_lab_check.runner"):
        _verify_imports(files, [("plugin.py", "dropout_lab_check.runner", ["Child", "bwrap_status"])])
    with pytest.raises(CheckerBuildError, match="does not ship"):
        _verify_imports(files, [("plugin.py", "dropout_lab_check.sandbox", ["Child"])])


# -- the checker's verdicts are the grader's -----------------------------------------------------------
def test_checker_on_the_solution_gives_full_public_marks(release_dir, tmp_path):
    folder = student_tree(release_dir, tmp_path / "filled", SOLUTION_DIR)
    checked = assert_same_as_grader(sys.executable, folder)
    assert checked["score"] == checked["max_score"] > 0


def test_checker_on_the_untouched_release_gives_zero_and_names_the_blocks(release_dir, tmp_path):
    folder = student_tree(release_dir, tmp_path / "unfilled", None)
    text_run = start_checker(sys.executable, folder, "check")  # the text output, alongside the JSON one
    checked = assert_same_as_grader(sys.executable, folder)
    assert checked["score"] == 0
    text = finish(text_run).stdout
    assert "fill in the first TODO block of dropout_forward" in text
    assert NETWORK_NOTE in text.replace("\n", " ")  # the layer failed its checks, so the note is there
    _, _, hidden = public_and_hidden()
    rubric = load_rubric()
    hidden_points = sum(rubric.entries[name].points for name in hidden)
    assert f"Not run here: {len(hidden)} hidden check(s) worth {hidden_points:g} of {rubric.max_score:g} points" in text
    assert not any(name in text for name in hidden)


@pytest.mark.parametrize("name", WRONG)
def test_checker_gives_the_graders_public_verdicts_on_wrong_work(name, release_dir, tmp_path):
    entry = {entry.name: entry for entry in load_bank()}[name]
    graded = write_submission(entry, tmp_path / "graded")
    folder = student_tree(release_dir, tmp_path / name, graded)
    checked = assert_same_as_grader(sys.executable, folder)
    assert checked["score"] < checked["max_score"]
    if name == "wrong_timeout":
        # The layer's endless loop timed out in its own checks, so the network checks, which run on
        # that layer here, are not run: each fails at once instead of waiting out the loop again.
        network = [test for test in checked["tests"] if test["name"].startswith("fc_")]
        assert network and all(test["status"] == "failed" and test["extra_data"]["diagnosis"] == "timeout"
                               and "not run: your dropout layer did not finish in time" in test["output"]
                               for test in network), network


def test_checker_refuses_a_folder_without_nnlab(release_dir, tmp_path):
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    result = run_checker(sys.executable, release_dir, "check", str(empty))
    assert result.returncode == 2 and "holds no nnlab/layers.py" in result.stderr and not result.stdout


def test_student_readme_and_requirements_stand_on_their_own(released):
    readme = released["README.md"].decode("utf-8")
    requirements = released["requirements.txt"].decode("utf-8")
    for kit_only in ("get_datasets.sh", "autograder", "setup.sh", "solution/", "assignment/"):
        assert kit_only not in readme and kit_only not in requirements, kit_only
    for command in (f"python -m {PACKAGE} check", f"python -m {PACKAGE} collect", "pip install -r requirements.txt",
                    "Python 3.10"):
        assert command in readme, command
    named = {line.split(">=")[0].strip() for line in requirements.splitlines() if line.strip() and not line.startswith("#")}
    assert {"numpy", "pytest"} <= named  # the checker's needs; the rest runs and opens the notebook
    assert "autograder" not in named and "nnlab" not in named
