"""The one place that knows where the kit's trees are.

Every other module asks here instead of building paths from ``__file__`` itself, so that moving a
tree (for instance into a Gradescope image) means changing this file only.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTION_DIR = REPO_ROOT / "solution"
ASSIGNMENT_DIR = REPO_ROOT / "assignment"
DATASETS_DIR = REPO_ROOT / "datasets"
NOTEBOOK_NAME = "Dropout.ipynb"
# Where a grading image without solution/ (the Gradescope export) keeps another flavour's released
# library: RELEASED_LIBRARIES_DIR / FLAVOUR / nnlab. The kit itself writes it from solution/ instead.
RELEASED_LIBRARIES_DIR = REPO_ROOT / "released"

# Files of the course library that hold graded TODO regions (relative to a tree's root).
GRADED_FILES = ("nnlab/layers.py", "nnlab/classifiers/fc_net.py")
