"""The release tool: assignment/ is generated from solution/, and its stubs say which TODO to fill."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from autograder.paths import ASSIGNMENT_DIR, GRADED_FILES, NOTEBOOK_NAME, REPO_ROOT, SOLUTION_DIR
from autograder.regions import END_MARKER, REGION_NAMES, START_MARKER, RegionError, find_regions, fill_regions


def release(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autograder", "release", *args],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )


@pytest.fixture
def trees(tmp_path):
    """Copies of solution/ and assignment/ that a test may change."""
    solution = tmp_path / "solution"
    assignment = tmp_path / "assignment"
    shutil.copytree(SOLUTION_DIR, solution, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ASSIGNMENT_DIR, assignment, ignore=shutil.ignore_patterns("__pycache__"))
    return solution, assignment


def test_committed_assignment_is_what_release_writes():
    result = release("--check")
    assert result.returncode == 0, result.stderr


def test_check_names_each_tampered_missing_or_extra_file(trees):
    solution, assignment = trees
    layers = assignment / "nnlab" / "layers.py"
    layers.write_text(layers.read_text() + "\n# an edit by hand\n")
    (assignment / "nnlab" / "optim.py").unlink()
    (assignment / "nnlab" / "stray.py").write_text("x = 1\n")
    result = release("--check", "--solution", str(solution), "--assignment", str(assignment))
    assert result.returncode == 1
    assert f"differs: {layers}" in result.stderr
    assert f"missing: {assignment / 'nnlab' / 'optim.py'}" in result.stderr
    assert f"not in solution/: {assignment / 'nnlab' / 'stray.py'}" in result.stderr


def test_check_notices_a_solution_change_that_was_not_released(trees):
    solution, assignment = trees
    solver = solution / "nnlab" / "solver.py"
    solver.write_text(solver.read_text() + "\n# a new comment\n")
    result = release("--check", "--solution", str(solution), "--assignment", str(assignment))
    assert result.returncode == 1 and "solver.py" in result.stderr
    assert release("--solution", str(solution), "--assignment", str(assignment)).returncode == 0
    assert release("--check", "--solution", str(solution), "--assignment", str(assignment)).returncode == 0


def test_release_empties_every_graded_region_and_keeps_everything_else():
    for name in GRADED_FILES:
        solution_text = (SOLUTION_DIR / name).read_text()
        assignment_text = (ASSIGNMENT_DIR / name).read_text()
        regions = find_regions(assignment_text)
        assert len(regions) == len(REGION_NAMES[name])
        lines = assignment_text.splitlines()
        for region in regions:
            assert all(not line.strip() for line in lines[region.start + 1 : region.end])
        # Filling the emptied regions with the solution's bodies gives the solution back.
        solution_lines = solution_text.splitlines()
        bodies = [
            textwrap.dedent("\n".join(solution_lines[r.start + 1 : r.end])).strip("\n")
            for r in find_regions(solution_text)
        ]
        assert fill_regions(assignment_text, bodies) == solution_text


def test_release_strips_notebook_answers_and_outputs():
    notebook = nbformat.read(ASSIGNMENT_DIR / NOTEBOOK_NAME, as_version=4)
    answer_cells = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(answer_cells) == 3
    for cell in answer_cells:
        assert "BEGIN SOLUTION" not in cell.source and cell.source == "*Write your answer here.*"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    solution_sources = "\n".join(c.source for c in nbformat.read(SOLUTION_DIR / NOTEBOOK_NAME, as_version=4).cells)
    assert "### BEGIN SOLUTION" in solution_sources


@pytest.mark.parametrize(
    "mutation, message",
    [
        (lambda t: t.replace(END_MARKER, "# *****END OF YOUR CODE*****", 1), "marker line was changed"),
        (lambda t: t.replace(END_MARKER, "pass  # closed by accident", 1), "a second"),
        (lambda t: t.replace(START_MARKER, "pass  # opened by accident", 1), "with no"),
    ],
)
def test_broken_markers_stop_the_release_with_the_line(trees, mutation, message):
    solution, assignment = trees
    layers = solution / "nnlab" / "layers.py"
    layers.write_text(mutation(layers.read_text()))
    result = release("--solution", str(solution), "--assignment", str(assignment))
    assert result.returncode == 2
    assert message in result.stderr and f"{layers}:" in result.stderr
    with pytest.raises(RegionError):
        find_regions(layers.read_text())


STUB_CALLS = {
    "dropout_forward, train mode": "layers.dropout_forward(x, {'mode': 'train', 'p': 0.5})",
    "dropout_forward, test mode": "layers.dropout_forward(x, {'mode': 'test', 'p': 0.5})",
    "dropout_backward, train mode": "layers.dropout_backward(x, ({'mode': 'train', 'p': 0.5}, x))",
    "FullyConnectedNet.loss with dropout (forward pass)":
        "FullyConnectedNet([3], input_dim=4, num_classes=2, dropout_keep_ratio=0.5).loss(x, [0, 1])",
}


@pytest.mark.parametrize("where", sorted(STUB_CALLS))
def test_each_stub_raises_not_implemented_naming_its_todo(where):
    program = textwrap.dedent(
        f"""
        import numpy as np
        from nnlab import layers
        from nnlab.classifiers.fc_net import FullyConnectedNet
        x = np.ones((2, 4))
        try:
            {STUB_CALLS[where]}
        except NotImplementedError as error:
            print(type(error).__name__, error)
        """
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            cwd=ASSIGNMENT_DIR, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("TodoNotFilledError " + where + " is not implemented yet: fill in")
    assert "TODO block" in result.stdout


def test_fc_net_backward_stub_raises_once_the_forward_is_filled(tmp_path):
    """The second FC TODO gets its own message when only the first one has been filled."""
    tree = tmp_path / "tree"
    shutil.copytree(ASSIGNMENT_DIR, tree)
    for name in ("nnlab/layers.py",):
        shutil.copy(SOLUTION_DIR / name, tree / name)
    fc = tree / "nnlab/classifiers/fc_net.py"
    fc.write_text(fill_regions(fc.read_text(), [
        "hidden, dropout_cache = dropout_forward(relu_out, self.dropout_param)", None,
    ]))
    program = (
        "import numpy as np\nfrom nnlab.classifiers.fc_net import FullyConnectedNet\n"
        "FullyConnectedNet([3], input_dim=4, num_classes=2, dropout_keep_ratio=0.5).loss(np.ones((2, 4)), [0, 1])\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=tree, timeout=60)
    assert result.returncode != 0
    assert "the second TODO block of FullyConnectedNet.loss" in result.stderr


def test_cli_help_lists_release():
    result = subprocess.run([sys.executable, "-m", "autograder", "--help"], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 0 and "release" in result.stdout
