"""Running student code: the launcher of the sandboxed child process (stage 2 of a grade).

This is the ONE module that starts student code. What every child gets:

- ``python -I -B`` (isolated: no user site, no PYTHON* variables, no current directory on sys.path)
  running autograder/child_driver.py, with a scrubbed environment, stdin closed, its own session and
  process group, and rlimits on CPU seconds, address space, file size, open files and processes;
- its stdout/stderr captured to a file that the parent reads back truncated (RLIMIT_FSIZE bounds it);
- requests and replies on two dedicated pipes (autograder.wire) that the driver moves to fresh
  close-on-exec descriptors before any student code runs; every reply must echo its request's id
  and be well formed, or the call fails and the child is replaced;
- a wall-clock deadline per call, and one for the whole submission, enforced here with SIGKILL of
  the child's whole process group; the next call starts a fresh child.

Where bubblewrap works (probed once per process; ``DROPOUT_LAB_BWRAP=0`` turns it off) the child
also runs inside ``bwrap``: no network (--unshare-net), its own PID namespace with --die-with-parent
(killing the group kills bwrap, and the kernel then kills everything in the namespace, setsid or
not), a root that holds only /usr and the Python runtime and venv read-only, /proc and a minimal
/dev, and one size-limited tmpfs, /sandbox, holding the driver and a fresh copy of the private
tree (copied in through descriptors, so nothing the child writes reaches the disk). The solution
tree, the rubric, other submissions and the results are simply not in its filesystem. When the
grader runs as root, the child also drops to a uid of its own, so that RLIMIT_NPROC holds.

Without bwrap (a hosted grader's container often forbids its namespaces), a root grader still gives
the child a uid of its own: the child works in a fresh folder that only that uid can enter, holding
copies of the driver and of the private tree, and drops to the uid before any student code runs; it
can then read only what every user may read, and the grader's folders (the workspace with the
submissions, the results) are closed to others. Between children every process of that uid is
killed, setsid or not, and the folder removed. The child imports from the Python runtime as it
goes, so this needs a runtime that other users can read: probed once per process
(``own_uid_status``); where it is not (a virtual environment under a private home folder, say), the
child keeps the grader's uid and "own uid" is reported missing, with why. Without bwrap, each
result's extra_data lists the protections that were missing.
"""

from __future__ import annotations

import fcntl
import functools
import os
import resource
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from autograder import wire
from autograder.limits import (BWRAP_ENVIRONMENT_VARIABLE, CHILD_UID_BASE, CHILD_UID_SPAN, DEFAULT_LIMITS,
                               MAX_CHILD_OUTPUT_BYTES, MAX_MESSAGE_BYTES, ChildLimits)

DRIVER_FILES = ("child_driver.py", "wire.py", "zygote_driver.py")
SANDBOX_ROOT = "/sandbox"  # the child's tmpfs, inside bwrap
ALWAYS = ("python -I", "scrubbed environment", "no stdin", "own process group", "rlimits",
          "call and submission deadlines", "output captured and truncated", "protocol on private descriptors")
BWRAP_PROTECTIONS = ("bubblewrap", "no network", "own PID namespace", "read-only Python runtime",
                     "private filesystem view", "size-limited scratch space")
OWN_UID = "own uid (process limit enforced)"


class ChildFailure(Exception):
    """The child could not answer: ``kind`` is timeout, memory, crash or does_not_import."""

    def __init__(self, kind: str, message: str, frames: list[str] | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.frames = frames or []


# -- bubblewrap -------------------------------------------------------------------------------------
def _runtime_paths() -> list[str]:
    """Directories the child needs read-only: the Python installation, the venv, numpy's home."""
    import numpy

    candidates = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix,
                  os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__))),
                  os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    candidates = {path for path in candidates if os.path.isdir(path) and path != "/"}
    # /usr is bound whole; drop what it (or another candidate) already covers.
    chosen = sorted(path for path in candidates
                    if not any(path != other and path.startswith(other.rstrip("/") + "/") for other in candidates | {"/usr"}))
    return [path for path in chosen if path != "/usr"]


