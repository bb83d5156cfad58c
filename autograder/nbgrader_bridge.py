"""nbgrader 0.9 bridge: the notebook's autograded cells take their scores from the sandboxed grader.

A notebook test cell runs in the student's own kernel, where an earlier cell may have redefined
anything (``np.allclose``, ``dropout_forward``, ``AssertionError``). So at ``nbgrader autograde`` the
course's ``nbgrader_config.py`` adds ``SandboxedGrades`` to ``Autograde.autograde_preprocessors``,
after nbgrader's ``Execute`` and before its ``SaveAutoGrades``. For each submission it:

1. grades the student's folder in nbgrader's ``submitted/`` with the kit's grader
   (``autograder.grade.grade_submission``: only the graded ``.py`` files are taken, in a sandboxed
   child process, with the course's rubric);
2. replaces the outputs of each of the kit's test cells (``TEST_CELLS``) with a report of the rubric
   checks that belong to that cell and an ``execute_result`` holding their summed score. nbgrader reads
   a number in a grade cell's ``execute_result`` as partial credit, so ``SaveAutoGrades`` stores exactly
   the sandboxed score, and the notebook's autograded total equals the kit's score.

Whatever the cell did in the kernel is not counted; whether its own asserts passed is kept in the
cell's metadata (``dropout_lab.kernel_passed``) and a warning is logged when they passed but the
sandboxed grade did not give full marks, which is how a notebook that redefines functions shows up.

Cells tagged ``autograde-skip`` (the training experiment and its plot) are not run at autograde: the
course config sets ``Execute.skip_cells_with_tag`` to that tag, and this preprocessor puts a one-line
note in their (empty) outputs so a manual grader knows why.

This module is imported by every nbgrader command that reads the course's config, so it imports the
grader itself only when a submission is graded.
"""

from __future__ import annotations

import math
from pathlib import Path

from nbformat.v4 import new_output
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Integer, Unicode

from autograder.limits import DEFAULT_BASE_SEED

# The notebook's autograded test cells, by nbgrader grade_id, and the prefix of the rubric checks
# (autograder/checks) whose points each one carries. Every rubric check belongs to exactly one cell.
TEST_CELLS = {
    "test_dropout_forward": "forward_",
    "test_dropout_backward": "backward_",
    "test_fc_net_dropout": "fc_",
}

# Tag of the notebook cells that autograde does not run (they take long and grade nothing).
LONG_CELL_TAG = "autograde-skip"


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


def _find_coursedir(preprocessor):
    """nbgrader's CourseDirectory of the converter that runs this preprocessor."""
    node = preprocessor
    while node is not None:
        coursedir = getattr(node, "coursedir", None)
        if coursedir is not None:
            return coursedir
        node = getattr(node, "parent", None)
    from nbgrader.coursedir import CourseDirectory  # run outside a converter: read the config
    return CourseDirectory(config=preprocessor.config)


def _kernel_outcome(cell) -> tuple[bool, str]:
    """Whether the cell's own code passed in the student's kernel, and a short line saying so.

    Only the exception's name is shown: its message may quote hidden test inputs.
    """
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return False, f"raised {output.get('ename', 'an error')}"
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            return False, "wrote to stderr"
    if cell.get("execution_count") is None and not cell.get("outputs"):
        return False, "did not run"
    return True, "passed"


def _cell_report(tests, score, max_score, kernel_line) -> str:
    lines = [
        f"Score for this cell: {_number(score)} of {_number(max_score)} points, from the course's grader run "
        f"on your nnlab files in a sandbox (not from this cell's code).",
        f"This cell's own asserts, run in your notebook: {kernel_line}.",
    ]
    for test in tests:
        mark = "passed" if test.status == "passed" else "FAILED"
        lines.append(f"  {mark}  {test.name} ({_number(test.score)}/{_number(test.max_score)})")
        if test.status != "passed":
            lines += [f"          {line}" for line in test.output.splitlines()]
    return "\n".join(lines) + "\n"


