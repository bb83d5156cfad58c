"""``python -m autograder class-report OUT``: one HTML page about a graded class.

It reads the per-student result files that ``grade-batch`` wrote to OUT and shows what an instructor
wants to know before the next lecture: how the scores are spread, which misconceptions the class
holds (most common first, each with the sentence students were shown), and how often each check
passed. The page is self-contained: its plots are embedded PNG images made by matplotlib.

Stages: result files -> ClassSummary (plain numbers, tested) -> figures -> HTML, rendered by Jinja2
from autograder/templates/class_report.html.j2 with autoescaping on (student names, file names and
check names come from the class folder).
"""

from __future__ import annotations

import argparse
import base64
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from autograder.batch import read_result
from autograder.cli import UsageError
from autograder.diagnoses import SENTENCES

TEMPLATE = "class_report.html.j2"


@dataclass
class ClassSummary:
    """What the report shows, as numbers."""

    students: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    max_score: float = 0.0
    # diagnosis id -> number of students who got it at least once
    diagnosis_counts: Counter = field(default_factory=Counter)
    # check name -> (students who passed it, students graded on it)
    check_passes: dict[str, tuple[int, int]] = field(default_factory=dict)
    skipped_files: list[str] = field(default_factory=list)

    @property
    def mean_score(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0

    def most_common_diagnoses(self) -> list[tuple[str, int]]:
        """Diagnoses by number of students, most common first; ties in id order so pages are stable."""
        return sorted(self.diagnosis_counts.items(), key=lambda item: (-item[1], item[0]))


def summarize(results_dir: Path) -> ClassSummary:
    """Read every student result JSON in results_dir into a ClassSummary.

    Files that are not results (unreadable, truncated, another kind of JSON) are listed in
    ``skipped_files`` rather than stopping the report, so one bad file does not hide a class.
    """
    summary = ClassSummary()
    passes: dict[str, list[int]] = {}
    for path in sorted(results_dir.glob("*.json")):
        data = read_result(path)
        if data is None:
            summary.skipped_files.append(path.name)
            continue
        summary.students.append(path.stem)
        summary.scores.append(float(data["score"]))
        summary.max_score = max(summary.max_score, float(data["max_score"]))
        diagnoses = set()
        for test in data["tests"]:
            name = str(test.get("name", "?"))
            passed = test.get("status") == "passed"
            counts = passes.setdefault(name, [0, 0])
            counts[0] += passed
            counts[1] += 1
            diagnosis = (test.get("extra_data") or {}).get("diagnosis")
            if not passed and diagnosis:
                diagnoses.add(str(diagnosis))
        summary.diagnosis_counts.update(diagnoses)
    summary.check_passes = {name: (p, n) for name, (p, n) in passes.items()}
    return summary


def _figure_png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(summary: ClassSummary) -> dict[str, str]:
    """The report's plots as base64 PNG strings."""
    import matplotlib

    matplotlib.use("Agg")  # no screen is needed to draw into a file
    import matplotlib.pyplot as plt

    plots = {}
    figure, axes = plt.subplots(figsize=(7, 3.2))
    bins = max(1, min(20, int(summary.max_score) or 1))
    axes.hist(summary.scores, bins=bins, range=(0, summary.max_score or 1), color="#3a6ea5", edgecolor="white")
    axes.set_xlabel(f"score (out of {summary.max_score:g})")
    axes.set_ylabel("students")
    axes.set_title("Scores")
    plots["scores"] = _figure_png(figure)
    plt.close(figure)

    names = sorted(summary.check_passes)
    if names:
        rates = [summary.check_passes[n][0] / summary.check_passes[n][1] for n in names]
        figure, axes = plt.subplots(figsize=(7, 0.28 * len(names) + 1))
        axes.barh(names, rates, color="#5a9e6f")
        axes.set_xlim(0, 1)
        axes.invert_yaxis()
        axes.set_xlabel("fraction of students who passed")
        axes.set_title("Pass rate per check")
        plots["checks"] = _figure_png(figure)
        plt.close(figure)
    return plots


def _environment():
    """Jinja2 with the kit's templates (package data), HTML autoescaping and the report's formats."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("autograder", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    )
    environment.filters["points"] = lambda value: f"{value:g}"
    environment.filters["percent"] = lambda value: f"{value:.0%}"
    return environment


def render_html(summary: ClassSummary, title: str) -> str:
    """The whole report page, from the template autograder/templates/class_report.html.j2."""
    full = sum(score >= summary.max_score for score in summary.scores) if summary.max_score else 0
    template = _environment().get_template(TEMPLATE)
    return template.render(summary=summary, title=title, plots=_plots(summary), full_marks=full, sentences=SENTENCES)


def run(args: argparse.Namespace) -> int:
    results_dir = Path(args.results)
    if not results_dir.is_dir():
        raise UsageError(f"{results_dir} is not a folder; give the --out folder of grade-batch")
    summary = summarize(results_dir)
    if not summary.students:
        raise UsageError(f"no student results in {results_dir}; run grade-batch with --out {results_dir} first")
    output = Path(args.html) if args.html else results_dir / "class-report.html"
    output.write_text(render_html(summary, args.title), encoding="utf-8")
    print(f"{len(summary.students)} students, mean {summary.mean_score:.2f} / {summary.max_score:g}. Report: {output}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "class-report", help="one HTML page about a graded class (after grade-batch)",
        description="Summarize grade-batch's results: score histogram, misconceptions, pass rates.",
    )
    parser.add_argument("results", help="the --out folder of grade-batch")
    parser.add_argument("--html", help="where to write the page (default: RESULTS/class-report.html)")
    parser.add_argument("--title", default="Dropout Lab: class report", help="the page's title")
    parser.set_defaults(run=run)
