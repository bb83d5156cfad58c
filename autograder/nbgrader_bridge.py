"""nbgrader 0.9 bridge: the notebook's autograded cells take their scores from the sandboxed grader.

A notebook test cell runs in the student's own kernel, where an earlier cell may have redefined
anything (``np.allclose``, ``dropout_forward``, ``AssertionError``). So the course's
``nbgrader_config.py`` (written by ``nbgrader-course``) plugs three things of this module into
nbgrader's ``Autograde``:

- ``CheckedExporter`` (``Autograde.exporter_class``) is built when autograde starts, before nbgrader
  removes anything. It refuses to go on when the rubric and the gradebook disagree on a test cell's
  points, or when the sandbox (bubblewrap) cannot be used and the course has not opted out with
  ``c.SandboxedGrades.allow_unsandboxed = True``. It also mutes the warnings every student would
  repeat (see ``quiet_expected_noise``).
- ``KernelRun`` replaces nbgrader's ``Execute``: the same notebook run, except that a kernel that dies
  (``os._exit``, ``exit()``, a segfault, running out of memory) ends the run of that notebook only.
  What ran is kept, the death is noted, and grading goes on.
- ``SandboxedGrades`` runs after it and before nbgrader's ``SaveAutoGrades``. It grades the student's
  folder in ``submitted/`` with the kit's grader (only the graded ``.py`` files, in a sandboxed child,
  with the course's rubric), or takes the grade that ``python -m autograder nbgrader-autograde``
  computed for the whole class beforehand. It replaces each test cell's outputs with a report of the
  cell's rubric checks and an ``execute_result`` holding their summed score, which nbgrader reads as
  partial credit, so the gradebook holds exactly the sandboxed score. Cells tagged ``autograde-skip``
  get back the outputs the student submitted, labelled as such.

The grade never depends on the kernel: a notebook that crashes, hangs or cheats changes only what
the manual grader reads. Every student graded in a run is noted, and at the end of the run a
one-screen summary (``autograder.nbgrader_summary``) lists the scores and every student whose
grade could not be computed or deserves a look, with why.

This module is imported by every nbgrader command that reads the course's config (the formgrader
too), so it imports the grader only when a submission is graded.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import sys
import textwrap
import warnings
from pathlib import Path

from nbconvert.exporters import NotebookExporter
from nbformat.v4 import new_output
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor
from traitlets import Bool, Integer, List, Unicode

from autograder.limits import DEFAULT_BASE_SEED

ASSIGNMENT_ID = "dropout"
NOTEBOOK_ID = "Dropout"

# The notebook's autograded test cells, by nbgrader grade_id, and the prefix of the rubric checks
# (autograder/checks) whose points each one carries. Every rubric check belongs to exactly one cell.
TEST_CELLS = {
    "test_dropout_forward": "forward_",
    "test_dropout_backward": "backward_",
    "test_fc_net_dropout": "fc_",
}

# Tag of the notebook cells that autograde does not run (they take long and grade nothing).
LONG_CELL_TAG = "autograde-skip"
REPORT_WIDTH = 88
SUBMITTED_LABEL = ("[Submitted output, not re-run at autograde (tagged {tag}): this is what the student's "
                   "own run of the cell printed.]\n")
NOT_SUBMITTED_LABEL = "[Not run at autograde (tagged {tag}), and the submitted notebook has no output here.]\n"


class BridgeError(RuntimeError):
    """The course and the rubric do not fit together; the message says what to change."""


def cell_checks(rubric) -> dict[str, list[str]]:
    """The rubric's checks that each notebook test cell carries, in rubric order."""
    by_cell = {grade_id: [] for grade_id in TEST_CELLS}
    orphans = []
    for check in rubric.entries:
        owners = [grade_id for grade_id, prefix in TEST_CELLS.items() if check.startswith(prefix)]
        if len(owners) != 1:
            orphans.append(check)
        else:
            by_cell[owners[0]].append(check)
    if orphans:
        raise BridgeError(
            f"{rubric.path}: the check(s) {', '.join(orphans)} belong to no notebook test cell; name each "
            f"check with one of the prefixes {', '.join(TEST_CELLS.values())} or add a cell to "
            f"TEST_CELLS in autograder/nbgrader_bridge.py"
        )
    return by_cell


