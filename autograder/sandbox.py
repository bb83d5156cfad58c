"""Running student code: the launcher of the sandboxed child process (stage 2 of a grade).

The child is ``python -I`` (isolated: no user site, no PYTHON* variables, no current directory on
sys.path) running autograder/child_driver.py from a private directory, with a scrubbed environment,
stdin closed, its own session and process group, rlimits on CPU, address space, file size, open
files and processes, and its stdout/stderr captured to a file and truncated. Requests and replies
travel on two dedicated pipes (autograder.wire); a call that overruns its wall-clock deadline gets
the whole process group killed with SIGKILL, and the next call starts a fresh child.

This is the one module that starts student code, so hardening it (issue 4: bubblewrap) happens here.
"""

from __future__ import annotations

import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from autograder import wire
from autograder.limits import DEFAULT_LIMITS, MAX_CHILD_OUTPUT_BYTES, MAX_MESSAGE_BYTES, ChildLimits

DRIVER_FILES = ("child_driver.py", "wire.py")
PROTECTIONS = ("python -I", "scrubbed environment", "no stdin", "own process group", "rlimits", "deadline")
MISSING_PROTECTIONS = ("bubblewrap (network, filesystem view)",)


class ChildFailure(Exception):
    """The child could not answer: ``kind`` is timeout, memory, crash or does_not_import."""

    def __init__(self, kind: str, message: str, frames: list[str] | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.frames = frames or []


def _scrubbed_environment(home: Path) -> dict[str, str]:
    # One BLAS thread: the child must not spawn threads that count against its process limit.
    single_thread = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(home), "PYTHONHASHSEED": "0", **single_thread}


def _rlimit_setter(limits: ChildLimits):
    def apply() -> None:
        for which, value in (
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_AS, limits.memory_bytes),
            (resource.RLIMIT_FSIZE, limits.file_bytes),
            (resource.RLIMIT_NOFILE, limits.open_files),
            (resource.RLIMIT_NPROC, limits.processes),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(which, (value, value))

    return apply


class Child:
    """A child process serving calls into one submission tree; restarted after it dies."""

    def __init__(self, tree: Path, workdir: Path, limits: ChildLimits = DEFAULT_LIMITS):
        self.tree = Path(tree)
        self.workdir = Path(workdir)
        self.limits = limits
        self.process: subprocess.Popen | None = None
        self.output_path = self.workdir / "child-output.txt"
        self._requests = self._replies = -1
        self.import_failure: ChildFailure | None = None

    # -- life cycle -------------------------------------------------------------------------
    def _driver_dir(self) -> Path:
        driver = self.workdir / "driver"
        if not driver.is_dir():
            driver.mkdir(parents=True)
            for name in DRIVER_FILES:
                shutil.copyfile(Path(__file__).with_name(name), driver / name)
        return driver

    def start(self) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        output = open(self.output_path, "ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-B", "-u", str(self._driver_dir() / "child_driver.py"),
                 str(self.tree), str(request_read), str(reply_write)],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                env=_scrubbed_environment(self.workdir), cwd=str(self.workdir),
                pass_fds=(request_read, reply_write), start_new_session=True,
                preexec_fn=_rlimit_setter(self.limits),
            )
        finally:
            output.close()
            os.close(request_read)
            os.close(reply_write)
        self._requests, self._replies = request_write, reply_read
        os.set_blocking(self._requests, False)
        try:
            hello = self._receive(time.monotonic() + self.limits.startup_seconds)
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

    def stop(self) -> None:
        """Kill the child's whole process group and release the pipes."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
            self.process = None
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
    def call(self, op: str, **args):
        """Run one operation of the driver in the child and return its value (raw, unvalidated).

        Raises ChildFailure when the student code raised, overran the deadline or killed the child.
        """
        if self.import_failure is not None:  # a fresh exception: re-raising one grows its traceback
            failure = self.import_failure
            raise ChildFailure(failure.kind, failure.message, failure.frames)
        if self.process is None:
            self.start()
        deadline = time.monotonic() + self.limits.call_seconds
        try:
            self._send(wire.encode({"op": op, "args": args}), deadline)
            reply = self._receive(deadline)
        except ChildFailure:
            self.stop()
            raise
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
        raise ChildFailure("timeout", f"no answer within {self.limits.call_seconds:g} seconds")

    def _death(self) -> ChildFailure:
        """Why the child went away: killed for memory or CPU, or exited."""
        code = None
        if self.process is not None:
            try:
                code = self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:  # it closed the pipe but lives on
                self.stop()
        if code is not None and code < 0 and -code in (signal.SIGXCPU, signal.SIGKILL):
            return ChildFailure("timeout", "the process ran out of its CPU time")
        if code is not None and code < 0 and -code == signal.SIGSEGV:
            return ChildFailure("memory", "the process was killed by a memory fault")
        return ChildFailure("crash", f"the process exited unexpectedly (exit status {code})")


def _text(value) -> str:
    return value if isinstance(value, str) else repr(value)


def _lines(value) -> list[str]:
    return [line for line in value if isinstance(line, str)] if isinstance(value, list) else []