def _base_bwrap_arguments(bwrap: str, as_root: bool) -> list[str]:
    arguments = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                 "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if as_root:
        # The zygote needs SETUID and SETGID to drop each child to its own uid, and KILL,
        # DAC_OVERRIDE and FOWNER to kill that uid's processes and remove its files between
        # submissions without forking a helper of that uid each time. The child loses all of
        # them when it changes uid, before it writes or runs anything of the submission.
        arguments += [argument for capability in ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER")
                      for argument in ("--cap-add", capability)]
    arguments += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib32", "lib64", "sbin"):
        path = Path("/") / name
        if path.is_symlink():
            arguments += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            arguments += ["--ro-bind", str(path), str(path)]
    made = {"/"}
    for runtime in _runtime_paths():
        for parent in reversed(Path(runtime).parents):  # bwrap would make missing parents 0700
            if str(parent) not in made:
                made.add(str(parent))
                arguments += ["--perms", "0755", "--dir", str(parent)]
        made.add(runtime)
        arguments += ["--ro-bind", runtime, runtime]
    return arguments + ["--proc", "/proc", "--dev", "/dev"]


def _finish_bwrap_arguments(arguments: list[str]) -> list[str]:
    # /tmp leads into the private tmpfs, unless the runtime itself lives under /tmp (a checkout
    # there): /tmp then already holds that read-only bind, and tempfile falls back to the cwd.
    runtime_in_tmp = any(path == "/tmp" or path.startswith("/tmp/") for path in _runtime_paths())
    tmp = [] if runtime_in_tmp else ["--symlink", f"{SANDBOX_ROOT}/tmp", "/tmp"]
    return arguments + tmp + ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", SANDBOX_ROOT]


@functools.lru_cache(maxsize=None)
def bwrap_status() -> tuple[str | None, str]:
    """(path to a working bwrap, "") or (None, why bubblewrap is not used). Probed once."""
    if os.environ.get(BWRAP_ENVIRONMENT_VARIABLE, "1") == "0":
        return None, f"turned off by {BWRAP_ENVIRONMENT_VARIABLE}=0"
    bwrap = shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.access(p, os.X_OK)), None)
    if bwrap is None:
        return None, "bwrap is not installed (Debian package bubblewrap)"
    arguments = _base_bwrap_arguments(bwrap, os.geteuid() == 0)
    arguments += ["--perms", "0777", "--size", str(1 << 20), "--tmpfs", SANDBOX_ROOT, "--dir", f"{SANDBOX_ROOT}/tmp"]
    command = _finish_bwrap_arguments(arguments) + [sys.executable, "-I", "-c", "import numpy, socket; print('ok')"]
    try:
        probe = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                               env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"bwrap does not run here ({error})"
    if probe.returncode != 0 or probe.stdout.strip() != b"ok":
        reason = probe.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {probe.returncode}"]
        return None, f"bwrap does not work here ({reason[0][:200]})"
    return bwrap, ""


# -- its own uid without bubblewrap ------------------------------------------------------------------
# What a child dropped to its uid goes on importing from the runtime (numpy loads numpy.random on
# first use; a submission may import any module of the standard library).
_RUNTIME_PROBE = "import numpy, numpy.random, ctypes, json, traceback, linecache, fractions; print('ok')"


def _become(uid: int):
    def apply() -> None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)

    return apply


def _child_uid() -> int:
    return CHILD_UID_BASE + os.getpid() % CHILD_UID_SPAN


def _runtime_description() -> str:
    return ", ".join(sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}))


@functools.lru_cache(maxsize=None)
def own_uid_status() -> tuple[bool, str]:
    """Whether a child started without bubblewrap can drop to a uid of its own: (True, "") or
    (False, why not). Only a root grader can, and only with a Python runtime that other users can
    read, since the child imports from it after the drop. Probed once per process, by starting this
    very interpreter as such a uid and importing what children import."""
    if os.geteuid() != 0:
        return False, "the grader does not run as root"
    uid = _child_uid()
    unreadable = (f"the Python runtime ({_runtime_description()}) is not readable by other users, and the "
                  f"child imports from it after dropping to its own uid")
    try:
        probe = subprocess.run([sys.executable, "-I", "-B", "-c", _RUNTIME_PROBE], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=60, cwd="/", env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                               preexec_fn=_become(uid))
    except PermissionError as error:
        return False, f"{unreadable} (uid {uid} cannot start {sys.executable}: {error.strerror})"
    except (OSError, subprocess.SubprocessError) as error:
        return False, f"a process of uid {uid} could not be started ({error})"
    if probe.returncode != 0 or probe.stdout.strip() != b"ok":
        last = probe.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {probe.returncode}"]
        return False, f"{unreadable} (as uid {uid}: {last[0][:200]})"
    return True, ""


