"""The zygote: a warm process inside bubblewrap that forks one fresh child per submission.

Started by autograder.sandbox as ``python -I zygote_driver.py CONTROL_FD [UID]`` inside the same
bwrap sandbox as a plain child (no network, own PID namespace, read-only runtime, one tmpfs at
/sandbox). It imports numpy (numpy.random included, which numpy loads lazily and which costs a
fresh child about 20 ms) and the driver once, then serves the grader over CONTROL_FD (a Unix
socket; messages framed by autograder.wire):

- ``spawn``: with three descriptors (request pipe, reply pipe, output file) and the private tree's
  files. It forks; the child leaves the zygote's session, drops to UID (when the grader is root),
  writes the tree into /sandbox, sets its rlimits, reseeds numpy's global generator (a fresh
  interpreter would have), points stdout/stderr at the output file and serves the submission with
  child_driver.run. The child never holds the control socket.
- ``reset``: waits up to ``grace`` seconds for the child to end by itself, then kills every process
  in the PID namespace but the sandbox's init and the zygote, reaps them, removes the System V IPC
  objects and wipes /sandbox; it answers with the child's wait status, and only once the namespace
  holds no other process and /sandbox is empty.

Why a submission cannot affect the next one: every process it started is killed (kill(-1) from the
zygote signals every one of them, setsid or not: they share the PID namespace, and the zygote either
shares their uid or, under root, holds CAP_KILL for this); its files are removed (it can write only
in /sandbox, and a root zygote holds CAP_DAC_OVERRIDE and CAP_FOWNER to remove whatever it made);
numpy's state and every monkeypatch live in its own copy-on-write memory; the zygote is not
dumpable, so a child of the same uid cannot ptrace it or read /proc/ZYGOTE/mem, and under root it
cannot even signal it. A child that kills or stops the zygote only makes the grader kill the whole
sandbox and start a new one. POSIX message queues cannot be made (RLIMIT_MSGQUEUE 0).
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import socket
import sys
import time

import numpy as np
import numpy.random  # noqa: F401  (numpy imports it on first use; every submission uses it)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import child_driver  # noqa: E402
import wire  # noqa: E402

ROOT = "/sandbox"
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36
LIBC = ctypes.CDLL(None, use_errno=True)


def send(sock: socket.socket, message) -> None:
    sock.sendall(wire.encode(message))


def _exact(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 1 << 20))
        if not chunk:
            return None
        data += chunk
    return data


def receive(sock: socket.socket):
    """(message, descriptors), or (None, []) at end of file. Each request is a one-byte marker that
    carries its descriptors, if any, then one framed message."""
    marker, fds, _, _ = socket.recv_fds(sock, 1, 3)
    header = _exact(sock, wire.LENGTH.size) if marker else None
    body = _exact(sock, wire.LENGTH.unpack(header)[0]) if header else None
    if body is None:
        for fd in fds:
            os.close(fd)
        return None, []
    return wire.decode_body(body), list(fds)


def write_tree(files: dict, uid: int | None) -> None:
    """The submission's private tree and the scratch folders, fresh in /sandbox."""
    for name in ("tmp", "home", "submission"):
        os.mkdir(os.path.join(ROOT, name), 0o777 if name != "submission" else 0o755)
    for relative, data in files.items():
        target = os.path.normpath(os.path.join(ROOT, "submission", relative))
        if not target.startswith(ROOT + "/submission/"):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(np.asarray(data, dtype=np.uint8).tobytes())


def child(args: dict, fds: list[int], control: socket.socket) -> None:
    """In the forked child: become the submission's process, then serve it. Never returns."""
    try:
        control.close()
        os.setsid()
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        request_fd, reply_fd, output_fd = fds
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        uid = args.get("uid")
        if uid is not None:
            child_driver.drop_privileges(uid)
        write_tree(args["files"], uid)
        os.chdir(ROOT)
        for which, value in args["rlimits"]:
            resource.setrlimit(which, (value, value))
        np.random.seed()  # a fresh interpreter starts from fresh entropy; so does every child
        child_driver.run(f"{ROOT}/submission", request_fd, reply_fd, None)
    except BaseException:  # noqa: BLE001  (nothing may return into the zygote's loop)
        pass
    finally:
        os._exit(0)


