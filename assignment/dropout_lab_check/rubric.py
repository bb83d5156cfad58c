"""The rubric: points, visibility and partial credit per check, read from a TOML file.

The default is autograder/rubric.toml; ``--rubric FILE`` gives an instructor's own. A rubric is
validated in full before anything is graded: bad TOML, an unknown or missing check, negative or
non-numeric points, an unknown visibility or key are refused with the line at fault.

Format, one table per check (the check's name is its test function's name without ``test_``)::

    [checks.forward_test_mode_output]
    points = 2
    visibility = "visible"   # or "hidden", "after_due_date", "after_published" (Gradescope's)
    partial = false          # true: a check with several cases earns its share of passed cases

A rubric grades one flavour of the assignment, named by an optional top-level key (the default is
``flavour = "cs231n"``; autograder/rubric_scratch.toml grades the scratch flavour). Its checks are
those of autograder/checks/ that apply to that flavour: a check marked
``@pytest.mark.only_in("cs231n")`` tests something only that flavour has (the dropout_param dict,
the network's seed), and every other check serves every flavour.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

CHECKS_DIR = Path(__file__).with_name("checks")
DEFAULT_RUBRIC = Path(__file__).with_name("rubric.toml")
FLAVOUR_RUBRICS = {"cs231n": DEFAULT_RUBRIC, "scratch": Path(__file__).with_name("rubric_scratch.toml")}
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
KEYS = {"points", "visibility", "partial"}


class RubricError(ValueError):
    """A rubric that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class RubricEntry:
    points: float
    visibility: str = "visible"
    partial: bool = False


@dataclass(frozen=True)
class Rubric:
    path: Path
    entries: dict[str, RubricEntry]
    flavour: str = "cs231n"

    @property
    def max_score(self) -> float:
        return sum(entry.points for entry in self.entries.values())


def _only_in(function: ast.FunctionDef) -> set[str] | None:
    """The flavours of a check's ``@pytest.mark.only_in(...)`` marker (None: every flavour)."""
    for decorator in function.decorator_list:
        if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                and decorator.func.attr == "only_in"):
            return {arg.value for arg in decorator.args if isinstance(arg, ast.Constant)}
    return None


def known_checks(checks_dir: Path = CHECKS_DIR, flavour: str = "cs231n") -> list[str]:
    """Names of the checks in the check modules that apply to ``flavour``, read without importing them."""
    names = []
    for module in sorted(checks_dir.glob("test_*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"), str(module))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                flavours = _only_in(node)
                if flavours is None or flavour in flavours:
                    names.append(node.name[len("test_"):])
    return names


def _line_of(text: str, check: str, key: str | None = None) -> int:
    """The line of ``[checks.<check>]`` (or of ``key`` inside that table); 1 if not found."""
    lines = text.splitlines()
    header = re.compile(rf"^\s*\[\s*checks\s*\.\s*\"?{re.escape(check)}\"?\s*\]")
    for number, line in enumerate(lines, start=1):
        if header.match(line):
            if key is None:
                return number
            for offset, inner in enumerate(lines[number:], start=number + 1):
                if inner.lstrip().startswith("["):
                    break
                if re.match(rf"^\s*{re.escape(key)}\s*=", inner):
                    return offset
            return number
    return 1


def _entry(name: str, table, text: str, where: str) -> RubricEntry:
    def fail(message: str, key: str | None = None):
        raise RubricError(f"{where}:{_line_of(text, name, key)}: check {name!r}: {message}")

    if not isinstance(table, dict):
        fail("must be a table with a points value")
    for key in set(table) - KEYS:
        fail(f"unknown key {key!r} (known: {', '.join(sorted(KEYS))})", key)
    points = table.get("points")
    if isinstance(points, bool) or not isinstance(points, (int, float)):
        fail("points must be a number", "points" if "points" in table else None)
    if points < 0:
        fail(f"points must not be negative (got {points})", "points")
    visibility = table.get("visibility", "visible")
    if visibility not in VISIBILITIES:
        fail(f"visibility must be one of {', '.join(VISIBILITIES)} (got {visibility!r})", "visibility")
    partial = table.get("partial", False)
    if not isinstance(partial, bool):
        fail("partial must be true or false", "partial")
    return RubricEntry(float(points), visibility, partial)


def _toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = re.search(r"line (\d+)", str(error))
        raise RubricError(f"{where}:{line.group(1) if line else 1}: not valid TOML: {error}") from None


def flavour_of(data: dict, where: str) -> str:
    flavour = data.get("flavour", "cs231n")
    if flavour not in FLAVOUR_RUBRICS:
        raise RubricError(f"{where}: flavour must be one of {', '.join(FLAVOUR_RUBRICS)} (got {flavour!r})")
    return flavour


def parse_rubric(text: str, where: str, checks: list[str] | None = None) -> dict[str, RubricEntry]:
    """The rubric's entries; ``checks`` are the known checks (default: those of its flavour)."""
    data = _toml(text, where)
    for key in set(data) - {"checks", "flavour"}:
        raise RubricError(f"{where}: unknown top-level key {key!r}; put each check under [checks.NAME]")
    if checks is None:
        checks = known_checks(flavour=flavour_of(data, where))
    tables = data.get("checks", {})
    for name in tables:
        if name not in checks:
            raise RubricError(
                f"{where}:{_line_of(text, name)}: unknown check {name!r} (known checks: {', '.join(checks)})"
            )
    missing = [name for name in checks if name not in tables]
    if missing:
        raise RubricError(f"{where}: no entry for the check(s) {', '.join(missing)}; give each [checks.NAME] a points value (0 is allowed)")
    # In the rubric's own order, which is the order results list the checks in.
    return {name: _entry(name, table, text, where) for name, table in tables.items()}


def load_rubric(path: Path | str = DEFAULT_RUBRIC) -> Rubric:
    """The validated rubric in ``path``; RubricError (with the line) when it cannot be used."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RubricError(f"{path}: cannot read the rubric ({error})") from None
    flavour = flavour_of(_toml(text, str(path)), str(path))
    return Rubric(path, parse_rubric(text, str(path), known_checks(flavour=flavour)), flavour)
