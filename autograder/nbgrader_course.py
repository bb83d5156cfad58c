"""``python -m autograder nbgrader-course COURSE_DIR``: lay out a ready nbgrader 0.9 course.

What it writes, under COURSE_DIR:

- ``source/dropout/``: the assignment as nbgrader's source. ``nnlab/`` is the student tree's library
  (the graded files with their TODO regions empty, exactly what ``release`` writes), and
  ``Dropout.ipynb`` is the model-answer notebook with its nbgrader metadata: the three inline questions
  as manually graded answer cells, and the autograded test cells (some with hidden tests) whose points
  are set from the rubric (see autograder.nbgrader_bridge). Outputs are cleared.
- ``nbgrader_config.py``: course id, course root (the folder holding the file, so the course can be
  moved), exchange root; autograde keeps the students' graded ``.py`` files
  (``Autograde.exclude_overwriting``), skips the long cells, and takes the test cells' scores from the
  sandboxed grader (``SandboxedGrades``); feedback leaves hidden tests out; zip_collect keeps ``.py``
  files.
- ``rubric.toml``: the rubric the course grades with (a copy, so the course does not change when the
  kit's rubric does).
- ``for_students/nbgrader_config.py``: the two settings students need to fetch and submit.
- the exchange folder (``COURSE_DIR/exchange`` unless ``--exchange`` names another), created if missing.

A COURSE_DIR that exists and is not empty is refused, unless ``--force``: then source/dropout/,
rubric.toml and the two config files are rewritten and everything else (gradebook, submissions) is
left alone, which is how a course picks up a change made in solution/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
from pathlib import Path

from autograder.cli import UsageError
from autograder.paths import GRADED_FILES, NOTEBOOK_NAME, SOLUTION_DIR
from autograder.rubric import DEFAULT_RUBRIC

# nbformat and nbgrader take seconds to import, so they (and the modules that need them) are
# imported when a course is built, not when the command line lists its commands.

ASSIGNMENT_ID = "dropout"
DEFAULT_COURSE_ID = "dropout-lab"
CELL_TIMEOUT_SECONDS = 120
# zip_collect: each archive in downloaded/dropout/archive/ is named STUDENTID.zip or
# STUDENTID_anything.zip (student ids without "_"); the files may sit under one or more folders in it.
ZIP_NAMED_REGEXP = (
    r".*/extracted/(?P<student_id>[^/_]+)(?:_[^/]*)?/(?:[^/]+/)*?"
    r"(?P<file_id>nnlab/.+\.py|[^/]+\.ipynb)$"
)

CONFIG_TEMPLATE = '''\
"""nbgrader configuration of the Dropout Lab course {course_id!r}.

