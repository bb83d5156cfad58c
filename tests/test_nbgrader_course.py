"""The nbgrader course, end to end with the real nbgrader 0.9 commands.

A temporary course is laid out by `python -m autograder nbgrader-course`; the instructor (own HOME,
cwd the course, the kit's nbgrader called by its path without the kit's environment on PATH) runs
generate_assignment and release_assignment to a local exchange; a student (with her own HOME, config
and `--student`) fetches and submits through the exchange, two more hand in zips through an LMS-style
folder (zip_collect), and the others' folders are put in `submitted/` as `nbgrader collect` leaves
them. Then collect, `nbgrader autograde` (kernels run) for the students whose notebooks matter
(answers, a cheat, four ways of killing the kernel), the kit's `nbgrader-autograde` for the rest of
the class (the LMS zips, and a folder without the notebook, which nbgrader autograde cannot grade),
generate_feedback, export and the kit's audit, all on one gradebook. The scores in nbgrader's gradebook
and export must be the kit's sandboxed grade of each student's .py files, whatever their notebook did,
even when it killed its kernel or was not handed in.
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
# Notebook cells that kill the student's kernel, as a leftover line would, by student: each of them
# hands in right .py files with one of these cells after the notebook's set-up cell.
KERNEL_KILLERS = {
    "kim": "import os\nos._exit(1)",
    # IPython's exit() asks the kernel to stop: its event loop stops a moment later, and the kernel
    # is gone before the notebook's next cells have run.
    "lee": "exit()",
    "max": "import ctypes\nctypes.string_at(0)",  # a segmentation fault
    # Out of memory: the kernel's OOM killer ends a process with SIGKILL, and a kernel that sends
    # itself SIGKILL dies exactly as it would (without filling the machine's memory to get there). A
    # MemoryError raised inside a cell (an address-space limit) is no death: that cell fails, the
    # notebook goes on, and the grade is set as for anyone.
    "ola": "import os\nimport signal\nos.kill(os.getpid(), signal.SIGKILL)",
}
KILL_KERNEL_CELL = KERNEL_KILLERS["kim"]
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
    """Run independent nbgrader commands at once (none of them writes the gradebook)."""
    began = time.perf_counter()
    outputs = [finish(process) for process in [start(*run) for run in runs]]
    STEP_SECONDS[" + ".join(dict.fromkeys(run[0][0] for run in runs))] = round(time.perf_counter() - began, 1)
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
    insert_cell(notebook_path, CHEAT_CELL)


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


def start_kit(*args: str, cwd: Path = REPO_ROOT) -> subprocess.Popen:
    """A kit command, started by the kit's Python called by its path."""
    return subprocess.Popen([sys.executable, "-m", "autograder", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env=environment(Path(os.environ.get("HOME", "/tmp"))))


def finish_kit(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def kit(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    """A kit command, run by the kit's Python called by its path."""
    return finish_kit(start_kit(*args, cwd=cwd))


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


def hand_in(course: Path, student: str, sources: dict | None, notebook_edit=None, notebook: bool = True) -> None:
    """A student's folder in submitted/, as `nbgrader collect` leaves it."""
    target = course / "submitted" / student / ASSIGNMENT_ID
    shutil.copytree(course / "release" / ASSIGNMENT_ID, target)
    if sources:
        set_graded_files(target, sources)
    if notebook_edit:
        notebook_edit(target / NOTEBOOK_NAME)
    if not notebook:
        (target / NOTEBOOK_NAME).unlink()
    (target / "timestamp.txt").write_text("2026-03-01 10:00:00.000000 UTC\n")


_GENERATED: dict[str, Path] = {}


def generated_course(tmp_path_factory, target: Path) -> Path:
    """At ``target``, a copy of a course laid out by `nbgrader-course` (with an exchange beside it) and
    generated by nbgrader's `generate_assignment`. The two commands run once per test session; each
    module that needs a course of its own copies that one (a course folder can be moved: its config
    takes the course root from where it lies)."""
    if "course" not in _GENERATED:
        root = tmp_path_factory.mktemp("generated")
        course, home = root / "course", root / "instructor-home"
        home.mkdir()
        made = kit("nbgrader-course", str(course), "--exchange", str(root / "exchange"), "--course-id", COURSE_ID,
                   *UNSANDBOXED)
        assert made.returncode == 0, made.stderr
        nbgrader(["generate_assignment", ASSIGNMENT_ID], course, home)
        _GENERATED["course"] = course
    shutil.copytree(_GENERATED["course"], target)
    return target


# The students whose notebooks `nbgrader autograde` runs in a kernel; the kit's nbgrader-autograde
# grades the others.
KERNEL_PATH = ["alice", "bob", "carol", *KERNEL_KILLERS]
FAST_PATH = ["dave", "erin", "zed"]


@pytest.fixture(scope="module")
def course_run(tmp_path_factory):
    """The whole nbgrader workflow on a temporary course; returns what the assertions need."""
    started = time.perf_counter()
    root = tmp_path_factory.mktemp("nbgrader")
    course = generated_course(tmp_path_factory, root / "course")
    instructor = root / "instructor-home"
    instructor.mkdir()

    # Students through an LMS: one zip each in downloaded/dropout/archive/, named STUDENTID_anything.zip.
    archive = course / "downloaded" / ASSIGNMENT_ID / "archive"
    archive.mkdir(parents=True)
    for student, sources, top in (("dave", buggy_sources(), "dropout"), ("erin", solution_sources(), "")):
        tree = root / f"lms-{student}"
        shutil.copytree(course / "release" / ASSIGNMENT_ID, tree)
        set_graded_files(tree, sources)
        if student == "erin":  # she ran her notebook: the fast path keeps all its outputs
            run_experiment_cells(tree / NOTEBOOK_NAME)
        lms_zip(archive / f"{student}_attempt_2024-03-01_{ASSIGNMENT_ID}.zip", tree, top)
    # The release to the exchange and the LMS zips' collection touch neither each other nor the gradebook.
    in_parallel([(["release_assignment", ASSIGNMENT_ID], course, instructor),
                 (["zip_collect", ASSIGNMENT_ID], course, instructor)])

    # A student through the exchange, with her own HOME and the course's student config.
    home = root / "home-alice"
    (home / ".jupyter").mkdir(parents=True)
    shutil.copy(course / "for_students" / "nbgrader_config.py", home / ".jupyter")
    nbgrader(["fetch_assignment", ASSIGNMENT_ID, "--student=alice"], home, home)
    work = home / ASSIGNMENT_ID
    set_graded_files(work, solution_sources())  # correct, and answers the inline questions
    answer_inline_questions(work / NOTEBOOK_NAME)
    run_experiment_cells(work / NOTEBOOK_NAME)
    nbgrader(["submit", ASSIGNMENT_ID, "--student=alice"], home, home)
    nbgrader(["collect", ASSIGNMENT_ID], course, instructor)

    # The rest of the class, as collect leaves them.
    hand_in(course, "bob", None)  # the stubs, untouched
    # carol cheats in the notebook, layers.py untouched.
    hand_in(course, "carol", {"nnlab/classifiers/fc_net.py": solution_sources()["nnlab/classifiers/fc_net.py"]},
            insert_cheat)
    for student, cell in KERNEL_KILLERS.items():  # right files; the notebook kills its kernel
        hand_in(course, student, solution_sources(), lambda path, cell=cell: insert_cell(path, cell))
    hand_in(course, "zed", solution_sources(), notebook=False)  # right files, and no notebook

    # nbgrader autograde runs the notebooks that matter here (it cannot grade zed's folder, which
    # has no notebook; it is left in to be seen in its summary). Meanwhile this test grades every
    # submitted folder with the kit's own grader, for the assertions.
    began = time.perf_counter()
    autograding = start(["autograde", ASSIGNMENT_ID, "--CourseDirectory.student_id_exclude=dave,erin"], course,
                        instructor)
    rubric = load_rubric(course / "rubric.toml")
    students = sorted([*KERNEL_PATH, *FAST_PATH])
    kit_grades = {s: grade_submission(course / "submitted" / s / ASSIGNMENT_ID, rubric) for s in students}
    STEP_SECONDS["kit grades in the test"] = round(time.perf_counter() - began, 1)
    autograde_log = finish(autograding)
    STEP_SECONDS["autograde"] = round(time.perf_counter() - began, 1)
    # ... and the kit's command grades the rest of the class (the others are autograded already).
    began = time.perf_counter()
    fast = kit("nbgrader-autograde", str(course), "--jobs", "2")
    STEP_SECONDS["nbgrader-autograde"] = round(time.perf_counter() - began, 1)
    assert fast.returncode == 0, fast.stdout + fast.stderr
    feedback_log, _ = in_parallel([(["generate_feedback", ASSIGNMENT_ID], course, instructor),
                                   (["export"], course, instructor)])
    seconds = time.perf_counter() - started
    return dict(course=course, rubric=rubric, students=students, kit=kit_grades, seconds=seconds,
                autograde_log=autograde_log, fast=fast, feedback_log=feedback_log)


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
    # Through the exchange, zip_collect, a dead kernel (four ways), no notebook.
    for student in ("alice", "erin", *KERNEL_KILLERS, "zed"):
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
    # alice and bob through nbgrader autograde (the cells were skipped in the kernel), erin through the
    # kit's nbgrader-autograde (no cell was run; every cell keeps what she submitted).
    for student, expected in (("alice", [label, EXPERIMENT_OUTPUT]),
                              ("bob", [NOT_SUBMITTED_LABEL.format(tag="autograde-skip")]),
                              ("erin", [label, EXPERIMENT_OUTPUT])):
        notebook = autograded_notebook(course_run["course"], student)
        long_cells = [c for c in notebook.cells if "autograde-skip" in c.metadata.get("tags", [])]
        assert len(long_cells) == 2
        for cell in long_cells:
            assert [o.get("text", "") for o in cell.outputs] == expected, student
    # ... and the feedback shows them to the student.
    for student in ("alice", "erin"):
        page = course_run["course"] / "feedback" / student / ASSIGNMENT_ID / "Dropout.html"
        text = visible_text(page.read_text(encoding="utf-8"))
        assert EXPERIMENT_OUTPUT.strip() in text and "Submitted output, not re-run at autograde" in text, student
    print(f"nbgrader workflow: {course_run['seconds']:.1f} s; steps: {STEP_SECONDS}")


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(KERNEL_KILLERS), ids=lambda s: KERNEL_KILLERS[s].splitlines()[-1])
def test_a_notebook_that_kills_its_kernel_keeps_the_grade_of_its_files(course_run, student):
    course = course_run["course"]
    notebook = autograded_notebook(course, student)
    # The kernel died in nbgrader autograde's run of the notebook: the cells after the killer did not run.
    assert notebook.metadata.dropout_lab.kernel_stopped.startswith("DeadKernelError")
    killer = next(i for i, c in enumerate(notebook.cells) if c.source == KERNEL_KILLERS[student])
    test_cells = [c for c in notebook.cells[killer:] if c.metadata.get("nbgrader", {}).get("grade_id") in TEST_CELLS]
    assert "This cell's own asserts: did not run in the autograde kernel." in test_cells[0].outputs[0].text
    # Her files' grade stands, in the gradebook and the export ...
    assert course_run["kit"][student].score == course_run["rubric"].max_score
    assert autograded_total(gradebook_scores(course, student)) == course_run["kit"][student].score
    assert exported_scores(course)[student] == course_run["kit"][student].score
    # ... and the death is stated, in the log and in the summary.
    log = course_run["autograde_log"]
    assert f"{student}: the notebook's kernel stopped (DeadKernelError" in log
    summary = re.sub(r"\s+", " ", log[log.index("Dropout Lab: autograde of"):])
    assert f"{student}: the notebook's kernel stopped (DeadKernelError" in summary
    assert "the .py grade does not depend on it" in summary


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
    assert f"Graded in this run: {len(KERNEL_PATH)} student(s), autograded scores out of 36" in summary
    assert re.search(r"carol: cell test_dropout_forward: its own asserts passed in the autograde kernel, but the "
                     r"sandboxed grade", re.sub(r"\s+", " ", summary))
    for student in KERNEL_KILLERS:
        assert f"{student}: the notebook's kernel stopped" in summary
    # The students left to the kit's command (excluded from this run) are not counted as missing.
    assert "Students without an autograded score: 1 (zed)" in summary
    assert "dave" not in summary and "erin" not in summary
    assert len(summary.splitlines()) <= 30  # one screen
    fast = course_run["fast"].stdout
    assert f"Graded in this run: {len(FAST_PATH)} student(s)" in fast
    assert "Students without an autograded score" not in fast


@pytest.mark.slow
def test_the_audit_finds_the_one_changed_score(course_run):
    """The audit grades every folder in submitted/ and lists exactly the students whose gradebook score
    is not the kit's: here only alice, whose first cell a grader overrode."""
    from nbgrader.api import Gradebook

    course = course_run["course"]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        grade = gradebook.find_grade("test_dropout_forward", "Dropout", ASSIGNMENT_ID, "alice")
        grade.manual_score = 3
        gradebook.db.commit()
    try:
        audit = kit("nbgrader-audit", str(course), "--jobs", "2")
    finally:
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
            grade = gradebook.find_grade("test_dropout_forward", "Dropout", ASSIGNMENT_ID, "alice")
            grade.manual_score = None
            gradebook.db.commit()
    assert audit.returncode == 1, audit.stdout + audit.stderr
    assert f"{len(course_run['students'])} student folder(s) in submitted/ graded by the kit" in audit.stdout
    assert "1 student(s) whose gradebook score differs" in audit.stdout
    assert re.search(r"alice: gradebook 19, the kit 36 of 36", audit.stdout), audit.stdout
    assert not [s for s in course_run["students"] if s != "alice" and f"{s}:" in audit.stdout], audit.stdout


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


def test_refuses_a_course_dir_that_is_not_empty_unless_forced(tmp_path, capsys):
    from autograder.cli import main

    course = tmp_path / "course"
    course.mkdir()
    (course / "gradebook.db").write_text("kept")
    assert main(["nbgrader-course", str(course)]) == 2
    assert "is not empty; choose another COURSE_DIR, or pass --force" in capsys.readouterr().err
    assert not (course / "source").exists()
    assert main(["nbgrader-course", str(course), "--force"]) == 0, capsys.readouterr().err
    assert (course / "source" / ASSIGNMENT_ID / NOTEBOOK_NAME).is_file()
    assert (course / "gradebook.db").read_text() == "kept"


def test_a_rubric_check_without_a_notebook_cell_is_refused():
    from autograder.nbgrader_bridge import BridgeError
    from autograder.rubric import Rubric, RubricEntry

    rubric = Rubric(Path("my-rubric.toml"), {"forward_x": RubricEntry(2.0), "stats_y": RubricEntry(1.0)})
    with pytest.raises(BridgeError, match="stats_y belong to no notebook test cell"):
        cell_checks(rubric)


@pytest.mark.slow
def test_without_the_kit_autograde_refuses_but_other_commands_work(course_run, tmp_path):
    """nbgrader would go on without a config file that fails; the course's config refuses autograde
    instead, when autograde starts, and leaves every other command (export, the formgrader) working."""
    course = tmp_path / "course"
    shutil.copytree(course_run["course"], course)
    home = tmp_path / "home"
    home.mkdir()
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text().replace("from autograder.nbgrader_bridge", "from autograder.not_there"))
    before = {path: path.read_bytes() for path in sorted((course / "autograded").rglob("*.ipynb"))}
    (course / "grades.csv").unlink()
    ran = {}

    def autograde_and_export():  # while the Jupyter server starts; neither writes the gradebook
        autograding = start(["autograde", ASSIGNMENT_ID, "--force"], course, home)
        exporting = start(["export"], course, home)
        ran["autograde"] = autograding.communicate(timeout=COMMAND_TIMEOUT)[0], autograding.returncode
        ran["export"] = finish(exporting)  # loads the same config

    # The formgrader's list of assignments, as its page asks for it.
    page = formgrader_page(course, home, meanwhile=autograde_and_export)
    output, status = ran["autograde"]
    assert status != 0
    assert "cannot import the Dropout Lab kit" in output and "nothing was graded or removed" in output
    assert "Exception while loading config file" not in output
    # --force removed no earlier autograded notebook.
    assert {path: path.read_bytes() for path in sorted((course / "autograded").rglob("*.ipynb"))} == before
    assert set(exported_scores(course)) == set(course_run["students"])
    assert page.startswith("200 ") and '"name": "dropout"' in page, page[:2000]


def formgrader_page(course: Path, home: Path, meanwhile=lambda: None) -> str:
    """Start a Jupyter server in the course folder, run ``meanwhile()`` while it starts, and fetch the
    formgrader's page: 'STATUS body'."""
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
        meanwhile()
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
