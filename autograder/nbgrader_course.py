"""``python -m autograder nbgrader-course COURSE_DIR``: lay out a ready nbgrader 0.9 course.

What it writes, under COURSE_DIR:

- ``source/dropout/``: the assignment as nbgrader's source, of the rubric's flavour (CS231n, or with
  ``--flavour scratch`` the scratch flavour). ``nnlab/`` is the student tree's library (the graded
  files with their TODO regions empty, exactly what ``release`` writes), and
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
import stat
import sys
from pathlib import Path

from autograder.cli import UsageError
from autograder.paths import NOTEBOOK_NAME, SOLUTION_DIR
from autograder.rubric import DEFAULT_RUBRIC, FLAVOUR_RUBRICS

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
folder with the kit's nbgrader ({nbgrader}); it works without activating the kit's environment.
For a whole class, `{kit_python} -m autograder nbgrader-autograde {course_root}` is much faster
than `nbgrader autograde` and fills the same gradebook.
"""

import os
import sys

c = get_config()  # noqa: F821 (provided by nbgrader when it reads this file)
COURSE_ROOT = os.path.dirname(os.path.abspath(__file__))

# nbgrader runs `alembic` by name when it creates the gradebook: find it next to this Python.
_bin = os.path.dirname(sys.executable)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", os.defpath)

c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = COURSE_ROOT
c.Exchange.root = {exchange!r}

# Students hand in their graded library files with the notebook. Autograde restores every other file
# from source/{assignment_id}/ but keeps these two as the student wrote them.
c.Autograde.exclude_overwriting = {{{assignment_id!r}: {graded_files!r}}}
# A test cell that a student deleted is put back, so the sandboxed grade always has a cell to land in.
c.OverwriteCells.add_missing_cells = True

# The student's notebook runs in a kernel at `nbgrader autograde`; each cell gets this many seconds.
# Cells tagged {long_tag!r} (the training experiment and its plot) are not run: they take long and
# grade nothing; autograde shows the outputs the student submitted instead.
c.Execute.timeout = {timeout}
c.Execute.skip_cells_with_tag = {long_tag!r}

# zip_collect: archives in downloaded/{assignment_id}/archive/ named STUDENTID.zip or
# STUDENTID_anything.zip; the notebook and the nnlab/ files are collected, wherever they sit in the zip.
c.ZipCollectApp.strict = True
c.FileNameCollectorPlugin.valid_ext = [".ipynb", ".py"]
c.FileNameCollectorPlugin.named_regexp = {zip_regexp!r}

try:
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.preprocessors import Execute, SaveAutoGrades

    from autograder.nbgrader_bridge import CheckedExporter, FeedbackHiddenTests, KernelRun, SandboxedGrades
except Exception as error:
    # Without the kit, autograde would score the student's kernel alone: refuse it, when autograde
    # starts and before it removes anything. Every other command (collect, export, the formgrader)
    # works as usual.
    _reason = repr(error)
    from nbconvert.exporters import NotebookExporter

    class RefuseToAutograde(NotebookExporter):
        def __init__(self, *args, **kwargs):
            from nbgrader.converters.base import NbGraderException

            message = (f"nbgrader_config.py: cannot import the Dropout Lab kit ({{_reason}}), so autograde would "
                       f"score the students' own kernels; nothing was graded or removed. Run {nbgrader} "
                       f"(the kit's nbgrader), or `{kit_python} -m autograder nbgrader-autograde {course_root}`.")
            print(message, file=sys.stderr)
            raise NbGraderException(message)

    c.Autograde.exporter_class = RefuseToAutograde
else:
    # Checked when autograde starts, before nbgrader removes anything: the rubric agrees with the
    # gradebook, and the sandbox works (or the course opted out below).
    c.Autograde.exporter_class = CheckedExporter
    # Secure scores: the notebook runs in a kernel (a kernel that dies ends that notebook's run only),
    # then SandboxedGrades grades the submission's .py files with the kit's sandboxed grader and sets
    # each test cell's result to its share of that grade. Nothing the student's kernel did is counted.
    _autograde = [KernelRun if step is Execute else step for step in Autograde.autograde_preprocessors.default()]
    _autograde.insert(_autograde.index(SaveAutoGrades), SandboxedGrades)
    c.Autograde.autograde_preprocessors = _autograde
    c.SandboxedGrades.rubric = os.path.join(COURSE_ROOT, "rubric.toml")
    c.SandboxedGrades.base_seed = {base_seed}
    # Grading without the bubblewrap sandbox is refused unless this is True (student code would run
    # with your rights).
    c.SandboxedGrades.allow_unsandboxed = {allow_unsandboxed}
    # Feedback shows the test cells without their hidden tests.
    c.GenerateFeedback.preprocessors = list(GenerateFeedback.preprocessors.default()) + [FeedbackHiddenTests]
