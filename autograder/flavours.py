"""Flavours of the assignment that ``release`` writes besides the CS231n one.

The CS231n flavour is ``assignment/``, released from ``solution/`` (functions, ``p`` = probability of
keeping a unit, inverted dropout). Every other flavour has its own folder of sources under
``solution/flavours/NAME/``, which the CS231n release leaves out, and takes a few given modules of
``solution/`` as they are (``shared_files``). Its student tree is the union of the two, with its
student regions emptied, notebook answers stubbed and hidden tests removed exactly as for
``assignment/``. It is written on demand, never into ``assignment/``:

    python -m autograder release --flavour scratch --out DIR            # the student tree
    python -m autograder release --flavour scratch --answers --out DIR  # the same with the answers in
    python -m autograder release --check                                # also checks every flavour

``release --check`` builds every flavour in memory, so a broken marker, a missing region or a shared
file that disappeared fails it; with ``--flavour NAME --out DIR`` it also compares DIR with what
release would write there. A flavour's tree never holds a file of another flavour's own sources, so
its students never receive the other flavour's TODO regions or notebook.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder.conventions import SCRATCH_REGION_NAMES, SETTINGS_FILE, ConventionError, style_of
from autograder.paths import NOTEBOOK_NAME, REPO_ROOT, SOLUTION_DIR
from autograder.regions import RegionError, find_regions, strip_regions

DEFAULT_FLAVOUR = "cs231n"
# Under solution/: one folder per flavour other than CS231n, left out of the CS231n release.
FLAVOURS_DIRNAME = "flavours"


@dataclass(frozen=True)
class FlavourSource:
    """A flavour of the assignment, other than the CS231n one."""

    name: str
    summary: str
    # Files of solution/ (relative POSIX paths) that the flavour's tree takes as they are.
    shared_files: tuple[str, ...]
    # The graded files of the flavour's tree, each with the names of its student regions, in order.
    region_names: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def source_dir(self, solution_dir: Path = SOLUTION_DIR) -> Path:
        return solution_dir / FLAVOURS_DIRNAME / self.name

    @property
    def graded_files(self) -> tuple[str, ...]:
        return tuple(self.region_names)


SCRATCH = FlavourSource(
    name="scratch",
    summary=(
        'for courses that teach from Saito\'s "Deep Learning from Scratch": students write a Dropout '
        "layer class (dropout_ratio = probability of DROPPING a unit, forward(x, train_flg), "
        "backward(dout)), vanilla or inverted as nnlab/settings.py says, and wire it into MultiLayerNet"
    ),
    shared_files=("requirements.txt", "nnlab/scaffold.py", "nnlab/data_utils.py", "nnlab/gradient_check.py"),
    region_names=SCRATCH_REGION_NAMES,
)

FLAVOURS = {flavour.name: flavour for flavour in (SCRATCH,)}


def is_flavour_source(relative: Path) -> bool:
    """True for a path of solution/ (relative to it) that belongs to a flavour's own sources."""
    return bool(relative.parts) and relative.parts[0] == FLAVOURS_DIRNAME


def source_files(flavour: FlavourSource, solution_dir: Path = SOLUTION_DIR) -> dict[str, Path]:
    """Every file of the flavour's tree (relative POSIX path) and the file of solution/ it comes from."""
    from autograder.release import _released_files

    source_dir = flavour.source_dir(solution_dir)
    if not source_dir.is_dir():
        raise RegionError(f"{source_dir}: the sources of flavour {flavour.name!r} are missing")
    files = {}
    for shared in flavour.shared_files:
        path = solution_dir / shared
        if not path.is_file():
            raise RegionError(f"{path}: flavour {flavour.name!r} takes this file from solution/, but it is missing")
        files[shared] = path
    for relative in _released_files(source_dir):
        name = relative.as_posix()
        if name in files:
            raise RegionError(
                f"{source_dir / relative}: flavour {flavour.name!r} also takes {name} from solution/; "
                f"keep one of the two"
            )
        files[name] = source_dir / relative
    return files


