"""The student's release, alone, in a fresh virtual environment holding only what its requirements
file names: the notebook's test cells pass in a real Jupyter kernel with every right answer of the
bank, the notebook runs top to bottom with the reference, the student checker agrees with the
grader, and collect builds the submission.

The environment is made with ``python -m venv`` and ``pip install -r requirements.txt`` (pip's own
wheel cache makes a second run quick). Nothing of the kit is importable there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.bank import load_bank, write_submission
from autograder.paths import GRADED_FILES, NOTEBOOK_NAME, SOLUTION_DIR
from autograder.release import expected_tree, write_tree
from autograder.student_release import PACKAGE
from test_student_release import assert_same_as_grader, run_checker, student_environment, student_tree

pytestmark = pytest.mark.slow

PASSED_LINES = ("dropout_forward passed the notebook's tests.", "dropout_backward passed the notebook's tests.",
                "FullyConnectedNet passed the notebook's tests.")

# Runs in the fresh environment: executes notebooks, each in a kernel of its own, two kernels at a
# time, and reports each one's first error (or none) as JSON. A job's "cells" is "all", or "tests":
# the set-up (the code cells before the first section) and the locked test cells, nothing else.
RUNNER = textwrap.dedent('''
    import asyncio, json, sys
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    jobs = json.loads(sys.argv[1])
    limit = asyncio.Semaphore(2)

    def test_cells(cells):
        first_section = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## "))
        return [c for i, c in enumerate(cells) if c.cell_type == "code" and (
            i < first_section or (c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")))]

    async def run(job):
        notebook = nbformat.read(job["notebook"], as_version=4)
        if job["cells"] == "tests":
            notebook.cells = test_cells(notebook.cells)
        client = NotebookClient(notebook, kernel_name="python3", timeout=900,
                                resources={"metadata": {"path": job["folder"]}})
        async with limit:
            try:
                await client.async_execute()
                error = None
            except CellExecutionError as failure:
                error = f"{failure.ename}: {failure.evalue}"
            except Exception as failure:  # a kernel that died or never started: this job's error
                error = f"{type(failure).__name__}: {failure}"
        nbformat.write(notebook, job["out"])
        return error

    async def main():
        return await asyncio.gather(*(run(job) for job in jobs))

    print(json.dumps(asyncio.run(main())))
''')


def right_entries():
    return [entry for entry in load_bank() if entry.kind == "right"]


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("release") / "dropout"
    write_tree(expected_tree(), folder)
    return folder


# Wheels that pip downloaded for an earlier run, kept so that a new fresh environment installs
# without asking the package index again. Filled from the index (pip download) whenever what the
# requirements resolve to is not all there.
WHEELHOUSE = Path(os.environ.get("DROPOUT_LAB_WHEELHOUSE", Path.home() / ".cache" / "dropout-lab" / "wheelhouse"))


def pip(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "pip", *args, "--disable-pip-version-check"],
                          capture_output=True, text=True, timeout=1800, cwd=cwd, env=student_environment())


@pytest.fixture(scope="module")
def student_python(release_dir, tmp_path_factory) -> str:
    """A fresh environment with exactly what requirements.txt names (and what that needs)."""
    env = tmp_path_factory.mktemp("env") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=300, env=student_environment())
    python = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    requirements = str(release_dir / "requirements.txt")
    install = ("install", "-q", "--no-compile", "--no-index", "--find-links", str(WHEELHOUSE), "-r", requirements)
    installed = pip(python, *install, cwd=release_dir) if WHEELHOUSE.is_dir() else None
    if installed is None or installed.returncode != 0:
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        downloaded = pip(python, "download", "-q", "--dest", str(WHEELHOUSE), "-r", requirements, cwd=release_dir)
        assert downloaded.returncode == 0, downloaded.stderr[-4000:]
        installed = pip(python, *install, cwd=release_dir)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-4000:]
    listed = pip(python, "list", "--format", "json", cwd=release_dir)
    names = {package["name"].lower() for package in json.loads(listed.stdout.strip().splitlines()[-1])}
    assert {"numpy", "pytest", "jupyterlab", "scikit-learn", "matplotlib"} <= names
    kit = subprocess.run([str(python), "-c", "import autograder"], capture_output=True, text=True, timeout=120,
                         cwd=env, env=student_environment())
    assert kit.returncode != 0, "the fresh environment must not see the kit"
    return str(python)


def run_notebooks(python: str, jobs: list[dict], where: Path) -> list[str | None]:
    runner = where / "run_notebooks.py"
    runner.write_text(RUNNER, encoding="utf-8")
    # Two kernels share the machine's cores: one BLAS thread each keeps them from fighting over them.
    environment = student_environment() | {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                                    "MKL_NUM_THREADS")}
    result = subprocess.run([python, str(runner), json.dumps(jobs)], capture_output=True, text=True,
                            timeout=3600, cwd=where, env=environment)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def printed(notebook_path: Path) -> str:
    notebook = nbformat.read(notebook_path, as_version=4)
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs if output.output_type == "stream")


def answer_the_questions(folder: Path) -> None:
    path = folder / NOTEBOOK_NAME
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = "Dropout makes each unit useful on its own; my answer, in my words."
    nbformat.write(notebook, path)


@pytest.fixture(scope="module")
def notebook_runs(student_python, release_dir, tmp_path_factory) -> dict:
    """Every notebook this module runs, in one go so that the kernels keep both cores busy: the
    whole notebook with the reference (answers written in, run in place as a student runs it
    before collect), and the set-up and test cells with each right entry of the bank."""
    where = tmp_path_factory.mktemp("notebooks")
    filled = student_tree(release_dir, where / "filled", SOLUTION_DIR)
    answer_the_questions(filled)
    runs = {"filled": {"folder": filled, "error": None}}
    jobs = [{"notebook": str(filled / NOTEBOOK_NAME), "out": str(filled / NOTEBOOK_NAME), "folder": str(filled),
             "cells": "all"}]  # the longest first
    for entry in right_entries():
        graded = write_submission(entry, where / "graded" / entry.name)
        folder = student_tree(release_dir, where / entry.name, graded)
        runs[entry.name] = {"folder": folder, "error": None}
        jobs.append({"notebook": str(folder / NOTEBOOK_NAME), "out": str(folder / "executed.ipynb"),
                     "folder": str(folder), "cells": "tests"})
    for run, error in zip(runs.values(), run_notebooks(student_python, jobs, where)):
        run["error"] = error
    return runs


def test_notebook_test_cells_accept_every_right_answer(notebook_runs):
    """Every test cell of the student's notebook passes with every right entry of the bank, in a
    real kernel of the fresh environment (each entry in a kernel of its own, running the set-up
    and the test cells; the next test runs the whole notebook with the reference)."""
    entries = right_entries()
    assert len(entries) >= 10
    failed = {entry.name: notebook_runs[entry.name]["error"] for entry in entries if notebook_runs[entry.name]["error"]}
    assert failed == {}
    for entry in entries:
        executed = nbformat.read(notebook_runs[entry.name]["folder"] / "executed.ipynb", as_version=4)
        ran = [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in executed.cells]
        assert {"test_dropout_forward", "test_dropout_backward", "test_fc_net_dropout"} <= set(ran), entry.name
        text = printed(notebook_runs[entry.name]["folder"] / "executed.ipynb")
        assert all(line in text for line in PASSED_LINES), entry.name


def test_finished_work_runs_checks_and_collects_in_the_fresh_environment(notebook_runs, student_python, release_dir,
                                                                         tmp_path):
    """The notebook top to bottom with the reference, the checker on a filled and an unfilled
    tree (the grader's public verdicts and points), and collect's zip."""
    filled = notebook_runs["filled"]["folder"]
    unfilled = student_tree(release_dir, tmp_path / "unfilled", None)
    checked = assert_same_as_grader(student_python, filled)
    assert checked["score"] == checked["max_score"]
    assert assert_same_as_grader(student_python, unfilled)["score"] == 0

    assert notebook_runs["filled"]["error"] is None
    text = printed(filled / NOTEBOOK_NAME)
    assert all(line in text for line in PASSED_LINES)
    assert "keep ratio 0.5: final train accuracy" in text

    out = tmp_path / "upload" / "dropout_submission.zip"
    collected = run_checker(student_python, filled, "collect", "--out", str(out))
    assert collected.returncode == 0, collected.stderr
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == sorted([*GRADED_FILES, NOTEBOOK_NAME])
    assert out.with_name("Dropout.html").is_file()
    refused = run_checker(student_python, unfilled, "collect", "--out", str(tmp_path / "no.zip"))
    assert refused.returncode == 1 and "the first TODO block of dropout_forward is still empty" in refused.stderr
    shutil.rmtree(filled / PACKAGE / "__pycache__", ignore_errors=True)