'''

STUDENT_CONFIG_TEMPLATE = '''\
"""Students of the course {course_id!r}: copy this file to ~/.jupyter/nbgrader_config.py, then
`nbgrader fetch_assignment {assignment_id}` and, when done, `nbgrader submit {assignment_id}`."""

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
c.Exchange.root = {exchange!r}
'''


STUDENT_SUBMIT_HEADING = "## Before you submit"
STUDENT_SUBMIT_CELL = """\
## Before you submit

* Save this notebook and your two files, `{first}` and `{second}`: they are
  what is graded.
* Run the whole notebook from the top (Kernel, Restart & Run All) and check that every cell worked.
  Your grader reads the outputs of the experiment cells as you hand them in.
* Validate the notebook: the Validate button in the Assignments tab, or `nbgrader validate Dropout.ipynb`
  in a terminal in this folder.
* Submit with the Submit button in the Assignments tab, or `nbgrader submit dropout` in a terminal in the
  folder that holds this `dropout` folder. It hands in the whole folder, the notebook and the `nnlab/`
  files; submit again to replace an earlier submission.
* The test cells' scores come from the course's grader, which runs your `nnlab/` files in a sandbox:
  code written in the notebook itself is not graded.
"""


def student_submit_cell(notebook, graded_files=("nnlab/layers.py", "nnlab/classifiers/fc_net.py")) -> None:
    """Give the notebook's "Before you submit" cell the wording for nbgrader students (they validate
    and `nbgrader submit`, instead of the kit's check and collect); added at the end if there is none."""
    import nbformat

    text = STUDENT_SUBMIT_CELL.format(first=graded_files[0], second=graded_files[1])
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith(STUDENT_SUBMIT_HEADING):
            cell.source = text
            return
    notebook.cells.append(nbformat.v4.new_markdown_cell(text))


def flavour_sources(flavour: str, solution_dir: Path = SOLUTION_DIR) -> tuple[Path, dict[str, bytes]]:
    """The flavour's model-answer notebook and its student library (TODO regions empty)."""
    if flavour == "cs231n":
        from autograder.release import expected_tree

        return solution_dir / NOTEBOOK_NAME, {name: content for name, content in expected_tree(solution_dir).items()
                                              if name.startswith("nnlab/")}
    from autograder.flavours import FLAVOURS, source_files
    from autograder.submission import pristine_library

    return source_files(FLAVOURS[flavour], solution_dir)[NOTEBOOK_NAME], pristine_library(flavour)


def source_notebook(rubric, solution_dir: Path = SOLUTION_DIR, path: Path | None = None,
                    graded_files=("nnlab/layers.py", "nnlab/classifiers/fc_net.py")):
    """The model-answer notebook (``path``, default solution/'s) as nbgrader's source: outputs
    cleared, test cells' points from the rubric, the "Before you submit" cell in nbgrader's terms."""
    import nbformat

    from autograder.nbgrader_bridge import TEST_CELLS, BridgeError, cell_points

    path = path or solution_dir / NOTEBOOK_NAME
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
    student_submit_cell(notebook, graded_files)
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
                 rubric_path: Path = DEFAULT_RUBRIC, force: bool = False, base_seed: int | None = None,
                 allow_unsandboxed: bool | None = None) -> Path:
    """Write the course (see the module's docstring); returns the exchange folder."""
    import nbformat

    from autograder.limits import DEFAULT_BASE_SEED
    from autograder.nbgrader_bridge import LONG_CELL_TAG, BridgeError
    from autograder.regions import RegionError
    from autograder.conventions import ConventionError
    from autograder.release import write_tree
    from autograder.rubric import RubricError, load_rubric
    from autograder.submission import release_convention

    course_dir = Path(course_dir).resolve()
    exchange = Path(exchange).resolve() if exchange else course_dir / "exchange"
    if not course_id or "/" in course_id or course_id != course_id.strip():
        raise UsageError(f"course id {course_id!r} must be a non-empty name without '/' or surrounding spaces")
    _check_target(course_dir, force)
    try:
        rubric = load_rubric(rubric_path)
        graded_files = release_convention(rubric.flavour).graded_files
        notebook_path, library = flavour_sources(rubric.flavour)
        notebook = source_notebook(rubric, path=notebook_path, graded_files=graded_files)
    except (RubricError, BridgeError, RegionError, ConventionError) as error:
        raise UsageError(str(error)) from None

    # Everything is read and checked before anything is written, so a refusal leaves the course as it
    # was. The rubric is read as text first: it may be the course's own rubric.toml (the fix that a
    # rubric mismatch suggests), which is then rewritten with the same content.
    rubric_text = Path(rubric_path).read_bytes()
    config_path = course_dir / "nbgrader_config.py"
    if allow_unsandboxed is None:  # keep an opt-out the instructor wrote in the course's config
        previous = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
        allow_unsandboxed = "c.SandboxedGrades.allow_unsandboxed = True" in previous
    nbgrader = Path(sys.executable).parent / "nbgrader"
    settings = dict(
        course_id=course_id, exchange=str(exchange), assignment_id=ASSIGNMENT_ID,
        graded_files=list(graded_files), long_tag=LONG_CELL_TAG, timeout=CELL_TIMEOUT_SECONDS,
        base_seed=DEFAULT_BASE_SEED if base_seed is None else int(base_seed), zip_regexp=ZIP_NAMED_REGEXP,
        nbgrader=str(nbgrader), kit_python=sys.executable, course_root=str(course_dir),
        allow_unsandboxed=bool(allow_unsandboxed),
    )
    config_text = CONFIG_TEMPLATE.format(**settings)
    compile(config_text, str(config_path), "exec")

    source = course_dir / "source" / ASSIGNMENT_ID
    write_tree(library, source)
    nbformat.write(notebook, source / NOTEBOOK_NAME)
    (course_dir / "rubric.toml").write_bytes(rubric_text)
    config_path.write_text(config_text, encoding="utf-8")
    students = course_dir / "for_students"
    students.mkdir(exist_ok=True)
    (students / "nbgrader_config.py").write_text(STUDENT_CONFIG_TEMPLATE.format(**settings), encoding="utf-8")

    if not exchange.exists():
        exchange.mkdir(parents=True)
        # Like /tmp: every student can write into it, nobody can remove another's files.
        os.chmod(exchange, stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO | stat.S_ISVTX)
    return exchange


def run(args: argparse.Namespace) -> int:
    from autograder.nbgrader_bridge import kit_command, nbgrader_command

    from autograder.grade import rubric_for

    course_dir = Path(args.course_dir).resolve()
    exchange = build_course(course_dir, Path(args.exchange) if args.exchange else None, args.course_id,
                            rubric_for(args).path, args.force, allow_unsandboxed=True if args.allow_unsandboxed else None)
    again = " --force" if args.force else ""
    print(
        f"Wrote the nbgrader course {args.course_id!r} to {course_dir} (assignment {ASSIGNMENT_ID!r}, "
        f"exchange {exchange}, rubric {course_dir / 'rubric.toml'}).\n"
        f"Next, from {course_dir} (no need to activate the kit's environment):\n"
        f"  cd {course_dir}\n"
        f"  {nbgrader_command('generate_assignment', ASSIGNMENT_ID + again)}\n"
        f"  {nbgrader_command('release_assignment', ASSIGNMENT_ID + again)}\n"
        f"Students copy {course_dir / 'for_students' / 'nbgrader_config.py'} to ~/.jupyter/ and run "
        f"`nbgrader fetch_assignment {ASSIGNMENT_ID}`, then `nbgrader submit {ASSIGNMENT_ID}`.\n"
        f"Then:\n"
        f"  {nbgrader_command('collect', ASSIGNMENT_ID)}\n"
        f"  {kit_command('nbgrader-autograde', str(course_dir))}   (or {nbgrader_command('autograde', ASSIGNMENT_ID)}, "
        f"slower)\n"
        f"  {nbgrader_command('generate_feedback', ASSIGNMENT_ID)}\n"
        f"  {nbgrader_command('export')}"
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
    parser.add_argument("--flavour", choices=tuple(FLAVOUR_RUBRICS),
                        help="the flavour of the assignment (default: the rubric's, cs231n without --rubric)")
    parser.add_argument("--rubric", help="rubric TOML file (default: the flavour's, autograder/rubric.toml for cs231n)")
    parser.add_argument("--allow-unsandboxed", action="store_true",
                        help="let autograde grade without the bubblewrap sandbox (student code then runs with your "
                             "rights); sets c.SandboxedGrades.allow_unsandboxed = True in the course's config")
    parser.add_argument("--force", action="store_true",
                        help="rewrite the course's source, rubric and config in a COURSE_DIR that is not empty")
    parser.set_defaults(run=run)
