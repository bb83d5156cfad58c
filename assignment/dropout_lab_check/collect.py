"""``python -m autograder collect [TREE] [--out FILE.zip]``: the student's submission, ready to upload.

The zip holds exactly what is graded and read: the graded files (those of the release's flavour) at
their paths in the tree, and the executed notebook, with nothing else (no data, no caches, no
copies of the library). Next to the zip go an HTML export of the notebook and, where this machine
can make one, a PDF, for the parts graded by hand (the inline questions and the plots).

Collect refuses, naming what to fix, when:
- a graded file is missing, or a marker line was changed;
- a TODO region is still empty (only blank lines, comments or ``pass``);
- the notebook was not run: a code cell has no execution count (it was never run, or outputs were
  cleared), or a cell ended in an error;
- an inline question still holds a placeholder (release's or nbgrader's "YOUR ANSWER HERE").

Problems are named as a student sees them: a TODO block by the words its file uses for it ("the
first TODO block of dropout_forward"), a cell by the heading it sits under or the question it
answers. Collect also ships in the student's release (``python -m dropout_lab_check collect``), so
it imports nothing but the standard library, nbformat, nbconvert and the modules the release copies.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from dropout_lab_check.paths import NOTEBOOK_NAME
from dropout_lab_check.runner import release_convention
from dropout_lab_check.regions import REGION_NAMES, RegionError, find_regions
from dropout_lab_check.stubs import is_unanswered

DEFAULT_OUT = "dropout_submission.zip"
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


@dataclass
class Problem:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


BLOCK_NAME = re.compile(r"""["'](the (?:\w+ )?TODO block of [\w.]+)["']""")


def region_label(lines: list[str], region, number: int) -> str:
    """How the file itself names a TODO block: the words of the guard that follows it (``the first
    TODO block of dropout_forward``), else its place in the file."""
    for line in lines[region.end + 1 : region.end + 8]:
        found = BLOCK_NAME.search(line)
        if found:
            return found.group(1)
        if START_LINE in line:
            break
    return f"the TODO block that starts on line {region.start + 1} (block {number} of the file)"


START_LINE = "START OF YOUR CODE"


def folder_problem(tree: Path) -> str | None:
    """Why ``tree`` is not a student's folder (None when it is one)."""
    if not tree.is_dir():
        return f"{tree} is not a folder: give the folder that holds nnlab/ and {NOTEBOOK_NAME}"
    if not (tree / "nnlab").is_dir():
        return (f"{tree.resolve()} holds no nnlab/ folder, so there is nothing to collect. Run the command "
                f"from your assignment folder (the one that holds nnlab/ and {NOTEBOOK_NAME}), or name it.")
    return None


def _is_code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#") and stripped != "pass"


def region_problems(tree: Path) -> list[Problem]:
    """Missing graded files, broken markers and empty TODO regions of a student's tree."""
    problems = []
    for graded in release_convention().graded_files:
        path = tree / graded
        if not path.is_file():
            problems.append(Problem(str(path), "missing; collect from the folder that holds nnlab/"))
            continue
        text = path.read_text(encoding="utf-8")
        try:
            regions = find_regions(text, str(path))
        except RegionError as error:
            problems.append(Problem(str(path), f"{error}. Restore the marker lines as they were in the assignment."))
            continue
        expected = len(REGION_NAMES[graded])
        if len(regions) != expected:
            problems.append(Problem(str(path), f"has {len(regions)} TODO blocks where the assignment has "
                                               f"{expected}; restore the marker lines as they were"))
            continue
        lines = text.splitlines()
        for number, region in enumerate(regions, start=1):
            if not any(_is_code(line) for line in lines[region.start + 1 : region.end]):
                problems.append(Problem(f"{path}:{region.start + 1}",
                                        f"{region_label(lines, region, number)} is still empty; write your "
                                        "code between its marker lines"))
    return problems


NBGRADER_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def _heading(cell) -> str | None:
    """The first heading of a markdown cell (an answer cell's text never counts as one)."""
    if cell.cell_type != "markdown" or cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
        return None
    for line in cell.source.splitlines():
        found = re.match(r"\s*#{1,6}\s+(.*\S)", line)
        if found and found.group(1).strip() not in NBGRADER_MARKERS:
            return found.group(1).strip()
    return None


def _opening(cell, width: int = 60) -> str:
    """The first line of a cell, shortened: what a student sees of it at a glance."""
    line = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    return line if len(line) <= width else line[: width - 3].rstrip() + "..."


def cell_labels(notebook) -> list[str]:
    """A name for every cell that a student can find in Jupyter: the heading it sits under."""
    labels, heading, count = [], None, 0
    for cell in notebook.cells:
        if _heading(cell):
            heading, count = _heading(cell), 0
            labels.append(f'the heading "{heading}"')
            continue
        count += 1
        kind = "code cell" if cell.cell_type == "code" else "text cell"
        ordinal = ("first", "second", "third", "fourth", "fifth")[count - 1] if count <= 5 else f"no. {count}"
        if cell.cell_type == "markdown" and heading and heading.lower().startswith(("inline question", "question")):
            labels.append(f'the answer cell of "{heading}"')
        elif heading:
            labels.append(f'the {ordinal} {kind} under "{heading}" (it starts "{_opening(cell)}")')
        else:
            labels.append(f'the {ordinal} {kind} of the notebook (it starts "{_opening(cell)}")')
    return labels


def notebook_problems(notebook_path: Path) -> tuple[list[Problem], nbformat.NotebookNode | None]:
    """Why a notebook does not count as run top to bottom (none: it does), and the notebook."""
    if not notebook_path.is_file():
        return [Problem(str(notebook_path), "missing; run the notebook and save it in the same folder as nnlab/")], None
    try:
        notebook = nbformat.read(notebook_path, as_version=4)
    except Exception as error:  # nbformat raises several unrelated types for a damaged file
        return [Problem(str(notebook_path), f"cannot be read as a notebook ({error})")], None
    problems = []
    labels = cell_labels(notebook)
    code_cells = [(labels[index], cell) for index, cell in enumerate(notebook.cells)
                  if cell.cell_type == "code" and cell.source.strip() and not _optional(cell)]
    not_run = [label for label, cell in code_cells if cell.get("execution_count") is None]
    if code_cells and len(not_run) == len(code_cells):
        problems.append(Problem(str(notebook_path), "was not run (no code cell has an execution count). Run it "
                                                    "top to bottom (Kernel > Restart Kernel and Run All Cells), "
                                                    "save it, then collect again"))
    elif not_run:
        problems.append(Problem(str(notebook_path), f"{'; '.join(not_run)}: not run. Run the whole notebook top "
                                                    "to bottom, save it, then collect again"))
    for label, cell in code_cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(Problem(f"{notebook_path}, {label}",
                                        f"ends in {output.get('ename')}: {output.get('evalue')}. Fix it and run "
                                        "the notebook again"))
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown" and _is_answer_cell(cell) and is_unanswered(cell.source):
            problems.append(Problem(f"{notebook_path}, {labels[index]}",
                                    "this inline question is not answered yet (the cell still holds its "
                                    "placeholder)"))
    return problems, notebook


def _optional(cell) -> bool:
    """Cells that need not run: the Google Colab set-up cell, which does nothing elsewhere."""
    return "optional" in cell.get("metadata", {}).get("tags", [])


def _is_answer_cell(cell) -> bool:
    nbgrader = cell.get("metadata", {}).get("nbgrader", {})
    return bool(nbgrader.get("solution")) or is_unanswered(cell.source) and bool(cell.source.strip())


def submission_files(tree: Path) -> dict[str, bytes]:
    """The files of the submission zip, by their name in the zip."""
    return {**{graded: (tree / graded).read_bytes() for graded in release_convention().graded_files},
            NOTEBOOK_NAME: (tree / NOTEBOOK_NAME).read_bytes()}


def write_zip(files: dict[str, bytes], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, out)


def export_html(notebook: nbformat.NotebookNode, target: Path) -> Path:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(notebook)
    target.write_text(body, encoding="utf-8")
    return target


def export_pdf(notebook: nbformat.NotebookNode, target: Path) -> tuple[Path | None, list[str]]:
    """A PDF of the notebook, trying nbconvert's webpdf (Chromium) then latex; the reasons when neither works."""
    import nbconvert

    reasons = []
    for label, exporter_name, hint in (
        ("webpdf", "WebPDFExporter", "pip install 'nbconvert[webpdf]' && playwright install chromium"),
        ("latex", "PDFExporter", "install pandoc and xelatex, e.g. apt-get install pandoc texlive-xetex texlive-plain-generic"),
    ):
        try:
            exporter = getattr(nbconvert, exporter_name)()
            if label == "webpdf":
                exporter.allow_chromium_download = False
            body, _ = exporter.from_notebook_node(notebook)
        except Exception as error:  # each exporter fails its own way when its tool is missing
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            reasons.append(f"{label}: {first_line[:200]} (to enable: {hint})")
            continue
        target.write_bytes(body)
        return target, reasons
    return None, reasons


def run(args: argparse.Namespace) -> int:
    tree = Path(args.tree) if args.tree else Path.cwd()
    problem = folder_problem(tree)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.suffix.lower() != ".zip":
        print(f"error: {out}: the submission file must end in .zip", file=sys.stderr)
        return 2
    problems = region_problems(tree)
    notebook_issues, notebook = notebook_problems(tree / NOTEBOOK_NAME)
    problems += notebook_issues
    if problems:
        print(f"Nothing was collected: {tree.resolve()} is not ready to submit.", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    files = submission_files(tree)
    write_zip(files, out)
    print(f"Wrote {out} with {len(files)} files: {', '.join(sorted(files))}.")
    html = export_html(notebook, out.with_name(Path(NOTEBOOK_NAME).stem + ".html"))
    print(f"Wrote {html} (the notebook as a web page).")
    if args.no_pdf:
        print("No PDF made (--no-pdf).")
    else:
        pdf, reasons = export_pdf(notebook, out.with_name(Path(NOTEBOOK_NAME).stem + ".pdf"))
        if pdf is not None:
            print(f"Wrote {pdf} (the notebook as a PDF, for the parts graded by hand).")
        else:
            print("No PDF: this machine cannot make one with nbconvert.")
            for reason in reasons:
                print(f"  - {reason}")
            print(f"  Instead, open {html} in a web browser and print it to PDF.")
    print(f"Upload {out} to the course's autograded assignment (and the PDF or HTML where your course asks for it).")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "collect", help="build your submission zip (graded files + executed notebook) and a PDF/HTML of the notebook",
        description="Build the submission zip from your assignment folder, refusing when a TODO is empty or the "
                    "notebook was not run; also writes the notebook as HTML and, where possible, PDF.",
    )
    parser.add_argument("tree", nargs="?", help="your assignment folder, the one holding nnlab/ and the notebook "
                        "(default: the current folder)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="the zip to write (default: %(default)s); the HTML and "
                        "PDF go next to it")
    parser.add_argument("--no-pdf", action="store_true", help="do not try to make a PDF")
    parser.set_defaults(run=run)