def released_tree(flavour: FlavourSource, solution_dir: Path = SOLUTION_DIR, answers: bool = False,
                  checker: bool = True) -> dict[str, bytes]:
    """The flavour's tree as release writes it: student regions and notebook answers taken out,
    unless ``answers``, which keeps the sources as they are (the instructor's copy, which needs no
    checker); the student tree holds the student checker unless not ``checker`` (the grader needs
    the library only)."""
    from autograder.release import strip_notebook

    tree = {}
    for name, path in sorted(source_files(flavour, solution_dir).items()):
        if name.endswith(".py"):
            text = path.read_text(encoding="utf-8")
            regions = find_regions(text, str(path))
            expected = flavour.region_names.get(name, ())
            if len(regions) != len(expected):
                raise RegionError(
                    f"{path}: flavour {flavour.name!r} expects {len(expected)} student regions here"
                    + (f" ({', '.join(expected)})" if expected else "")
                    + f", found {len(regions)}"
                )
            if regions and not answers:
                tree[name] = strip_regions(text, str(path)).encode("utf-8")
                continue
        elif name.endswith(".ipynb") and not answers:
            tree[name] = strip_notebook(path.read_text(encoding="utf-8"), str(path)).encode("utf-8")
            continue
        tree[name] = path.read_bytes()
    missing = [name for name in (*flavour.graded_files, NOTEBOOK_NAME, SETTINGS_FILE) if name not in tree]
    if missing:
        raise RegionError(f"flavour {flavour.name!r}: its tree has no {', '.join(missing)}")
    if answers or not checker:
        return tree
    # The student checker, built from the grader's code for this flavour and its style.
    from autograder.rubric import FLAVOUR_RUBRICS
    from autograder.student_release import checker_files

    style = style_of(tree[SETTINGS_FILE].decode("utf-8"), f"{flavour.source_dir(solution_dir)}/{SETTINGS_FILE}")
    tree.update(checker_files(tree, FLAVOUR_RUBRICS[flavour.name], style))
    return tree


def check_all(solution_dir: Path = SOLUTION_DIR) -> list[str]:
    """One line per flavour that release could not write from solution_dir (empty when all build)."""
    from autograder.student_release import CheckerBuildError

    problems = []
    for flavour in FLAVOURS.values():
        try:
            released_tree(flavour, solution_dir)
        except (RegionError, ConventionError, CheckerBuildError) as error:
            problems.append(f"flavour {flavour.name}: {error}")
    return problems


def check_all_and_report(solution_dir: Path = SOLUTION_DIR) -> int:
    """``release --check``'s part for the flavours: print what is wrong; 0 when every flavour builds, else 1."""
    problems = check_all(solution_dir)
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if not problems and FLAVOURS:
        print(f"Flavours {', '.join(FLAVOURS)}: release can write them from {solution_dir}.")
    return 1 if problems else 0


def default_out(flavour_name: str, answers: bool) -> Path:
    return REPO_ROOT / "out" / (f"{flavour_name}-solution" if answers else f"assignment-{flavour_name}")


def run(args: argparse.Namespace) -> int:
    """``release --flavour NAME``: write (or with --check, compare) that flavour's tree."""
    from autograder.release import differences, write_tree

    flavour = FLAVOURS[args.flavour]
    solution_dir = Path(args.solution)
    out = Path(args.out) if args.out else default_out(flavour.name, args.answers)
    from autograder.student_release import CheckerBuildError

    try:
        tree = released_tree(flavour, solution_dir, answers=args.answers)
    except (RegionError, ConventionError, CheckerBuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.check:
        if not args.out:
            print(f"flavour {flavour.name}: release can write it from {solution_dir} ({len(tree)} files).")
            return 0
        problems = differences(tree, out)
        if problems:
            print(
                f"{out} is not what release writes for flavour {flavour.name} from {solution_dir}:",
                *(f"  {line}" for line in problems),
                f"Run `python -m autograder release --flavour {flavour.name} --out {out}`.",
                sep="\n",
                file=sys.stderr,
            )
            return 1
        print(f"{out} matches flavour {flavour.name} of {solution_dir} ({len(tree)} files).")
        return 0
    write_tree(tree, out)
    what = "the instructor's copy (answers in)" if args.answers else "the student tree"
    print(f"Wrote {len(tree)} files of flavour {flavour.name}, {what}, to {out}.")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``release`` that choose and place a flavour."""
    names = [DEFAULT_FLAVOUR, *FLAVOURS]
    parser.add_argument(
        "--flavour", choices=names, default=DEFAULT_FLAVOUR,
        help="which flavour to write: cs231n (assignment/) or " + "; ".join(
            f"{f.name} ({f.summary})" for f in FLAVOURS.values()
        ) + " (default: %(default)s)",
    )
    parser.add_argument(
        "--out", help="where a flavour other than cs231n is written (default: out/assignment-NAME, "
        "or out/NAME-solution with --answers)",
    )
    parser.add_argument(
        "--answers", action="store_true",
        help="with --flavour other than cs231n: keep the answers in (the instructor's copy, to run its notebook)",
    )
