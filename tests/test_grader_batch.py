"""grade-batch (parallel, atomic, resumable) and demo, run for real."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from autograder.bank import load_bank, write_submission
from autograder.cli import main
from autograder.paths import ASSIGNMENT_DIR, GRADED_FILES, REPO_ROOT, SOLUTION_DIR
from autograder.rubric import load_rubric

MAX = load_rubric().max_score


def copy_graded(source: Path, target: Path) -> Path:
    for graded in GRADED_FILES:
        (target / graded).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / graded, target / graded)
    return target


def class_folder(root: Path, copies: int = 1) -> Path:
    """Students: ann (solution, folder), ben (assignment, zip), cat (vanilla dropout), and extra
    copies of the solution named s00, s01, ..."""
    folder = root / "class"
    copy_graded(SOLUTION_DIR, folder / "ann")
    with zipfile.ZipFile(folder / "ben.zip", "w") as archive:
        for graded in GRADED_FILES:
            archive.write(ASSIGNMENT_DIR / graded, graded)
    vanilla = next(entry for entry in load_bank() if entry.name == "wrong_vanilla_dropout")
    write_submission(vanilla, folder / "cat")
    for index in range(copies - 1):
        copy_graded(SOLUTION_DIR, folder / f"s{index:02d}")
    return folder


def grades(out: Path) -> dict[str, tuple[float, float]]:
    with open(out / "grades.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    names = [row["student"] for row in rows]
    assert len(names) == len(set(names)), f"duplicate lines in grades.csv: {names}"
    return {row["student"]: (float(row["score"]), float(row["max_score"])) for row in rows}


def test_batch_writes_one_json_per_student_and_the_csv(tmp_path, capsys):
    folder, out = class_folder(tmp_path), tmp_path / "out"
    assert main(["grade-batch", str(folder), "--out", str(out), "--jobs", "2"]) == 0
    table = grades(out)
    assert table["ann"] == (MAX, MAX) and table["ben"] == (0, MAX) and 0 < table["cat"][0] < MAX
    for student in ("ann", "ben", "cat"):
        result = json.loads((out / f"{student}.json").read_text())
        assert (result["score"], result["max_score"]) == table[student]
    assert "3/3 graded" in capsys.readouterr().err


def test_batch_resumes_and_regrades_only_missing_or_corrupt_results(tmp_path, capsys):
    folder, out = class_folder(tmp_path), tmp_path / "out"
    assert main(["grade-batch", str(folder), "--out", str(out), "--jobs", "2"]) == 0
    kept_stat = (out / "ann.json").stat()
    (out / "ben.json").write_text((out / "ben.json").read_text()[:100])  # truncated
    (out / "cat.json").unlink()
    time.sleep(0.01)
    assert main(["grade-batch", str(folder), "--out", str(out), "--jobs", "2"]) == 0
    assert (out / "ann.json").stat().st_mtime_ns == kept_stat.st_mtime_ns  # not regraded
    assert json.loads((out / "ben.json").read_text())["score"] == 0
    assert set(grades(out)) == {"ann", "ben", "cat"}
    assert "(1 resumed)" in capsys.readouterr().err


def test_batch_killed_by_a_signal_resumes_without_losing_results(tmp_path):
    folder, out = class_folder(tmp_path, copies=10), tmp_path / "out"
    command = [sys.executable, "-m", "autograder", "grade-batch", str(folder), "--out", str(out), "--jobs", "1"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.json")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode != 0, "the batch finished before it could be interrupted"
    before = {path.name: path.stat().st_mtime_ns for path in out.glob("*.json")}
    assert 0 < len(before) < 12
    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"
    assert all(json.loads((out / name).read_text())["max_score"] == MAX for name in before)
    rerun = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"({len(before)} resumed)" in rerun.stderr
    assert all((out / name).stat().st_mtime_ns == stamp for name, stamp in before.items())
    assert len(grades(out)) == 12 and len(list(out.glob("*.json"))) == 12


def test_demo_shows_full_marks_zero_and_buggy_feedback(capsys):
    assert main(["demo"]) == 0
    text = capsys.readouterr().out
    assert text.count(f"Score: {MAX:g} / {MAX:g}") == 1
    assert f"Score: 0 / {MAX:g}" in text and "not implemented yet" in text
    assert "vanilla dropout" in text and "drew a new random mask" in text and "seed" in text
    assert "Traceback" not in text


def _batch_processes(out: Path) -> list[int]:
    """Live processes of a grade-batch writing to ``out`` (its workers share its command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(out) in (entry / "cmdline").read_bytes().decode("utf-8", "replace"):
                    if (entry / "stat").read_text().split(")")[-1].split()[0] != "Z":
                        found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_batch_survives_sigkill_at_random_moments(tmp_path):
    import random

    folder, out = class_folder(tmp_path, copies=30), tmp_path / "out"
    command = [sys.executable, "-m", "autograder", "grade-batch", str(folder), "--out", str(out), "--jobs", "2"]
    first_seen: dict[str, int] = {}  # result file -> mtime when first seen: each must be written once
    chooser = random.Random(20260522)
    kills, broken = 0, None
    for attempt in range(4):
        before = len(list(out.glob("*.json"))) if out.exists() else 0
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt == 0:
            time.sleep(chooser.uniform(0.2, 1.0))  # most likely while it starts up
        else:
            # Mid-run, whatever the machine's speed: just after this run's first new result.
            deadline = time.monotonic() + 120
            while process.poll() is None and len(list(out.glob("*.json"))) <= before and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(chooser.uniform(0.0, 0.3))
        if process.poll() is None:
            process.kill()  # SIGKILL: no handler, no cleanup
            kills += 1
        process.wait()
        deadline = time.monotonic() + 10
        while _batch_processes(out) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _batch_processes(out) == [], "a worker outlived the killed batch"
        for path in out.glob("*.json"):
            if path.name == broken and len(path.read_text()) == 50:
                continue  # still the one this test broke: not regraded yet
            json.loads(path.read_text())  # every result file present is complete (atomic writes)
            first_seen.setdefault(path.name, path.stat().st_mtime_ns)
        if attempt == 1 and first_seen:  # a result broken on disk must be detected and regraded
            broken = sorted(first_seen)[0]
            (out / broken).write_text((out / broken).read_text()[:50])
            del first_seen[broken]
    assert kills >= 2, "the batch finished before it could be killed"
    rerun = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"
    results = {path.stem: json.loads(path.read_text()) for path in out.glob("*.json")}
    assert len(results) == 32
    for name, stamp in first_seen.items():
        assert (out / name).stat().st_mtime_ns == stamp, f"{name} was graded twice"
    table = grades(out)  # also asserts one line per student
    assert table == {name: (result["score"], result["max_score"]) for name, result in results.items()}


def test_a_rerun_removes_temporary_files_an_interrupted_run_left(tmp_path):
    """A batch killed between writing a temporary file and renaming it leaves the file behind."""
    folder, out = class_folder(tmp_path), tmp_path / "out"
    out.mkdir()
    stale = [out / ".grades.csv.x1y2z3.tmp", out / ".ann.json.a1b2c3.tmp"]
    for path in stale:
        path.write_text("half a fi")
    assert main(["grade-batch", str(folder), "--out", str(out), "--jobs", "1"]) == 0
    assert not any(path.exists() for path in stale)
    assert set(grades(out)) == {"ann", "ben", "cat"}


def test_sessions_cover_every_student_once_and_shrink_towards_the_end():
    from autograder.batch import chunks

    for count in (1, 7, 40, 1000):
        names = [f"s{index}" for index in range(count)]
        sizes = [len(chunk) for chunk in chunks(names, 2)]
        assert [name for chunk in chunks(names, 2) for name in chunk] == names
        assert max(sizes) <= 16
        assert sizes == sorted(sizes, reverse=True)  # the workers finish close together
        assert sizes[-1] == 1


def _affinity_after_start(cpus, answers) -> None:
    from autograder.batch import _start_worker

    _start_worker(cpus)
    answers.put(sorted(os.sched_getaffinity(0)))


def test_each_worker_takes_a_cpu_of_its_own_when_there_are_enough():
    import multiprocessing.managers

    from autograder.batch import free_cpus

    available = sorted(os.sched_getaffinity(0))
    assert free_cpus(len(available)) == available
    assert free_cpus(len(available) + 1) == []  # more workers than CPUs: the kernel places them
    with multiprocessing.managers.SyncManager() as manager:
        cpus, answers = manager.Queue(), manager.Queue()
        for cpu in free_cpus(len(available)):
            cpus.put(cpu)
        workers = [multiprocessing.Process(target=_affinity_after_start, args=(cpus, answers)) for _ in available]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        pinned = sorted(answers.get(timeout=5) for _ in available)
    assert pinned == [[cpu] for cpu in available]


# -- the sandbox policy ---------------------------------------------------------------------------
def batch_command(folder: Path, out: Path, *extra: str, **environment) -> subprocess.CompletedProcess:
    """grade-batch in a fresh interpreter, so that the environment decides whether bubblewrap works."""
    command = [sys.executable, "-m", "autograder", "grade-batch", str(folder), "--out", str(out), "--jobs", "2", *extra]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **environment})


