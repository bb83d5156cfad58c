"""The class report, rendered from a real grade-batch run over bank submissions."""

from __future__ import annotations

import re
import shutil

import pytest

from autograder.bank import load_bank, write_submission
from autograder.class_report import summarize
from autograder.cli import main
from autograder.paths import ASSIGNMENT_DIR, GRADED_FILES
from autograder.rubric import load_rubric

pytestmark = pytest.mark.slow

# student -> bank entry ("stub" is the untouched assignment)
CLASS = {
    "amy": "right_reference",
    "bob": "wrong_p_as_drop_probability",
    "cam": "wrong_p_as_drop_probability",
    "dee": "wrong_vanilla_dropout",
    "eli": "stub",
}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    bank = {entry.name: entry for entry in load_bank()}
    for student, entry in CLASS.items():
        if entry == "stub":
            for graded in GRADED_FILES:
                (root / "in" / student / graded).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ASSIGNMENT_DIR / graded, root / "in" / student / graded)
        else:
            write_submission(bank[entry], root / "in" / student)
    assert main(["grade-batch", str(root / "in"), "--out", str(root / "out"), "--jobs", "2"]) == 0
    (root / "out" / "notes.json").write_text('{"not": "a result"}')
    return root / "out"


def test_summary_counts_students_misconceptions_and_pass_rates(graded_class):
    summary = summarize(graded_class)
    max_score = load_rubric().max_score
    assert sorted(summary.students) == sorted(CLASS)
    assert summary.max_score == max_score
    scores = dict(zip(summary.students, summary.scores))
    assert scores["amy"] == max_score and scores["eli"] == 0
    assert all(0 < scores[s] < max_score for s in ("bob", "cam", "dee"))
    # Each misconception is counted once per student who showed it, most common first.
    ranked = summary.most_common_diagnoses()
    assert ranked[0] == ("p_as_drop_probability", 2)
    assert summary.diagnosis_counts["missing_inverse_scaling"] == 1
    assert summary.diagnosis_counts["not_implemented"] == 1
    # The keep fraction is right for amy and for vanilla dropout (dee), wrong for the others.
    assert summary.check_passes["forward_keep_fraction"] == (2, 5)
    assert summary.skipped_files == ["notes.json"]


def test_page_shows_the_figures_and_embeds_both_plots(graded_class, capsys):
    page_path = graded_class / "report.html"
    assert main(["class-report", str(graded_class), "--html", str(page_path)]) == 0
    page = page_path.read_text()
    assert "5 students graded" in page
    assert len(re.findall(r"src='data:image/png;base64,", page)) == 2
    diagnoses = page[page.index("id='diagnoses'"):page.index("id='checks'")]
    assert diagnoses.index("p_as_drop_probability") < diagnoses.index("missing_inverse_scaling")
    assert "<td class='n'>2</td><td><code>p_as_drop_probability</code>" in diagnoses
    assert "notes.json" in page
    assert str(page_path) in capsys.readouterr().out


def test_an_empty_folder_is_refused_with_the_way_forward(tmp_path, capsys):
    assert main(["class-report", str(tmp_path)]) == 2
    assert "run grade-batch" in capsys.readouterr().err


def test_names_from_the_class_folder_are_escaped_in_the_page(tmp_path):
    """Student and file names come from whoever named the submissions: the template escapes them."""
    from autograder.class_report import ClassSummary, render_html

    summary = ClassSummary(students=["amy"], scores=[1.0], max_score=2.0,
                           check_passes={"<script>alert(1)</script>": (0, 1)},
                           skipped_files=["<img src=x onerror=alert(1)>.json"])
    page = render_html(summary, "Class <b>report</b>")
    assert "<script>" not in page and "<img src=x" not in page and "<b>report" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<title>Class &lt;b&gt;report&lt;/b&gt;</title>" in page
    assert "<td class='n'>0 / 1</td><td class='n'>0%</td>" in page


def test_the_template_ships_as_package_data():
    import fnmatch
    import sys

    from autograder.class_report import TEMPLATE
    from autograder.paths import REPO_ROOT

    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    patterns = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["autograder"]
    assert (REPO_ROOT / "autograder" / "templates" / TEMPLATE).is_file()
    assert any(fnmatch.fnmatch(f"templates/{TEMPLATE}", pattern) for pattern in patterns)