class SandboxedGrades(NbGraderPreprocessor):
    """Sets the kit's notebook test cells' results from a sandboxed grade of the submission's .py files."""

    rubric = Unicode(
        "", help="The rubric TOML file; empty for the kit's default. A relative path is taken from the course root."
    ).tag(config=True)
    base_seed = Integer(DEFAULT_BASE_SEED, help="Base seed of the grader's random inputs (a grade replays from it).").tag(
        config=True
    )
    long_cell_tag = Unicode(LONG_CELL_TAG, help="Tag of the cells that autograde does not run.").tag(config=True)

    def _rubric_path(self, coursedir) -> Path:
        from autograder.rubric import DEFAULT_RUBRIC

        if not self.rubric:
            return DEFAULT_RUBRIC
        path = Path(self.rubric)
        return path if path.is_absolute() else Path(coursedir.root) / path

    def preprocess(self, nb, resources):
        from autograder.grade import grade_submission
        from autograder.plugin import GraderError
        from autograder.rubric import RubricError, load_rubric

        info = resources["nbgrader"]
        student, assignment = info["student"], info["assignment"]
        coursedir = _find_coursedir(self)
        folder = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
        try:
            rubric = load_rubric(self._rubric_path(coursedir))
        except RubricError as error:
            raise BridgeError(f"the rubric cannot be used: {error}") from None
        checks = cell_checks(rubric)
        try:
            result = grade_submission(folder, rubric, base_seed=self.base_seed)
        except GraderError as error:
            raise BridgeError(f"the kit's grader could not grade {folder}: {error}") from None
        by_name = {test.name: test for test in result.tests}

        seen = set()
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.cell_type == "code" and self.long_cell_tag in cell.metadata.get("tags", []) and not cell.outputs:
                cell.outputs = [new_output("stream", name="stdout", text=(
                    f"Not run at autograde (tagged {self.long_cell_tag}): it takes long and is not graded.\n"))]
            if grade_id not in checks or not nbgrader_utils.is_grade(cell) or cell.cell_type != "code":
                continue
            seen.add(grade_id)
            tests = [by_name[name] for name in checks[grade_id]]
            score = sum(test.score for test in tests)
            max_score = sum(test.max_score for test in tests)
            cell_max = float(cell.metadata["nbgrader"]["points"])
            if not math.isclose(max_score, cell_max, abs_tol=1e-6):
                raise BridgeError(
                    f"the rubric {rubric.path} gives the checks of cell {grade_id!r} {_number(max_score)} points, "
                    f"but the cell is worth {_number(cell_max)} in nbgrader's gradebook; make them agree "
                    f"(rebuild the course with `python -m autograder nbgrader-course COURSE_DIR --force --rubric "
                    f"{rubric.path}`, then `nbgrader generate_assignment dropout --force`)"
                )
            kernel_passed, kernel_line = _kernel_outcome(cell)
            cell.outputs = [
                new_output("stream", name="stdout", text=_cell_report(tests, score, max_score, kernel_line)),
                new_output("execute_result", data={"text/plain": repr(float(_number(score)))},
                           execution_count=cell.get("execution_count")),
            ]
            cell.metadata["dropout_lab"] = {
                "sandboxed_score": _number(score), "max_score": _number(max_score),
                "kernel_passed": kernel_passed, "checks": {t.name: _number(t.score) for t in tests},
            }
            if kernel_passed and score < max_score:
                self.log.warning(
                    "Dropout Lab: %s, cell %s: the notebook's asserts passed in the student's kernel, but the "
                    "sandboxed grade of the .py files is %s of %s; the notebook may redefine functions, or the "
                    "work is in the notebook instead of nnlab/.", student, grade_id, _number(score), _number(max_score))
        missing = sorted(set(checks) - seen)
        if missing:
            self.log.warning("Dropout Lab: %s: the notebook has no test cell %s, so those points are lost; set "
                             "OverwriteCells.add_missing_cells = True to put deleted cells back.",
                             student, ", ".join(missing))
        self.log.info("Dropout Lab: %s scored %s of %s on the sandboxed grader (%s)",
                      student, result.score, result.max_score, folder)
        resources["dropout_lab"] = {"score": result.score, "max_score": result.max_score}
        return nb, resources
