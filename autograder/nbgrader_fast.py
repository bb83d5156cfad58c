"""``python -m autograder nbgrader-autograde COURSE_DIR``: autograde a whole nbgrader class at the kit's speed.

``nbgrader autograde`` starts a kernel for every student, one after another, and runs the notebook,
although the scores come from the kit's grader, which never looks at the kernel. This command fills
the same gradebook and writes the same autograded notebooks, without a kernel:

1. It checks the course first (the rubric agrees with the gradebook, the sandbox works or the course
   opted out), before anything is graded or removed.
2. It grades every student folder in ``submitted/`` with the kit's grader, in ``--jobs`` worker
   processes, each grading its share of the class in one pytest session with its warm sandbox (as
   ``grade-batch`` does).
3. Meanwhile it runs nbgrader's own ``Autograde`` converter, in this process, with the course's
   configuration, except that no notebook is executed: the autograded notebook keeps the outputs the
   student submitted, and ``SandboxedGrades`` takes each student's grade from step 2. nbgrader's own
   code writes the gradebook (students, submissions, scores, late penalties) and
   ``autograded/STUDENT/dropout/``, so the formgrader, ``generate_feedback`` and ``export`` work as
   after ``nbgrader autograde``.
4. A student folder without ``Dropout.ipynb`` is graded too: its .py files are graded, and the
   autograded notebook is the released one, unanswered, with a first cell saying that no notebook was
   submitted (the inline questions get 0).
5. It ends with the one-screen summary of the run (``autograder.nbgrader_summary``).

As with ``nbgrader autograde``, a student already autograded is skipped unless ``--force`` or a newer
submission; every matching student is graded by the kit all the same (that takes a fraction of a
second each).
"""

from __future__ import annotations

import argparse
import glob
import os
import signal
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from autograder.cli import UsageError

ASSIGNMENT_ID = "dropout"
NOTEBOOK_NAME = "Dropout.ipynb"
PLACEHOLDER_CELL = (
    "**No `Dropout.ipynb` was submitted.** This is the released notebook, unanswered, put here at "
    "autograde so that the student's `nnlab/` files are graded: the test cells' scores below come from "
    "them. The inline questions are unanswered and get 0."
)


