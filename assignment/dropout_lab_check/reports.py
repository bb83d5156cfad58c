"""Rendering a GradeResult (stage 6 of a grade): JSON for machines, text for students.

The JSON is a superset of Gradescope's results.json. The text shows one line per check with a tick
or a cross and the points, then, for each lost point, the diagnosis sentence.
"""

from __future__ import annotations

import json

from dropout_lab_check.verdicts import GradeResult

PASS, FAIL = "\u2714", "\u2718"


def as_json(result: GradeResult) -> str:
    return json.dumps(result.to_json(), indent=2, sort_keys=False)


def _points(value: float) -> str:
    return f"{value:g}"


def protection_warning(result: GradeResult) -> str:
    """For the instructor: which of the sandbox's protections were missing when this result was
    graded, and why ("" when none was). Students' own feedback never carries it."""
    missing = result.extra_data.get("missing_protections") or []
    if not missing:
        return ""
    note = result.extra_data.get("sandbox_note")
    return ("Warning: graded WITHOUT the full sandbox" + (f" ({note})" if note else "") + ". Missing protections: "
            + ", ".join(missing) + ". The submission's code could reach the network and whatever this user "
            "can read or write.")


def as_text(result: GradeResult) -> str:
    width = max((len(test.name) for test in result.tests), default=10)
    lines = [f"Dropout Lab autograder: {result.submission}", ""]
    for test in result.tests:
        mark = PASS if test.status == "passed" else FAIL
        label = test.name + (" (hidden)" if test.visibility != "visible" else "")
        lines.append(f"  {mark} {label:<{width + 9}} {_points(test.score):>5} / {_points(test.max_score)}")
    lines += ["", f"  Score: {_points(result.score)} / {_points(result.max_score)}"]
    missing = result.extra_data.get("missing_files") or []
    if missing:
        lines += ["", "  Not found in your submission (graded as the empty stubs): " + ", ".join(missing)]
    failed = [test for test in result.tests if test.status != "passed"]
    if failed:
        lines += ["", "What to look at:"]
        # Checks that failed for the same reason share one explanation.
        by_output: dict[str, list[str]] = {}
        for test in failed:
            by_output.setdefault(test.output, []).append(test.name)
        for output, names in by_output.items():
            lines.append(f"  {FAIL} {', '.join(names)}")
            lines += [f"      {line}" for line in output.splitlines()]
    else:
        lines += ["", "  Every check passed. Well done!"]
    return "\n".join(lines)
