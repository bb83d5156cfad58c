"""From check outcomes to points (stage 5 of a grade): the one result type of the grader.

A check's ``Outcome`` says what happened (passed, or failed with a diagnosis id, a short detail for
the student and the student's own traceback lines); ``verdict`` combines it with the check's rubric
entry into a ``CheckResult``; ``GradeResult`` holds them all and is what the reports render.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dropout_lab_check.diagnoses import sentence
from dropout_lab_check.rubric import Rubric, RubricEntry


@dataclass
class Outcome:
    passed: bool
    diagnosis: str | None = None
    detail: str = ""  # written by the check; hidden checks do not show it
    statement: str = ""  # for diagnosis "measured": what was measured against what was expected
    student_lines: list[str] = field(default_factory=list)  # the student's own error and frames
    fraction: float | None = None  # share of the check's cases that passed (for partial credit)
    internal_error: str | None = None  # a bug in the grader, for the instructor only


@dataclass
class CheckResult:
    name: str
    score: float
    max_score: float
    status: str  # "passed" or "failed"
    output: str
    visibility: str
    diagnosis: str | None = None
    seeds: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name, "score": self.score, "max_score": self.max_score, "status": self.status,
            "output": self.output, "visibility": self.visibility,
            "extra_data": {"diagnosis": self.diagnosis, "seeds": self.seeds},
        }


@dataclass
class GradeResult:
    submission: str
    tests: list[CheckResult]
    execution_time: float
    extra_data: dict = field(default_factory=dict)

    @property
    def score(self) -> float:
        return round(sum(test.score for test in self.tests), 4)

    @property
    def max_score(self) -> float:
        return round(sum(test.max_score for test in self.tests), 4)

    def to_json(self) -> dict:
        return {
            "score": self.score, "max_score": self.max_score,
            "execution_time": round(self.execution_time, 3),
            "tests": [test.to_json() for test in self.tests],
            "extra_data": {"submission": self.submission, **self.extra_data},
        }


def _output(outcome: Outcome, entry: RubricEntry, flavour: str = "cs231n") -> str:
    if outcome.passed:
        return "Passed."
    if outcome.diagnosis is None:
        text = ("The grader could not run this check; your instructor has the details."
                if outcome.internal_error else "This check failed.")
    elif outcome.diagnosis == "measured" and outcome.statement:
        text = outcome.statement
    else:
        text = sentence(outcome.diagnosis, flavour)
    # Details may describe the check's inputs, so hidden checks show the sentence only.
    if outcome.detail and entry.visibility == "visible":
        text += f"\n{outcome.detail}"
    lines = outcome.student_lines
    if outcome.diagnosis == "not_implemented":
        lines = lines[:1]  # the TODO message says where to write; its traceback adds only noise
    if lines:
        text += "\n" + "\n".join(lines)
    return text


def verdict(name: str, entry: RubricEntry, outcome: Outcome, seeds: dict, flavour: str = "cs231n") -> CheckResult:
    """A check's result, its diagnosis phrased in the words of ``flavour``."""
    if outcome.passed:
        score = entry.points
    elif entry.partial and outcome.fraction:
        score = round(entry.points * outcome.fraction, 2)
    else:
        score = 0.0
    return CheckResult(
        name=name, score=score, max_score=entry.points, status="passed" if outcome.passed else "failed",
        output=_output(outcome, entry, flavour), visibility=entry.visibility, diagnosis=outcome.diagnosis, seeds=seeds,
    )


def refused_result(name: str, rubric: Rubric, reason: str, execution_time: float = 0.0) -> GradeResult:
    """The result of a submission that was refused or could not be run at all: every check failed."""
    outcome = Outcome(passed=False, detail=reason)
    tests = [verdict(check, entry, outcome, {}) for check, entry in rubric.entries.items()]
    for test in tests:  # the reason is about the submission, not the check: show it on every one
        test.output = f"Not graded: {reason}"
    return GradeResult(name, tests, execution_time, {"error": reason})
