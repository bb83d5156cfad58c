"""The two nbgrader paths on the same class: `nbgrader autograde` against the kit's `nbgrader-autograde`.

    .venv/bin/python bench/nbgrader_speed.py [--n 40] [--jobs 2]

Makes N submissions from the self-validation bank (right and wrong entries in turn, as
bench/throughput.py does), lays them out as an nbgrader course (``nbgrader-course``, ``nbgrader
generate_assignment``, each student's folder in ``submitted/`` as ``nbgrader collect`` leaves it), copies
the course, and autogrades one copy with ``nbgrader autograde dropout`` (a kernel per student, one after
another) and the other with ``python -m autograder nbgrader-autograde COURSE --jobs J`` (the kit's
grader in J warm workers, no kernel). Both timings are wall clock of the whole command, start-up
included, measured in this one run. Then ``nbgrader export`` on both copies: every student must have
the same score in both gradebooks, or the run fails with the differences.

Prints the seconds per student of each path and their ratio.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from throughput import make_submissions, nbgrader  # noqa: E402

from autograder.nbgrader_course import ASSIGNMENT_ID, build_course  # noqa: E402
from autograder.sandbox import bwrap_status  # noqa: E402


def make_course(root: Path, n: int) -> tuple[Path, Path, list[str]]:
    """A course with n students in submitted/, generated but not autograded; (course, home, students)."""
    names = make_submissions(root / "submissions", n, with_timeouts=False)
    course, home = root / "course", root / "home"
    home.mkdir()
    build_course(course, allow_unsandboxed=bwrap_status()[0] is None)
    nbgrader(["generate_assignment", ASSIGNMENT_ID], course, home)
    released = course / "release" / ASSIGNMENT_ID
    for name in names:
        target = course / "submitted" / name / ASSIGNMENT_ID
        shutil.copytree(released, target)
        shutil.copytree(root / "submissions" / name, target, dirs_exist_ok=True)  # the graded .py files
        (target / "timestamp.txt").write_text("2026-01-01 00:00:00 UTC\n")
    return course, home, names


def exported(course: Path, home: Path) -> dict[str, float]:
    nbgrader(["export"], course, home)
    with open(course / "grades.csv", newline="", encoding="utf-8") as stream:
        return {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(stream)}


def timed(command: list[str], cwd: Path) -> float:
    began = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40, help="students in the class (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="nbgrader-autograde's workers (default: %(default)s)")
    args = parser.parse_args(argv)
    bwrap, why = bwrap_status()
    with tempfile.TemporaryDirectory(prefix="dropout-nbgrader-bench-") as workdir:
        root = Path(workdir)
        course, home, names = make_course(root, args.n)
        fast_course = root / "course-fast"
        shutil.copytree(course, fast_course)
        slow_seconds = timed([str(Path(sys.executable).parent / "nbgrader"), "autograde", ASSIGNMENT_ID], course)
        fast_seconds = timed([sys.executable, "-m", "autograder", "nbgrader-autograde", str(fast_course),
                              "--jobs", str(args.jobs)], REPO)
        slow, fast = exported(course, home), exported(fast_course, home)
    slow_per, fast_per = slow_seconds / len(names), fast_seconds / len(names)
    print(f"class: {len(names)} students, sandbox: {'bubblewrap' if bwrap else 'none (' + why + ')'}")
    print(f"nbgrader autograde:                  {slow_per:.3f} s per student ({slow_seconds:.1f} s)")
    print(f"nbgrader-autograde --jobs {args.jobs}:         {fast_per:.3f} s per student ({fast_seconds:.1f} s)")
    print(f"ratio (nbgrader autograde / nbgrader-autograde): {slow_per / fast_per:.1f}x")
    differ = [(name, slow.get(name), fast.get(name)) for name in names
              if slow.get(name) is None or fast.get(name) is None or abs(slow[name] - fast[name]) > 1e-6]
    if differ:
        print(f"MISMATCH: {len(differ)} student(s) scored differently:")
        for name, a, b in differ:
            print(f"  {name}: nbgrader autograde {a}, nbgrader-autograde {b}")
        return 1
    print(f"the two gradebooks agree on all {len(names)} students")
    return 0


if __name__ == "__main__":
    sys.exit(main())
