"""Grading throughput: the kit's grade-batch against nbgrader's autograde, on the same submissions.

    .venv/bin/python bench/throughput.py [--n 200] [--nbgrader-n 40] [--jobs 2]

Makes N submissions from the self-validation bank (right and wrong entries in turn; the entries
that only end by a deadline, ``wrong_timeout``, are left out unless --with-timeouts, since they cost
their deadline by design), grades them with ``grade-batch --jobs J`` and, laid out as an nbgrader
course, the first --nbgrader-n of them with ``nbgrader autograde`` (slow: a kernel per notebook).
Prints seconds per submission for each path, their ratio, the kit's total for 1,000 submissions
(projected from N, or measured when N is 1,000), and the batch's peak memory: the largest sum, over
grade-batch's whole process tree (workers, sandboxes), of proportional set sizes (PSS, so shared
pages count once), sampled every 50 ms.

Every submission graded by both paths must get the same score from both; the run fails with a
report of the mismatches otherwise. Timings are wall clock on this machine, measured in one run.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder.bank import load_bank, write_submission  # noqa: E402
from autograder.nbgrader_course import ASSIGNMENT_ID, build_course  # noqa: E402
from autograder.paths import NOTEBOOK_NAME  # noqa: E402

BIN = Path(sys.executable).parent


def make_submissions(folder: Path, n: int, with_timeouts: bool) -> list[str]:
    """n submission folders, cycling through the bank so right and wrong entries alternate."""
    bank = [entry for entry in load_bank() if with_timeouts or entry.name != "wrong_timeout"]
    right = [entry for entry in bank if entry.kind == "right"]
    wrong = [entry for entry in bank if entry.kind == "wrong"]
    mixed = [entry for pair in zip(wrong, right * (len(wrong) // len(right) + 1)) for entry in pair]
    names = []
    for index in range(n):
        entry = mixed[index % len(mixed)]
        name = f"s{index:04d}"  # nbgrader student ids: no '_'
        write_submission(entry, folder / name)
        names.append(name)
    return names


# -- memory ---------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory(threading.Thread):
    """Samples the summed PSS of a process and all its descendants; keeps the peak."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.stopped = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            pids, todo = [], [self.pid]
            while todo:
                pid = todo.pop()
                pids.append(pid)
                todo += _children(pid)
            self.peak_kb = max(self.peak_kb, sum(_pss_kb(pid) for pid in pids))


# -- the two paths ----------------------------------------------------------------------------------
def run_kit(submissions: Path, out: Path, jobs: int) -> tuple[float, float, dict[str, float]]:
    """(seconds, peak MB, scores) of grade-batch over the folder."""
    command = [sys.executable, "-m", "autograder", "grade-batch", str(submissions), "--out", str(out), "--jobs", str(jobs)]
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(process.pid)
    memory.start()
    _, errors = process.communicate()
    seconds = time.perf_counter() - began
    memory.stopped.set()
    memory.join()
    if process.returncode != 0:
        sys.exit(f"grade-batch failed ({process.returncode}):\n{errors[-3000:]}")
    with open(out / "grades.csv", newline="") as stream:
        scores = {row["student"]: float(row["score"]) for row in csv.DictReader(stream)}
    return seconds, memory.peak_kb / 1024, scores


def nbgrader(args: list[str], course: Path, home: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JUPYTER", "NBGRADER", "IPYTHON"))}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', os.defpath)}", MPLBACKEND="Agg")
    result = subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"nbgrader {' '.join(args)} failed:\n{(result.stdout + result.stderr)[-3000:]}")


def run_nbgrader(submissions: Path, names: list[str], root: Path) -> tuple[float, dict[str, float]]:
    """(seconds of `nbgrader autograde`, exported scores) for the named submissions."""
    course, home = root / "course", root / "home"
    home.mkdir()
    # Where bubblewrap does not work, the course opts out of the sandbox explicitly (its autograde
    # refuses otherwise): the bench measures speed on any machine.
    from autograder.sandbox import bwrap_status

    build_course(course, allow_unsandboxed=bwrap_status()[0] is None)
    nbgrader(["generate_assignment", ASSIGNMENT_ID], course, home)
    released = course / "release" / ASSIGNMENT_ID
    for name in names:
        target = course / "submitted" / name / ASSIGNMENT_ID
        shutil.copytree(released, target)
        shutil.copytree(submissions / name, target, dirs_exist_ok=True)  # the student's graded .py files
        (target / "timestamp.txt").write_text("2026-01-01 00:00:00 UTC\n")
    began = time.perf_counter()
    nbgrader(["autograde", ASSIGNMENT_ID], course, home)
    seconds = time.perf_counter() - began
    nbgrader(["export"], course, home)
    with open(course / "grades.csv", newline="", encoding="utf-8") as stream:
        scores = {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(stream)}
    return seconds, scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="submissions graded by the kit (default: %(default)s)")
    parser.add_argument("--nbgrader-n", type=int, default=40,
                        help="how many of them nbgrader autogrades too (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="grade-batch workers (default: %(default)s)")
    parser.add_argument("--with-timeouts", action="store_true", help="include the bank's endless-loop entry")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dropout-bench-") as workdir:
        root = Path(workdir)
        names = make_submissions(root / "submissions", args.n, args.with_timeouts)
        nb_names = names[: min(args.nbgrader_n, args.n)]
        kit_seconds, peak_mb, kit_scores = run_kit(root / "submissions", root / "results", args.jobs)
        nb_seconds, nb_scores = run_nbgrader(root / "submissions", nb_names, root) if nb_names else (0.0, {})
    mismatches = [(name, kit_scores.get(name), nb_scores.get(name)) for name in nb_names
                  if kit_scores.get(name) is None or nb_scores.get(name) is None
                  or abs(kit_scores[name] - nb_scores[name]) > 1e-6]
    missing = [name for name in names if name not in kit_scores]
    kit_per = kit_seconds / args.n
    print(f"submissions: {args.n} graded by grade-batch --jobs {args.jobs}, the first {len(nb_names)} also by nbgrader autograde")
    print(f"grade-batch:       {kit_per:.4f} s per submission ({kit_seconds:.1f} s for {args.n})")
    if nb_names:
        nb_per = nb_seconds / len(nb_names)
        print(f"nbgrader autograde: {nb_per:.4f} s per submission ({nb_seconds:.1f} s for {len(nb_names)})")
        print(f"ratio (nbgrader / grade-batch, per submission): {nb_per / kit_per:.1f}x")
    label = "measured" if args.n == 1000 else f"projected from {args.n}"
    print(f"grade-batch, 1,000 submissions: {kit_per * 1000:.1f} s ({label})")
    print(f"grade-batch peak memory (PSS of its process tree): {peak_mb:.0f} MB")
    if missing or mismatches:
        print(f"MISMATCH: {len(missing)} without a kit result, {len(mismatches)} scored differently:")
        for name in missing:
            print(f"  {name}: no grade-batch result")
        for name, kit, nb in mismatches:
            print(f"  {name}: grade-batch {kit}, nbgrader {nb}")
        return 1
    print(f"scores agree on all {len(nb_names)} submissions graded by both paths")
    return 0


if __name__ == "__main__":
    sys.exit(main())
