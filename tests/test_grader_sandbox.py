"""The split between the grader and the child that runs student code, tested with real children."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from autograder import wire
from autograder.bank import BankEntry, load_bank, write_submission
from autograder.grade import grade_submission
from autograder.limits import BWRAP_ENVIRONMENT_VARIABLE
from autograder.rubric import load_rubric
from autograder.sandbox import bwrap_status

RUBRIC = load_rubric()


def submission_with(tmp_path, train_body: str) -> Path:
    entry = BankEntry(name="probe", kind="wrong", summary="", regions={"dropout_forward.train": train_body})
    return write_submission(entry, tmp_path / "probe")


def test_student_prints_never_reach_the_protocol(tmp_path):
    folder = submission_with(tmp_path, 'print("debugging", x.shape)\nmask = (np.random.rand(*x.shape) < p) / p\nout = x * mask\n')
    result = grade_submission(folder, RUBRIC)
    assert result.score == result.max_score
    assert "debugging" in result.extra_data["student_output"]


def what_the_child_sees(tmp_path, expression: str, imports: str = ""):
    """The JSON value of ``expression``, evaluated once in the child while it serves a correct
    submission. The child can write nowhere the test could read (bwrap), so it prints it."""
    body = (
        f"import json, os{imports}\nif x.ndim == 4 and not os.environ.get('SEEN'):\n"
        "    os.environ['SEEN'] = '1'\n"
        f"    print('SEEN=' + json.dumps({expression}))\n"
        "mask = (np.random.rand(*x.shape) < p) / p\nout = x * mask\n"
    )
    result = grade_submission(submission_with(tmp_path, body), RUBRIC)
    line = next(line for line in result.extra_data["student_output"].splitlines() if line.startswith("SEEN="))
    return json.loads(line[len("SEEN="):])


def test_the_child_sees_a_scrubbed_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPOUT_LAB_SECRET", "hunter2")
    environment, isolated = what_the_child_sees(
        tmp_path, "[{k: v for k, v in os.environ.items() if k != 'SEEN'}, sys.flags.isolated]", imports=", sys")
    assert "DROPOUT_LAB_SECRET" not in environment and isolated == 1
    assert set(environment) <= {"PATH", "LANG", "HOME", "PYTHONHASHSEED", "OPENBLAS_NUM_THREADS",
                                "OMP_NUM_THREADS", "MKL_NUM_THREADS", "LC_CTYPE", "PWD"}


@pytest.mark.skipif(bwrap_status()[0] is None or os.geteuid() != 0, reason="the zygote holds capabilities only under a root grader with bwrap")
def test_the_childs_code_runs_without_any_capability_of_the_zygote(tmp_path):
    # Under root the zygote holds KILL, DAC_OVERRIDE, FOWNER, SETUID and SETGID; the child must
    # have lost them all (and root itself) before the submission's first line runs.
    fields = what_the_child_sees(
        tmp_path, "dict(line.split(':', 1) for line in open('/proc/self/status').read().splitlines()"
                  " if line.startswith(('Uid:', 'Gid:', 'CapInh:', 'CapPrm:', 'CapEff:', 'CapAmb:')))")
    for capabilities in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(fields[capabilities].strip(), 16) == 0, fields
    assert all(int(uid) != 0 for uid in fields["Uid"].split())
    assert all(int(gid) != 0 for gid in fields["Gid"].split())


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _running_with(token: str) -> list[int]:
    """Live processes whose command line holds ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token in (entry / "cmdline").read_bytes().decode("utf-8", "replace") and _alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_a_timeout_kills_the_whole_process_group_and_costs_one_check(tmp_path):
    token = f"{300 + time.time_ns() % 1000}.{time.time_ns() % 10**6:06d}"  # a unique `sleep` argument
    body = (
        "import subprocess\n"
        f"if x.shape == (3, 4, 5, 6):\n    subprocess.Popen(['sleep', {token!r}])\n"
        "    while True:\n        pass\n"
        "mask = (np.random.rand(*x.shape) < p) / p\nout = x * mask\n"
    )
    result = grade_submission(submission_with(tmp_path, body), RUBRIC)
    lost = {test.name: test.diagnosis for test in result.tests if test.status != "passed"}
    assert lost == {"forward_handles_any_shape": "timeout"}
    deadline = time.monotonic() + 5
    while _running_with(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running_with(token), "the student's grandchild outlived the deadline"


def test_a_crash_shows_only_the_students_frames(tmp_path):
    entry = next(entry for entry in load_bank() if entry.name == "wrong_crash")
    result = grade_submission(write_submission(entry, tmp_path / "crash"), RUBRIC)
    test = next(test for test in result.tests if test.name == "forward_keep_fraction")
    assert test.diagnosis == "crash"
    assert "TypeError" in test.output and 'File "nnlab/layers.py", line' in test.output
    assert "child_driver" not in test.output and "autograder" not in test.output


def test_wire_round_trips_arrays_and_json():
    message = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [1, "two", None, {"c": np.array([True])}]}
    decoded = wire.decode_body(wire.encode(message)[wire.LENGTH.size:])
    assert decoded["a"].dtype == np.float32 and np.array_equal(decoded["a"], message["a"])
    assert decoded["b"][:3] == [1, "two", None] and decoded["b"][3]["c"].dtype == bool