def _number(value: float) -> float | int:
    """Points as nbgrader shows them: 3 rather than 3.0, 1.5 stays 1.5."""
    value = round(float(value), 4)
    return int(value) if value.is_integer() else value


def cell_points(rubric) -> dict[str, float | int]:
    """Each notebook test cell's points: the sum of its rubric checks' points."""
    return {grade_id: _number(sum(rubric.entries[check].points for check in checks))
            for grade_id, checks in cell_checks(rubric).items()}


# -- the course as a whole: checked before anything is graded or removed ---------------------------
def kit_command(*words: str) -> str:
    """A kit command line that works from any folder: the kit's own interpreter, absolute."""
    return " ".join([sys.executable, "-m", "autograder", *words])


def nbgrader_command(*words: str) -> str:
    return " ".join([str(Path(sys.executable).parent / "nbgrader"), *words])


def rebuild_steps(course_root: Path, rubric_path: Path) -> str:
    """The full list of commands that makes a course agree with a rubric again."""
    course_root, rubric_path = Path(course_root).resolve(), Path(rubric_path).resolve()
    return (
        f"  {kit_command('nbgrader-course', str(course_root), '--force', '--rubric', str(rubric_path))}\n"
        f"  cd {course_root}\n"
        f"  {nbgrader_command('generate_assignment', ASSIGNMENT_ID, '--force')}\n"
        f"  {nbgrader_command('release_assignment', ASSIGNMENT_ID, '--force')}   "
        f"(only if students should fetch the new notebook)\n"
        f"and autograde again."
    )


def gradebook_points(db_url: str, course_id: str) -> dict[str, float]:
    """The points nbgrader's gradebook gives each of the kit's test cells (from generate_assignment)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url, course_id) as gradebook:
        try:
            notebook = gradebook.find_notebook(NOTEBOOK_ID, ASSIGNMENT_ID)
        except MissingEntry:
            return {}
        return {cell.name: float(cell.max_score) for cell in notebook.grade_cells if cell.name in TEST_CELLS}


def check_course(course_root: Path, db_url: str, course_id: str, rubric_path: Path):
    """The course's rubric, once it is usable and agrees with the gradebook; BridgeError otherwise."""
    from autograder.rubric import RubricError, load_rubric

    rubric_path = Path(rubric_path).resolve()
    try:
        rubric = load_rubric(rubric_path)
        wanted = cell_points(rubric)
    except (RubricError, BridgeError) as error:
        raise BridgeError(f"the rubric cannot be used, nothing was graded or removed: {error}") from None
    stored = gradebook_points(db_url, course_id)
    if not stored:
        return rubric  # nbgrader itself says that generate_assignment has not been run
    wrong = [f"cell {grade_id!r}: {_number(points)} points in the rubric, "
             f"{_number(stored[grade_id]) if grade_id in stored else 'no cell'} in the gradebook"
             for grade_id, points in wanted.items()
             if grade_id not in stored or not math.isclose(points, stored[grade_id], abs_tol=1e-6)]
    if wrong:
        raise BridgeError(
            f"the rubric {rubric_path} and nbgrader's gradebook {db_url} disagree, so nothing was graded "
            f"or removed:\n  " + "\n  ".join(wrong) + "\nMake them agree with:\n" + rebuild_steps(course_root, rubric_path)
        )
    return rubric


_WARNED_UNSANDBOXED: set = set()