def test_batch_refuses_without_bubblewrap_and_says_what_is_missing_and_what_to_do(tmp_path):
    folder, out = class_folder(tmp_path), tmp_path / "out"
    result = batch_command(folder, out, DROPOUT_LAB_BWRAP="0")
    assert result.returncode == 2
    message = result.stderr
    assert "grade-batch refuses to grade other people's code without its sandbox" in message
    for protection in ("bubblewrap", "no network", "own PID namespace", "private filesystem view"):
        assert protection in message.split("Missing without it:")[1]
    assert "DROPOUT_LAB_BWRAP" in message  # why bubblewrap is not used here, and how to undo it
    assert "--allow-unsandboxed" in message and "DROPOUT_LAB_ALLOW_UNSANDBOXED=1" in message
    assert not out.exists() or not list(out.glob("*.json")), "a student was graded despite the refusal"


@pytest.mark.parametrize("opt_out", ["flag", "environment"])
def test_batch_opted_out_grades_without_bubblewrap_and_records_what_was_missing(tmp_path, opt_out):
    folder, out = class_folder(tmp_path), tmp_path / "out"
    extra, environment = (["--allow-unsandboxed"], {}) if opt_out == "flag" else ([], {"DROPOUT_LAB_ALLOW_UNSANDBOXED": "1"})
    result = batch_command(folder, out, *extra, DROPOUT_LAB_BWRAP="0", **environment)
    assert result.returncode == 0, result.stderr
    assert "grading without the sandbox, as asked" in result.stderr and "no network" in result.stderr
    table = grades(out)
    assert table["ann"] == (MAX, MAX) and table["ben"] == (0, MAX) and 0 < table["cat"][0] < MAX
    for student in ("ann", "ben", "cat"):
        extra_data = json.loads((out / f"{student}.json").read_text())["extra_data"]
        assert "bubblewrap" in extra_data["missing_protections"]