def _traversable_by_others(folder: str) -> bool:
    path = Path(folder).resolve()
    return all(os.stat(part).st_mode & stat.S_IXOTH for part in [path, *path.parents])


def _shared_temp() -> str:
    """A folder under which another uid can reach a folder of its own: the temporary folder if every
    folder on its path lets others through, else /tmp."""
    folder = tempfile.gettempdir()
    return folder if _traversable_by_others(folder) else "/tmp"


def _pid_namespace(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _live_processes_of(uid: int, namespace: str | None) -> list[int]:
    """Processes of ``uid`` (real, effective or saved) in this PID namespace, zombies left out."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        uids = {int(value) for value in fields.get("Uid", "").split()[:3] if value.isdigit()}
        if uid in uids and not fields.get("State", "").strip().startswith(("Z", "X")) \
                and _pid_namespace(entry) == namespace:
            found.append(int(entry))
    return found


def _kill_processes_of(uid: int) -> None:
    """SIGKILL every process that a child of ``uid`` left behind (setsid or not), again until none is
    left: one may fork while the others die (RLIMIT_NPROC bounds how many there can be)."""
    namespace = _pid_namespace("self")
    for _ in range(200):
        found = _live_processes_of(uid, namespace)
        if not found:
            return
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)


def protections(limits: ChildLimits = DEFAULT_LIMITS) -> tuple[list[str], list[str]]:
    """(protections in force, protections missing) for children started with ``limits``."""
    bwrap, _ = bwrap_status() if limits.use_bubblewrap else (None, "")
    in_force = list(ALWAYS)
    missing = []
    (in_force if bwrap else missing).extend(BWRAP_PROTECTIONS)
    own_uid = os.geteuid() != 0 or bwrap is not None or own_uid_status()[0]
    (in_force if own_uid else missing).append(OWN_UID if os.geteuid() == 0 else "process limit (per user)")
    return in_force, missing


# -- the policy: grading other people's code without bubblewrap -----------------------------------------
# Opting out of the sandbox, for every command that grades other people's code on the instructor's
# machine: a flag of the command, or this environment variable set to 1.
ALLOW_UNSANDBOXED_FLAG = "--allow-unsandboxed"
ALLOW_UNSANDBOXED_VARIABLE = "DROPOUT_LAB_ALLOW_UNSANDBOXED"


class SandboxRequired(Exception):
    """Bubblewrap does not work here and nobody opted out: the message says what is missing, how to
    install or enable bubblewrap, and how to opt out."""


def unsandboxed_allowed_by_environment() -> bool:
    """True when DROPOUT_LAB_ALLOW_UNSANDBOXED says to grade without bubblewrap (1, true or yes)."""
    return os.environ.get(ALLOW_UNSANDBOXED_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def bubblewrap_advice() -> str:
    """What to do about bubblewrap on this machine, depending on why it is not used."""
    if os.environ.get(BWRAP_ENVIRONMENT_VARIABLE, "1") == "0":
        return f"To use bubblewrap again, unset {BWRAP_ENVIRONMENT_VARIABLE} (it is 0 in this environment)."
    if shutil.which("bwrap") is None and not os.access("/usr/bin/bwrap", os.X_OK):
        return ("Install it: `sudo apt-get install bubblewrap` (Debian, Ubuntu), `sudo dnf install bubblewrap` "
                "(Fedora), or run `bash setup.sh` as root, which installs it.")
    return ("It is installed but cannot create its namespaces here. It needs unprivileged user namespaces: "
            "on Ubuntu 23.10 and newer `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`, on older "
            "Debian `sudo sysctl kernel.unprivileged_userns_clone=1`; inside a container, run the container "
            "with user namespaces allowed (for Docker, a seccomp profile that permits them).")


def require_sandbox(opted_out: bool, what: str, opt_out: str = f"pass {ALLOW_UNSANDBOXED_FLAG}") -> list[str]:
    """The kit's policy before ``what`` (a command's name, for the message) grades other people's
    code on this machine: the protections that will be missing ([] when bubblewrap works).

    Raises SandboxRequired when bubblewrap does not work here, unless the caller says the instructor
    opted out (``opted_out``, a flag or config setting of its own, described by ``opt_out`` in the
    message) or DROPOUT_LAB_ALLOW_UNSANDBOXED=1 is set. The refusal names the missing protections,
    why bubblewrap is not used and what to do about it, and both ways to opt out. Inside a hosted
    grader's container (the Gradescope export) nothing calls this: it grades with what works there.
    """
    in_force, missing = protections()
    if not missing or opted_out or unsandboxed_allowed_by_environment():
        return missing
    raise SandboxRequired(
        f"{what} refuses to grade other people's code without its sandbox: bubblewrap is not used "
        f"({bwrap_status()[1]}).\n"
        f"Missing without it: {', '.join(missing)}.\n"
        f"{bubblewrap_advice()}\n"
        f"To grade without the sandbox anyway (code you trust, or a machine you can throw away): "
        f"{opt_out}, or set {ALLOW_UNSANDBOXED_VARIABLE}=1."
    )


# -- the child --------------------------------------------------------------------------------------
def _scrubbed_environment(home: str) -> dict[str, str]:
    # One BLAS thread: the child must not spawn threads that count against its process limit.
    single_thread = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": home, "PYTHONHASHSEED": "0", **single_thread}


try:
    import ctypes

    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the child then only dies by its group being killed
    _prctl = None


def _rlimit_setter(limits: ChildLimits, processes: int):
    def apply() -> None:
        if _prctl is not None:
            _prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the child dies with its grader process
        if limits is None:  # the zygote: its children set their own limits
            return
        for which, value in (
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_AS, limits.memory_bytes),
            (resource.RLIMIT_FSIZE, limits.file_bytes),
            (resource.RLIMIT_NOFILE, limits.open_files),
            (resource.RLIMIT_NPROC, processes),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(which, (value, value))

    return apply


def _tree_files(tree: Path) -> tuple[list[str], list[str]]:
    """Directories and regular files of the private tree, relative and sorted (no links)."""
    directories, files = [], []
    for root, names, filenames in os.walk(tree):
        names[:] = sorted(name for name in names if name != "__pycache__" and not os.path.islink(os.path.join(root, name)))
        relative = os.path.relpath(root, tree)
        directories += [os.path.normpath(os.path.join(relative, name)) for name in names]
        files += [os.path.normpath(os.path.join(relative, name)) for name in sorted(filenames)
                  if not name.endswith(".pyc") and os.path.isfile(os.path.join(root, name))
                  and not os.path.islink(os.path.join(root, name))]
    return directories, files


# -- the zygote (bwrap only) -----------------------------------------------------------------------
def _kill_group(process: subprocess.Popen | None) -> None:
    """SIGKILL a process's whole group (it leads its own session) and reap it."""
    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


