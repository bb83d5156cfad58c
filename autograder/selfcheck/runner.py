"""Running the student's own code for the student checker: a plain child process, no sandbox.

This module stands in, in the student's release, for the two parts of the grader that only make
sense on a grading machine: the sandbox (``Child``, ``ChildFailure``, ``protections``,
``bwrap_status``) and the intake of other people's submissions (``prepare``,
``SubmissionRefused``). The student runs their own code on their own machine, so it needs no
sandbox; it still runs in a separate Python process, with the grader's deadlines, so that an
endless loop, a crash or a half-imported module costs one check and not the whole run, exactly as
in the grader. It works the same on Linux, macOS and Windows: numpy and the standard library only.

The child (``driver``) speaks the grader's own message format (``wire``) over its standard input
and output; the student's prints go to a file and never mix with the replies.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder import wire
from autograder.limits import DEFAULT_LIMITS, MAX_CHILD_OUTPUT_BYTES, MAX_MESSAGE_BYTES, ChildLimits
from autograder.conventions import Convention, convention

# The package this file belongs to (``dropout_lab_check`` in the student's release).
PACKAGE = __name__.rsplit(".", 1)[0]
PACKAGE_PARENT = Path(__file__).resolve().parent.parent
LIBRARY = "nnlab"
# The operations that run the student's network. Here they run it on the student's own dropout
# layer (the grader uses a correct one of its own), so once a call into that layer has timed out,
# they would only wait out the same endless loop again, one deadline per network check.
NETWORK_OPERATIONS = frozenset({"fc_run", "layer_net_run"})
LAYER_TIMED_OUT = ("not run: your dropout layer did not finish in time in an earlier check, and here the "
                   "network checks run on it; fix the layer first")


class ChildFailure(Exception):
    """The student's code could not answer: ``kind`` is timeout, memory, crash, not_implemented
    or does_not_import (the grader's own kinds, so the same diagnoses follow)."""

    def __init__(self, kind: str, message: str, frames: list[str] | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.frames = frames or []


def bwrap_status() -> tuple[str | None, str]:
    return None, "the student checker runs your own code without a sandbox"


def protections(limits: ChildLimits = DEFAULT_LIMITS) -> tuple[list[str], list[str]]:
    """Nothing is withheld from the student's own code on the student's own machine."""
    return ["separate process", "deadlines"], []


def _text(value) -> str:
    return value if isinstance(value, str) else repr(value)


def _lines(value) -> list[str]:
    return [line for line in value if isinstance(line, str)] if isinstance(value, list) else []


def _child_environment() -> dict[str, str]:
    environment = dict(os.environ)
    # The checker's package must be importable whatever folder the child starts in.
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PACKAGE_PARENT), environment.get("PYTHONPATH", "")]))
    environment["PYTHONDONTWRITEBYTECODE"] = "1"
    environment["PYTHONIOENCODING"] = "utf-8"
    # The grader's child uses one BLAS thread; so does this one (it is faster for arrays this small).
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        environment[name] = "1"
    return environment


def _limit_resources(limits: ChildLimits):
    """On Linux, the grader's memory and CPU limits, so that runaway code fails the same way."""
    if not sys.platform.startswith("linux"):
        return None

    def apply() -> None:
        import resource

        for which, value in ((resource.RLIMIT_AS, limits.memory_bytes), (resource.RLIMIT_CPU, limits.cpu_seconds)):
            try:
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError):
                pass

    return apply


