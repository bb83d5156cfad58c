"""Shared set-up for the kit's tests: the course library is imported from the solution tree."""

from __future__ import annotations

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
