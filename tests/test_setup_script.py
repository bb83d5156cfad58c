"""setup.sh explains what is wrong when the interpreter is too old or pip fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

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