def _np_save_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize("dtype", ["f8", "f4", "f2", "i8", "i4", "i2", "i1", "u8", "u1", "?", "c16", "c8", ">f8", ">i4"])
@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (3, 0), (0, 5), (2, 3), (10, 1, 4), (123456789012, 0), (1, 2, 3, 4, 5)])
def test_wire_writes_the_bytes_np_save_writes(dtype, shape):
    array = (np.arange(int(np.prod(shape))) % 3).astype(dtype).reshape(shape)
    assert wire._npy_bytes(array) == _np_save_bytes(array)
    decoded = wire._load_array(wire._npy_bytes(array))
    assert decoded.dtype == np.ascontiguousarray(array).dtype and np.array_equal(decoded, np.ascontiguousarray(array))


@pytest.mark.parametrize("array", [
    np.arange(12.0).reshape(3, 4).T,  # Fortran order
    np.arange(20)[::3],  # strided
    np.array(5.0),  # 0-d
    np.float32(2.5),  # numpy scalar
    np.zeros(3, dtype="M8[s]"),  # not a plain numeric kind: np.save's own path
    np.zeros(2, dtype=[("a", "f8"), ("b", "i4")]),  # structured
    np.zeros(2, dtype=np.dtype("f8", metadata={"k": 1})),
])
@pytest.mark.filterwarnings("ignore:metadata on a dtype")
def test_wire_writes_the_bytes_np_save_writes_for_other_arrays(array):
    assert wire._npy_bytes(array) == _np_save_bytes(array)


def test_wire_refuses_pickled_arrays():
    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
    document = json.dumps({"__array__": 0}).encode()
    parts = [document, buffer.getvalue()]
    body = wire.COUNT.pack(len(parts)) + b"".join(wire.LENGTH.pack(len(p)) + p for p in parts)
    with pytest.raises(wire.WireError):
        wire.decode_body(body)


def test_wire_refuses_truncated_messages():
    body = wire.encode({"a": np.ones(3)})[wire.LENGTH.size:]
    with pytest.raises(wire.WireError):
        wire.decode_body(body[:-5])


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed: the fallback is tested elsewhere")
def test_an_installed_bwrap_is_used_wherever_the_kit_lives():
    """Where bwrap is installed, the sandbox must work with it (a checkout under /tmp included):
    a probe failure would silently drop protections, so it fails here instead of skipping tests.
    Set DROPOUT_LAB_BWRAP=0 on a machine whose bwrap cannot run."""
    if os.environ.get(BWRAP_ENVIRONMENT_VARIABLE) == "0":
        pytest.skip("bubblewrap turned off by DROPOUT_LAB_BWRAP=0")
    path, why = bwrap_status()
    assert path is not None, why