# -- grading the class in worker processes --------------------------------------------------------
def _die_with_parent() -> None:
    """In a worker: the kernel kills it when this command dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:
        os._exit(1)


def grade_folders(pairs: list[tuple[str, str]], rubric_path: str, seed: int) -> dict:
    """Runs in a worker: grade these students in one pytest session. Returns student -> GradeResult,
    or student -> a string saying why the grader could not grade them."""
    from autograder.plugin import GraderError, GradingJob, run_grading
    from autograder.rubric import load_rubric
    from autograder.submission import SubmissionRefused, prepare, release_convention
    from autograder.verdicts import refused_result

    rubric = load_rubric(rubric_path)
    convention = release_convention(rubric.flavour)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="dropout-lab-nbgrader-") as workdir:
        jobs = []
        for name, path in pairs:
            workspace = Path(workdir) / name
            workspace.mkdir()
            try:
                prepared = prepare(Path(path), workspace, convention)
            except SubmissionRefused as refusal:
                results[name] = refused_result(name, rubric, str(refusal))
                continue
            except OSError as error:
                results[name] = f"cannot read {path}: {error}"
                continue
            jobs.append(GradingJob(name, name, prepared.tree, seed, prepared.missing))
        if jobs:
            try:
                results.update(run_grading(jobs, rubric))
            except GraderError as error:
                for job in jobs:
                    results.setdefault(job.key, f"the kit's grader failed: {error}")
    return results


def session_sizes(count: int, jobs: int) -> list[int]:
    """Sessions of at most 16 students, shrinking towards the end so the workers finish together."""
    sizes, left = [], count
    while left > 0:
        size = max(1, min(16, left // (2 * jobs)))
        sizes.append(size)
        left -= size
    return sizes


class ClassGrades:
    """The kit's grades of a class, computed in worker processes; ``result(student)`` waits for one.

    Students are graded in sorted order, the order in which nbgrader's converter asks for them, so
    grading and writing the gradebook overlap."""

    def __init__(self, folders: dict[str, Path], rubric_path: Path, seed: int, jobs: int):
        self.folders, self.rubric_path, self.seed = dict(folders), str(rubric_path), int(seed)
        self.pool = ProcessPoolExecutor(max_workers=max(1, jobs), initializer=_die_with_parent)
        self.futures = {}
        names = sorted(self.folders)
        start = 0
        for size in session_sizes(len(names), max(1, jobs)):
            chunk = names[start:start + size]
            start += size
            future = self.pool.submit(grade_folders, [(name, str(self.folders[name])) for name in chunk],
                                      self.rubric_path, self.seed)
            for name in chunk:
                self.futures[name] = future

    def result(self, student: str):
        from autograder.plugin import GraderError

        future = self.futures.get(student)
        if future is None:  # not in submitted/ when the run began: grade it now
            folder = self.folders.get(student) or Path(self.rubric_path).parent / "submitted" / student / ASSIGNMENT_ID
            future = self.futures[student] = self.pool.submit(
                grade_folders, [(student, str(folder))], self.rubric_path, self.seed)
        try:
            value = future.result().get(student, f"no result for {student}")
        except Exception as error:  # a worker died
            raise GraderError(f"a grading worker failed: {type(error).__name__}: {error}") from None
        if isinstance(value, str):
            raise GraderError(value)
        return value

    def all_results(self) -> dict:
        found = {}
        for student in sorted(self.futures):
            try:
                found[student] = self.result(student)
            except Exception as error:
                found[student] = str(error)
        return found

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# -- the course, as nbgrader sees it ----------------------------------------------------------------
def load_course(course: Path, argv: list[str]):
    """nbgrader's AutogradeApp for the course, with its config loaded (nothing is run). The cwd becomes
    the course folder, where nbgrader looks for the config."""
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", os.defpath)
    os.chdir(course)
    from nbgrader.apps import AutogradeApp

    app = AutogradeApp()
    app.initialize(argv)
    app.coursedir.assignment_id = ASSIGNMENT_ID  # what AutogradeApp.start does with its argument
    return app


def course_settings(app) -> tuple[Path, int, bool]:
    """(rubric path, base seed, allow_unsandboxed) as the course's config sets them for SandboxedGrades."""
    from autograder.limits import DEFAULT_BASE_SEED
    from autograder.rubric import DEFAULT_RUBRIC

    settings = app.config.get("SandboxedGrades", {})
    rubric = Path(settings.get("rubric") or DEFAULT_RUBRIC)
    if not rubric.is_absolute():
        rubric = Path(app.coursedir.root) / rubric
    return rubric, int(settings.get("base_seed", DEFAULT_BASE_SEED)), bool(settings.get("allow_unsandboxed", False))


def submitted_folders(coursedir, student_pattern: str = "*") -> dict[str, Path]:
    """Student -> submitted/STUDENT/dropout, for every student folder that matches."""
    pattern = coursedir.format_path(coursedir.submitted_directory, student_pattern, ASSIGNMENT_ID)
    found = {}
    for folder in sorted(glob.glob(pattern)):
        if os.path.isdir(folder):
            found[Path(folder).parent.name] = Path(folder)
    excluded = set(filter(None, (coursedir.student_id_exclude or "").split(",")))
    return {name: path for name, path in found.items() if name not in excluded}


def placeholder_notebook(coursedir, target: Path) -> Path:
    """The released notebook, marked as a stand-in for one that was not submitted."""
    import nbformat

    released = Path(coursedir.format_path(coursedir.release_directory, ".", ASSIGNMENT_ID)) / NOTEBOOK_NAME
    if not released.is_file():
        raise UsageError(f"{released} is missing: run `nbgrader generate_assignment {ASSIGNMENT_ID}` first")
    notebook = nbformat.read(released, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(PLACEHOLDER_CELL))
    notebook.metadata["dropout_lab"] = {"placeholder": "no notebook was submitted"}
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    return target