def _other_processes() -> list[int]:
    me = os.getpid()
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) not in (1, me)]


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _as_uid(uid: int | None, action) -> None:
    """Run ``action`` with the submission's uid: in a helper process when we are root, else in the
    zygote itself."""
    if uid is None:
        action()
        return
    pid = os.fork()
    if pid == 0:
        try:
            child_driver.drop_privileges(uid)
            action()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _kill_all() -> None:
    try:
        os.kill(-1, signal.SIGKILL)  # every process we may signal, but init and ourselves
    except ProcessLookupError:
        pass


def _ipc_objects() -> list[tuple[str, int]]:
    """(control function, id) of every System V IPC object in the sandbox's IPC namespace."""
    found = []
    for kind, control in (("shm", "shmctl"), ("sem", "semctl"), ("msg", "msgctl")):
        try:
            lines = open(f"/proc/sysvipc/{kind}").read().splitlines()[1:]
        except OSError:
            continue
        found += [(control, int(line.split()[1])) for line in lines]
    return found


def _remove_ipc() -> None:
    for control, identifier in _ipc_objects():
        getattr(LIBC, control)(identifier, 0, None)  # IPC_RMID


def _wipe() -> None:
    def unlock(function, path, _):
        os.chmod(os.path.dirname(path), 0o777)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o777)
        function(path)

    for name in os.listdir(ROOT):
        path = os.path.join(ROOT, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o777)
                shutil.rmtree(path, onerror=unlock)
            else:
                os.unlink(path)
        except OSError:
            pass


def reset(child_pid: int | None, uid: int | None, grace: float) -> dict:
    """Kill the submission's processes and wipe its files; the child's wait status."""
    status = None
    deadline = time.monotonic() + grace
    while child_pid is not None:
        pid, found = os.waitpid(child_pid, os.WNOHANG)
        if pid:
            status = found
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.005)
    for _ in range(200):
        _kill_all()
        if child_pid is not None and status is None:
            try:
                pid, found = os.waitpid(child_pid, 0)
                status = found if pid else status
            except ChildProcessError:
                pass
        _reap()
        if not _other_processes():
            break
        time.sleep(0.005)
    else:
        return {"clean": False, "why": "processes survived"}
    if _ipc_objects():  # rare; only their owner may remove them (root here lacks CAP_SYS_ADMIN)
        _as_uid(uid, _remove_ipc)
    _wipe()
    if os.listdir(ROOT):
        return {"clean": False, "why": "files survived"}
    return {"clean": True, "status": status}


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    uid = int(sys.argv[2]) if len(sys.argv) > 2 else None
    LIBC.prctl(PR_SET_DUMPABLE, 0)  # no ptrace, no /proc/ZYGOTE/mem for the children
    LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans come to us, to be reaped
    os.chdir("/")
    send(control, reset(None, uid, 0))
    child_pid = None
    while True:
        message, fds = receive(control)
        if message is None:
            return
        if message.get("op") == "spawn" and child_pid is None and len(fds) == 3:
            child_pid = os.fork()
            if child_pid == 0:
                child(message, fds, control)
            for fd in fds:
                os.close(fd)
            send(control, {"spawned": True})
        elif message.get("op") == "reset":
            for fd in fds:
                os.close(fd)
            send(control, reset(child_pid, uid, float(message.get("grace", 0))))
            child_pid = None
        else:
            for fd in fds:
                os.close(fd)
            send(control, {"error": "unexpected request"})


if __name__ == "__main__":
    main()
