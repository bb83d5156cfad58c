"""The Gradescope export end to end: build the autograder zip, unpack it into a fake /autograder,
run its run_autograder (with this venv's Python, nothing installed) on real submissions, and hold
each results.json to Gradescope's published results format.

Gradescope's format (gradescope-autograders.readthedocs.io, "Autograder Specifications"): top-level
score (optional when every test has one), execution_time (seconds), output, output_format,
test_output_format, test_name_format, visibility, stdout_visibility, extra_data, tests, leaderboard;
each test: score, max_score, status ("passed"/"failed"), name, name_format, number, output,
output_format, tags, visibility, extra_data. Visibility values: hidden, after_due_date,
after_published, visible. The validator below is stricter than Gradescope: it refuses keys the
spec does not name.
"""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.cli import main
from autograder.gradescope import KIT_DIR
from autograder.paths import ASSIGNMENT_DIR, GRADED_FILES, SOLUTION_DIR
from autograder.regions import find_regions
from autograder.rubric import DEFAULT_RUBRIC, load_rubric

VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}
OUTPUT_FORMATS = {"text", "html", "simple_format", "md", "ansi"}
TOP_LEVEL = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
             "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST_KEYS = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
             "visibility", "extra_data"}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate_results(text: str) -> dict:
    """Gradescope's results.json rules; returns the parsed object or fails the test naming the rule."""
    def no_constants(name):
        raise AssertionError(f"results.json holds {name}, which is not JSON")

    data = json.loads(text, parse_constant=no_constants)
    assert isinstance(data, dict), "results.json must hold one JSON object"
    assert not set(data) - TOP_LEVEL, f"keys Gradescope does not know: {set(data) - TOP_LEVEL}"
    tests = data.get("tests", [])
    assert isinstance(tests, list)
    assert "score" in data or (tests and all("score" in t for t in tests)), "score at the top or on every test"
    if "score" in data:
        assert _number(data["score"])
    if "execution_time" in data:
        assert _number(data["execution_time"]) and data["execution_time"] >= 0
    for key in ("output",):
        if key in data:
            assert isinstance(data[key], str)
    for key in ("output_format", "test_output_format", "test_name_format"):
        if key in data:
            assert data[key] in OUTPUT_FORMATS
    for key in ("visibility", "stdout_visibility"):
        if key in data:
            assert data[key] in VISIBILITIES, f"{key} = {data[key]!r}"
    if "extra_data" in data:
        assert isinstance(data["extra_data"], dict)
    for entry in data.get("leaderboard", []):
        assert isinstance(entry, dict) and isinstance(entry.get("name"), str) and "value" in entry
    for test in tests:
        assert isinstance(test, dict)
        assert not set(test) - TEST_KEYS, f"test keys Gradescope does not know: {set(test) - TEST_KEYS}"
        for key in ("score", "max_score"):
            if key in test:
                assert _number(test[key]) and test[key] >= 0, f"{test.get('name')}: {key}"
        if "status" in test:
            assert test["status"] in ("passed", "failed")
        for key in ("name", "number", "output"):
            if key in test:
                assert isinstance(test[key], str), f"{test.get('name')}: {key} must be a string"
        for key in ("name_format", "output_format"):
            if key in test:
                assert test[key] in OUTPUT_FORMATS
        if "tags" in test:
            assert isinstance(test["tags"], list) and all(isinstance(tag, str) for tag in test["tags"])
        if "visibility" in test:
            assert test["visibility"] in VISIBILITIES, f"{test.get('name')}: visibility {test['visibility']!r}"
        if "extra_data" in test:
            assert isinstance(test["extra_data"], dict)
    return data


