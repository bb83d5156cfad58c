"""The scratch flavour's Dropout.ipynb in a real Jupyter kernel, in both dropout styles: it runs top to
bottom within a minute, its experiment shows what dropout is for, and the student's copy stops at
the first TODO."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from autograder import flavours
from autograder.notebook_run import execute_notebook
from autograder.paths import NOTEBOOK_NAME
from autograder.release import write_tree

pytestmark = pytest.mark.slow

SCRATCH = flavours.FLAVOURS["scratch"]
# The notebook's own work must fit in a minute of CPU. The kernel is single-threaded (the notebook
# limits BLAS to one thread), so on an idle machine that is a minute of wall-clock time too; the
# wall-clock bound only catches a hang, because the machine running the tests may be busy.
CPU_BUDGET_SECONDS = 60
WALL_GUARD_SECONDS = 600
STYLE_LINE = re.compile(r'^DROPOUT_STYLE = "\w+"$', re.MULTILINE)
EXPERIMENT_LINE = re.compile(
    r"(no dropout|dropout ratio 0\.2): final train accuracy (\S+), final test accuracy (\S+), gap (\S+)"
)


def stream_text(notebook) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.outputs if output.output_type == "stream"
    )


def tree_with_style(root, style, answers):
    """The flavour's tree (with or without answers) written under root, set to the given style."""
    write_tree(flavours.released_tree(SCRATCH, answers=answers), root)
    settings = root / "nnlab" / "settings.py"
    text, count = STYLE_LINE.subn(f'DROPOUT_STYLE = "{style}"', settings.read_text())
    assert count == 1, "nnlab/settings.py must set DROPOUT_STYLE on one line of its own"
    settings.write_text(text)
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The flavour's notebooks in real kernels, side by side (the CPU budget is measured in the
    kernel, so a neighbour does not count against it): the instructor's notebook in each style,
    executed in a copy of its tree with a last cell that reports the kernel's CPU time, and the
    student's (vanilla), which stops at its first TODO. By name: (executed notebook or None,
    seconds, what execute_notebook raised or None, where the executed copy is)."""
    jobs = {}
    for style in ("vanilla", "inverted"):
        tree = tree_with_style(tmp_path_factory.mktemp(f"scratch-{style}") / "my-work", style, True)
        notebook = nbformat.read(tree / NOTEBOOK_NAME, as_version=4)
        notebook.cells.append(nbformat.v4.new_code_cell(
            "import time\nprint(f'kernel CPU seconds: {time.process_time():.2f}')"))
        nbformat.write(notebook, tree / NOTEBOOK_NAME)
        jobs[style] = (tree / NOTEBOOK_NAME, tree.parent / "executed.ipynb")
    student = tmp_path_factory.mktemp("scratch-student")
    jobs["student"] = (tree_with_style(student / "student", "vanilla", False) / NOTEBOOK_NAME, student / "executed.ipynb")
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(execute_notebook, *paths) for name, paths in jobs.items()}
    found = {}
    for name, future in futures.items():
        error = future.exception()
        notebook, seconds = (None, None) if error else future.result()
        found[name] = (notebook, seconds, error, jobs[name][1])
    return found


@pytest.fixture(params=["vanilla", "inverted"])
def executed(request, runs):
    notebook, seconds, error, _ = runs[request.param]
    if error is not None:
        raise error
    return request.param, notebook, seconds


def test_notebook_runs_top_to_bottom_within_a_minute(executed):
    _, notebook, seconds = executed
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    cpu = float(re.search(r"kernel CPU seconds: (\S+)", stream_text(notebook)).group(1))
    assert cpu < CPU_BUDGET_SECONDS
    assert seconds < WALL_GUARD_SECONDS
    assert any("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


def test_notebook_prints_its_style_and_passes_its_own_checks(executed):
    style, notebook, _ = executed
    text = stream_text(notebook)
    assert f"This course uses {style.upper()} dropout." in text
    for name in ("Dropout.forward", "Dropout.backward", "MultiLayerNet"):
        assert f"{name} passed the notebook's tests." in text
    assert float(re.search(r"dx relative error: (\S+)", text).group(1)) < 1e-9
    errors = [float(v) for v in re.findall(r"[Wb]\d relative error: (\S+)", text)]
    assert len(errors) == 18 and max(errors) < 1e-5


def test_experiment_shows_a_smaller_gap_and_a_better_test_accuracy_with_dropout(executed):
    """The notebook's run is seeded, so this is deterministic on a given numpy build. On the notebook's
    split, over seeds 0-9 in both styles (20 runs of the same protocol), dropout raised the test
    accuracy by 0.009 to 0.033 and narrowed the gap by 0.009 to 0.033, so the margins asked here
    (0.005) hold for every seed tried; a numpy build that rounds differently follows another path,
    which those 20 runs sample."""
    found = {label: tuple(map(float, values)) for label, *values in EXPERIMENT_LINE.findall(stream_text(executed[1]))}
    assert set(found) == {"no dropout", "dropout ratio 0.2"}
    train_plain, test_plain, gap_plain = found["no dropout"]
    train_dropout, test_dropout, gap_dropout = found["dropout ratio 0.2"]
    assert train_plain > 0.99  # the network without dropout has learnt its 300 images by heart
    assert test_dropout >= test_plain + 0.005
    assert gap_dropout <= gap_plain - 0.005


def test_student_notebook_stops_at_the_first_todo_with_a_clear_message(runs):
    _, _, error, executed_copy = runs["student"]
    assert isinstance(error, CellExecutionError), error
    assert error.ename == "TodoNotFilledError"
    assert "Dropout.forward, training mode is not implemented yet" in error.evalue
    assert "the first TODO block of Dropout.forward" in error.evalue
    text = stream_text(nbformat.read(executed_copy, as_version=4))
    assert "This course uses VANILLA dropout." in text and "X_train (300, 64)" in text
