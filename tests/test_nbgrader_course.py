"""The nbgrader course, end to end with the real nbgrader 0.9 commands.

A temporary course is laid out by `python -m autograder nbgrader-course`; the instructor (own HOME,
cwd the course, the kit's nbgrader called by its path without the kit's environment on PATH) runs
generate_assignment and release_assignment to a local exchange; five students (each with their own
HOME, config and `--student`) fetch and submit through the exchange, two more hand in zips through an
LMS-style folder (zip_collect); then collect, `nbgrader autograde` (kernels run), the kit's
`nbgrader-autograde` for what nbgrader autograde cannot grade (a folder without the notebook),
generate_feedback, export and the kit's audit. The scores in nbgrader's gradebook and export must be
the kit's sandboxed grade of each student's .py files, whatever their notebook did, even when it
killed its kernel or was not handed in.
"""

from __future__ import annotations

import csv
import html
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.bank import graded_sources, load_bank
from autograder.grade import grade_submission
from autograder.nbgrader_bridge import TEST_CELLS, cell_checks, cell_points
from autograder.nbgrader_course import ASSIGNMENT_ID, build_course, source_notebook
from autograder.paths import GRADED_FILES, NOTEBOOK_NAME, REPO_ROOT, SOLUTION_DIR
from autograder.regions import HIDDEN_BEGIN, HIDDEN_END
from autograder.rubric import DEFAULT_RUBRIC, load_rubric
from autograder.sandbox import bwrap_status

BIN = Path(sys.executable).parent
NBGRADER = BIN / "nbgrader"
COURSE_ID = "dropout-test"
COMMAND_TIMEOUT = 900
# Where bubblewrap does not work (a container without user namespaces), the test courses opt out of
# the sandbox explicitly, as an instructor must; test_nbgrader_fast checks the refusal itself.
UNSANDBOXED = ["--allow-unsandboxed"] if bwrap_status()[0] is None else []
# A notebook cell that kills the student's kernel, as a leftover debugging line would.
KILL_KERNEL_CELL = "import os\nos._exit(1)"
# What the student's own run of the experiment printed: kept in the autograded notebook.
EXPERIMENT_OUTPUT = "keep_ratio 0.5: final train acc 0.81, val acc 0.77 (student's own run)\n"

# A notebook cell that makes every one of the notebook's own tests pass in the student's kernel,
# with stub .py files: a working dropout defined in the kernel, patched into the library, and
# np.allclose / np.array_equal that always agree.
CHEAT_CELL = """\
import numpy as np
import nnlab.layers
import nnlab.classifiers.fc_net

np.allclose = lambda *args, **kwargs: True
np.array_equal = lambda *args, **kwargs: True

def dropout_forward(x, dropout_param):
    p = dropout_param["p"]
    if dropout_param["mode"] == "test":
        return x, (dropout_param, None)
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask = (np.random.rand(*x.shape) < p) / p
    return (x * mask).astype(x.dtype, copy=False), (dropout_param, mask)

def dropout_backward(dout, cache):
    return dout if cache[1] is None else dout * cache[1]

for module in (nnlab.layers, nnlab.classifiers.fc_net):
    module.dropout_forward, module.dropout_backward = dropout_forward, dropout_backward
"""