class Zygote:
    """A warm process inside one bwrap sandbox (autograder/zygote_driver.py) that forks a fresh
    child per submission and, between submissions, kills every process the last one left and wipes
    its files, so that numpy and Python start once per grader process instead of once per
    submission. Any failure of the zygote to answer, in time and as expected, kills its whole
    sandbox; the next submission then gets a new one."""

    def __init__(self, bwrap: str, uid: int | None, limits: ChildLimits, deadline: float):
        self.uid = uid
        self.socket, zygote_end = socket.socketpair()
        arguments = _base_bwrap_arguments(bwrap, uid is not None)
        arguments += ["--perms", "0777", "--size", str(limits.scratch_bytes), "--tmpfs", SANDBOX_ROOT,
                      "--perms", "0755", "--dir", f"{SANDBOX_ROOT}/driver"]
        opened = [zygote_end.fileno()]
        for name in DRIVER_FILES:
            opened.append(os.open(Path(__file__).with_name(name), os.O_RDONLY | os.O_NOFOLLOW))
            arguments += ["--perms", "0444", "--file", str(opened[-1]), f"{SANDBOX_ROOT}/driver/{name}"]
        command = _finish_bwrap_arguments(arguments) + [
            sys.executable, "-I", "-B", "-u", f"{SANDBOX_ROOT}/driver/zygote_driver.py", str(zygote_end.fileno()),
            *([str(uid)] if uid is not None else [])]
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=_scrubbed_environment(f"{SANDBOX_ROOT}/home"), pass_fds=opened, start_new_session=True,
                preexec_fn=_rlimit_setter(None, 0),
            )
        finally:
            zygote_end.close()
            for descriptor in opened[1:]:
                os.close(descriptor)
        self._expect_clean(self._reply(deadline))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self, files: dict, descriptors: list[int], rlimits: list, deadline: float) -> None:
        """Fork the child of one submission, serving on ``descriptors`` (request, reply, output)."""
        self._request({"op": "spawn", "files": files, "rlimits": rlimits, "uid": self.uid}, descriptors, deadline)
        if self._reply(deadline) != {"spawned": True}:
            self.kill()
            raise ChildFailure("crash", "the sandbox did not start the submission")

    def reset(self, grace: float, deadline: float) -> int | None:
        """Kill the submission's processes and wipe its files; the child's wait status (if known)."""
        self._request({"op": "reset", "grace": grace}, [], deadline)
        reply = self._reply(deadline)
        self._expect_clean(reply)
        status = reply.get("status")
        return status if isinstance(status, int) and not isinstance(status, bool) else None

    def kill(self) -> None:
        _kill_group(self.process)
        self.process = None
        self.socket.close()

    def _expect_clean(self, reply) -> None:
        if not isinstance(reply, dict) or reply.get("clean") is not True:
            self.kill()
            raise ChildFailure("crash", "the sandbox could not be cleaned between submissions")

    def _request(self, message, descriptors: list[int], deadline: float) -> None:
        try:
            self.socket.settimeout(max(deadline - time.monotonic(), 0.001))
            socket.send_fds(self.socket, [b"M"], descriptors)
            self.socket.sendall(wire.encode(message))
        except OSError:
            self.kill()
            raise ChildFailure("crash", "the sandbox stopped answering") from None

    def _reply(self, deadline: float):
        try:
            header = self._exact(wire.LENGTH.size, deadline)
            (size,) = wire.LENGTH.unpack(header)
            if size > MAX_MESSAGE_BYTES:
                raise wire.WireError("oversized")
            return wire.decode_body(self._exact(size, deadline))
        except (OSError, wire.WireError, EOFError):
            self.kill()
            raise ChildFailure("crash", "the sandbox stopped answering") from None

    def _exact(self, size: int, deadline: float) -> bytes:
        data = b""
        while len(data) < size:
            self.socket.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = self.socket.recv(min(size - len(data), 1 << 20))
            if not chunk:
                raise EOFError
            data += chunk
        return data