# -- without bubblewrap, under root: a uid of its own ---------------------------------------------------
def _distributions(names) -> list:
    """The installed distributions of ``names`` and of everything they require, recursively."""
    from importlib import metadata

    from packaging.requirements import Requirement

    found, wanted = {}, list(names)
    while wanted:
        name = wanted.pop()
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        key = distribution.metadata["Name"].lower().replace("_", "-")
        if key in found:
            continue
        found[key] = distribution
        for requirement in map(Requirement, distribution.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name)
    return list(found.values())


def readable_runtime(folder: Path) -> Path | None:
    """A Python runtime that every user can read, in ``folder``: a virtual environment of the system's
    own Python of this version, with this environment's numpy and pytest and what they require (the
    grader's own needs; hard links where the file system allows, copies otherwise). Returns its
    python, or None where the machine has no such Python."""
    import subprocess
    import sys

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system = next((Path(p) for p in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}")
                   if Path(p).is_file() and os.stat(os.path.realpath(p)).st_mode & 0o005 == 0o005), None)
    if system is None:
        return None
    venv = folder / "venv"
    subprocess.run([str(system), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True, timeout=120)
    target = next(venv.glob("lib/python*/site-packages"))
    needed = ["numpy", "pytest"] + (["tomli"] if sys.version_info < (3, 11) else [])
    for distribution in _distributions(needed):
        site = Path(distribution.locate_file(""))
        for file in distribution.files or []:
            source = Path(distribution.locate_file(file))
            relative = Path(os.path.normpath(file))
            if relative.parts[0] == ".." or "__pycache__" in relative.parts or not source.is_file():
                continue  # scripts installed outside site-packages, caches
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(site / relative, target / relative)
    for path in [venv, *venv.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    return venv / "bin" / "python"


def _link_or_copy(source, target) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@pytest.fixture(scope="module")
def shared_folder():
    """A folder under /tmp that every user may enter (pytest's own temporary folders are private)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="dropout-lab-test-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def open_python(shared_folder):
    if os.geteuid() != 0:
        pytest.skip("only a root grader gives a child a uid of its own")
    python = readable_runtime(shared_folder / "open")
    if python is None:
        pytest.skip("this machine has no system Python of this version that every user can read")
    return python


def closed_runtime(shared: Path, open_python: Path) -> Path:
    """The runtime of ``open_python`` reached through a folder that only root may enter, as a virtual
    environment under /root is: its python."""
    closed = shared / "closed"
    closed.mkdir(mode=0o700, exist_ok=True)
    closed.chmod(0o700)
    if not (closed / "venv").exists():
        (closed / "venv").symlink_to(open_python.parent.parent)
    return closed / "venv" / "bin" / "python"


def grade_without_bwrap(python: Path, folder: Path) -> dict:
    """`python -m autograder grade FOLDER --format json` with this interpreter, bubblewrap turned off
    as where it cannot create namespaces."""
    import subprocess

    from autograder.paths import REPO_ROOT

    env = {"PATH": "/usr/bin:/bin", "HOME": str(folder.parent), "LANG": "C.UTF-8", BWRAP_ENVIRONMENT_VARIABLE: "0"}
    completed = subprocess.run([str(python), "-m", "autograder", "grade", str(folder), "--format", "json"],
                               cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def seen_by_the_child(result: dict) -> dict:
    line = next(line for line in result["extra_data"]["student_output"].splitlines() if line.startswith("SEEN="))
    return json.loads(line[len("SEEN="):])


# Run once, in the first call with a 4-d input: what the child is and what it can reach, and a
# process that leaves the child's session and would outlive it.
SNOOP = """\
import json, os, resource, subprocess
if x.ndim == 4 and not os.environ.get('SEEN'):
    os.environ['SEEN'] = '1'
    def attempt(action):
        try:
            action()
            return 'done'
        except OSError as error:
            return type(error).__name__
    subprocess.Popen(['sleep', {token!r}], start_new_session=True)
    print('SEEN=' + json.dumps(dict(
        uid=os.getuid(), euid=os.geteuid(), groups=os.getgroups(), home_owner=os.stat(os.environ['HOME']).st_uid,
        nproc=resource.getrlimit(resource.RLIMIT_NPROC)[0],
        read_secret=attempt(lambda: open({secret!r}).read()),
        write_graders_file=attempt(lambda: open({graders_file!r}, 'a').close()),
        list_submission=attempt(lambda: os.listdir({submission!r})))))
mask = (np.random.rand(*x.shape) < p) / p
out = x * mask
"""


def snooping_submission(tmp_path: Path, shared: Path) -> tuple[Path, str, Path]:
    """A right submission that reports what its child can reach: (its folder, its sleep token, the
    grader's file it tries to write)."""
    token = f"{400 + time.time_ns() % 1000}.{time.time_ns() % 10**6:06d}"
    secret = shared / "grader-only.txt"
    secret.write_text("only the grader may read this")
    secret.chmod(0o600)
    graders_file = shared / "graders-file.txt"
    graders_file.write_text("unchanged")
    graders_file.chmod(0o644)
    folder = tmp_path / "probe"  # the submission as given to the grader, in a private folder
    body = SNOOP.format(token=token, secret=str(secret), graders_file=str(graders_file), submission=str(folder))
    return submission_with(tmp_path, body), token, graders_file


def test_without_bwrap_a_root_grader_runs_the_child_as_its_own_uid(open_python, shared_folder, tmp_path):
    """Where bubblewrap cannot run (a hosted grader's container), a root grader with a runtime that
    others can read still gives the child a uid of its own: the process limit holds, the child reads
    only what every user may read, and nothing it started outlives the grade."""
    from autograder.limits import DEFAULT_LIMITS
    from autograder.sandbox import OWN_UID

    folder, token, graders_file = snooping_submission(tmp_path, shared_folder)
    result = grade_without_bwrap(open_python, folder)
    assert result["score"] == result["max_score"]  # the runtime served the child after the drop
    assert OWN_UID in result["extra_data"]["protections"] and OWN_UID not in result["extra_data"]["missing_protections"]
    assert "no network" in result["extra_data"]["missing_protections"]
    seen = seen_by_the_child(result)
    assert seen["uid"] == seen["euid"] != 0 and seen["groups"] == [] and seen["home_owner"] == seen["uid"]
    assert seen["nproc"] == DEFAULT_LIMITS.processes
    assert seen["read_secret"] == "PermissionError"
    assert seen["write_graders_file"] == "PermissionError" and graders_file.read_text() == "unchanged"
    assert seen["list_submission"] == "PermissionError"  # the grader's copy and workspace are closed to it
    # Nothing of the child is left: the process it set free, its folder.
    assert not _running_with(token), "a process of the child's uid outlived the grade"
    assert not [p for p in Path("/tmp").glob("dropout-lab-child-*") if p.stat().st_uid == seen["uid"]]


def test_without_bwrap_a_runtime_others_cannot_read_keeps_the_graders_uid_and_says_why(
        open_python, shared_folder, tmp_path):
    """The same runtime behind a folder that only root may enter (as a virtual environment under
    /root is): the child cannot drop to its own uid, since it would then fail to import; the grade goes
    on under the grader's uid, and "own uid" is reported missing, with why."""
    from autograder.sandbox import OWN_UID

    python = closed_runtime(shared_folder, open_python)
    folder, token, graders_file = snooping_submission(tmp_path, shared_folder)
    result = grade_without_bwrap(python, folder)
    assert result["score"] == result["max_score"]
    assert OWN_UID in result["extra_data"]["missing_protections"]
    seen = seen_by_the_child(result)
    for pid in _running_with(token):  # under the grader's uid, nothing kills what the child set free
        os.kill(pid, 9)
    assert seen["uid"] == 0 and seen["read_secret"] == "done"  # what "own uid" missing means
    reason = subprocess_own_uid_status(python)
    assert "is not readable by other users" in reason and f"cannot start {python}" in reason, reason


def subprocess_own_uid_status(python: Path) -> str:
    import subprocess

    from autograder.paths import REPO_ROOT

    completed = subprocess.run([str(python), "-c", "from autograder.sandbox import own_uid_status; "
                                "print(own_uid_status()[1])"], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=120, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()
