"""Dropout.ipynb in a real Jupyter kernel: the solution runs through, the assignment stops at a TODO."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from autograder.paths import ASSIGNMENT_DIR, NOTEBOOK_NAME

pytestmark = pytest.mark.slow

NOTEBOOK_BUDGET_SECONDS = 300


def stream_text(notebook) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.outputs if output.output_type == "stream"
    )


@pytest.fixture(scope="module")
def executed_solution(executed_notebooks):
    """The solution notebook executed in a copy of its tree outside the repo, as a student's folder."""
    run = executed_notebooks["solution"]
    if run.error is not None:
        raise run.error
    return run.notebook, run.seconds


def test_solution_notebook_runs_top_to_bottom_within_budget(executed_solution):
    notebook, seconds = executed_solution
    assert seconds < NOTEBOOK_BUDGET_SECONDS
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert any("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


def test_solution_notebook_prints_the_known_checks(executed_solution):
    text = stream_text(executed_solution[0])
    assert "mean of the train-mode output: 10.014059" in text
    dx_error = float(re.search(r"dx relative error: (\S+)", text).group(1))
    assert dx_error < 1e-9
    weight_errors = [float(v) for v in re.findall(r"W\d relative error: (\S+)", text)]
    assert len(weight_errors) == 9 and max(weight_errors) < 1e-4


def test_experiment_shows_dropout_regularizes(executed_solution):
    """With dropout the validation accuracy is higher and the train/validation gap smaller."""
    text = stream_text(executed_solution[0])
    found = {
        float(keep): (float(train), float(val), float(gap))
        for keep, train, val, gap in re.findall(
            r"keep ratio (\S+): final train accuracy (\S+), final validation accuracy (\S+), gap (\S+)", text
        )
    }
    assert set(found) == {1.0, 0.5}
    _, val_plain, gap_plain = found[1.0]
    _, val_dropout, gap_dropout = found[0.5]
    # "Several points": at least 3 points of validation accuracy on 500 validation images.
    assert val_dropout >= val_plain + 0.03
    assert gap_dropout < gap_plain


def test_assignment_notebook_stops_at_the_first_todo_with_a_clear_message(executed_notebooks):
    run = executed_notebooks["assignment"]
    assert run.source == ASSIGNMENT_DIR / NOTEBOOK_NAME
    assert isinstance(run.error, CellExecutionError), run.error
    assert run.error.ename == "TodoNotFilledError"
    assert "fill in the first TODO block of dropout_forward" in run.error.evalue
    # Everything before the forward-pass check ran: imports and data loading worked.
    notebook = nbformat.read(run.path, as_version=4)
    text = stream_text(notebook)
    assert "X_train  (200, 64)" in text


def test_notebook_text_states_the_error_sizes_the_reference_prints(executed_solution):
    """The text before the network's gradient check gives the size the reference really prints."""
    notebook = executed_solution[0]
    text = stream_text(notebook)
    first_w2 = float(re.search(r"W2 relative error: (\S+)", text).group(1))  # keep ratio 1 comes first
    assert f"{first_w2:.0e}" == "2e-05"
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert "`2e-05` for `W2` at keep ratio 1" in markdown
    assert max(float(v) for v in re.findall(r"relative error: (\S+)", text)) < 1e-4  # "below 1e-4"


def test_colab_cell_comes_first_and_does_nothing_elsewhere(executed_solution):
    notebook = executed_solution[0]
    first = notebook.cells[0]
    assert first.cell_type == "code" and "optional" in first.metadata.get("tags", [])
    assert "google.colab" in first.source and "drive.mount" in first.source
    assert first.outputs == []  # ran, printed nothing, changed nothing the next cells use


def test_student_notebook_names_no_kit_only_path():
    notebook = nbformat.read(ASSIGNMENT_DIR / NOTEBOOK_NAME, as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells)
    for kit_only in ("get_datasets.sh", "autograder", ".venv", "solution/", "assignment/"):
        assert kit_only not in text, kit_only
    assert "python -m dropout_lab_check check" in text and "python -m dropout_lab_check collect" in text
