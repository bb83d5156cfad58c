"""``python -m autograder class-report OUT``: one HTML page about a graded class.

It reads the per-student result files that ``grade-batch`` wrote to OUT and shows what an instructor
wants to know before the next lecture: how the scores are spread, which misconceptions the class
holds (most common first, each with the sentence students were shown), and how often each check
passed. The page is self-contained: its plots are embedded PNG images made by matplotlib.

Stages: result files -> ClassSummary (plain numbers, tested) -> figures -> HTML.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from autograder.batch import read_result
from autograder.cli import UsageError
from autograder.diagnoses import SENTENCES


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


def render_html(summary: ClassSummary, title: str) -> str:
    """The whole report page."""
    plots = _plots(summary)
    esc = html.escape
    n = len(summary.students)
    full = sum(score >= summary.max_score for score in summary.scores) if summary.max_score else 0
    parts = [
        "<!DOCTYPE html>",
        f"<html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left}"
        "td.n{text-align:right}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p id='overview'>{n} students graded; mean score {summary.mean_score:.2f} of "
        f"{summary.max_score:g}; {full} with full marks.</p>",
    ]
    if summary.skipped_files:
        parts.append(
            "<p id='skipped'>Not results, left out: " + esc(", ".join(summary.skipped_files)) + "</p>"
        )
    parts.append(f"<h2>Scores</h2><img alt='score histogram' src='data:image/png;base64,{plots['scores']}'>")

    parts.append("<h2>Misconceptions in the class</h2>")
    if summary.diagnosis_counts:
        parts.append("<table id='diagnoses'><tr><th>students</th><th>diagnosis</th><th>what they were told</th></tr>")
        for diagnosis, count in summary.most_common_diagnoses():
            sentence = SENTENCES.get(diagnosis, "")
            parts.append(
                f"<tr><td class='n'>{count}</td><td><code>{esc(diagnosis)}</code></td><td>{esc(sentence)}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No student lost a point.</p>")

    parts.append("<h2>Checks</h2>")
    if "checks" in plots:
        parts.append(f"<img alt='pass rate per check' src='data:image/png;base64,{plots['checks']}'>")
    parts.append("<table id='checks'><tr><th>check</th><th>passed</th><th>rate</th></tr>")
    for name in sorted(summary.check_passes):
        passed, graded = summary.check_passes[name]
        parts.append(
            f"<tr><td><code>{esc(name)}</code></td><td class='n'>{passed} / {graded}</td>"
            f"<td class='n'>{passed / graded:.0%}</td></tr>"
        )
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"


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