def fast_converter_class():
    from nbgrader.converters import Autograde
    from nbgrader.converters.base import NbGraderException

    class WithoutKernel(Autograde):
        """nbgrader's Autograde, with a stand-in notebook for a student folder that has none."""

        placeholder_dir: Path | None = None
        placeholders: dict = {}
        only_students: set | None = None  # this converter's share of the class

        def init_notebooks(self) -> None:
            self.assignments, self.notebooks, self.placeholders = {}, [], {}
            pattern = self._format_source(self.coursedir.assignment_id, self.coursedir.student_id)
            for folder in sorted(glob.glob(pattern)):
                if self.only_students is not None and Path(folder).parent.name not in self.only_students:
                    continue
                found = glob.glob(os.path.join(folder, self.coursedir.notebook_id + ".ipynb"))
                if not found and os.path.isdir(folder):
                    student = Path(folder).parent.name
                    target = placeholder_notebook(self.coursedir, self.placeholder_dir / student / NOTEBOOK_NAME)
                    self.placeholders[str(target)] = student
                    self.log.warning("Dropout Lab: %s: no %s in %s; its .py files are graded, with the released "
                                     "notebook standing in for it.", student, NOTEBOOK_NAME, folder)
                    found = [str(target)]
                if found:
                    self.assignments[folder] = found
            if not self.assignments:
                raise NbGraderException(f"no student folder matches {pattern}")

        def init_single_notebook_resources(self, notebook_filename: str):
            student = self.placeholders.get(str(notebook_filename))
            if student is None:
                return super().init_single_notebook_resources(notebook_filename)
            notebook_id = Path(notebook_filename).stem
            return {"unique_key": notebook_id, "output_files_dir": f"{notebook_id}_files",
                    "nbgrader": {"student": student, "assignment": ASSIGNMENT_ID, "notebook": notebook_id,
                                 "db_url": self.coursedir.db_url}}

    return WithoutKernel


def convert_share(app, converter_class, names: list[str], folders: dict, rubric_path: Path, seed: int,
                  placeholder_dir: Path, jobs: int) -> bool:
    """Run nbgrader's converter (without kernels) on these students, their grades coming from ``jobs``
    grading workers; returns whether nbgrader reported a failure."""
    from nbgrader.converters.base import NbGraderException

    from autograder import nbgrader_bridge as bridge

    grades = ClassGrades({name: folders[name] for name in names}, rubric_path, seed, jobs)
    bridge.PRECOMPUTED = grades
    try:
        converter = converter_class(coursedir=app.coursedir, parent=app)
        converter.placeholder_dir, converter.only_students = placeholder_dir, set(names)
        converter.start()
    except NbGraderException:  # nbgrader logged each failure; the summary lists the students
        return True
    finally:
        bridge.PRECOMPUTED = None
        grades.close()
    return False


def _convert_in_child(connection, *args) -> None:
    from autograder import nbgrader_bridge as bridge

    failed = True
    try:
        failed = convert_share(*args)
    finally:
        connection.send((failed, bridge.RUN_NOTES))
        connection.close()


def convert_in_parallel(app, converter_class, names, folders, rubric_path, seed, placeholder_dir, shares) -> bool:
    """nbgrader's converter spends most of a student's time (two notebook passes, a few dozen
    gradebook queries), so the class is split into ``shares`` processes, forked from this one (nbgrader
    is imported once), each converting its share with one grading worker of its own. They write the
    same SQLite gradebook, each student in short transactions; a student whose conversion failed in a
    share (a locked gradebook, say) is converted again afterwards, alone."""
    import multiprocessing

    from autograder import nbgrader_bridge as bridge

    context = multiprocessing.get_context("fork")
    children = []
    for index in range(shares):
        share = names[index::shares]
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_convert_in_child, args=(send, app, converter_class, share, folders,
                                                                 rubric_path, seed, placeholder_dir, 1))
        child.start()
        send.close()
        children.append((child, receive))
    failed = False
    for child, receive in children:
        try:
            share_failed, notes = receive.recv()
        except EOFError:  # the share's process died
            share_failed, notes = True, {}
        child.join()
        failed |= share_failed
        for student, note in notes.items():
            bridge.RUN_NOTES.setdefault(student, {"notes": []})
            bridge.RUN_NOTES[student]["notes"] += note.get("notes", [])
            bridge.RUN_NOTES[student].update({k: v for k, v in note.items() if k != "notes"})
    if not failed:
        return False
    autograded = app.coursedir.autograded_directory
    again = [name for name in names if not Path(app.coursedir.format_path(autograded, name, ASSIGNMENT_ID)).is_dir()]
    if not again:
        return False
    for name in again:  # the notes of the failed attempt are replaced by the new one's
        bridge.RUN_NOTES.pop(name, None)
    app.log.warning("Dropout Lab: converting %d student(s) again, one process: %s", len(again), ", ".join(again))
    return convert_share(app, converter_class, again, folders, rubric_path, seed, placeholder_dir, 1)


