"""setup.sh explains what is wrong when the interpreter is too old or pip fails."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.paths import REPO_ROOT


def run_setup(folder: Path, python: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(folder / "setup.sh")], capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(folder), "PYTHON": python},
    )


def test_too_old_python_is_named_with_the_way_out(tmp_path):
    fake = tmp_path / "python3.8"
    # Answers the version question as Python 3.8 would, and fails the ">= 3.10" test.
    fake.write_text('#!/bin/sh\ncase "$*" in *exit*) exit 1;; *) echo 3.8;; esac\n')
    fake.chmod(0o755)
    shutil.copy(REPO_ROOT / "setup.sh", tmp_path / "setup.sh")
    result = run_setup(tmp_path, str(fake))
    assert result.returncode == 1
    assert "needs Python 3.10 or newer" in result.stderr and "Python 3.8" in result.stderr
    assert "PYTHON=" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_missing_interpreter_is_named(tmp_path):
    shutil.copy(REPO_ROOT / "setup.sh", tmp_path / "setup.sh")
    result = run_setup(tmp_path, "no-such-python")
    assert result.returncode == 1 and "no 'no-such-python' on PATH" in result.stderr


def test_pip_failure_says_what_to_check_and_leaves_no_stamp(tmp_path):
    shutil.copy(REPO_ROOT / "setup.sh", tmp_path / "setup.sh")
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "requirements").mkdir()
    version = "%d.%d" % sys.version_info[:2]
    lock = "py310.lock" if version == "3.10" else "py311.lock"
    # A requirement no index can satisfy: pip fails, as it would without a connection.
    (tmp_path / "requirements" / lock).write_text("dropout-lab-no-such-package==0.0.0\n")
    result = run_setup(tmp_path, sys.executable)
    assert result.returncode == 1
    assert "pip could not install the dependencies in requirements/" + lock in result.stderr
    assert "run 'bash setup.sh' again" in result.stderr
    assert not (tmp_path / ".venv" / ".dropout-lab-installed").exists()


# -- bubblewrap ---------------------------------------------------------------------------------------
# These runs reuse the kit's own .venv (linked in) with the same lock and pyproject, so that setup.sh
# takes its fast path (no pip) and reaches the bubblewrap step within seconds.
# The kit's interpreter may live where another user cannot run it (a pyenv under /root), so a user
# who is not root is what `id -u` answers to the script.
NOT_ROOT = '#!/bin/sh\n[ "$1" = -u ] && echo 1000 && exit 0\nexec /usr/bin/id "$@"\n'


def fast_setup_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("setup.sh", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, folder / name)
    shutil.copytree(REPO_ROOT / "requirements", folder / "requirements")
    version = "%d.%d" % sys.version_info[:2]
    lock = folder / "requirements" / ("py310.lock" if version == "3.10" else "py311.lock")
    wanted = hashlib.sha256(lock.read_bytes() + (folder / "pyproject.toml").read_bytes()).hexdigest()
    stamp = REPO_ROOT / ".venv" / ".dropout-lab-installed"
    # Never let a test's setup.sh run pip into the kit's own environment.
    assert stamp.is_file() and stamp.read_text().strip() == wanted, "the kit's .venv is out of date: run bash setup.sh"
    (folder / ".venv").symlink_to(REPO_ROOT / ".venv")
    (folder / "home").mkdir()
    folder.chmod(0o755)
    (folder / "home").chmod(0o777)
    return folder


def tool_folder(folder: Path, tools: dict[str, str]) -> str:
    """A PATH of exactly these commands: name -> a real program's path, or a script's text."""
    folder.mkdir(parents=True)
    for name in ("cat", "dirname", "id", "rm", "true", *tools):
        target = tools.get(name) or shutil.which(name)
        if target.startswith("#!"):
            (folder / name).write_text(target)
            (folder / name).chmod(0o755)
        else:
            (folder / name).symlink_to(target)
    folder.chmod(0o755)
    return str(folder)


def run_fast_setup(folder: Path, path: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/bash", str(folder / "setup.sh")], capture_output=True, text=True, timeout=120,
        env={"PATH": path, "HOME": str(folder / "home"), "PYTHON": sys.executable},
    )


def test_bubblewrap_that_is_there_and_works_is_left_alone_on_every_run(tmp_path):
    bwrap = shutil.which("bwrap")
    assert bwrap, "bubblewrap should be installed by now: `bash setup.sh` installs it"
    folder = fast_setup_folder(tmp_path / "kit")
    for _ in range(2):  # idempotent: the second run does the same and installs nothing
        result = run_fast_setup(folder, os.path.dirname(bwrap) + ":/bin")
        assert result.returncode == 0, result.stderr
        assert f"bubblewrap is installed and works ({bwrap})" in result.stdout
        assert "installing bubblewrap" not in result.stdout
        assert "ready." in result.stdout


def test_without_root_rights_the_command_to_run_is_printed_and_setup_still_succeeds(tmp_path):
    folder = fast_setup_folder(tmp_path / "kit")
    # A machine with apt-get, no bwrap and no sudo.
    path = tool_folder(tmp_path / "bin", {"id": NOT_ROOT, "apt-get": shutil.which("apt-get") or "#!/bin/sh\nexit 100\n"})
    result = run_fast_setup(folder, path)
    assert result.returncode == 0, result.stderr
    assert "installing it needs root rights" in result.stderr
    assert "Run: sudo apt-get install bubblewrap" in result.stderr
    assert "--allow-unsandboxed" in result.stderr
    assert "ready." in result.stdout


def test_passwordless_sudo_is_used_and_a_failed_install_does_not_fail_setup(tmp_path):
    folder = fast_setup_folder(tmp_path / "kit")
    calls = tmp_path / "calls.log"
    path = tool_folder(tmp_path / "bin", {
        "id": NOT_ROOT,
        # sudo that asks for no password: runs what it is given.
        "sudo": '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n',
        # A package manager that fails, as it does without a network.
        "apt-get": f'#!/bin/sh\necho "$*" >> {calls}\necho "E: could not fetch" >&2\nexit 100\n',
    })
    result = run_fast_setup(folder, path)
    assert result.returncode == 0, result.stderr
    assert "installing bubblewrap, the grader's sandbox: sudo -n apt-get" in result.stdout
    assert calls.read_text().splitlines()[0] == "update -qq"
    assert "could not install bubblewrap" in result.stderr and "--allow-unsandboxed" in result.stderr
    assert "ready." in result.stdout


def test_as_root_the_package_manager_is_run_directly(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("this test checks the root path of setup.sh: run it as root (CI does)")
    folder = fast_setup_folder(tmp_path / "kit")
    calls = tmp_path / "calls.log"
    path = tool_folder(tmp_path / "bin", {
        "apt-get": f'#!/bin/sh\necho "$(id -u) $*" >> {calls}\nexit 100\n',
    })
    result = run_fast_setup(folder, path)
    assert result.returncode == 0, result.stderr
    assert "installing bubblewrap, the grader's sandbox: apt-get update" not in result.stdout
    assert "installing bubblewrap, the grader's sandbox: apt-get install -y -qq bubblewrap" in result.stdout
    assert calls.read_text().splitlines() == ["0 update -qq"]  # the update failed, so no install was tried
    assert "could not install bubblewrap" in result.stderr


def test_no_package_manager_is_named_as_such(tmp_path):
    folder = fast_setup_folder(tmp_path / "kit")
    result = run_fast_setup(folder, tool_folder(tmp_path / "bin", {}))
    assert result.returncode == 0, result.stderr
    assert "no known package manager" in result.stderr and "bubblewrap" in result.stderr
    assert "ready." in result.stdout
