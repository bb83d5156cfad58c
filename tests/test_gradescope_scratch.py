"""The Gradescope export of the scratch flavour: the zip carries that flavour's released library (no
answers, no solution/), and run_autograder grades uploads in the flavour's terms and style."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from autograder.cli import main
from autograder.conventions import SCRATCH_REGION_NAMES
from autograder.flavours import SCRATCH, source_files
from autograder.gradescope import KIT_DIR
from autograder.regions import find_regions
from test_gradescope import fake_root, run_autograder

GRADED = tuple(SCRATCH_REGION_NAMES)


@pytest.fixture(scope="module")
def scratch_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gradescope-scratch") / "autograder.zip"
    assert main(["gradescope", str(out), "--flavour", "scratch"]) == 0
    return out


def reference(graded: str) -> str:
    return source_files(SCRATCH)[graded].read_text(encoding="utf-8")


def test_the_zip_ships_the_flavours_library_without_its_answers(scratch_zip):
    with zipfile.ZipFile(scratch_zip) as archive:
        names = set(archive.namelist())
        texts = {name: archive.read(name).decode("utf-8", "replace") for name in names}
    released = f"{KIT_DIR}/released/scratch/nnlab"
    assert {f"{released}/layers.py", f"{released}/multi_layer_net.py", f"{released}/settings.py"} <= names
    assert 'flavour = "scratch"' in texts[f"{KIT_DIR}/rubric.toml"]
    assert not any("/solution/" in name or "/bank/" in name for name in names)
    texts = {name: text for name, text in texts.items() if not name.endswith("autograder/diagnoses.py")}
    for graded in GRADED:
        lines = reference(graded).splitlines()
        for region in find_regions("\n".join(lines)):
            for line in lines[region.start + 1: region.end]:
                if len(line.strip()) > 25 and not line.strip().startswith("#"):
                    assert not any(line.strip() in text for text in texts.values()), line


def test_run_autograder_grades_the_flavour_in_its_words(tmp_path, scratch_zip):
    """The reference's two files, dropped flat as a student might upload them, get full marks; the
    drop ratio read as a keep probability loses points with the flavour's sentence."""
    root = fake_root(tmp_path / "right", scratch_zip)
    for graded in GRADED:
        (root / "submission" / Path(graded).name).write_text(reference(graded), encoding="utf-8")
    completed, data = run_autograder(root)
    assert completed.returncode == 0, completed.stderr
    assert data["score"] == 36 and all(test["status"] == "passed" for test in data["tests"]), data

    root = fake_root(tmp_path / "wrong", scratch_zip)
    for graded in GRADED:
        text = reference(graded).replace("np.random.rand(*x.shape) >= self.dropout_ratio",
                                         "np.random.rand(*x.shape) < self.dropout_ratio")
        (root / "submission" / graded).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / graded).write_text(text, encoding="utf-8")
    _, data = run_autograder(root)
    fraction = next(test for test in data["tests"] if test["name"] == "forward_keep_fraction")
    assert fraction["score"] < fraction["max_score"]
    assert "dropout_ratio as the probability of keeping a unit" in fraction["output"]