def check_kit_result(data: dict, rubric) -> None:
    """What this kit promises beyond the format: one test per rubric check, consistent points."""
    assert [t["name"] for t in data["tests"]] == list(rubric.entries)
    for test in data["tests"]:
        entry = rubric.entries[test["name"]]
        assert test["max_score"] == entry.points
        assert 0 <= test["score"] <= test["max_score"]
        if test["status"] == "passed":
            assert test["score"] == test["max_score"]
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))
    assert data["extra_data"]["max_score"] == rubric.max_score
    assert data["stdout_visibility"] == "hidden"


# -- fixtures --------------------------------------------------------------------------------------
CUSTOM_RUBRIC = DEFAULT_RUBRIC.read_text(encoding="utf-8").replace(
    "[checks.forward_test_mode_output]\npoints = 2", "[checks.forward_test_mode_output]\npoints = 5"
)


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    """The zip, built through the command line with an instructor's rubric (5 points instead of 2)."""
    folder = tmp_path_factory.mktemp("gradescope")
    rubric = folder / "course-rubric.toml"
    assert "points = 5" in CUSTOM_RUBRIC
    rubric.write_text(CUSTOM_RUBRIC, encoding="utf-8")
    out = folder / "autograder.zip"
    assert main(["gradescope", str(out), "--rubric", str(rubric), "--hidden-as", "after_published"]) == 0
    return out


@pytest.fixture(scope="module")
def course_rubric(autograder_zip):
    return load_rubric(autograder_zip.parent / "course-rubric.toml")


