"""Student code regions: finding, naming, emptying and filling them.

A region is the lines strictly between the two marker lines that CS231n students know. In solution/
a region holds the reference code; in assignment/ it is empty. Regions are named by their order in
their file (``REGION_NAMES``), so that tools can speak of "the train branch of dropout_forward"
without parsing Python.

Notebooks use nbgrader's markers instead (``### BEGIN SOLUTION`` ... ``### END SOLUTION`` for answers,
``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` for tests students do not see).
"""

from __future__ import annotations

from dataclasses import dataclass

START_MARKER = "# *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****"
END_MARKER = "# *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****"

# The graded regions of each graded file, in the order they appear in it.
REGION_NAMES = {
    "nnlab/layers.py": (
        "dropout_forward.train",
        "dropout_forward.test",
        "dropout_backward.train",
    ),
    "nnlab/classifiers/fc_net.py": (
        "fc_net.loss.dropout_forward",
        "fc_net.loss.dropout_backward",
    ),
}

SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"


class RegionError(ValueError):
    """Marker lines that are missing, unbalanced or altered."""


@dataclass(frozen=True)
class Region:
    """One student region: ``lines[start]`` is its START line and ``lines[end]`` its END line."""

    start: int
    end: int
    indent: str


def _marker_spans(lines, begin, end, source):
    """(begin index, end index, indent) for each balanced begin/end marker pair in ``lines``."""
    spans = []
    opened = None
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped == begin:
            if opened is not None:
                raise RegionError(
                    f"{source}:{number + 1}: a second {begin!r} before the {end!r} that closes "
                    f"the one on line {opened + 1}"
                )
            opened = number
        elif stripped == end:
            if opened is None:
                raise RegionError(f"{source}:{number + 1}: {end!r} with no {begin!r} before it")
            indent = lines[opened][: len(lines[opened]) - len(lines[opened].lstrip())]
            spans.append((opened, number, indent))
            opened = None
    if opened is not None:
        raise RegionError(f"{source}:{opened + 1}: {begin!r} is never closed by {end!r}")
    return spans


def find_regions(text: str, source: str = "<text>") -> list[Region]:
    """The student regions of a Python source, in order; RegionError if the markers are broken."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("#") and "OF YOUR CODE" in stripped and stripped not in (
            START_MARKER,
            END_MARKER,
        ):
            raise RegionError(
                f"{source}:{number + 1}: a marker line was changed; it must read exactly "
                f"{START_MARKER!r} or {END_MARKER!r}"
            )
    spans = _marker_spans(lines, START_MARKER, END_MARKER, source)
    return [Region(start, end, indent) for start, end, indent in spans]


def fill_regions(text: str, bodies, source: str = "<text>") -> str:
    """Replace the body of each region of ``text`` by the matching entry of ``bodies``.

    ``bodies`` is a sequence with one entry per region: None keeps that region as it is, a string
    (dedented code, any number of lines, may be empty) replaces it, indented to the START line.
    """
    lines = text.splitlines()
    regions = find_regions(text, source)
    if len(bodies) != len(regions):
        raise RegionError(f"{source}: {len(regions)} regions, but {len(bodies)} bodies were given")
    for region, body in reversed(list(zip(regions, bodies))):
        if body is None:
            continue
        code = [region.indent + line if line.strip() else "" for line in body.splitlines()]
        # One blank line on each side keeps the student's space visible between the markers.
        lines[region.start + 1 : region.end] = ["", *code, ""] if code else [""]
    return "\n".join(lines) + "\n"


def strip_regions(text: str, source: str = "<text>") -> str:
    """The same source with every student region emptied."""
    return fill_regions(text, [""] * len(find_regions(text, source)), source)


def strip_notebook_source(source: str, stub: str, where: str) -> str:
    """A notebook cell's source with hidden tests removed and each answer replaced by ``stub``."""
    lines = source.splitlines()
    for begin, end, replacement in (
        (HIDDEN_BEGIN, HIDDEN_END, None),
        (SOLUTION_BEGIN, SOLUTION_END, stub),
    ):
        for opened, closed, indent in reversed(_marker_spans(lines, begin, end, where)):
            new = [] if replacement is None else [indent + s for s in replacement.splitlines()]
            lines[opened : closed + 1] = new
    return "\n".join(lines)