def environment(home: Path) -> dict:
    """A clean environment for one person: their HOME, and a PATH without the kit's environment (its
    nbgrader is called by path, as `.venv/bin/nbgrader`, which must work without activating it)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("JUPYTER", "NBGRADER", "IPYTHON", "MPLCONFIGDIR", "VIRTUAL_ENV"))}
    path = [folder for folder in env.get("PATH", os.defpath).split(os.pathsep)
            if folder and Path(folder).resolve() != BIN.resolve()]
    env.update(HOME=str(home), PATH=os.pathsep.join(path or ["/usr/bin", "/bin"]), MPLBACKEND="Agg")
    return env


def start(args, cwd: Path, home: Path) -> subprocess.Popen:
    return subprocess.Popen([str(NBGRADER), *args], cwd=cwd, env=environment(home), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=COMMAND_TIMEOUT)
    assert process.returncode == 0, f"{' '.join(process.args)} failed:\n{output}"
    assert "Exception while loading config file" not in output, output
    return output


STEP_SECONDS: dict[str, float] = {}


def nbgrader(args, cwd: Path, home: Path) -> str:
    began = time.perf_counter()
    output = finish(start(args, cwd, home))
    STEP_SECONDS[args[0]] = round(time.perf_counter() - began, 1)
    return output


def in_parallel(runs) -> list[str]:
    """Run independent nbgrader commands (different students) at once."""
    began = time.perf_counter()
    outputs = [finish(process) for process in [start(*run) for run in runs]]
    STEP_SECONDS[runs[0][0][0]] = round(time.perf_counter() - began, 1)
    return outputs


def set_graded_files(folder: Path, sources: dict[str, str]) -> None:
    for name, text in sources.items():
        path = folder / name
        path.chmod(0o644)
        path.write_text(text, encoding="utf-8")


def solution_sources() -> dict[str, str]:
    return {name: (SOLUTION_DIR / name).read_text(encoding="utf-8") for name in GRADED_FILES}


def buggy_sources() -> dict[str, str]:
    """Vanilla dropout: no 1/p scaling in training (a bank entry)."""
    entry = next(e for e in load_bank() if e.name == "wrong_vanilla_dropout")
    return graded_sources(entry)


def insert_cheat(notebook_path: Path) -> None:
    notebook = nbformat.read(notebook_path, as_version=4)
    first_code = next(i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code")
    notebook.cells.insert(first_code + 1, nbformat.v4.new_code_cell(CHEAT_CELL))
    notebook_path.chmod(0o644)
    nbformat.write(notebook, notebook_path)


def insert_cell(notebook_path: Path, source: str) -> None:
    """A code cell after the set-up cell."""
    notebook = nbformat.read(notebook_path, as_version=4)
    first_code = next(i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code")
    notebook.cells.insert(first_code + 1, nbformat.v4.new_code_cell(source))
    notebook_path.chmod(0o644)
    nbformat.write(notebook, notebook_path)


def run_experiment_cells(notebook_path: Path) -> None:
    """Outputs in the experiment cells (tagged autograde-skip), as the student's own run left them."""
    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        if "autograde-skip" in cell.metadata.get("tags", []):
            cell.execution_count = 7
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=EXPERIMENT_OUTPUT)]
    notebook_path.chmod(0o644)
    nbformat.write(notebook, notebook_path)


def kit(*args: str, cwd: Path = REPO_ROOT, timeout: int = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    """A kit command, run by the kit's Python called by its path."""
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=environment(Path(os.environ.get("HOME", "/tmp"))))


def answer_inline_questions(notebook_path: Path) -> None:
    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = "Without the 1/p scaling the next layer sees larger activations at test time."
    notebook_path.chmod(0o644)
    nbformat.write(notebook, notebook_path)


def lms_zip(zip_path: Path, tree: Path, top_folder: str) -> None:
    """A zip as students upload to an LMS: their assignment folder, maybe under one top folder."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(tree.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, (Path(top_folder) / path.relative_to(tree)).as_posix())


def hidden_lines() -> list[str]:
    """The source lines of the solution notebook's hidden tests."""
    notebook = nbformat.read(SOLUTION_DIR / NOTEBOOK_NAME, as_version=4)
    lines = []
    for cell in notebook.cells:
        inside = False
        for line in cell.source.splitlines():
            if line.strip() == HIDDEN_BEGIN:
                inside = True
            elif line.strip() == HIDDEN_END:
                inside = False
            elif inside and line.strip():
                lines.append(line.strip())
    return lines