def fake_root(tmp_path: Path, autograder_zip: Path) -> Path:
    """/autograder as Gradescope lays it out: source/ unpacked from the zip, submission/, results/."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(root / "source")
        for info in archive.infolist():  # extractall drops the mode bits; Gradescope's unzip keeps them
            mode = info.external_attr >> 16
            if mode:
                os.chmod(root / "source" / info.filename, stat.S_IMODE(mode))
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def run_autograder(root: Path, **environment: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root),
           "DROPOUT_LAB_GS_ROOT": str(root), "DROPOUT_LAB_PYTHON": sys.executable, **environment}
    script = root / "source" / "run_autograder"
    # Gradescope runs it from /autograder; so does this test (any other folder would do too).
    completed = subprocess.run([str(script)], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    results = root / "results" / "results.json"
    assert results.is_file(), f"no results.json; stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
    return completed, validate_results(results.read_text(encoding="utf-8"))


def copy_graded(source: Path, target: Path) -> None:
    for graded in GRADED_FILES:
        (target / graded).parent.mkdir(parents=True, exist_ok=True)
        (target / graded).write_bytes((source / graded).read_bytes())


# -- the zip ------------------------------------------------------------------------------------------
def test_zip_has_the_gradescope_layout_and_no_answers(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        names = set(infos)
        texts = {name: archive.read(name).decode("utf-8", "replace") for name in names}
    assert {"setup.sh", "run_autograder"} <= names
    for script in ("setup.sh", "run_autograder"):
        assert (infos[script].external_attr >> 16) & 0o111, f"{script} must be executable"
        assert texts[script].startswith("#!/usr/bin/env bash")
        subprocess.run(["bash", "-n", "-c", texts[script]], check=True)  # parses as bash
    assert all(name in ("setup.sh", "run_autograder") or name.startswith(KIT_DIR + "/") for name in names)
    for graded in GRADED_FILES:
        assert f"{KIT_DIR}/assignment/{graded}" in names
    assert f"{KIT_DIR}/autograder/grade.py" in names and f"{KIT_DIR}/autograder/checks/conftest.py" in names
    assert not any("/solution/" in n or "/bank/" in n or n.endswith("bank.py") or "__pycache__" in n for n in names)
    # No model answer anywhere in the zip: no line of the solution's filled regions appears in it,
    # except where a diagnosis sentence (shown to students anyway) quotes one.
    texts = {name: text for name, text in texts.items() if not name.endswith("autograder/diagnoses.py")}
    for graded in GRADED_FILES:
        lines = (SOLUTION_DIR / graded).read_text(encoding="utf-8").splitlines()
        for region in find_regions("\n".join(lines)):
            for line in lines[region.start + 1 : region.end]:
                if len(line.strip()) > 25 and not line.strip().startswith("#"):
                    assert not any(line.strip() in text for text in texts.values()), line
    # setup.sh installs bubblewrap and the grader's dependencies at the lock's versions.
    assert "apt-get install" in texts["setup.sh"] and "bubblewrap" in texts["setup.sh"]
    assert "py310.lock" in texts["setup.sh"] and "-c \"$lock\"" in texts["setup.sh"]
    assert texts[f"{KIT_DIR}/rubric.toml"] == CUSTOM_RUBRIC


def test_a_bad_rubric_writes_no_zip(tmp_path, capsys):
    rubric = tmp_path / "bad.toml"
    rubric.write_text("[checks.no_such_check]\npoints = 1\n", encoding="utf-8")
    out = tmp_path / "autograder.zip"
    assert main(["gradescope", str(out), "--rubric", str(rubric)]) == 2
    assert "no_such_check" in capsys.readouterr().err and not out.exists()


# -- run_autograder on submissions ------------------------------------------------------------------------
def test_solution_gets_full_marks_from_the_unpacked_kit(tmp_path, autograder_zip, course_rubric):
    root = fake_root(tmp_path, autograder_zip)
    copy_graded(SOLUTION_DIR, root / "submission")
    completed, data = run_autograder(root)
    assert completed.returncode == 0, completed.stderr
    check_kit_result(data, course_rubric)
    # 39 = the default 36 + 3: the course rubric in the zip was used, not the repo's.
    assert data["score"] == course_rubric.max_score == 39
    assert all(t["status"] == "passed" for t in data["tests"])
    hidden = {n for n, e in load_rubric().entries.items() if e.visibility == "hidden"}
    assert hidden and {t["name"] for t in data["tests"] if t["visibility"] == "after_published"} == hidden
    assert "2 shown when grades are published" in data["output"]
    assert "Score: 39 / 39" in completed.stdout  # the instructor's log
    assert "graded inside bubblewrap, with every protection of the sandbox in force" in completed.stdout
    assert data["extra_data"]["missing_protections"] == [] and "sandbox_warning" not in data["extra_data"]


def test_where_bubblewrap_cannot_run_it_grades_and_tells_instructors_only(tmp_path, autograder_zip, course_rubric):
    """Gradescope's container often forbids bubblewrap's namespaces: DROPOUT_LAB_BWRAP=0 stands for that."""
    root = fake_root(tmp_path, autograder_zip)
    copy_graded(SOLUTION_DIR, root / "submission")
    completed, data = run_autograder(root, DROPOUT_LAB_BWRAP="0")
    assert completed.returncode == 0, completed.stderr  # never refused here
    check_kit_result(data, course_rubric)
    assert data["score"] == course_rubric.max_score
    # Instructors: the run's stdout (hidden from students) and the top-level extra_data.
    assert "Warning: graded WITHOUT the full sandbox" in completed.stdout and "no network" in completed.stdout
    assert "no network" in data["extra_data"]["missing_protections"]
    assert "no network" in data["extra_data"]["sandbox_warning"]
    # The protections that need no bubblewrap were in force all the same.
    assert {"rlimits", "call and submission deadlines", "scrubbed environment"} <= set(data["extra_data"]["protections"])
    # Students: nothing about it in what they see.
    student_visible = [data["output"], *(test["output"] for test in data["tests"])]
    assert not any(word in text for text in student_visible for word in ("sandbox", "bubblewrap", "protection"))


def test_untouched_stub_gets_zero_with_the_todo_message(tmp_path, autograder_zip, course_rubric):
    root = fake_root(tmp_path, autograder_zip)
    copy_graded(ASSIGNMENT_DIR, root / "submission")
    completed, data = run_autograder(root)
    assert completed.returncode == 0
    check_kit_result(data, course_rubric)
    assert data["score"] == 0
    assert {t["extra_data"]["diagnosis"] for t in data["tests"]} == {"not_implemented"}
    assert all("TodoNotFilledError" in t["output"] for t in data["tests"])


def test_collected_zip_and_flat_files_are_found(tmp_path, autograder_zip, course_rubric):
    # The zip that `collect` makes, kept as a zip by Gradescope.
    root = fake_root(tmp_path / "zip", autograder_zip)
    with zipfile.ZipFile(root / "submission" / "dropout_submission.zip", "w") as archive:
        for graded in GRADED_FILES:
            archive.write(SOLUTION_DIR / graded, graded)
    _, data = run_autograder(root)
    assert data["score"] == course_rubric.max_score
    # The two files dropped in flat, without their folders.
    root = fake_root(tmp_path / "flat", autograder_zip)
    for graded in GRADED_FILES:
        (root / "submission" / Path(graded).name).write_bytes((SOLUTION_DIR / graded).read_bytes())
    _, data = run_autograder(root)
    assert data["score"] == course_rubric.max_score
    # Nothing usable: every check fails and the output says what was missing.
    root = fake_root(tmp_path / "empty", autograder_zip)
    (root / "submission" / "notes.txt").write_text("hello", encoding="utf-8")
    _, data = run_autograder(root)
    assert data["score"] == 0 and "Not found in your submission" in data["output"]


FORGER = '''
import json as _json, os as _os
_FAKE = {"score": 1000.0, "output": "FORGED", "tests": []}
print(_json.dumps(_FAKE))
def _forge():
    for _path in (%r, %r, "/autograder/results/results.json"):
        try:
            with open(_path, "w") as _stream:
                _json.dump(_FAKE, _stream)
        except OSError:
            pass
_forge()
'''


def test_a_submission_that_forges_results_cannot_change_them(tmp_path, autograder_zip, course_rubric):
    root = fake_root(tmp_path, autograder_zip)
    results = root / "results" / "results.json"
    copy_graded(ASSIGNMENT_DIR, root / "submission")
    layers = root / "submission" / "nnlab" / "layers.py"
    # Forges at import and again inside dropout_forward, which the grader calls while it grades.
    marker = tmp_path / "forged.json"  # proves the forgery ran, where no bubblewrap stops it
    # At the end of the module: it still runs at import, after the file's `from __future__` line.
    source = layers.read_text(encoding="utf-8") + FORGER % (str(results), str(marker))
    source = source.replace("def dropout_forward(x, dropout_param):", "def dropout_forward(x, dropout_param):\n    _forge()", 1)
    assert "    _forge()" in source
    layers.write_text(source, encoding="utf-8")
    results.write_text('{"score": 999}', encoding="utf-8")  # planted before the run, too
    completed, data = run_autograder(root)
    check_kit_result(data, course_rubric)
    assert data["score"] == 0 and "FORGED" not in data["output"]
    assert not any("FORGED" in t["output"] for t in data["tests"])
    # What the student printed is kept for the instructor only, in extra_data.
    assert "FORGED" in data["extra_data"]["student_output"]
    assert "FORGED" not in completed.stdout  # the student's prints stay in the child's capture
    assert marker.is_file() or not data["extra_data"]["missing_protections"]


def test_a_submission_that_exits_at_import_is_graded_zero(tmp_path, autograder_zip, course_rubric):
    root = fake_root(tmp_path, autograder_zip)
    copy_graded(SOLUTION_DIR, root / "submission")
    layers = root / "submission" / "nnlab" / "layers.py"
    layers.write_text("import sys\nsys.exit(0)\n" + layers.read_text(encoding="utf-8"), encoding="utf-8")
    completed, data = run_autograder(root)
    assert completed.returncode == 0
    check_kit_result(data, course_rubric)
    layer_checks = [t for t in data["tests"] if not t["name"].startswith("fc_")]
    assert all(t["score"] == 0 for t in layer_checks)
    assert data["score"] < course_rubric.max_score


def test_no_python_gives_a_clear_message(tmp_path, autograder_zip):
    root = fake_root(tmp_path, autograder_zip)
    env = {"PATH": "/usr/bin:/bin", "DROPOUT_LAB_GS_ROOT": str(root), "DROPOUT_LAB_PYTHON": str(tmp_path / "none")}
    completed = subprocess.run([str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True)
    assert completed.returncode == 2 and "did setup.sh run?" in completed.stderr


def test_a_grader_fault_is_reported_as_not_the_students(tmp_path, autograder_zip):
    root = fake_root(tmp_path, autograder_zip)
    copy_graded(SOLUTION_DIR, root / "submission")
    (root / "source" / KIT_DIR / "rubric.toml").write_text("[checks.no_such_check]\npoints = 1\n", encoding="utf-8")
    completed, data = run_autograder(root)
    assert completed.returncode == 1 and "no_such_check" in completed.stderr
    assert "not your fault" in data["output"] and "no_such_check" in data["extra_data"]["grader_error"]


# -- without bubblewrap, as root: the child's own uid ----------------------------------------------------
from test_grader_sandbox import closed_runtime, open_python, shared_folder  # noqa: E402,F401  (fixtures)

# At import of the student's layers.py: who the child is and whether it can read the kit.
UID_PROBE = """
import json as _json, os as _os
def _attempt(path):
    try:
        open(path).read()
        return "done"
    except OSError as error:
        return type(error).__name__