def sandbox_refusal(allow_unsandboxed: bool, what: str = "nbgrader autograde", config_path=None) -> str | None:
    """The kit's sandbox policy (``autograder.sandbox.require_sandbox``, the one ``grade-batch`` follows)
    for a course: why ``what`` must not grade here, or None.

    The course opts out with ``c.SandboxedGrades.allow_unsandboxed = True`` (``allow_unsandboxed``), or
    the environment with DROPOUT_LAB_ALLOW_UNSANDBOXED=1. Grading that goes on without the full sandbox
    is logged as a warning, once per process, with the protections that are missing."""
    from autograder.sandbox import SandboxRequired, bwrap_status, require_sandbox

    where = f"in {config_path}" if config_path else "in the course's nbgrader_config.py"
    opt_out = (f"write `c.SandboxedGrades.allow_unsandboxed = True` {where} (`nbgrader-course COURSE_DIR "
               f"--force --allow-unsandboxed` writes it)")
    try:
        missing = require_sandbox(allow_unsandboxed, what, opt_out)
    except SandboxRequired as refusal:
        return f"{refusal}\nNothing was graded or removed."
    if missing and what not in _WARNED_UNSANDBOXED:
        _WARNED_UNSANDBOXED.add(what)
        allowed_by = ("the course allows it (c.SandboxedGrades.allow_unsandboxed = True)" if allow_unsandboxed
                      else "DROPOUT_LAB_ALLOW_UNSANDBOXED allows it")
        logging.getLogger("DropoutLab").warning(
            "Dropout Lab: %s grades WITHOUT the full sandbox (%s), as %s. Missing: %s.",
            what, bwrap_status()[1] or "see the protections", allowed_by, ", ".join(missing))
    return None


class _ExpectedNoise(logging.Filter):
    """Drops the log lines that every student's autograde repeats and that mean nothing wrong."""

    def __init__(self):
        super().__init__()
        self.explained = False

    def filter(self, record: logging.LogRecord) -> bool:
        # Every record of the run passes here: look at the format string and arguments, not the message.
        if (record.levelno == logging.WARNING and isinstance(record.msg, str)
                and record.msg.startswith("Attribute '%s' for cell %s has changed!")
                and isinstance(record.args, tuple) and len(record.args) >= 2
                and record.args[0] == "checksum" and record.args[1] in TEST_CELLS):
            # generate_assignment stores the checksum of a test cell with its hidden tests, and the
            # released cell has them removed: the two never match. OverwriteCells puts the cell back.
            if self.explained:
                return False
            self.explained = True
            record.msg, record.args = ("Dropout Lab: the test cells' checksums differ from the gradebook's in "
                                       "every submission, because their hidden tests were removed at release; "
                                       "expected, and the cells are restored from the gradebook (not repeated)."), ()
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def quiet_expected_noise(log: logging.Logger) -> None:
    """Mute what nbgrader repeats for every student and that is expected with this course."""
    # nbgrader's gradebook code adds rows in a way SQLAlchemy 2 warns about; the rows are written.
    try:
        from sqlalchemy.exc import SAWarning

        warnings.filterwarnings("ignore", category=SAWarning, message=r"Object of type <Submitted")
    except ImportError:
        pass
    if not any(isinstance(f, _ExpectedNoise) for f in log.filters):
        log.addFilter(_ExpectedNoise())


def _find_coursedir(configurable):
    """nbgrader's CourseDirectory of the converter that runs this preprocessor or exporter."""
    node = configurable
    while node is not None:
        coursedir = getattr(node, "coursedir", None)
        if coursedir is not None:
            return coursedir
        node = getattr(node, "parent", None)
    from nbgrader.coursedir import CourseDirectory  # run outside a converter: read the config
    return CourseDirectory(config=configurable.config)


def _rubric_path(configurable, coursedir) -> Path:
    from autograder.rubric import DEFAULT_RUBRIC

    setting = configurable.config.get("SandboxedGrades", {}).get("rubric", "") if configurable.config else ""
    if not setting:
        return DEFAULT_RUBRIC
    path = Path(setting)
    return path if path.is_absolute() else Path(coursedir.root) / path