Written by `python -m autograder nbgrader-course`. Run the instructor's nbgrader commands from this
folder, with the nbgrader of the kit's environment (.venv/bin/nbgrader): autograde imports the kit's
package `autograder`.
"""

import os
import sys

c = get_config()  # noqa: F821 (provided by nbgrader when it reads this file)
try:
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.preprocessors import ClearHiddenTests, SaveAutoGrades

    from autograder.nbgrader_bridge import SandboxedGrades
except Exception as error:
    # nbgrader only logs a config file that fails and goes on without it, which would autograde with
    # the student's kernel alone. Stop instead.
    sys.exit(f"nbgrader_config.py: cannot import the Dropout Lab kit ({{error!r}}); run nbgrader from the "
             f"kit's environment (.venv/bin/nbgrader, or with .venv/bin first on PATH).")
COURSE_ROOT = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = COURSE_ROOT
c.Exchange.root = {exchange!r}

# Students hand in their graded library files with the notebook. Autograde restores every other file
# from source/{assignment_id}/ but keeps these two as the student wrote them.
c.Autograde.exclude_overwriting = {{{assignment_id!r}: {graded_files!r}}}
# A test cell that a student deleted is put back, so the sandboxed grade always has a cell to land in.
c.OverwriteCells.add_missing_cells = True

# The student's notebook runs in a kernel at autograde; each cell gets this many seconds. Cells tagged
# {long_tag!r} (the training experiment and its plot) are not run: they take long and grade nothing.
c.Execute.timeout = {timeout}
c.Execute.skip_cells_with_tag = {long_tag!r}

# Secure scores: after the notebook has run and before nbgrader saves the grades, SandboxedGrades
# grades the submission's .py files with the kit's sandboxed grader and sets each test cell's result
# to its share of that grade. Nothing the student's kernel did is counted.
_autograde = list(Autograde.autograde_preprocessors.default())
_autograde.insert(_autograde.index(SaveAutoGrades), SandboxedGrades)
c.Autograde.autograde_preprocessors = _autograde
c.SandboxedGrades.rubric = os.path.join(COURSE_ROOT, "rubric.toml")
c.SandboxedGrades.base_seed = {base_seed}

# Feedback shows the test cells without their hidden tests.
c.GenerateFeedback.preprocessors = list(GenerateFeedback.preprocessors.default()) + [ClearHiddenTests]

# zip_collect: archives in downloaded/{assignment_id}/archive/ named STUDENTID.zip or
# STUDENTID_anything.zip; the notebook and the nnlab/ files are collected, wherever they sit in the zip.
c.ZipCollectApp.strict = True
c.FileNameCollectorPlugin.valid_ext = [".ipynb", ".py"]
c.FileNameCollectorPlugin.named_regexp = {zip_regexp!r}
'''

STUDENT_CONFIG_TEMPLATE = '''\
"""Students of the course {course_id!r}: copy this file to ~/.jupyter/nbgrader_config.py, then
`nbgrader fetch_assignment {assignment_id}` and, when done, `nbgrader submit {assignment_id}`."""

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
c.Exchange.root = {exchange!r}
'''


def source_notebook(rubric, solution_dir: Path = SOLUTION_DIR):
    """The model-answer notebook as nbgrader's source: outputs cleared, test cells' points from the rubric."""
    import nbformat

    from autograder.nbgrader_bridge import TEST_CELLS, BridgeError, cell_points

    path = solution_dir / NOTEBOOK_NAME
    notebook = nbformat.read(path, as_version=4)
    points = cell_points(rubric)
    found = set()
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in points:
            cell.metadata["nbgrader"]["points"] = points[grade_id]
            found.add(grade_id)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    missing = sorted(set(TEST_CELLS) - found)
    if missing:
        raise BridgeError(f"{path}: no autograded test cell with grade_id {', '.join(missing)}")
    return notebook


def _check_target(course_dir: Path, force: bool) -> None:
    if course_dir.exists() and not course_dir.is_dir():
        raise UsageError(f"{course_dir} exists and is not a folder; choose another COURSE_DIR")
    if course_dir.is_dir() and any(course_dir.iterdir()) and not force:
        raise UsageError(
            f"{course_dir} exists and is not empty; choose another COURSE_DIR, or pass --force to rewrite "
            f"its source/{ASSIGNMENT_ID}/, rubric.toml and config files (the gradebook and submissions are kept)"
        )


def build_course(course_dir: Path, exchange: Path | None = None, course_id: str = DEFAULT_COURSE_ID,
                 rubric_path: Path = DEFAULT_RUBRIC, force: bool = False, base_seed: int | None = None) -> Path:
    """Write the course (see the module's docstring); returns the exchange folder."""
    import nbformat

    from autograder.limits import DEFAULT_BASE_SEED
    from autograder.nbgrader_bridge import LONG_CELL_TAG, BridgeError
    from autograder.regions import RegionError
    from autograder.release import expected_tree, write_tree
    from autograder.rubric import RubricError, load_rubric

    course_dir = Path(course_dir).resolve()
    exchange = Path(exchange).resolve() if exchange else course_dir / "exchange"
    if not course_id or "/" in course_id or course_id != course_id.strip():
        raise UsageError(f"course id {course_id!r} must be a non-empty name without '/' or surrounding spaces")
    _check_target(course_dir, force)
    try:
        rubric = load_rubric(rubric_path)
        notebook = source_notebook(rubric)
        library = {name: content for name, content in expected_tree(SOLUTION_DIR).items()
                   if name.startswith("nnlab/")}
    except (RubricError, BridgeError, RegionError) as error:
        raise UsageError(str(error)) from None

    source = course_dir / "source" / ASSIGNMENT_ID
    write_tree(library, source)
    nbformat.write(notebook, source / NOTEBOOK_NAME)
    shutil.copyfile(rubric_path, course_dir / "rubric.toml")

    settings = dict(
        course_id=course_id, exchange=str(exchange), assignment_id=ASSIGNMENT_ID,
        graded_files=list(GRADED_FILES), long_tag=LONG_CELL_TAG, timeout=CELL_TIMEOUT_SECONDS,
        base_seed=DEFAULT_BASE_SEED if base_seed is None else int(base_seed), zip_regexp=ZIP_NAMED_REGEXP,
    )
    (course_dir / "nbgrader_config.py").write_text(CONFIG_TEMPLATE.format(**settings), encoding="utf-8")
    students = course_dir / "for_students"
    students.mkdir(exist_ok=True)
    (students / "nbgrader_config.py").write_text(STUDENT_CONFIG_TEMPLATE.format(**settings), encoding="utf-8")

    if not exchange.exists():
        exchange.mkdir(parents=True)
        # Like /tmp: every student can write into it, nobody can remove another's files.
        os.chmod(exchange, stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO | stat.S_ISVTX)
    return exchange


def run(args: argparse.Namespace) -> int:
    course_dir = Path(args.course_dir)
    exchange = build_course(course_dir, Path(args.exchange) if args.exchange else None, args.course_id,
                            Path(args.rubric), args.force)
    nbgrader = "nbgrader"
    print(
        f"Wrote the nbgrader course {args.course_id!r} to {course_dir} (assignment {ASSIGNMENT_ID!r}, "
        f"exchange {exchange}).\n"
        f"Next, from {course_dir}, with the kit's nbgrader (.venv/bin/nbgrader):\n"
        f"  {nbgrader} generate_assignment {ASSIGNMENT_ID}\n"
        f"  {nbgrader} release_assignment {ASSIGNMENT_ID}\n"
        f"Students copy {course_dir / 'for_students' / 'nbgrader_config.py'} to ~/.jupyter/ and run "
        f"`nbgrader fetch_assignment {ASSIGNMENT_ID}`, then `nbgrader submit {ASSIGNMENT_ID}`.\n"
        f"Then: {nbgrader} collect {ASSIGNMENT_ID}; {nbgrader} autograde {ASSIGNMENT_ID}; "
        f"{nbgrader} generate_feedback {ASSIGNMENT_ID}; {nbgrader} export"
    )
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "nbgrader-course", help="lay out a ready nbgrader course for the assignment",
        description="Write an nbgrader 0.9 course (assignment id 'dropout') whose autograded scores come "
                    "from the kit's sandboxed grader.",
    )
    parser.add_argument("course_dir", metavar="COURSE_DIR", help="the course folder to create (must be new or empty)")
    parser.add_argument("--exchange", help="nbgrader's exchange folder (default: COURSE_DIR/exchange)")
    parser.add_argument("--course-id", default=DEFAULT_COURSE_ID, help="nbgrader's course id (default: %(default)s)")
    parser.add_argument("--rubric", default=str(DEFAULT_RUBRIC), help="rubric TOML file (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="rewrite the course's source, rubric and config in a COURSE_DIR that is not empty")
    parser.set_defaults(run=run)