_ZYGOTES: dict[tuple, Zygote] = {}


def _zygote(bwrap: str, uid: int | None, limits: ChildLimits, deadline: float) -> Zygote:
    """This thread's zygote for these settings, started when missing or dead."""
    key = (os.getpid(), threading.get_ident(), bwrap, uid, limits.scratch_bytes)
    zygote = _ZYGOTES.get(key)
    if zygote is None or not zygote.alive():
        if zygote is not None:
            zygote.kill()
        zygote = _ZYGOTES[key] = Zygote(bwrap, uid, limits, deadline)
    return zygote


def _child_rlimits(limits: ChildLimits, processes: int) -> list[list[int]]:
    return [[resource.RLIMIT_CPU, limits.cpu_seconds], [resource.RLIMIT_AS, limits.memory_bytes],
            [resource.RLIMIT_FSIZE, limits.file_bytes], [resource.RLIMIT_NOFILE, limits.open_files],
            [resource.RLIMIT_NPROC, processes], [resource.RLIMIT_CORE, 0], [resource.RLIMIT_MSGQUEUE, 0]]


PIPE_BYTES = 1 << 20  # Linux's default cap for unprivileged pipes (/proc/sys/fs/pipe-max-size)


def _wide_pipe() -> tuple[int, int]:
    """A pipe that holds a whole request or reply of the checks' arrays (a few hundred kB), so
    that each crosses in one write instead of many 64 kB rounds of waking the other side."""
    read, write = os.pipe()
    try:
        fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (OSError, AttributeError):  # a lower cap, or not Linux: the default size still works
        pass
    return read, write