class CheckedExporter(NotebookExporter):
    """nbgrader's notebook exporter, built when autograde starts: checks the course first.

    nbgrader builds its exporter once, before it removes any earlier autograded notebook (with
    ``--force``) or grades anyone, so a refusal here leaves the course as it was."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from nbgrader.converters.base import NbGraderException

        coursedir = _find_coursedir(self)
        quiet_expected_noise(self.log)
        allow = bool(self.config.get("SandboxedGrades", {}).get("allow_unsandboxed", False)) if self.config else False
        try:
            refusal = sandbox_refusal(allow, "nbgrader autograde", Path(coursedir.root) / "nbgrader_config.py")
            if refusal:
                raise BridgeError(refusal)
            check_course(Path(coursedir.root), coursedir.db_url, coursedir.course_id, _rubric_path(self, coursedir))
        except BridgeError as error:
            self.log.error("Dropout Lab: %s", error)
            raise NbGraderException(str(error)) from None


class FeedbackHiddenTests(ClearHiddenTests):
    """nbgrader's ClearHiddenTests for the feedback: removes hidden tests from the test cells shown.

    nbgrader's feedback configuration sets ``display_data_priority`` for every preprocessor it runs,
    and ClearHiddenTests does not declare it, so traitlets warned once per student; declared here."""

    display_data_priority = List(["text/html", "application/pdf", "text/latex", "image/svg+xml", "image/png",
                                  "image/jpeg", "text/plain"]).tag(config=True)


# -- the notebook's run in a kernel ---------------------------------------------------------------
class KernelRun(Execute):
    """nbgrader's Execute, except that a kernel that dies or stops answering ends this notebook's run
    only: the cells that ran keep their outputs, the notebook's metadata says what happened, and the
    next preprocessors (the sandboxed grade) still run."""

    def preprocess(self, nb, resources):
        try:
            return super().preprocess(nb, resources)
        except Exception as error:  # DeadKernelError, a kernel that never started, ...
            where = next((index for index, cell in enumerate(nb.cells) if cell.cell_type == "code"
                          and cell.get("execution_count") is None and LONG_CELL_TAG not in cell.metadata.get("tags", [])),
                         None)
            reason = f"{type(error).__name__}" + (f" at cell {where}" if where is not None else "")
            nb.metadata.setdefault("dropout_lab", {})["kernel_stopped"] = reason
            student = resources.get("nbgrader", {}).get("student", "?")
            self.log.warning("Dropout Lab: %s: the notebook's kernel stopped (%s); the cells before it keep their "
                             "outputs, and the grade of the .py files does not depend on it.", student, reason)
            return nb, resources


# -- the sandboxed grade -------------------------------------------------------------------------
# Results of a whole class, computed before nbgrader's run by ``nbgrader-autograde``: an object with
# ``result(student) -> GradeResult`` (raising GraderError when the grader failed on that student).
PRECOMPUTED = None
# What this process graded: student -> dict(score, max_score, notes), for the end-of-run summary.
RUN_NOTES: dict[str, dict] = {}
_SUMMARY = {"course": None, "registered": False, "printed": False}


def _kernel_outcome(cell, source: str) -> tuple[bool, str]:
    """Whether the cell's own code passed (in the autograde kernel or the submitted notebook), and a
    short line saying so. Only the exception's name is shown: its message may quote hidden inputs."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return False, f"raised {output.get('ename', 'an error')} {source}"
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            return False, f"wrote to stderr {source}"
    if cell.get("execution_count") is None and not cell.get("outputs"):
        return False, f"did not run {source}"
    return True, f"passed {source}"


def _wrapped(text: str, indent: str) -> list[str]:
    lines = []
    for line in text.splitlines() or [""]:
        lines += textwrap.wrap(line, REPORT_WIDTH - len(indent), break_long_words=True,
                               break_on_hyphens=False, subsequent_indent="  ") or [""]
    return [indent + line for line in lines]


