"""The hostile corpus (tests/hostile/*.toml): one attack per spec, all graded for real in one batch.

A spec gives the attack's code (``[prelude] code`` appended to layers.py, so it runs at import, and/or
region bodies as in the bank), the honest submission it is built on (``base``: the untouched stub by
default, or a bank entry; ``[honest.regions]`` when the attack's fair comparison is a plain wrong
answer with the same values), what stopped it (``stopped_by``), whether only bubblewrap stops it
(``needs_bwrap``: skipped, with the reason, where bwrap is unusable; never even run then, since
those attacks could do real harm without it), and its ``layout`` (a folder, or a hostile zip/links).
Placeholders: @OUTSIDE@ (a folder beside the submissions with a sentinel file), @SOLUTION@, @REPO@,
@TOKEN@ (a unique `sleep` argument, to find leftover processes) and @PORT@ (a listening socket).

Each test asserts: a result in bounded time, a score no higher than the honest base's score, and no
side effect outside the submission (sentinel untouched, nothing new beside it, no process left
running, no connection received, the grader's processes alive, solution and grader trees unchanged).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from autograder.bank import graded_sources, load_bank
from autograder.limits import DEFAULT_LIMITS
from autograder.paths import ASSIGNMENT_DIR, GRADED_FILES, REPO_ROOT, SOLUTION_DIR
from autograder.plugin import GradingJob, run_grading
from autograder.regions import REGION_NAMES, fill_regions
from autograder.rubric import load_rubric
from autograder.sandbox import bwrap_status
from autograder.submission import SubmissionRefused, prepare

HOSTILE_DIR = Path(__file__).with_name("hostile")
SPECS = {path.stem: tomllib.loads(path.read_text(encoding="utf-8")) for path in sorted(HOSTILE_DIR.glob("*.toml"))}
BWRAP, BWRAP_REASON = bwrap_status()
# Short deadlines keep the corpus fast; the mechanisms are the defaults'.
LIMITS = replace(DEFAULT_LIMITS, call_seconds=1.0, startup_seconds=5.0, submission_seconds=6.0)
BOUND_SECONDS = LIMITS.submission_seconds + LIMITS.startup_seconds + 10  # a result within this
needs_bwrap = pytest.mark.skipif(BWRAP is None, reason=f"needs bubblewrap, unusable here: {BWRAP_REASON}")


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def runnable(name: str) -> bool:
    return BWRAP is not None or not SPECS[name].get("needs_bwrap", False)


def base_sources(base: str) -> dict[str, str]:
    if base == "stub":
        return {graded: (ASSIGNMENT_DIR / graded).read_text(encoding="utf-8") for graded in GRADED_FILES}
    return graded_sources(next(entry for entry in load_bank() if entry.name == base))


def build(name: str, folder: Path, values: dict[str, str]) -> Path:
    """Write the attack ``name`` as a submission under ``folder``; returns its path."""
    spec = SPECS[name]

    def filled(text: str) -> str:
        for key, value in values.items():
            text = text.replace(f"@{key}@", value)
        return text

    layout = spec.get("layout", "folder")
    if layout == "symlink_out":
        for graded in GRADED_FILES:
            (folder / name / graded).parent.mkdir(parents=True, exist_ok=True)
            (folder / name / graded).symlink_to(SOLUTION_DIR / graded)
        return folder / name
    sources = base_sources(spec.get("base", "stub"))
    for graded in GRADED_FILES:
        bodies = [spec.get("regions", {}).get(region) for region in REGION_NAMES[graded]]
        bodies = [None if body is None else filled(body) for body in bodies]
        sources[graded] = fill_regions(sources[graded], bodies, graded)
    sources["nnlab/layers.py"] += "\n" + filled(spec.get("prelude", {}).get("code", ""))
    if layout == "zip_slip":
        path = folder / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for graded, text in sources.items():
                archive.writestr(graded, text)
            archive.writestr("../../escaped-zip-slip.py", "print('slipped')")
            archive.writestr(values["OUTSIDE"] + "/absolute-zip-slip.py", "print('slipped')")
        return path
    for graded, text in sources.items():
        (folder / name / graded).parent.mkdir(parents=True, exist_ok=True)
        (folder / name / graded).write_text(text, encoding="utf-8")
    return folder / name


def _grade_share(jobs: list[GradingJob]) -> dict:
    """In a worker process (the grader's 'parent' of these children): grade a share of the jobs."""
    return {key: result for key, result in run_grading(jobs, load_rubric(), LIMITS).items()}


def _running_with(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if token in (entry / "cmdline").read_bytes().decode("utf-8", "replace"):
                state = (entry / "stat").read_text().split(")")[-1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    outside = root / "outside"
    outside.mkdir()
    (outside / "sentinel.txt").write_text("untouched")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    connections: list = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connections.append(listener.accept()[0].recv(100))
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    token = f"{4000 + os.getpid() % 1000}.{time.time_ns() % 10**6:06d}"
    values = {"OUTSIDE": str(outside), "SOLUTION": str(SOLUTION_DIR), "REPO": str(REPO_ROOT),
              "TOKEN": token, "PORT": str(listener.getsockname()[1])}
    before = {"solution": tree_digest(SOLUTION_DIR), "grader": tree_digest(REPO_ROOT / "autograder"),
              "assignment": tree_digest(ASSIGNMENT_DIR)}
    submissions = root / "submissions"
    submissions.mkdir()
    jobs, refused, paths = [], {}, {}
    names = [name for name in SPECS if runnable(name)]
    bases = sorted({SPECS[name].get("base", "stub") for name in names})
    honest = [f"honest:{name}" for name in names if "honest" in SPECS[name]]
    for key in names + [f"base:{base}" for base in bases] + honest:
        if key.startswith("honest:"):
            spec = SPECS[key[len("honest:"):]]
            path = submissions / key.replace(":", "_")
            for graded, text in base_sources("stub").items():
                bodies = [spec["honest"].get("regions", {}).get(region) for region in REGION_NAMES[graded]]
                (path / graded).parent.mkdir(parents=True, exist_ok=True)
                (path / graded).write_text(fill_regions(text, bodies, graded), encoding="utf-8")
        elif key.startswith("base:"):
            base = key[len("base:"):]
            path = submissions / key.replace(":", "_")
            for graded, text in base_sources(base).items():
                (path / graded).parent.mkdir(parents=True, exist_ok=True)
                (path / graded).write_text(text, encoding="utf-8")
        else:
            path = build(key, submissions, values)
        paths[key] = path
        workdir = root / "work" / key.replace(":", "_")
        workdir.mkdir(parents=True)
        try:
            prepared = prepare(path, workdir)
        except SubmissionRefused as refusal:
            refused[key] = str(refusal)
            continue
        jobs.append(GradingJob(key, key, prepared.tree, 231, prepared.missing))
    started = time.monotonic()
    shares = [jobs[0::2], jobs[1::2]]
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(_grade_share, share) for share in shares]
        results, worker_errors = {}, []
        for future in futures:
            try:
                results.update(future.result(timeout=BOUND_SECONDS * len(jobs)))
            except Exception as error:  # a worker killed by the student would land here
                worker_errors.append(repr(error))
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 5
    while _running_with(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join()
    listener.close()
    after = {"solution": tree_digest(SOLUTION_DIR), "grader": tree_digest(REPO_ROOT / "autograder"),
             "assignment": tree_digest(ASSIGNMENT_DIR)}
    return {
        "results": results, "refused": refused, "worker_errors": worker_errors, "elapsed": elapsed,
        "left_running": _running_with(token), "connections": connections, "before": before, "after": after,
        "outside": sorted(path.name for path in outside.iterdir()),
        "sentinel": (outside / "sentinel.txt").read_text() if (outside / "sentinel.txt").exists() else None,
        "stray": [p for p in (Path("/tmp") / f"pwned-{token}", Path("/pwned"), root / "escaped-zip-slip.py") if p.exists()],
        "paths": paths,
    }


def test_the_corpus_has_at_least_25_distinct_attacks():
    assert len(SPECS) >= 25
    for name, spec in SPECS.items():
        assert spec.get("summary") and spec.get("stopped_by"), name


ATTACKS = [pytest.param(name, marks=[needs_bwrap] if SPECS[name].get("needs_bwrap") else [], id=name) for name in SPECS]


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_is_contained(corpus, name):
    spec = SPECS[name]
    # No side effect outside the submission, and the grader's processes all lived.
    assert corpus["worker_errors"] == [], "a grading process died"
    assert corpus["sentinel"] == "untouched" and corpus["outside"] == ["sentinel.txt"]
    assert corpus["left_running"] == [], "a process started by a submission outlived the grading"
    assert corpus["connections"] == [], "a submission reached the network"
    assert corpus["before"] == corpus["after"], "the solution, assignment or grader tree changed"
    assert corpus["stray"] == []
    if name in corpus["refused"]:  # refused before anything ran: the refusal is the result (score 0)
        assert spec.get("layout") in ("zip_slip", "symlink_out"), corpus["refused"][name]
        return
    assert spec.get("layout", "folder") == "folder", f"{name} should have been refused"
    result = corpus["results"][name]
    honest = corpus["results"][f"honest:{name}" if "honest" in spec else f"base:{spec.get('base', 'stub')}"]
    assert result.execution_time < BOUND_SECONDS, f"{name} took {result.execution_time:.1f}s"
    assert result.score <= honest.score, f"{name} scored {result.score} > honest {honest.score}"
    assert len(result.tests) == len(honest.tests), "every check still produced a result"
    if BWRAP is not None:
        assert result.extra_data["missing_protections"] == []
    else:
        assert "bubblewrap" in result.extra_data["missing_protections"]


def test_the_corpus_is_fast(corpus):
    assert corpus["elapsed"] < 120, f"the corpus took {corpus['elapsed']:.0f}s"


def test_the_graders_stdout_carries_only_its_result(corpus):
    path = corpus["paths"]["fake_results_printed"]
    completed = subprocess.run([sys.executable, "-m", "autograder", "grade", str(path), "--format", "json"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)  # exactly one JSON document, nothing else
    assert result["score"] == 0 and "Score: 36 / 36" not in completed.stdout.splitlines()
    assert "FORGED" in result["extra_data"]["student_output"]


@needs_bwrap
def test_the_child_runs_under_its_own_uid_without_network_or_host_files(tmp_path):
    probe = (
        "import os, json, socket\n"
        "seen = {'uid': os.getuid(), 'root': sorted(os.listdir('/')), 'sandbox': sorted(os.listdir('/sandbox')),\n"
        f"        'solution': os.path.exists({str(SOLUTION_DIR)!r}), 'net': len(socket.if_nameindex())}}\n"
        "print('SEEN=' + json.dumps(seen))\n"
    )
    sources = base_sources("stub")
    sources["nnlab/layers.py"] += "\n" + probe
    for graded, text in sources.items():
        (tmp_path / "probe" / graded).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "probe" / graded).write_text(text, encoding="utf-8")
    from autograder.grade import grade_submission

    result = grade_submission(tmp_path / "probe", load_rubric(), limits=LIMITS)
    line = next(line for line in result.extra_data["student_output"].splitlines() if line.startswith("SEEN="))
    seen = json.loads(line[len("SEEN="):])
    assert seen["solution"] is False and seen["sandbox"] == ["home", "submission", "tmp"]  # the driver: in the zygote only
    assert "work" not in seen["root"] or seen["root"].count("work") == 1  # only the venv's parents
    assert seen["net"] <= 1  # loopback at most, down
    assert os.geteuid() != 0 or seen["uid"] != 0