print("SEEN=" + _json.dumps({"uid": _os.getuid(), "rubric": _attempt(%r)}))
"""


@pytest.mark.parametrize("runtime", ["readable by others", "closed to others"])
def test_without_bubblewrap_as_root_the_child_gets_its_own_uid_or_instructors_are_told_why_not(
        runtime, open_python, shared_folder, autograder_zip, course_rubric):
    """Gradescope's container: bubblewrap cannot run, the grader is root. With a runtime that other
    users can read, the child runs as a uid of its own and cannot read the kit; with one they cannot,
    it keeps root's uid, and the instructor-only output says so and why."""
    from autograder.sandbox import OWN_UID

    python = open_python if runtime == "readable by others" else closed_runtime(shared_folder, open_python)
    root = fake_root(shared_folder / runtime.replace(" ", "-"), autograder_zip)
    copy_graded(SOLUTION_DIR, root / "submission")
    rubric = root / "source" / KIT_DIR / "rubric.toml"
    layers = root / "submission" / "nnlab" / "layers.py"
    layers.write_text(layers.read_text(encoding="utf-8") + UID_PROBE % str(rubric), encoding="utf-8")
    completed, data = run_autograder(root, DROPOUT_LAB_BWRAP="0", DROPOUT_LAB_PYTHON=str(python))
    assert completed.returncode == 0, completed.stderr
    check_kit_result(data, course_rubric)
    assert data["score"] == course_rubric.max_score
    line = next(line for line in data["extra_data"]["student_output"].splitlines() if line.startswith("SEEN="))
    seen = json.loads(line[len("SEEN="):])
    warning = data["extra_data"]["sandbox_warning"]
    if runtime == "readable by others":
        assert OWN_UID in data["extra_data"]["protections"]
        assert seen["uid"] != 0 and seen["rubric"] == "PermissionError"
        assert "The child ran as a uid of its own" in warning
    else:
        assert OWN_UID in data["extra_data"]["missing_protections"]
        assert seen["uid"] == 0 and seen["rubric"] == "done"
        assert "The child ran as the grader's own uid (root)" in warning and "not readable by other users" in warning
    assert warning in completed.stdout  # instructors: the run's log and results.json's extra_data
    student_visible = [data["output"], *(test["output"] for test in data["tests"])]
    assert not any(word in text for text in student_visible for word in ("uid", "sandbox", "readable"))