def test_batch_with_bubblewrap_grades_sandboxed_and_says_nothing_about_it(tmp_path):
    folder, out = class_folder(tmp_path), tmp_path / "out"
    result = batch_command(folder, out)
    assert result.returncode == 0, result.stderr
    assert "without the sandbox" not in result.stderr
    for student in ("ann", "ben", "cat"):
        extra_data = json.loads((out / f"{student}.json").read_text())["extra_data"]
        assert extra_data["missing_protections"] == [] and "bubblewrap" in extra_data["protections"]


def test_demo_runs_without_bubblewrap_and_says_what_was_missing():
    result = subprocess.run([sys.executable, "-m", "autograder", "demo"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "DROPOUT_LAB_BWRAP": "0"})
    assert result.returncode == 0, result.stderr
    assert f"Score: {MAX:g} / {MAX:g}" in result.stdout
    assert "graded WITHOUT the full sandbox" in result.stdout and "no network" in result.stdout


def test_the_progress_bar_counts_students_and_ends_full(tmp_path):
    folder, out = class_folder(tmp_path), tmp_path / "out"
    result = batch_command(folder, out)
    assert result.returncode == 0, result.stderr
    last = result.stderr.replace("\r", "\n").strip().splitlines()[-1]  # the bar's final state
    assert "3/3 graded" in last and "|" in last


def test_a_dask_worker_without_bubblewrap_refuses_unless_the_batch_opted_out():
    """What a Dask worker runs (grade_shipped), in a fresh interpreter where bubblewrap is off."""
    script = (
        "import json, sys\n"
        "from autograder.batch import grade_shipped\n"
        "from autograder.paths import GRADED_FILES, SOLUTION_DIR\n"
        "from autograder.rubric import DEFAULT_RUBRIC\n"
        "from autograder.sandbox import SandboxRequired\n"
        "files = {g: (SOLUTION_DIR / g).read_bytes() for g in GRADED_FILES}\n"
        "rubric = DEFAULT_RUBRIC.read_text()\n"
        "try:\n"
        "    grade_shipped([('ann', files)], rubric, 231)\n"
        "except SandboxRequired as refusal:\n"
        "    print('REFUSED', str(refusal).splitlines()[0])\n"
        "[(name, result)] = grade_shipped([('ann', files)], rubric, 231, True)\n"
        "print('GRADED', result['score'], result['extra_data']['missing_protections'][0])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "DROPOUT_LAB_BWRAP": "0"})
    assert result.returncode == 0, result.stderr
    assert "REFUSED grade-batch's Dask worker on " in result.stdout
    assert f"GRADED {MAX} bubblewrap" in result.stdout