class Child:
    """A Python process serving calls into the student's tree; restarted after it dies."""

    def __init__(self, tree: Path, workdir: Path, limits: ChildLimits = DEFAULT_LIMITS):
        self.tree = Path(tree)
        self.workdir = Path(workdir)
        self.limits = limits
        self.process: subprocess.Popen | None = None
        self.output_path = self.workdir / "child-output.txt"
        self.import_failure: ChildFailure | None = None
        self.spent = 0.0
        self._replies: queue.Queue | None = None
        self._next_id = 0
        self._timeout_message = ""
        self.layer_timed_out = False

    def protections(self) -> tuple[list[str], list[str]]:
        return protections(self.limits)

    def reset_budget(self) -> None:
        self.spent = 0.0
        self.layer_timed_out = False

    def _budget_left(self) -> float:
        return self.limits.submission_seconds - self.spent

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        started = time.monotonic()
        allowed = min(self.limits.startup_seconds, max(self._budget_left(), 0))
        self._timeout_message = f"the submission did not start within {allowed:g} seconds"
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.output_path, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-u", "-m", f"{PACKAGE}.driver", str(self.tree)],
                # Not in the tree, as in the grader: relative paths of compiled frames (numpy's .pyx)
                # must not look like the student's files.
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=output, cwd=str(self.workdir),
                env=_child_environment(), preexec_fn=_limit_resources(self.limits),
            )
        self._replies = queue.Queue()
        threading.Thread(target=self._read_replies, args=(self.process.stdout, self._replies), daemon=True).start()
        try:
            try:
                hello = self._receive(started + allowed)
            finally:
                self.spent += time.monotonic() - started
        except ChildFailure as failure:
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

    @staticmethod
    def _read_replies(stream, replies: queue.Queue) -> None:
        """Read framed messages from the child until it closes its end; None marks the end."""
        try:
            while True:
                header = stream.read(wire.LENGTH.size)
                if len(header) < wire.LENGTH.size:
                    break
                (size,) = wire.LENGTH.unpack(header)
                if size > MAX_MESSAGE_BYTES:
                    replies.put(ChildFailure("crash", f"the child sent a message of {size} bytes, over the limit"))
                    return
                body = stream.read(size)
                if len(body) < size:
                    break
                try:
                    replies.put(wire.decode_body(body))
                except wire.WireError as error:
                    replies.put(ChildFailure("crash", f"the child sent a malformed reply ({error})"))
                    return
        except (OSError, ValueError):
            pass
        replies.put(None)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        # Kill first: closing the reply pipe while the reader thread waits on it would block until
        # the child ends by itself.
        if process.poll() is None:
            process.kill()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            process.stdin.close()
        except OSError:
            pass  # the child is gone: nothing left to flush

    def output(self) -> str:
        """The child's own prints so far, truncated."""
        try:
            with open(self.output_path, "rb") as handle:
                data = handle.read(MAX_CHILD_OUTPUT_BYTES + 1)
        except FileNotFoundError:
            return ""
        text = data[:MAX_CHILD_OUTPUT_BYTES].decode("utf-8", "replace")
        return text + ("\n[output truncated]" if len(data) > MAX_CHILD_OUTPUT_BYTES else "")

    # -- calls ------------------------------------------------------------------------------
    def _receive(self, deadline: float) -> dict:
        try:
            message = self._replies.get(timeout=max(deadline - time.monotonic(), 0.001))
        except queue.Empty:
            self.stop()
            raise ChildFailure("timeout", self._timeout_message) from None
        if isinstance(message, ChildFailure):
            self.stop()
            raise message
        if message is None:
            raise self._death()
        if not isinstance(message, dict):
            raise ChildFailure("crash", "the child sent a reply that is not an object")
        return message

    def _death(self) -> ChildFailure:
        code = None
        if self.process is not None:
            try:
                code = self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        self.stop()
        return ChildFailure("crash", f"the process exited unexpectedly (exit status {code})")

    def call(self, op: str, **args):
        """Run one operation of the driver in the child and return its value (raw, unvalidated)."""
        if self.import_failure is not None:
            failure = self.import_failure
            raise ChildFailure(failure.kind, failure.message, failure.frames)
        if self._budget_left() <= 0:
            raise ChildFailure("timeout", f"the submission used up its {self.limits.submission_seconds:g} seconds")
        if self.layer_timed_out and op in NETWORK_OPERATIONS:
            raise ChildFailure("timeout", LAYER_TIMED_OUT)
        if self.process is None:
            self.start()
        started = time.monotonic()
        allowed = min(self.limits.call_seconds, max(self._budget_left(), 0))
        self._timeout_message = (f"no answer within {self.limits.call_seconds:g} seconds" if allowed == self.limits.call_seconds
                                 else f"the submission used up its {self.limits.submission_seconds:g} seconds")
        self._next_id += 1
        try:
            try:
                self.process.stdin.write(wire.encode({"id": self._next_id, "op": op, "args": args}))
                self.process.stdin.flush()
            except (OSError, ValueError):
                raise self._death() from None
            reply = self._receive(started + allowed)
            if reply.get("id") != self._next_id or not set(reply) <= {"id", "value", "error"} or len(reply) != 2:
                raise ChildFailure("crash", "the child answered out of turn")
        except ChildFailure as failure:
            self.stop()
            if failure.kind == "timeout" and op not in NETWORK_OPERATIONS:
                self.layer_timed_out = True
            raise
        finally:
            self.spent += time.monotonic() - started
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            kind = error.get("kind") if error.get("kind") in ("not_implemented", "memory", "crash") else "crash"
            message = f"{_text(error.get('type'))}: {_text(error.get('message'))}"
            raise ChildFailure(kind, message, _lines(error.get("frames")))
        return reply.get("value")


