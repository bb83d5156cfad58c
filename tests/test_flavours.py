"""release --flavour: the scratch flavour's tree is written from solution/ alone, and --check guards it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder import flavours
from autograder.paths import ASSIGNMENT_DIR, REPO_ROOT, SOLUTION_DIR
from autograder.regions import END_MARKER, find_regions, fill_regions

SCRATCH = flavours.FLAVOURS["scratch"]
SCRATCH_SOURCE = SCRATCH.source_dir()

SCRATCH_FILES = {
    "Dropout.ipynb", "README.md", "requirements.txt",
    "nnlab/__init__.py", "nnlab/data_utils.py", "nnlab/gradient_check.py", "nnlab/layers.py",
    "nnlab/multi_layer_net.py", "nnlab/scaffold.py", "nnlab/settings.py", "nnlab/trainer.py",
}


def release(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autograder", "release", *args],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )


@pytest.fixture(scope="module")
def student_tree(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scratch") / "assignment-scratch"
    result = release("--flavour", "scratch", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_scratch_tree_holds_its_own_sources_and_the_shared_given_modules_only(student_tree):
    assert {name for name in files_under(student_tree) if not name.startswith("dropout_lab_check/")} == SCRATCH_FILES
    # The shared modules are solution/'s, byte for byte.
    for name in SCRATCH.shared_files:
        assert (student_tree / name).read_bytes() == (SOLUTION_DIR / name).read_bytes()


def test_students_of_one_flavour_never_receive_the_others_files(student_tree):
    """No CS231n graded file, notebook or checker in the scratch tree; no scratch source in assignment/."""
    cs231n_own = {
        name: content for name, content in release_module().expected_tree(with_checker=False).items()
        if name not in SCRATCH.shared_files
    }
    for name, content in cs231n_own.items():
        path = student_tree / name
        assert not path.exists() or path.read_bytes() != content, name
    scratch_text = "\n".join((student_tree / n).read_text() for n in SCRATCH_FILES if n.endswith((".py", ".ipynb")))
    assert "def dropout_forward" not in scratch_text and "FullyConnectedNet" not in scratch_text
    # Its checker is the scratch flavour's, and ships no correct dropout of either flavour.
    facts = (student_tree / "dropout_lab_check" / "facts.py").read_text()
    assert "FLAVOUR = 'scratch'" in facts and "STYLE = 'vanilla'" in facts
    operations = (student_tree / "dropout_lab_check" / "operations.py").read_text()
    assert "class CorrectDropout" not in operations and "NETWORK_DROPOUT_LAYER = StudentsDropout, None" in operations

    assert not any(flavours.is_flavour_source(Path(n)) for n in release_module().expected_tree(with_checker=False))
    assert not (ASSIGNMENT_DIR / flavours.FLAVOURS_DIRNAME).exists()
    assert not (ASSIGNMENT_DIR / "nnlab" / "multi_layer_net.py").exists()


def release_module():
    from autograder import release as module
    return module


def test_scratch_release_empties_every_student_region_and_nothing_else(student_tree):
    for name, region_names in SCRATCH.region_names.items():
        released = (student_tree / name).read_text()
        source = (SCRATCH_SOURCE / name).read_text()
        regions = find_regions(released)
        assert len(regions) == len(region_names) == len(find_regions(source))
        lines = released.splitlines()
        for region in regions:
            assert all(not line.strip() for line in lines[region.start + 1: region.end])
        source_lines = source.splitlines()
        bodies = [
            textwrap.dedent("\n".join(source_lines[r.start + 1: r.end])).strip("\n")
            for r in find_regions(source)
        ]
        assert fill_regions(released, bodies) == source


def test_scratch_notebook_loses_its_answers_and_outputs(student_tree):
    import nbformat

    notebook = nbformat.read(student_tree / "Dropout.ipynb", as_version=4)
    answers = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(answers) == 3 and all(c.source == "*Write your answer here.*" for c in answers)
    assert all(c.outputs == [] for c in notebook.cells if c.cell_type == "code")
    source = nbformat.read(SCRATCH_SOURCE / "Dropout.ipynb", as_version=4)
    assert sum("### BEGIN SOLUTION" in c.source for c in source.cells) == 3


def test_answers_option_writes_the_sources_unchanged(tmp_path):
    out = tmp_path / "instructor"
    assert release("--flavour", "scratch", "--answers", "--out", str(out)).returncode == 0
    assert files_under(out) == SCRATCH_FILES
    for name in SCRATCH_FILES - set(SCRATCH.shared_files):
        assert (out / name).read_bytes() == (SCRATCH_SOURCE / name).read_bytes(), name


def test_check_with_out_compares_a_written_tree(student_tree, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(student_tree, copy)
    result = release("--check", "--flavour", "scratch", "--out", str(copy))
    assert result.returncode == 0, result.stderr
    (copy / "nnlab" / "trainer.py").write_text("# edited by hand\n")
    (copy / "nnlab" / "settings.py").unlink()
    result = release("--check", "--flavour", "scratch", "--out", str(copy))
    assert result.returncode == 1
    assert f"differs: {copy / 'nnlab' / 'trainer.py'}" in result.stderr
    assert f"missing: {copy / 'nnlab' / 'settings.py'}" in result.stderr


@pytest.fixture
def solution_copy(tmp_path) -> Path:
    solution = tmp_path / "solution"
    shutil.copytree(SOLUTION_DIR, solution, ignore=shutil.ignore_patterns("__pycache__"))
    return solution


@pytest.fixture(scope="module")
def released_copy(tmp_path_factory) -> tuple[Path, Path]:
    """A copy of solution/ and the CS231n tree released from it, which ``release --check`` accepts."""
    root = tmp_path_factory.mktemp("released")
    solution, assignment = root / "solution", root / "assignment"
    shutil.copytree(SOLUTION_DIR, solution, ignore=shutil.ignore_patterns("__pycache__"))
    assert release("--solution", str(solution), "--assignment", str(assignment)).returncode == 0
    result = release("--check", "--solution", str(solution), "--assignment", str(assignment))
    assert result.returncode == 0 and "Flavours scratch" in result.stdout, result.stderr
    return solution, assignment


@pytest.mark.parametrize(
    "file, mutation, message",
    [
        ("nnlab/layers.py", lambda t: t.replace(END_MARKER, "# *****END OF YOUR CODE*****", 1),
         "marker line was changed"),
        ("nnlab/layers.py", lambda t: t.replace(END_MARKER, "pass", 1), "a second"),
        ("nnlab/trainer.py", lambda t: t + "# *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****\n"
                                           "# *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****\n",
         "expects 0 student regions"),
    ],
)
def test_plain_check_fails_when_a_flavour_cannot_be_released(released_copy, tmp_path, file, mutation, message):
    """``release --check`` with no flavour named also builds every flavour, and names the file at fault."""
    pristine, assignment = released_copy
    solution = tmp_path / "solution"
    shutil.copytree(pristine, solution)
    target = flavours.FLAVOURS["scratch"].source_dir(solution) / file
    target.write_text(mutation(target.read_text()))
    result = release("--check", "--solution", str(solution), "--assignment", str(assignment))
    assert result.returncode == 1
    assert "flavour scratch" in result.stderr and message in result.stderr and str(target) in result.stderr
    # The CS231n tree is untouched by a flavour's sources.
    assert not (assignment / flavours.FLAVOURS_DIRNAME).exists()


def test_a_shared_file_that_disappeared_stops_the_flavour(solution_copy, tmp_path):
    (solution_copy / "nnlab" / "gradient_check.py").unlink()
    result = release("--flavour", "scratch", "--solution", str(solution_copy), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "gradient_check.py" in result.stderr and "missing" in result.stderr


STUB_PROGRAMS = {
    "Dropout.forward, training mode": "Dropout(0.2).forward(x)",
    "Dropout.forward, test mode": "Dropout(0.2).forward(x, train_flg=False)",
    "MultiLayerNet with dropout (making the layers)": "MultiLayerNet(4, [3], 2, use_dropout=True)",
}


@pytest.mark.parametrize("where", sorted(STUB_PROGRAMS))
def test_each_scratch_stub_names_its_todo(student_tree, where):
    program = (
        "import numpy as np\nfrom nnlab.layers import Dropout\nfrom nnlab.multi_layer_net import MultiLayerNet\n"
        f"x = np.ones((2, 4))\n{STUB_PROGRAMS[where]}\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            cwd=student_tree, timeout=60)
    assert result.returncode != 0
    assert f"TodoNotFilledError: {where} is not implemented yet: fill in" in result.stderr


def test_later_scratch_stubs_name_their_todo_once_the_earlier_ones_are_filled(student_tree, tmp_path):
    """Backward, predict and gradient blocks each get their own message."""
    tree = tmp_path / "tree"
    shutil.copytree(student_tree, tree)
    layers = tree / "nnlab" / "layers.py"
    network = tree / "nnlab" / "multi_layer_net.py"
    run = lambda program: subprocess.run(  # noqa: E731
        [sys.executable, "-c", "import numpy as np\nfrom nnlab.layers import Dropout\n"
         "from nnlab.multi_layer_net import MultiLayerNet\nx = np.ones((2, 4))\n" + program],
        capture_output=True, text=True, cwd=tree, timeout=60)

    layers.write_text(fill_regions(layers.read_text(), [
        "self.mask = np.random.rand(*x.shape) >= self.dropout_ratio\nout = x * self.mask", "out = x", None]))
    result = run("d = Dropout(0.2)\nd.forward(x)\nd.backward(x)\n")
    assert "fill in the TODO block of Dropout.backward" in result.stderr

    layers.write_text(fill_regions(layers.read_text(), [None, None, "dx = dout * self.mask"]))
    network.write_text(fill_regions(network.read_text(), [
        "self.dropout_layers = [Dropout(self.dropout_ratio) for _ in self.hidden_size_list]", None, None]))
    result = run("MultiLayerNet(4, [3], 2, use_dropout=True).predict(x)\n")
    assert "fill in the second TODO block of multi_layer_net.py, in MultiLayerNet.predict" in result.stderr

    network.write_text(fill_regions(network.read_text(), [None, "out = self.dropout_layers[i].forward(x, train_flg)", None]))
    result = run("MultiLayerNet(4, [3], 2, use_dropout=True).gradient(x, [0, 1])\n")
    assert "fill in the third TODO block of multi_layer_net.py, in MultiLayerNet.gradient" in result.stderr

    # Without dropout the network needs none of the blocks.
    result = run("print(MultiLayerNet(4, [3], 2).gradient(x, [0, 1])['W1'].shape)\n")
    assert result.returncode == 0 and result.stdout.strip() == "(4, 3)"


def run_checker(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dropout_lab_check", "check", "--format", "json"],
                          capture_output=True, text=True, cwd=folder, timeout=300)


def test_the_scratch_checker_grades_in_the_flavours_terms(student_tree, tmp_path):
    """The checker of the scratch release runs the scratch flavour's public checks: every one fails
    as not implemented on the untouched tree, and every one passes once the reference's graded files
    are in; a wrong layer is told in the flavour's words."""
    import json

    untouched = run_checker(student_tree)
    assert untouched.returncode == 1, untouched.stderr
    result = json.loads(untouched.stdout)
    assert result["score"] == 0 and {test["extra_data"]["diagnosis"] for test in result["tests"]} == {"not_implemented"}
    assert "forward_leaves_dropout_param_unchanged" not in {test["name"] for test in result["tests"]}

    filled = tmp_path / "filled"
    shutil.copytree(student_tree, filled)
    for graded in SCRATCH.graded_files:
        shutil.copyfile(SCRATCH_SOURCE / graded, filled / graded)
    done = run_checker(filled)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["score"] == 33  # the public checks: 36 less 3 hidden points

    layers = filled / "nnlab" / "layers.py"
    layers.write_text(layers.read_text().replace(
        "self.mask = np.random.rand(*x.shape) >= self.dropout_ratio",
        "self.mask = np.random.rand(*x.shape) < self.dropout_ratio"))
    wrong = json.loads(run_checker(filled).stdout)
    fraction = next(test for test in wrong["tests"] if test["name"] == "forward_keep_fraction")
    assert fraction["extra_data"]["diagnosis"] == "p_as_drop_probability"
    assert "dropout_ratio as the probability of keeping" in fraction["output"]


def test_notebook_command_runs_the_flavours_notebook(tmp_path):
    """``autograder notebook --flavour scratch --tree assignment`` runs the student's copy of the
    scratch notebook in a real kernel: it stops at the first empty TODO block, says so, and keeps
    the partly executed copy."""
    out = tmp_path / "executed.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "notebook", "--flavour", "scratch", "--tree", "assignment", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "TodoNotFilledError" in done.stderr and "Dropout.forward" in done.stderr
    import nbformat

    executed = nbformat.read(out, as_version=4)
    assert any(cell.get("outputs") for cell in executed.cells if cell.cell_type == "code")
    assert "MultiLayerNet" in "".join(cell.source for cell in executed.cells)
