"""``python -m autograder release``: write the student tree assignment/ from solution/.

solution/ is the only place where reference code is edited. Releasing copies it file by file and
takes the answers out on the way:
- in the graded Python files, every student region is emptied (see autograder.regions);
- in notebooks, nbgrader's solution blocks become stubs, hidden tests are removed and outputs are
  cleared;
- every other file is copied as it is.

Release also writes the student checker, the package ``dropout_lab_check/`` built from the
grader's own check code (see autograder.student_release), so that what students receive stands on
its own: they check their work and collect their submission without the kit.

``release --check`` writes nothing: it compares what release would write with the committed
assignment/ and names every file that differs, is missing or should not be there.

The other flavours of the assignment (autograder.flavours) are written on demand with
``--flavour NAME``, and ``release --check`` builds every one of them too.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import nbformat

from autograder import flavours
from autograder.paths import ASSIGNMENT_DIR, GRADED_FILES, SOLUTION_DIR
from autograder.regions import REGION_NAMES, RegionError, find_regions, strip_notebook_source, strip_regions

# Left out of the student tree: caches, checkpoints and the outputs of running the notebook.
IGNORED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
IGNORED_SUFFIXES = (".pyc", ".executed.ipynb")

from autograder.stubs import ANSWER_STUB, CODE_STUB  # noqa: E402  (re-exported)


def _released_files(solution_dir: Path) -> list[Path]:
    """Paths (relative to solution_dir) of the files that belong in the student tree."""
    files = []
    for path in sorted(solution_dir.rglob("*")):
        relative = path.relative_to(solution_dir)
        if path.is_dir() or IGNORED_PARTS.intersection(relative.parts):
            continue
        if path.name.endswith(IGNORED_SUFFIXES):
            continue
        files.append(relative)
    return files


def strip_notebook(text: str, where: str) -> str:
    """A notebook's JSON text with answers stubbed, hidden tests removed and outputs cleared."""
    notebook = nbformat.reads(text, as_version=4)
    for cell in notebook.cells:
        stub = CODE_STUB if cell.cell_type == "code" else ANSWER_STUB
        cell.source = strip_notebook_source(cell.source, stub, where)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nbformat.writes(notebook) + "\n"


def released_content(relative: Path, solution_dir: Path = SOLUTION_DIR) -> bytes:
    """The bytes that release writes to assignment/ for one file of solution/."""
    source = solution_dir / relative
    key = relative.as_posix()
    if key in GRADED_FILES:
        text = source.read_text(encoding="utf-8")
        regions = find_regions(text, str(source))
        expected = REGION_NAMES[key]
        if len(regions) != len(expected):
            raise RegionError(
                f"{source}: expected {len(expected)} student regions ({', '.join(expected)}), "
                f"found {len(regions)}"
            )
        return strip_regions(text, str(source)).encode("utf-8")
    if relative.suffix == ".py":
        text = source.read_text(encoding="utf-8")
        if find_regions(text, str(source)):
            raise RegionError(
                f"{source}: has student regions but is not a graded file; add it to "
                f"GRADED_FILES in autograder/paths.py and REGION_NAMES in autograder/regions.py"
            )
    if relative.suffix == ".ipynb":
        return strip_notebook(source.read_text(encoding="utf-8"), str(source)).encode("utf-8")
    return source.read_bytes()


def expected_tree(solution_dir: Path = SOLUTION_DIR, with_checker: bool = True) -> dict[str, bytes]:
    """Every file of the student tree, by relative POSIX path, as release would write it."""
    from autograder.student_release import checker_files

    tree = {
        f.as_posix(): released_content(f, solution_dir)
        for f in _released_files(solution_dir)
        if not flavours.is_flavour_source(f)  # other flavours' sources: see autograder.flavours
    }
    if with_checker:
        tree.update(checker_files(tree))
    return dict(sorted(tree.items()))


def differences(expected: dict[str, bytes], assignment_dir: Path) -> list[str]:
    """One line per file of assignment_dir that is not what release would write."""
    problems = []
    present = {f.as_posix() for f in _released_files(assignment_dir)} if assignment_dir.is_dir() else set()
    for name, content in expected.items():
        path = assignment_dir / name
        if name not in present:
            problems.append(f"missing: {path}")
        elif path.read_bytes() != content:
            problems.append(f"differs: {path}")
    for name in sorted(present - expected.keys()):
        problems.append(f"not in solution/: {assignment_dir / name}")
    return problems


def write_tree(expected: dict[str, bytes], assignment_dir: Path) -> None:
    """Make assignment_dir hold exactly the expected files."""
    if assignment_dir.exists():
        shutil.rmtree(assignment_dir)
    for name, content in expected.items():
        path = assignment_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def run(args: argparse.Namespace) -> int:
    if args.flavour != flavours.DEFAULT_FLAVOUR:
        return flavours.run(args)
    solution_dir = Path(args.solution)
    assignment_dir = Path(args.assignment)
    from autograder.student_release import CheckerBuildError

    try:
        expected = expected_tree(solution_dir)
    except (RegionError, CheckerBuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check:
        flavours_status = flavours.check_all_and_report(solution_dir)
        problems = differences(expected, assignment_dir)
        if problems:
            print(
                f"{assignment_dir} is not what release writes from {solution_dir}:",
                *(f"  {line}" for line in problems),
                "Run `python -m autograder release` and commit the result.",
                sep="\n",
                file=sys.stderr,
            )
            return 1
        print(f"{assignment_dir} matches {solution_dir} ({len(expected)} files).")
        return flavours_status
    write_tree(expected, assignment_dir)
    print(f"Wrote {len(expected)} files to {assignment_dir}.")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "release",
        help="write the student tree assignment/ from solution/",
        description="Write assignment/ from solution/, emptying the student regions and notebook answers.",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; fail if assignment/ is out of date")
    parser.add_argument("--solution", default=str(SOLUTION_DIR), help="the instructor tree (default: %(default)s)")
    parser.add_argument("--assignment", default=str(ASSIGNMENT_DIR), help="the student tree (default: %(default)s)")
    flavours.add_arguments(parser)
    parser.set_defaults(run=run)