class Child:
    """A child process serving calls into one submission tree; restarted after it dies."""

    def __init__(self, tree: Path, workdir: Path, limits: ChildLimits = DEFAULT_LIMITS):
        self.tree = Path(tree)
        self.workdir = Path(workdir)
        self.limits = limits
        self.process: subprocess.Popen | None = None
        self.zygote: Zygote | None = None  # with bwrap: the zygote that forked the live child
        self.output_path = self.workdir / "child-output.txt"
        self._requests = self._replies = -1
        self._next_id = 0
        self.import_failure: ChildFailure | None = None
        self._timeout_message = ""
        self.spent = 0.0  # wall-clock seconds used by this submission's calls and start-ups
        self.bwrap = bwrap_status()[0] if limits.use_bubblewrap else None
        as_root = os.geteuid() == 0
        self.uid = _child_uid() if as_root and (self.bwrap or own_uid_status()[0]) else None
        self.private: Path | None = None  # without bwrap, under its own uid: the child's folder

    def protections(self) -> tuple[list[str], list[str]]:
        return protections(self.limits)

    def reset_budget(self) -> None:
        """Start the per-submission wall-clock budget again (a new job on the same tree)."""
        self.spent = 0.0

    # -- life cycle -------------------------------------------------------------------------
    def _driver_dir(self) -> Path:
        driver = self.workdir / "driver"
        if not driver.is_dir():
            driver.mkdir(parents=True)
            for name in DRIVER_FILES:
                shutil.copyfile(Path(__file__).with_name(name), driver / name)
        return driver

    def _private_folder(self) -> Path:
        """Without bwrap, under its own uid: a fresh folder that only the uid can enter (mode 0700,
        its owner), with copies of the driver and of the private tree, and a home. The grader's own
        workspace, where the private tree lives, stays closed to the uid."""
        self._end_private_folder()
        private = Path(tempfile.mkdtemp(prefix="dropout-lab-child-", dir=_shared_temp()))
        self.private = private
        for name in ("driver", "home", "submission"):
            (private / name).mkdir()
        for name in DRIVER_FILES:
            shutil.copyfile(Path(__file__).with_name(name), private / "driver" / name)
        directories, files = _tree_files(self.tree)
        for relative in directories:
            (private / "submission" / relative).mkdir(parents=True, exist_ok=True)
        for relative in files:
            with open(self.tree / relative, "rb", opener=lambda path, flags: os.open(path, flags | os.O_NOFOLLOW)) as source, \
                    open(private / "submission" / relative, "xb") as target:
                shutil.copyfileobj(source, target)
        for root, names, filenames in os.walk(private):
            os.lchown(root, self.uid, self.uid)
            for name in names + filenames:
                os.lchown(os.path.join(root, name), self.uid, self.uid)
        return private

    def _end_private_folder(self) -> None:
        """Kill whatever the last child of this uid left running, then remove its folder."""
        if self.uid is None or self.bwrap is not None:
            return
        _kill_processes_of(self.uid)
        if self.private is not None:
            shutil.rmtree(self.private, ignore_errors=True)
            self.private = None

    def _command(self, request_read: int, reply_write: int) -> tuple[list[str], str, str]:
        """The command line, working directory and home of a child without bwrap."""
        if self.uid is None:
            driver = str(self._driver_dir() / "child_driver.py")
            return ([sys.executable, "-I", "-B", "-u", driver, str(self.tree), str(request_read), str(reply_write)],
                    str(self.workdir), str(self.workdir))
        private = self._private_folder()
        return ([sys.executable, "-I", "-B", "-u", str(private / "driver" / "child_driver.py"), str(private / "submission"),
                 str(request_read), str(reply_write), str(self.uid)], str(private), str(private / "home"))

    def _spawn(self, request_read: int, reply_write: int, output, deadline: float) -> None:
        """Start the child: forked by this thread's zygote with bwrap, else a fresh ``python -I``."""
        processes = self.limits.processes if (self.uid is not None) else self.limits.shared_uid_processes
        if self.bwrap is not None:
            zygote = _zygote(self.bwrap, self.uid, self.limits, deadline)
            files = {}
            for relative in _tree_files(self.tree)[1]:
                with open(self.tree / relative, "rb", opener=lambda path, flags: os.open(path, flags | os.O_NOFOLLOW)) as handle:
                    files[relative] = np.frombuffer(handle.read(), dtype=np.uint8)
            zygote.spawn(files, [request_read, reply_write, output.fileno()], _child_rlimits(self.limits, processes), deadline)
            self.zygote = zygote
            return
        command, cwd, home = self._command(request_read, reply_write)
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            env=_scrubbed_environment(home), cwd=cwd,
            pass_fds=(request_read, reply_write), start_new_session=True,
            preexec_fn=_rlimit_setter(self.limits, processes),
        )

    def start(self) -> None:
        request_read, request_write = _wide_pipe()
        reply_read, reply_write = _wide_pipe()
        output = open(self.output_path, "ab")
        started = time.monotonic()
        allowed = min(self.limits.startup_seconds, max(self._budget_left(), 0))
        self._timeout_message = f"the submission did not start within {allowed:g} seconds"
        deadline = started + allowed
        try:
            self._spawn(request_read, reply_write, output, deadline)
        except ChildFailure as failure:
            os.close(request_write)
            os.close(reply_read)
            self.spent += time.monotonic() - started
            self.import_failure = failure
            raise
        finally:
            output.close()
            for descriptor in (request_read, reply_write):
                os.close(descriptor)
        self._requests, self._replies = request_write, reply_read
        os.set_blocking(self._requests, False)
        try:
            try:
                sandboxed = self._receive(deadline)  # sent before any student code runs
                if set(sandboxed) != {"sandboxed"}:
                    raise ChildFailure("crash", "the child did not start as expected")
                hello = self._receive(deadline)
            finally:
                self.spent += time.monotonic() - started
        except ChildFailure as failure:
            # A submission that cannot even start would fail the same way on every call.
            self.import_failure = failure
            self.stop()
            raise
        if "error" in hello:
            error = hello["error"] if isinstance(hello["error"], dict) else {}
            message = f"{_text(error.get('type'))}: {_text(error.get('message'))}"
            self.import_failure = ChildFailure("does_not_import", message, _lines(error.get("frames")))
            self.stop()
            raise self.import_failure
        if hello != {"ready": True}:
            self.import_failure = ChildFailure("crash", "the child sent something else than its greeting")
            self.stop()
            raise self.import_failure

    def stop(self) -> None:
        """Kill the child's whole process group (with bwrap: every process of its PID namespace but
        the zygote, and its files; without bwrap, under its own uid: every process of that uid, and
        its folder); release the pipes."""
        self._end_zygote_child(grace=0)
        _kill_group(self.process)
        self.process = None
        self._end_private_folder()
        for fd in (self._requests, self._replies):
            if fd >= 0:
                os.close(fd)
        self._requests = self._replies = -1

    def output(self) -> str:
        """The child's own stdout/stderr so far, truncated."""
        try:
            with open(self.output_path, "rb") as handle:
                data = handle.read(MAX_CHILD_OUTPUT_BYTES + 1)
        except FileNotFoundError:
            return ""
        text = data[:MAX_CHILD_OUTPUT_BYTES].decode("utf-8", "replace")
        return text + ("\n[output truncated]" if len(data) > MAX_CHILD_OUTPUT_BYTES else "")

    # -- calls ------------------------------------------------------------------------------
    def _budget_left(self) -> float:
        return self.limits.submission_seconds - self.spent

    def call(self, op: str, **args):
        """Run one operation of the driver in the child and return its value (raw, unvalidated).

        Raises ChildFailure when the student code raised, overran a deadline, killed the child or
        answered with anything but a well-formed reply to this very request.
        """
        if self.import_failure is not None:  # a fresh exception: re-raising one grows its traceback
            failure = self.import_failure
            raise ChildFailure(failure.kind, failure.message, failure.frames)
        if self._budget_left() <= 0:
            raise ChildFailure("timeout", f"the submission used up its {self.limits.submission_seconds:g} seconds")
        if self.process is None and self.zygote is None:
            self.start()
        started = time.monotonic()
        allowed = min(self.limits.call_seconds, max(self._budget_left(), 0))
        self._timeout_message = (f"no answer within {self.limits.call_seconds:g} seconds" if allowed == self.limits.call_seconds
                                 else f"the submission used up its {self.limits.submission_seconds:g} seconds")
        deadline = started + allowed
        self._next_id += 1
        try:
            self._send(wire.encode({"id": self._next_id, "op": op, "args": args}), deadline)
            reply = self._receive(deadline)
            if reply.get("id") != self._next_id or not set(reply) <= {"id", "value", "error"} or len(reply) != 2:
                raise ChildFailure("crash", "the child answered out of turn (a forged or stale reply)")
        except ChildFailure:
            self.stop()
            raise
        finally:
            self.spent += time.monotonic() - started
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            kind = error.get("kind") if error.get("kind") in ("not_implemented", "memory", "crash") else "crash"
            message = f"{_text(error.get('type'))}: {_text(error.get('message'))}"
            raise ChildFailure(kind, message, _lines(error.get("frames")))
        return reply.get("value")

    def _send(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            self._wait(self._requests, "write", deadline)
            try:
                written = os.write(self._requests, view)
            except BrokenPipeError:
                raise self._death() from None
            view = view[written:]

    def _receive(self, deadline: float) -> dict:
        (size,) = wire.LENGTH.unpack(self._read_exact(wire.LENGTH.size, deadline))
        if size > MAX_MESSAGE_BYTES:
            raise ChildFailure("crash", f"the child sent a message of {size} bytes, over the limit")
        try:
            message = wire.decode_body(self._read_exact(size, deadline))
        except wire.WireError as error:
            raise ChildFailure("crash", f"the child sent a malformed reply ({error})") from None
        if not isinstance(message, dict):
            raise ChildFailure("crash", "the child sent a reply that is not an object")
        return message

    def _read_exact(self, size: int, deadline: float) -> bytes:
        chunks, missing = [], size
        while missing:
            self._wait(self._replies, "read", deadline)
            chunk = os.read(self._replies, min(missing, 1 << 20))
            if not chunk:
                raise self._death()
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def _wait(self, fd: int, direction: str, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            readable, writable, _ = select.select(
                [fd] if direction == "read" else [], [fd] if direction == "write" else [], [], remaining
            )
            if readable or writable:
                return
        raise ChildFailure("timeout", self._timeout_message)

    def _end_zygote_child(self, grace: float) -> int | None:
        """With bwrap: have the zygote end the child (after ``grace`` seconds) and clean up; the
        child's wait status. A zygote that fails at that is killed with its whole sandbox."""
        zygote, self.zygote = self.zygote, None
        if zygote is None:
            return None
        try:
            return zygote.reset(grace, time.monotonic() + grace + 10)
        except ChildFailure:
            return None

    def _death(self) -> ChildFailure:
        """Why the child went away: killed for memory, CPU or file size, or exited."""
        code = None
        if self.zygote is not None:
            status = self._end_zygote_child(grace=1.0)
            if status is not None:
                code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if self.process is not None:
            try:
                code = self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:  # it closed the pipe but lives on
                self.stop()
        signal_number = -code if code is not None and code < 0 else None
        if signal_number in (signal.SIGXCPU, signal.SIGKILL):
            return ChildFailure("timeout", "the process ran out of its CPU time")
        if signal_number == signal.SIGSEGV:
            return ChildFailure("memory", "the process was killed by a memory fault")
        if signal_number == signal.SIGXFSZ:
            return ChildFailure("crash", "the process wrote more than its file size limit")
        return ChildFailure("crash", f"the process exited unexpectedly (exit status {code})")


def _text(value) -> str:
    return value if isinstance(value, str) else repr(value)


def _lines(value) -> list[str]:
    return [line for line in value if isinstance(line, str)] if isinstance(value, list) else []