def autograde_without_kernel(course: Path, jobs: int, student: str = "*", force: bool = False,
                             verbose: bool = False) -> int:
    """The command's work; returns its exit status (0 when every student got a score)."""
    from autograder import nbgrader_bridge as bridge
    from autograder.nbgrader_summary import summary_text

    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise UsageError(f"{course} has no nbgrader_config.py: make the course with "
                         f"`{bridge.kit_command('nbgrader-course', str(course))}`")
    argv = [ASSIGNMENT_ID, f"--student={student}", f"--log-level={'INFO' if verbose else 'WARN'}"]
    app = load_course(course, argv + (["--force"] if force else []))
    coursedir = app.coursedir
    rubric_path, seed, allow = course_settings(app)
    refusal = bridge.sandbox_refusal(allow, "nbgrader-autograde", course / "nbgrader_config.py")
    if refusal:
        raise UsageError(refusal)
    try:
        bridge.check_course(course, coursedir.db_url, coursedir.course_id, rubric_path)
    except bridge.BridgeError as error:
        raise UsageError(str(error)) from None
    folders = submitted_folders(coursedir, student)
    if not folders:
        raise UsageError(f"no student folder in {course / 'submitted'} matches {student!r}/{ASSIGNMENT_ID}")

    from nbgrader.preprocessors import Execute, SaveAutoGrades

    converter_class = fast_converter_class()
    steps = [step for step in converter_class.autograde_preprocessors.default()
             if not (isinstance(step, type) and issubclass(step, Execute))]
    steps.insert(steps.index(SaveAutoGrades), bridge.SandboxedGrades)
    app.config.Autograde.autograde_preprocessors = steps
    app.config.SandboxedGrades.keep_submitted_outputs = "all"
    app.config.SandboxedGrades.summary = False

    names = sorted(folders)
    shares = max(1, min(jobs, len(names)))
    with tempfile.TemporaryDirectory(prefix="dropout-lab-placeholders-") as workdir:
        if shares == 1:
            failed = convert_share(app, converter_class, names, folders, rubric_path, seed, Path(workdir), jobs)
        else:
            failed = convert_in_parallel(app, converter_class, names, folders, rubric_path, seed, Path(workdir), shares)
        text = summary_text(course, coursedir.db_url, coursedir.course_id, bridge.RUN_NOTES, students=sorted(folders))
    print(text)
    sys.stdout.flush()
    grader_failed = any(note.startswith("the kit's grader failed") for notes in bridge.RUN_NOTES.values()
                        for note in notes.get("notes", []))
    return 1 if failed or grader_failed or "without an autograded score" in text else 0


def run(args: argparse.Namespace) -> int:
    return autograde_without_kernel(Path(args.course_dir), max(1, args.jobs), args.student, args.force, args.verbose)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "nbgrader-autograde", help="autograde an nbgrader course's whole class, in parallel and without kernels",
        description="Fill the nbgrader course's gradebook and autograded/ as `nbgrader autograde dropout` does, "
                    "with the kit's sandboxed grader run on every student in parallel and no notebook executed "
                    "(the autograded notebooks keep the outputs the students submitted).",
    )
    parser.add_argument("course_dir", metavar="COURSE_DIR", help="the course folder made by nbgrader-course")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="grading workers (default: %(default)s)")
    parser.add_argument("--student", default="*", help="only these students (an nbgrader glob; default: all)")
    parser.add_argument("--force", action="store_true", help="autograde again students already autograded")
    parser.add_argument("--verbose", action="store_true", help="show nbgrader's INFO log")
    parser.set_defaults(run=run)