# -- the student's folder ---------------------------------------------------------------------------
class SubmissionRefused(Exception):
    """A folder or zip that cannot be checked; the message says why."""


@dataclass
class PreparedSubmission:
    name: str
    tree: Path
    missing: list[str] = field(default_factory=list)


IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


def release_convention(flavour: str | None = None) -> Convention:
    """The convention of the release this checker came with: its flavour and dropout style, which
    release wrote into facts.py (the instructor's setting when the release was built)."""
    from autograder.selfcheck import facts

    return convention(flavour or facts.FLAVOUR, facts.STYLE)


def graded_files() -> tuple[str, ...]:
    return release_convention().graded_files


def library_root(path: Path) -> Path | None:
    """The folder that holds nnlab/: ``path`` itself or one folder down; None when neither does."""
    path = Path(path)
    first = graded_files()[0]
    if (path / first).is_file():
        return path
    if path.is_dir():
        found = [child for child in sorted(path.iterdir()) if child.is_dir() and (child / first).is_file()]
        if len(found) == 1:
            return found[0]
    return None


def _zip_graded_files(path: Path) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise SubmissionRefused(f"{path.name} is not a readable zip file ({error})") from None
    with archive:
        names = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        found = {}
        for graded in graded_files():
            matches = [name for name in names
                       if name == graded or (name.endswith("/" + graded) and len(PurePosixPath(name).parts) == len(PurePosixPath(graded).parts) + 1)]
            if matches:
                found[graded] = archive.read(sorted(matches)[0])
    return found


def prepare(path: Path, workdir: Path, pristine: Path | None = None) -> PreparedSubmission:
    """A private copy of the student's library in ``workdir``, the graded files from ``path``.

    ``path`` is the student's folder (the one that holds nnlab/, or its parent) or a zip made by
    collect; a zip's other library files come from the nnlab/ beside this checker."""
    path = Path(path)
    tree = Path(workdir) / "tree"
    if path.is_file() and path.suffix.lower() == ".zip":
        base = library_root(Path(pristine) if pristine else PACKAGE_PARENT)
        if base is None:
            raise SubmissionRefused(f"to check a zip, keep the nnlab/ folder beside {PACKAGE}/")
        graded = _zip_graded_files(path)
        name = path.name[: -len(".zip")]
        absent = [relative for relative in graded_files() if relative not in graded]
        if absent:
            raise SubmissionRefused(f"{path.name} holds no {', '.join(absent)}: make the zip with collect")
    else:
        base = library_root(path)
        if base is None:
            raise SubmissionRefused(f"{path} holds no {graded_files()[0]}: give the folder that holds nnlab/")
        graded = {}
        name = base.name
    shutil.copytree(base / LIBRARY, tree / LIBRARY, ignore=IGNORED)
    for relative, content in graded.items():
        (tree / relative).write_bytes(content)
    missing = [relative for relative in graded_files() if not (tree / relative).is_file()]
    return PreparedSubmission(name, tree, missing)