def cell_report(tests, score, max_score, kernel_line: str) -> str:
    """The text a test cell shows after autograde: wrapped to REPORT_WIDTH columns, the public checks
    one per line, the hidden ones counted without their names (as ``check`` leaves them out), and
    each reason for lost points once, with the checks it explains."""
    visible = [test for test in tests if test.visibility == "visible"]
    hidden = [test for test in tests if test.visibility != "visible"]
    lines = _wrapped(f"Score for this cell: {_number(score)} of {_number(max_score)} points, from the course's "
                     f"grader run on your nnlab files in a sandbox (not from this cell's code).", "")
    lines += _wrapped(f"This cell's own asserts: {kernel_line}.", "")
    for test in visible:
        mark = "passed" if test.status == "passed" else "FAILED"
        lines.append(f"  {mark}  {test.name} ({_number(test.score)}/{_number(test.max_score)})")
    if hidden:
        passed = sum(test.status == "passed" for test in hidden)
        lines += _wrapped(f"hidden checks: {passed} of {len(hidden)} passed, "
                          f"{_number(sum(t.score for t in hidden))}/{_number(sum(t.max_score for t in hidden))} "
                          f"points", "  ")
    failed = [test for test in tests if test.status != "passed"]
    if failed:
        lines += ["", "What to look at:"]
        groups: dict[str, list[str]] = {}
        for test in failed:
            groups.setdefault(test.output, []).append(test.name if test.visibility == "visible" else "a hidden check")
        for output, names in groups.items():
            counted = sorted(set(names), key=names.index)
            label = ", ".join(f"{name} (x{names.count(name)})" if names.count(name) > 1 else name for name in counted)
            lines += _wrapped(f"- {label}:", "  ")
            lines += _wrapped(output, "      ")
    return "\n".join(lines) + "\n"


def _submitted_notebook(coursedir, student: str):
    """The notebook as the student submitted it (only its cells' outputs are used), or None."""
    import json

    import nbformat

    path = Path(coursedir.format_path(coursedir.submitted_directory, student, ASSIGNMENT_ID)) / f"{NOTEBOOK_ID}.ipynb"
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
        if isinstance(data, dict) and data.get("nbformat") == 4 and isinstance(data.get("cells"), list):
            return nbformat.v4.nbjson.reads(text)  # nbgrader has read and validated it already
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError, TypeError, AttributeError):
        return None


_RUBRICS: dict = {}


def _course_rubric(path: Path):
    """The rubric at ``path``, read once per content (it is the same for every student of a run)."""
    from autograder.rubric import load_rubric

    key = (str(path), path.stat().st_mtime_ns, path.stat().st_size)
    if key not in _RUBRICS:
        _RUBRICS[key] = load_rubric(path)
    return _RUBRICS[key]


def _matching_cells(nb, submitted) -> dict[int, object]:
    """Index in ``nb`` -> the submitted cell it came from: by cell id, else by identical source."""
    by_id = {cell.get("id"): cell for cell in submitted.cells if cell.get("id")}
    by_source: dict[str, object] = {}
    for cell in submitted.cells:
        if isinstance(cell.get("source"), str):
            by_source.setdefault(cell.source, cell)
    found = {}
    for index, cell in enumerate(nb.cells):
        match = by_id.get(cell.get("id"))
        if match is None or match.cell_type != cell.cell_type:
            match = by_source.get(cell.source)
        if match is not None and match.cell_type == cell.cell_type == "code":
            found[index] = match
    return found


def _note(student: str, text: str) -> None:
    RUN_NOTES.setdefault(student, {"notes": []})["notes"].append(text)


def _students_of_the_run(coursedir) -> list[str] | None:
    """The student folders in submitted/ that this run was asked to grade (``--student`` and
    ``CourseDirectory.student_id_exclude`` honoured), for the summary; None if they cannot be listed."""
    try:
        from autograder.nbgrader_fast import submitted_folders

        return sorted(submitted_folders(coursedir, coursedir.student_id or "*"))
    except Exception:  # the summary then lists every folder in submitted/
        return None