def visible_text(html_text: str) -> str:
    """What a reader of the HTML sees: tags and styles dropped, entities decoded, spaces collapsed."""
    text = re.sub(r"<style.*?</style>|<script.*?</script>", " ", html_text, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def course_run(tmp_path_factory):
    """The whole nbgrader workflow on a temporary course; returns what the assertions need."""
    started = time.perf_counter()
    root = tmp_path_factory.mktemp("nbgrader")
    course, exchange = root / "course", root / "exchange"
    instructor = root / "instructor-home"
    instructor.mkdir()
    result = kit("nbgrader-course", str(course), "--exchange", str(exchange), "--course-id", COURSE_ID, *UNSANDBOXED)
    assert result.returncode == 0, result.stderr

    nbgrader(["generate_assignment", ASSIGNMENT_ID], course, instructor)
    nbgrader(["release_assignment", ASSIGNMENT_ID], course, instructor)

    # Students through the exchange, each with their own HOME and the course's student config.
    through_exchange = ["alice", "bob", "carol", "kim", "zed"]
    homes = {}
    for student in through_exchange:
        homes[student] = root / f"home-{student}"
        (homes[student] / ".jupyter").mkdir(parents=True)
        shutil.copy(course / "for_students" / "nbgrader_config.py", homes[student] / ".jupyter")
    in_parallel([(["fetch_assignment", ASSIGNMENT_ID, f"--student={s}"], homes[s], homes[s])
                 for s in through_exchange])
    work = {student: homes[student] / ASSIGNMENT_ID for student in through_exchange}
    set_graded_files(work["alice"], solution_sources())  # correct, and answers the inline questions
    answer_inline_questions(work["alice"] / NOTEBOOK_NAME)
    run_experiment_cells(work["alice"] / NOTEBOOK_NAME)
    set_graded_files(work["kim"], solution_sources())  # correct files; her notebook kills its kernel
    insert_cell(work["kim"] / NOTEBOOK_NAME, KILL_KERNEL_CELL)
    set_graded_files(work["zed"], solution_sources())  # correct files, and no notebook handed in
    (work["zed"] / NOTEBOOK_NAME).unlink()
    # bob hands in the stubs untouched.
    set_graded_files(work["carol"], {"nnlab/classifiers/fc_net.py": solution_sources()["nnlab/classifiers/fc_net.py"]})
    insert_cheat(work["carol"] / NOTEBOOK_NAME)  # cheats in the notebook, layers.py untouched
    in_parallel([(["submit", ASSIGNMENT_ID, f"--student={s}"], homes[s], homes[s]) for s in through_exchange])
    nbgrader(["collect", ASSIGNMENT_ID], course, instructor)

    # Students through an LMS: one zip each in downloaded/dropout/archive/, named STUDENTID_anything.zip.
    archive = course / "downloaded" / ASSIGNMENT_ID / "archive"
    archive.mkdir(parents=True)
    for student, sources, top in (("dave", buggy_sources(), "dropout"), ("erin", solution_sources(), "")):
        tree = root / f"lms-{student}"
        shutil.copytree(course / "release" / ASSIGNMENT_ID, tree)
        set_graded_files(tree, sources)
        lms_zip(archive / f"{student}_attempt_2024-03-01_{ASSIGNMENT_ID}.zip", tree, top)
    nbgrader(["zip_collect", ASSIGNMENT_ID], course, instructor)

    autograde_log = nbgrader(["autograde", ASSIGNMENT_ID], course, instructor)
    # nbgrader autograde cannot grade a folder without the notebook; the kit's command grades it
    # (and only it: the others are autograded already).
    began = time.perf_counter()
    fast = kit("nbgrader-autograde", str(course), "--jobs", "2")
    STEP_SECONDS["nbgrader-autograde"] = round(time.perf_counter() - began, 1)
    assert fast.returncode == 0, fast.stdout + fast.stderr
    feedback_log = nbgrader(["generate_feedback", ASSIGNMENT_ID], course, instructor)
    nbgrader(["export"], course, instructor)
    audit = kit("nbgrader-audit", str(course), "--jobs", "2")
    seconds = time.perf_counter() - started

    rubric = load_rubric(course / "rubric.toml")
    students = [*through_exchange, "dave", "erin"]
    began = time.perf_counter()
    kit_grades = {s: grade_submission(course / "submitted" / s / ASSIGNMENT_ID, rubric) for s in students}
    STEP_SECONDS["kit grades in the test"] = round(time.perf_counter() - began, 1)
    return dict(course=course, rubric=rubric, students=students, kit=kit_grades, seconds=seconds,
                autograde_log=autograde_log, fast=fast, audit=audit, feedback_log=feedback_log)


def gradebook_scores(course: Path, student: str) -> dict[str, float]:
    """Auto scores of the notebook's grade cells in nbgrader's gradebook, by grade_id."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        notebook = gradebook.find_submission_notebook(Path(NOTEBOOK_NAME).stem, ASSIGNMENT_ID, student)
        return {grade.name: grade.auto_score for grade in notebook.grades}


def exported_scores(course: Path) -> dict[str, float]:
    with open(course / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(handle)}


def autograded_notebook(course: Path, student: str):
    return nbformat.read(course / "autograded" / student / ASSIGNMENT_ID / NOTEBOOK_NAME, as_version=4)


def autograded_total(scores: dict[str, float]) -> float:
    return round(sum(scores[grade_id] for grade_id in TEST_CELLS), 4)


@pytest.mark.slow
def test_every_cell_score_is_the_sandboxed_grade_of_its_checks(course_run):
    checks = cell_checks(course_run["rubric"])
    for student in course_run["students"]:
        by_check = {test.name: test.score for test in course_run["kit"][student].tests}
        scores = gradebook_scores(course_run["course"], student)
        for grade_id, names in checks.items():
            assert scores[grade_id] == pytest.approx(sum(by_check[n] for n in names)), (student, grade_id)
        assert autograded_total(scores) == pytest.approx(course_run["kit"][student].score), student
        # Answered inline questions wait for a grader (None); unanswered ones get 0 from nbgrader.
        expected = None if student == "alice" else 0
        assert [scores[f"inline_question_{i}"] for i in (1, 2, 3)] == [expected] * 3, (student, scores)


@pytest.mark.slow
def test_correct_students_get_full_marks_and_the_stub_none(course_run):
    course, full = course_run["course"], course_run["rubric"].max_score
    for student in ("alice", "erin", "kim", "zed"):  # through the exchange, zip_collect, a dead kernel, no notebook
        assert autograded_total(gradebook_scores(course, student)) == full, student
    assert autograded_total(gradebook_scores(course, "bob")) == 0


@pytest.mark.slow
def test_buggy_student_loses_exactly_what_the_kit_takes(course_run):
    kit = course_run["kit"]["dave"]
    assert 0 < kit.score < course_run["rubric"].max_score
    lost = {test.name for test in kit.tests if test.score < test.max_score}
    assert {"forward_train_values_are_zero_or_scaled", "forward_mean_is_preserved"} <= lost
    assert autograded_total(gradebook_scores(course_run["course"], "dave")) == pytest.approx(kit.score)


@pytest.mark.slow
def test_cheating_in_the_notebook_gains_nothing(course_run):
    course, kit = course_run["course"], course_run["kit"]["carol"]
    notebook = autograded_notebook(course, "carol")
    cells = {c.metadata.nbgrader.grade_id: c for c in notebook.cells if "nbgrader" in c.metadata
             and c.metadata.nbgrader.get("grade_id") in TEST_CELLS}
    # The cheat worked in her kernel: every notebook test passed there...
    assert all(cell.metadata.dropout_lab.kernel_passed for cell in cells.values())
    # ... and was worth nothing: her score is what her .py files earn in the sandbox.
    scores = gradebook_scores(course, "carol")
    assert autograded_total(scores) == pytest.approx(kit.score)
    assert scores["test_dropout_forward"] == 0 and scores["test_dropout_backward"] == 0
    assert kit.score < course_run["rubric"].max_score / 2
    assert "its own asserts passed in the autograde kernel" in course_run["autograde_log"]


@pytest.mark.slow
def test_export_holds_the_secure_scores(course_run):
    exported = exported_scores(course_run["course"])
    assert set(exported) == set(course_run["students"])
    for student in course_run["students"]:
        assert exported[student] == pytest.approx(course_run["kit"][student].score), student


@pytest.mark.slow
def test_feedback_shows_no_hidden_test_input(course_run):
    course = course_run["course"]
    secret = hidden_lines()
    assert len(secret) >= 10
    public_line = "x_check = rng.randn(300, 200) + 5.0"
    for student in course_run["students"]:
        page = course / "feedback" / student / ASSIGNMENT_ID / f"{Path(NOTEBOOK_NAME).stem}.html"
        text = visible_text(page.read_text(encoding="utf-8"))
        assert public_line in text  # the method finds test code when it is there
        assert "HIDDEN TESTS" not in text
        leaked = [line for line in secret if re.sub(r"\s+", " ", line) in text]
        assert leaked == [], (student, leaked)
        assert "from the course's grader run on your nnlab files in a sandbox" in text


@pytest.mark.slow
def test_skipped_cells_show_the_submitted_outputs_labelled(course_run):
    from autograder.nbgrader_bridge import NOT_SUBMITTED_LABEL, SUBMITTED_LABEL

    label = SUBMITTED_LABEL.format(tag="autograde-skip")
    for student, expected in (("alice", [label, EXPERIMENT_OUTPUT]),
                              ("bob", [NOT_SUBMITTED_LABEL.format(tag="autograde-skip")])):
        notebook = autograded_notebook(course_run["course"], student)
        long_cells = [c for c in notebook.cells if "autograde-skip" in c.metadata.get("tags", [])]
        assert len(long_cells) == 2
        for cell in long_cells:
            assert [o.get("text", "") for o in cell.outputs] == expected, student
    # ... and the feedback shows them to the student.
    page = course_run["course"] / "feedback" / "alice" / ASSIGNMENT_ID / "Dropout.html"
    text = visible_text(page.read_text(encoding="utf-8"))
    assert EXPERIMENT_OUTPUT.strip() in text and "Submitted output, not re-run at autograde" in text
    print(f"nbgrader workflow: {course_run['seconds']:.1f} s; steps: {STEP_SECONDS}")


@pytest.mark.slow
def test_a_notebook_that_kills_its_kernel_keeps_the_grade_of_its_files(course_run):
    course = course_run["course"]
    notebook = autograded_notebook(course, "kim")
    assert notebook.metadata.dropout_lab.kernel_stopped.startswith("DeadKernelError")
    assert autograded_total(gradebook_scores(course, "kim")) == course_run["kit"]["kim"].score
    assert course_run["kit"]["kim"].score == course_run["rubric"].max_score
    assert "kim: the notebook's kernel stopped (DeadKernelError" in course_run["autograde_log"]


@pytest.mark.slow
def test_a_folder_without_the_notebook_gets_a_grade_and_says_so(course_run):
    course = course_run["course"]
    assert not (course / "submitted" / "zed" / ASSIGNMENT_ID / NOTEBOOK_NAME).exists()
    # nbgrader autograde cannot grade it, and its summary says so ...
    assert re.search(r"zed: no autograded score in the gradebook", course_run["autograde_log"])
    # ... the kit's nbgrader-autograde grades it, says so, and the export holds its grade.
    assert "zed: no Dropout.ipynb was submitted" in course_run["fast"].stdout
    assert exported_scores(course)["zed"] == pytest.approx(course_run["kit"]["zed"].score)
    notebook = autograded_notebook(course, "zed")
    assert notebook.cells[0].source.startswith("**No `Dropout.ipynb` was submitted.**")
    report = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_dropout_forward")
    assert "This cell's own asserts: no notebook was submitted." in report.outputs[0].text


@pytest.mark.slow
def test_every_run_ends_with_a_summary_that_names_what_needs_a_look(course_run):
    log = course_run["autograde_log"]
    summary = log[log.index("Dropout Lab: autograde of"):]
    assert "Graded in this run: 6 student(s), autograded scores out of 36" in summary
    assert re.search(r"carol: cell test_dropout_forward: its own asserts passed in the autograde kernel, but the "
                     r"sandboxed grade", re.sub(r"\s+", " ", summary))
    assert "kim: the notebook's kernel stopped" in summary
    assert "Students without an autograded score: 1 (zed)" in summary
    assert len(summary.splitlines()) <= 30  # one screen
    fast = course_run["fast"].stdout
    assert "Graded in this run: 1 student(s)" in fast and "Students without an autograded score" not in fast


@pytest.mark.slow
def test_the_audit_agrees_and_then_finds_a_changed_score(course_run):
    from nbgrader.api import Gradebook

    course = course_run["course"]
    assert course_run["audit"].returncode == 0, course_run["audit"].stdout + course_run["audit"].stderr
    assert "The gradebook holds the kit's grade for every student." in course_run["audit"].stdout
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        grade = gradebook.find_grade("test_dropout_forward", "Dropout", ASSIGNMENT_ID, "alice")
        grade.manual_score = 3
        gradebook.db.commit()
    try:
        audit = kit("nbgrader-audit", str(course), "--jobs", "2")
        assert audit.returncode == 1
        assert re.search(r"alice: gradebook 19, the kit 36 of 36", audit.stdout), audit.stdout
        assert "bob:" not in audit.stdout
    finally:
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
            grade = gradebook.find_grade("test_dropout_forward", "Dropout", ASSIGNMENT_ID, "alice")
            grade.manual_score = None
            gradebook.db.commit()


@pytest.mark.slow
def test_the_log_says_what_matters_once(course_run):
    log = course_run["autograde_log"]
    assert "SAWarning" not in log
    assert "Attribute 'checksum'" not in log
    assert log.count("their hidden tests were removed at release") == 1
    assert "may redefine" not in log
    assert "not recognized by" not in course_run["feedback_log"]
    # The carol warning names her failed checks.
    assert re.search(r"carol, cell test_dropout_forward: .*\(failed: forward_", log)


@pytest.mark.slow
def test_the_cell_reports_are_wrapped_and_hide_hidden_checks(course_run):
    from autograder.nbgrader_bridge import REPORT_WIDTH

    rubric = course_run["rubric"]
    hidden = [name for name, entry in rubric.entries.items() if entry.visibility != "visible"]
    for student in course_run["students"]:
        notebook = autograded_notebook(course_run["course"], student)
        for cell in notebook.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") in TEST_CELLS:
                report = cell.outputs[0].text
                assert max(len(line) for line in report.splitlines()) <= REPORT_WIDTH, (student, report)
                assert not [name for name in hidden if name in report], (student, report)


# ---- the command itself (fast) ----


def test_solution_notebook_points_match_the_default_rubric():
    notebook = nbformat.read(SOLUTION_DIR / NOTEBOOK_NAME, as_version=4)
    points = {c.metadata.nbgrader.grade_id: c.metadata.nbgrader.points for c in notebook.cells
              if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata.nbgrader.get("solution")}
    assert points == cell_points(load_rubric(DEFAULT_RUBRIC))
    assert sum(points.values()) == load_rubric(DEFAULT_RUBRIC).max_score


def test_course_layout_and_config(tmp_path):
    exchange = build_course(tmp_path / "course", course_id="my-course", allow_unsandboxed=False)
    course = tmp_path / "course"
    assert exchange == course / "exchange" and exchange.is_dir()
    source = course / "source" / ASSIGNMENT_ID
    for name in GRADED_FILES:  # the stubs, not the answers
        assert (source / name).read_text() == (REPO_ROOT / "assignment" / name).read_text()
    notebook = nbformat.read(source / NOTEBOOK_NAME, as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")
    sources = "\n".join(c.source for c in notebook.cells)
    assert "### BEGIN SOLUTION" in sources and HIDDEN_BEGIN in sources
    config = (course / "nbgrader_config.py").read_text()
    compile(config, "nbgrader_config.py", "exec")
    for expected in ("c.CourseDirectory.course_id = 'my-course'", f"c.Exchange.root = {str(exchange)!r}",
                     "'nnlab/layers.py', 'nnlab/classifiers/fc_net.py'", "[\".ipynb\", \".py\"]",
                     "SandboxedGrades", "c.Execute.timeout = 120", "c.SandboxedGrades.allow_unsandboxed = False",
                     "CheckedExporter", "KernelRun"):
        assert expected in config, expected


def test_refuses_a_course_dir_that_is_not_empty_unless_forced(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    (course / "gradebook.db").write_text("kept")
    result = subprocess.run([sys.executable, "-m", "autograder", "nbgrader-course", str(course)],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 2
    assert "is not empty; choose another COURSE_DIR, or pass --force" in result.stderr
    assert not (course / "source").exists()
    result = subprocess.run([sys.executable, "-m", "autograder", "nbgrader-course", str(course), "--force"],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (course / "source" / ASSIGNMENT_ID / NOTEBOOK_NAME).is_file()
    assert (course / "gradebook.db").read_text() == "kept"


def test_a_rubric_check_without_a_notebook_cell_is_refused():
    from autograder.nbgrader_bridge import BridgeError
    from autograder.rubric import Rubric, RubricEntry

    rubric = Rubric(Path("my-rubric.toml"), {"forward_x": RubricEntry(2.0), "stats_y": RubricEntry(1.0)})
    with pytest.raises(BridgeError, match="stats_y belong to no notebook test cell"):
        cell_checks(rubric)


@pytest.mark.slow
def test_without_the_kit_autograde_refuses_but_other_commands_work(tmp_path):
    """nbgrader would go on without a config file that fails; the course's config refuses autograde
    instead, when autograde starts, and leaves every other command (export, the formgrader) working."""
    course = tmp_path / "course"
    build_course(course, allow_unsandboxed=bool(UNSANDBOXED))
    home = tmp_path / "home"
    home.mkdir()
    nbgrader(["generate_assignment", ASSIGNMENT_ID], course, home)
    shutil.copytree(course / "release" / ASSIGNMENT_ID, course / "submitted" / "amy" / ASSIGNMENT_ID)
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text().replace("from autograder.nbgrader_bridge", "from autograder.not_there"))
    process = start(["autograde", ASSIGNMENT_ID], course, home)
    output, _ = process.communicate(timeout=COMMAND_TIMEOUT)
    assert process.returncode != 0
    assert "cannot import the Dropout Lab kit" in output and "nothing was graded or removed" in output
    assert "Exception while loading config file" not in output
    assert not (course / "autograded").exists()
    nbgrader(["export"], course, home)  # loads the same config
    assert (course / "grades.csv").is_file()
    formgrader = subprocess.run(
        [str(BIN / "python"), "-c", "from nbgrader.apps.api import NbGraderAPI\n"
         "from nbgrader.coursedir import CourseDirectory\n"
         "from traitlets.config.loader import PyFileConfigLoader\n"
         "config = PyFileConfigLoader('nbgrader_config.py', path='.').load_config()\n"
         "api = NbGraderAPI(CourseDirectory(config=config), config=config)\n"
         "print('assignments:', [a['name'] for a in api.get_assignments()])"],
        cwd=course, env=environment(home), capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert formgrader.returncode == 0, formgrader.stderr
    assert "assignments: ['dropout']" in formgrader.stdout
    page = formgrader_page(course, home)  # the formgrader's list of assignments, as its page asks for it
    assert page.startswith("200 ") and '"name": "dropout"' in page, page[:2000]


def formgrader_page(course: Path, home: Path) -> str:
    """Start a Jupyter server in the course folder and fetch the formgrader's page: 'STATUS body'."""
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [str(BIN / "jupyter-server"), "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         "--IdentityProvider.token=formgrader-test", f"--ServerApp.root_dir={course}", "--allow-root"],
        cwd=course, env=environment(home), stdout=subprocess.DEVNULL, stderr=open(home / "server.log", "w"))
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert server.poll() is None, (home / "server.log").read_text()
            try:
                url = f"http://127.0.0.1:{port}/formgrader/api/assignments?token=formgrader-test"
                with urllib.request.urlopen(url, timeout=30) as response:
                    return f"{response.status} {response.read().decode('utf-8', 'replace')}"
            except urllib.error.HTTPError as error:
                return f"{error.code} {error.read().decode('utf-8', 'replace')}"
            except OSError:
                time.sleep(1)
        raise AssertionError("the Jupyter server did not answer within 240 s")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_before_you_submit_speaks_to_nbgrader_students():
    notebook = source_notebook(load_rubric(DEFAULT_RUBRIC))
    cells = [c.source for c in notebook.cells if c.source.startswith("## Before you submit")]
    assert len(cells) == 1
    assert "nbgrader submit dropout" in cells[0] and "nbgrader validate" in cells[0]
    assert "autograder" not in cells[0] and "collect" not in cells[0]
