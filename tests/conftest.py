"""Shared set-up for the kit's tests: the course library is imported from the solution tree."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

from autograder.paths import SOLUTION_DIR

if str(SOLUTION_DIR) not in sys.path:
    sys.path.insert(0, str(SOLUTION_DIR))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator for test inputs, so that every test run sees the same data."""
    return np.random.default_rng(20261122)


@pytest.fixture(scope="session")
def executed_notebooks(tmp_path_factory):
    """Dropout.ipynb run in real Jupyter kernels, two side by side: ``"solution"``, executed in place
    in a copy of the solution tree outside the repo (a student's finished folder), and
    ``"assignment"``, the released notebook, which stops at its first TODO. Each is a namespace with
    ``folder``, ``path`` (the executed copy), ``notebook``, ``seconds`` and ``error`` (what
    execute_notebook raised, or None); a failed run's partly executed copy is at ``path``."""
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from autograder.notebook_run import execute_notebook
    from autograder.paths import ASSIGNMENT_DIR, NOTEBOOK_NAME, SOLUTION_DIR

    finished = tmp_path_factory.mktemp("finished") / "dropout"
    shutil.copytree(SOLUTION_DIR, finished, ignore=shutil.ignore_patterns("__pycache__", "*.executed.ipynb"))
    runs = {"solution": SimpleNamespace(folder=finished, source=finished / NOTEBOOK_NAME, path=finished / NOTEBOOK_NAME),
            "assignment": SimpleNamespace(folder=ASSIGNMENT_DIR, source=ASSIGNMENT_DIR / NOTEBOOK_NAME,
                                          path=tmp_path_factory.mktemp("assignment-run") / NOTEBOOK_NAME)}
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {name: pool.submit(execute_notebook, run.source, run.path) for name, run in runs.items()}
    for name, run in runs.items():
        run.error = futures[name].exception()
        run.notebook, run.seconds = (None, None) if run.error else futures[name].result()
    return runs