def _print_summary() -> None:
    if _SUMMARY["printed"] or not _SUMMARY["course"]:
        return
    _SUMMARY["printed"] = True
    from autograder.nbgrader_summary import summary_text

    try:
        text = summary_text(_SUMMARY["course"], _SUMMARY["db_url"], _SUMMARY["course_id"], RUN_NOTES,
                            students=_SUMMARY.get("students"))
    except Exception as error:  # the summary must never hide the run's own result
        text = f"Dropout Lab: no summary ({type(error).__name__}: {error})"
    sys.stderr.write("\n" + text + "\n")
    sys.stderr.flush()


class SandboxedGrades(NbGraderPreprocessor):
    """Sets the kit's notebook test cells' results from a sandboxed grade of the submission's .py files."""

    rubric = Unicode(
        "", help="The rubric TOML file; empty for the kit's default. A relative path is taken from the course root."
    ).tag(config=True)
    base_seed = Integer(DEFAULT_BASE_SEED, help="Base seed of the grader's random inputs (a grade replays from it).").tag(
        config=True
    )
    long_cell_tag = Unicode(LONG_CELL_TAG, help="Tag of the cells that autograde does not run.").tag(config=True)
    allow_unsandboxed = Bool(
        False, help="Grade even where the bubblewrap sandbox cannot be used (student code then runs with "
                    "the grader's rights). Off by default: autograde refuses instead.").tag(config=True)
    keep_submitted_outputs = Unicode(
        "skipped", help="Which cells get back the outputs the student submitted: 'skipped' (the cells tagged "
                        "long_cell_tag, which autograde does not run) or 'all' (no cell was run).").tag(config=True)
    summary = Bool(True, help="Print a one-screen summary of the run when it ends.").tag(config=True)

    def _grade(self, student: str, folder: Path, coursedir):
        from autograder.grade import grade_submission
        from autograder.plugin import GraderError

        if PRECOMPUTED is not None:
            return PRECOMPUTED.result(student)
        refusal = sandbox_refusal(self.allow_unsandboxed, "nbgrader autograde",
                                  Path(coursedir.root) / "nbgrader_config.py")
        if refusal:
            raise BridgeError(refusal)
        rubric = check_course(Path(coursedir.root), coursedir.db_url, coursedir.course_id,
                              _rubric_path(self, coursedir))
        try:
            return grade_submission(folder, rubric, base_seed=self.base_seed)
        except GraderError as error:
            raise BridgeError(f"the kit's grader could not grade {folder}: {error}") from None

    def _restore_outputs(self, nb, submitted, student: str) -> None:
        """Put back the student's own outputs of the cells that autograde did not run."""
        everything = self.keep_submitted_outputs == "all"
        matches = _matching_cells(nb, submitted) if submitted is not None else {}
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            skipped = self.long_cell_tag in cell.metadata.get("tags", [])
            if not (skipped or everything):
                continue
            match = matches.get(index)
            if match is not None and (everything or not cell.get("outputs")):
                cell.outputs = list(match.get("outputs", []))
                cell.execution_count = match.get("execution_count")
            if skipped:
                label = SUBMITTED_LABEL if cell.outputs else NOT_SUBMITTED_LABEL
                cell.outputs = [new_output("stream", name="stdout", text=label.format(tag=self.long_cell_tag)),
                                *cell.outputs]

    def preprocess(self, nb, resources):
        from autograder.plugin import GraderError

        info = resources["nbgrader"]
        student = info["student"]
        coursedir = _find_coursedir(self)
        if self.summary and not _SUMMARY["registered"]:
            _SUMMARY.update(course=Path(coursedir.root), db_url=coursedir.db_url, course_id=coursedir.course_id,
                            students=_students_of_the_run(coursedir), registered=True)
            atexit.register(_print_summary)
        folder = Path(coursedir.format_path(coursedir.submitted_directory, student, ASSIGNMENT_ID))
        RUN_NOTES.setdefault(student, {"notes": []})
        try:
            result = self._grade(student, folder, coursedir)
        except (BridgeError, GraderError) as error:
            _note(student, f"not graded: {error}")
            raise
        rubric = _course_rubric(_rubric_path(self, coursedir))
        checks = cell_checks(rubric)
        by_name = {test.name: test for test in result.tests}
        placeholder = nb.metadata.get("dropout_lab", {}).get("placeholder")
        submitted = None if placeholder else _submitted_notebook(coursedir, student)
        self._restore_outputs(nb, submitted, student)
        kernel_stopped = nb.metadata.get("dropout_lab", {}).get("kernel_stopped")
        source = "in the submitted notebook" if self.keep_submitted_outputs == "all" else "in the autograde kernel"

        seen = set()
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id not in checks or not nbgrader_utils.is_grade(cell) or cell.cell_type != "code":
                continue
            seen.add(grade_id)
            tests = [by_name[name] for name in checks[grade_id]]
            score = sum(test.score for test in tests)
            max_score = sum(test.max_score for test in tests)
            if placeholder:
                kernel_passed, kernel_line = False, "no notebook was submitted"
            else:
                kernel_passed, kernel_line = _kernel_outcome(cell, source)
            cell.outputs = [
                new_output("stream", name="stdout", text=cell_report(tests, score, max_score, kernel_line)),
                new_output("execute_result", data={"text/plain": repr(float(_number(score)))},
                           execution_count=cell.get("execution_count")),
            ]
            failed = [test.name for test in tests if test.status != "passed"]
            cell.metadata["dropout_lab"] = {
                "sandboxed_score": _number(score), "max_score": _number(max_score),
                "kernel_passed": kernel_passed, "checks": {t.name: _number(t.score) for t in tests},
            }
            if kernel_passed and score < max_score:
                message = (f"cell {grade_id}: its own asserts passed {source}, but the sandboxed grade of the .py "
                           f"files is {_number(score)} of {_number(max_score)} (failed: {', '.join(failed)}); compare "
                           f"the two, the notebook and the files may not hold the same code")
                self.log.warning("Dropout Lab: %s, %s.", student, message)
                _note(student, message)
        missing_cells = sorted(set(checks) - seen)
        if missing_cells:
            message = (f"the notebook has no test cell {', '.join(missing_cells)}, so those points are lost; set "
                       f"OverwriteCells.add_missing_cells = True to put deleted cells back")
            self.log.warning("Dropout Lab: %s: %s.", student, message)
            _note(student, message)
        if placeholder:
            _note(student, "no Dropout.ipynb was submitted: the .py files are graded, the inline questions get 0")
        if kernel_stopped:
            _note(student, f"the notebook's kernel stopped ({kernel_stopped}); the .py grade does not depend on it")
        missing_files = result.extra_data.get("missing_files") or []
        if missing_files:
            _note(student, f"not in the submission, graded as the empty stubs: {', '.join(missing_files)}")
        if result.extra_data.get("error"):
            _note(student, f"the grader refused the submission: {result.extra_data['error']}")
        grader_errors = sorted(result.extra_data.get("grader_errors") or {})
        if grader_errors:
            message = (f"the kit's grader failed on {len(grader_errors)} check(s) ({', '.join(grader_errors)}), which "
                       f"score 0 although the fault is not the student's; fix the grader and autograde again")
            self.log.error("Dropout Lab: %s: %s.", student, message)
            _note(student, message)
        RUN_NOTES[student].update(score=result.score, max_score=result.max_score)
        nb.metadata.setdefault("dropout_lab", {}).update(sandboxed_score=result.score, max_score=result.max_score)
        self.log.info("Dropout Lab: %s scored %s of %s on the sandboxed grader (%s)",
                      student, _number(result.score), _number(result.max_score), folder)
        resources["dropout_lab"] = {"score": result.score, "max_score": result.max_score}
        return nb, resources
