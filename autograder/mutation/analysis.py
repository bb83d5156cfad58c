"""Mutation analysis of the reference's student regions, with the grader as the oracle.

``python -m autograder mutation`` asks Cosmic Ray (a mutation-testing library, pinned in the lock
files) for every small change its operators make to the code between the marker lines of
``solution/nnlab/layers.py`` and ``solution/nnlab/classifiers/fc_net.py`` (with ``--flavour scratch``,
of that flavour's ``layers.py`` and ``multi_layer_net.py``), and grades each mutant with
``python -m autograder grade`` (the scratch flavour's in both dropout styles). A mutant is killed when it does not get full marks, or when
grading it produces no result; it survives when it gets full marks. A survivor is a wrong layer the
grader accepts, unless the change keeps the code correct: such mutants are listed in
``equivalent.toml`` beside this file (``equivalent_scratch.toml`` for the scratch flavour), each
with its reason. The mutation score is
killed / (all mutants - equivalent ones).

The work happens in a temporary copy of the two graded files; ``solution/`` is only read. The steps
are Cosmic Ray's own: ``cosmic-ray init`` lists the mutations of the copy, ``cr-filter-lines`` marks
those outside the student regions as skipped, ``cosmic-ray exec`` applies each remaining mutation to
the copy in turn, runs the oracle (``autograder/mutation/oracle.py``) and restores the file. The
session database stays in the temporary folder (``--keep DIR`` keeps it).

A mutant is named by what it changes, not by Cosmic Ray's job id (new on every run): the graded
file, the region (two regions may hold the same line), the text of the line it changes, the operator (with its arguments) and, when the
operator changes that line in more than one place, which place. ``equivalent.toml`` uses these
names, so it stays valid across runs as long as the reference's lines do not change.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from autograder.bank import reference_source
from autograder.conventions import CS231N, Convention, convention
from autograder.limits import DEFAULT_BASE_SEED
from autograder.mutation import oracle
from autograder.paths import REPO_ROOT, SOLUTION_DIR
from autograder.regions import find_regions

HERE = Path(__file__).resolve().parent
CONFIG_TEMPLATE = HERE / "cosmic-ray.toml"
EQUIVALENTS_FILE = HERE / "equivalent.toml"
EQUIVALENTS_FILES = {"cs231n": EQUIVALENTS_FILE, "scratch": HERE / "equivalent_scratch.toml"}
# The graded files sit under nnlab/ in a submission; Cosmic Ray's module path is that nnlab/.
PACKAGE = "nnlab"


class AnalysisError(RuntimeError):
    """The analysis could not run (Cosmic Ray failed, or the reference itself lost points)."""


@dataclass(frozen=True)
class Mutant:
    """One mutation of a student region, named stably (see the module's docstring)."""

    file: str  # the graded file, relative to a tree: "nnlab/layers.py"
    region: str  # its region's name, from the convention's region names (autograder.regions.REGION_NAMES)
    line: str  # the text of the line it changes, stripped
    operator: str  # Cosmic Ray's operator, with its arguments: "core/VariableReplacer(cause_variable=p, ...)"
    place: int  # which of this operator's changes to this line, from 0 (in source order)
    lineno: int = field(compare=False)  # where the line is in solution/ (not part of the name)
    mutated: str = field(compare=False)  # the changed line, stripped (random constants vary by run)

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        return (self.file, self.region, self.line, self.operator, self.place)

    def describe(self) -> str:
        place = f" (place {self.place})" if self.place else ""
        return (
            f"{self.file}:{self.lineno} [{self.region}] {self.operator}{place}\n"
            f"    - {self.line}\n"
            f"    + {self.mutated}"
        )


@dataclass
class Outcome:
    mutant: Mutant
    killed: bool
    summary: str  # the oracle's line: the score and the checks that lost points


@dataclass
class Equivalent:
    file: str
    region: str
    line: str
    operator: str
    place: int
    mutated: str
    reason: str

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        return (self.file, self.region, self.line, self.operator, self.place)


@dataclass
class Report:
    outcomes: list[Outcome]
    equivalents: list[Equivalent]
    seconds: float
    base_seed: int
    complete: bool = True  # every mutant was graded (not a sample)
    convention: Convention = CS231N

    def _is_equivalent(self, mutant: Mutant) -> bool:
        return mutant.key in {entry.key for entry in self.equivalents}

    @property
    def killed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.killed and not self._is_equivalent(o.mutant)]

    @property
    def survivors(self) -> list[Outcome]:
        """Mutants with full marks that are not listed as equivalent."""
        return [o for o in self.outcomes if not o.killed and not self._is_equivalent(o.mutant)]

    @property
    def equivalent(self) -> list[Outcome]:
        return [o for o in self.outcomes if self._is_equivalent(o.mutant)]

    @property
    def equivalent_killed(self) -> list[Outcome]:
        """Mutants listed as equivalent that lost points: correct code the grader marked down."""
        return [o for o in self.equivalent if o.killed]

    @property
    def stale_equivalents(self) -> list[Equivalent]:
        """Entries of the list that name no mutant of a complete run (the reference's line changed?)."""
        if not self.complete:
            return []
        keys = {o.mutant.key for o in self.outcomes}
        return [entry for entry in self.equivalents if entry.key not in keys]

    @property
    def score(self) -> float:
        scored = len(self.outcomes) - len(self.equivalent)
        return len(self.killed) / scored if scored else 1.0

    def text(self, verbose: bool = False) -> str:
        total, equivalent = len(self.outcomes), len(self.equivalent)
        lines = [
            "Mutation analysis of the reference's student regions "
            f"(Cosmic Ray {_cosmic_ray_version()}, the grader as the oracle, base seed {self.base_seed})",
            "",
            f"  flavour: {self.convention.flavour}" + (" (each mutant graded in both dropout styles)"
                                                         if self.convention.flavour != "cs231n" else ""),
            f"  mutants: {total} (by region: {_by_region(self.outcomes, self.convention.region_names)})",
            f"  killed: {len(self.killed)}   equivalent: {equivalent}   surviving: {len(self.survivors)}",
            f"  mutation score: killed / (mutants - equivalent) = {len(self.killed)} / {total - equivalent}"
            f" = {100 * self.score:.1f}%",
            f"  time: {self.seconds:.0f} s",
        ]
        if verbose:
            lines += ["", "Every mutant and its grade:"]
            lines += [_indent(f"{o.mutant.describe()}\n    {o.summary}") for o in self.outcomes]
        if self.survivors:
            lines += ["", "Surviving mutants (full marks, not listed as equivalent):"]
            lines += [_indent(o.mutant.describe()) for o in self.survivors]
        if self.equivalent_killed:
            lines += ["", "Listed as equivalent, yet they lost points (the grader marked down correct code):"]
            lines += [_indent(f"{o.mutant.describe()}\n    {o.summary}") for o in self.equivalent_killed]
        if self.stale_equivalents:
            lines += ["", f"Listed in {EQUIVALENTS_FILES[self.convention.flavour].name} but no such mutant exists "
                      "(remove or update them):"]
            lines += [f"  {e.file} [{e.region}] {e.operator}: {e.line}" for e in self.stale_equivalents]
        if not self.survivors and not self.equivalent_killed:
            lines += ["", "Every mutant that is not equivalent loses points."]
        return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _by_region(outcomes: list[Outcome], region_names: dict) -> str:
    counts: dict[str, int] = {}
    for names in region_names.values():
        for name in names:
            counts[name] = 0
    for outcome in outcomes:
        counts[outcome.mutant.region] += 1
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def _cosmic_ray_version() -> str:
    from importlib.metadata import version

    return version("cosmic-ray")


def load_equivalents(path: Path = EQUIVALENTS_FILE) -> list[Equivalent]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    entries = []
    for number, raw in enumerate(data.get("equivalent", []), 1):
        try:
            entries.append(Equivalent(
                file=raw["file"], region=raw["region"], line=raw["line"], operator=raw["operator"],
                place=int(raw.get("place", 0)), mutated=raw["mutated"], reason=raw["reason"],
            ))
        except KeyError as missing:
            raise AnalysisError(f"{path}: entry {number} has no {missing}") from None
    return entries


# --- the workspace: a copy of the graded files, Cosmic Ray's configuration and its session ----------


@dataclass
class Workspace:
    root: Path  # the temporary folder
    submission: Path  # root/submission: a folder the grader grades, holding nnlab/
    config: Path
    session: Path
    regions: dict[str, list[tuple[int, int, str]]]  # graded file -> (first line, last line, name), 1-based
    base_seed: int
    convention: Convention = CS231N

    def module_file(self, graded_file: str) -> Path:
        return self.submission / graded_file


def _region_lines(text: str, graded_file: str, region_names: dict) -> list[tuple[int, int, str]]:
    """The lines strictly between each pair of marker lines, 1-based and inclusive, with the names."""
    regions = find_regions(text, graded_file)
    names = region_names[graded_file]
    if len(regions) != len(names):
        raise AnalysisError(f"{graded_file}: {len(regions)} student regions, expected {len(names)}")
    return [(region.start + 2, region.end, name) for region, name in zip(regions, names)]


def prepare(root: Path, base_seed: int = DEFAULT_BASE_SEED, solution: Path = SOLUTION_DIR,
            flavour: str = "cs231n") -> Workspace:
    """Copy the flavour's graded files of ``solution`` into ``root`` and write Cosmic Ray's configuration."""
    from cosmic_ray.config import load_config, serialize_config

    root = Path(root).resolve()
    submission = root / "submission"
    conv = convention(flavour)
    regions = {}
    for graded_file in conv.graded_files:
        target = submission / graded_file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(reference_source(graded_file, conv, solution), encoding="utf-8")
        regions[graded_file] = _region_lines(target.read_text(encoding="utf-8"), graded_file, conv.region_names)

    config = load_config(str(CONFIG_TEMPLATE))
    config["module-path"] = str(submission / PACKAGE)
    config["test-command"] = subprocess.list2cmdline(
        [sys.executable, "-m", "autograder.mutation.oracle", str(submission), "--seed", str(base_seed),
         "--flavour", flavour]
    )
    lines = {
        str(Path(graded_file).relative_to(PACKAGE)): [f"{first}-{last}" for first, last, _ in spans]
        for graded_file, spans in regions.items()
    }
    config.setdefault("filters", {})["line-filter"] = {"lines": lines}
    config_path = root / "cosmic-ray.toml"
    config_path.write_text(serialize_config(config), encoding="utf-8")
    return Workspace(root, submission, config_path, root / "session.sqlite", regions, base_seed, conv)


def _cosmic_ray(workspace: Workspace, *args: str) -> None:
    """Run one of Cosmic Ray's commands (a module run with this interpreter) and check it worked.

    The working directory is the kit's root, so the oracle grades with this checkout's grader.
    """
    log = workspace.root / "cosmic-ray.log"
    with log.open("a", encoding="utf-8") as out:
        done = subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-20:])
        raise AnalysisError(f"`{' '.join(args[:2])}` failed with exit status {done.returncode}:\n{tail}")


def init_session(workspace: Workspace) -> None:
    """``cosmic-ray init`` then ``cr-filter-lines``: the session lists the regions' mutations only."""
    _cosmic_ray(workspace, "cosmic_ray.cli", "init", str(workspace.config), str(workspace.session))
    _cosmic_ray(workspace, "cosmic_ray.tools.filters.line_filter", "--config", str(workspace.config),
                str(workspace.session))


def _operator_label(spec) -> str:
    args = spec.operator_args or {}
    if not args:
        return spec.operator_name
    return f"{spec.operator_name}({', '.join(f'{k}={v}' for k, v in sorted(args.items()))})"


def _mutated_line(source: str, spec, lineno: int) -> str:
    """The line as this mutation changes it (with a fixed seed for operators that draw constants)."""
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    operator = cosmic_ray.plugins.get_operator(spec.operator_name)(**(spec.operator_args or {}))
    state = random.getstate()
    random.seed(0)
    try:
        mutated = mutate_code(source, operator, spec.occurrence)
    finally:
        random.setstate(state)
    if mutated is None:
        return "?"
    return mutated.splitlines()[lineno - 1].strip()


def _mutated_line_from_diff(diff: str | None) -> str | None:
    for line in (diff or "").splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            return line[1:].strip()
    return None


def session_mutants(workspace: Workspace, with_changes: bool = True) -> dict[str, Mutant]:
    """Cosmic Ray's job id -> the mutant it names, for the pending jobs (those the filters kept).

    ``with_changes`` fills in each mutant's changed line (a parse of the file per mutant).
    """
    from cosmic_ray.work_db import WorkDB, use_db

    with use_db(str(workspace.session), WorkDB.Mode.open) as db:
        items = list(db.pending_work_items)
    graded_files = workspace.convention.graded_files
    by_file = {str(workspace.module_file(f)): f for f in graded_files}
    sources = {f: workspace.module_file(f).read_text(encoding="utf-8") for f in graded_files}

    found = []
    for item in items:
        if len(item.mutations) != 1:
            raise AnalysisError(f"job {item.job_id} holds {len(item.mutations)} mutations, expected 1")
        spec = item.mutations[0]
        graded_file = by_file[str(spec.module_path)]
        lineno = spec.start_pos[0]
        region = next(name for first, last, name in workspace.regions[graded_file] if first <= lineno <= last)
        found.append((item.job_id, graded_file, region, lineno, _operator_label(spec), spec))

    # Which of an operator's changes to one line a mutation is: its rank among them by occurrence.
    found.sort(key=lambda row: (row[1], row[3], row[4], row[5].occurrence))
    mutants, seen = {}, {}
    for job_id, graded_file, region, lineno, label, spec in found:
        place = seen.get((graded_file, lineno, label), 0)
        seen[(graded_file, lineno, label)] = place + 1
        source = sources[graded_file]
        mutants[job_id] = Mutant(
            file=graded_file, region=region, line=source.splitlines()[lineno - 1].strip(), operator=label,
            place=place, lineno=lineno, mutated=_mutated_line(source, spec, lineno) if with_changes else "?",
        )
    return mutants


def restrict(workspace: Workspace, keep: set[tuple]) -> dict[str, Mutant]:
    """Mark every pending job whose mutant's key is not in ``keep`` as skipped, as a filter would."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    mutants = session_mutants(workspace, with_changes=False)
    missing = keep - {m.key for m in mutants.values()}
    if missing:
        raise AnalysisError(f"no such mutants: {sorted(missing)}")
    dropped = [job_id for job_id, mutant in mutants.items() if mutant.key not in keep]
    if dropped:
        with use_db(str(workspace.session), WorkDB.Mode.open) as db:
            db.set_multiple_results(
                dropped, WorkResult(output="not in the sample", worker_outcome=WorkerOutcome.SKIPPED)
            )
    return {job_id: mutant for job_id, mutant in mutants.items() if mutant.key in keep}


def check_baseline(workspace: Workspace) -> None:
    """The unmutated copy must get full marks, or every mutant would count as killed."""
    status, summary = oracle.grade(str(workspace.submission), workspace.base_seed, workspace.convention.flavour)
    if status != oracle.FULL_MARKS:
        raise AnalysisError(f"the reference itself does not get full marks, so nothing can be learnt: {summary}")


def execute(workspace: Workspace) -> list[Outcome]:
    """``cosmic-ray exec``, then each mutant with its verdict."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    mutants = session_mutants(workspace, with_changes=False)
    _cosmic_ray(workspace, "cosmic_ray.cli", "exec", str(workspace.config), str(workspace.session))
    outcomes = []
    with use_db(str(workspace.session), WorkDB.Mode.open) as db:
        results = {item.job_id: result for item, result in db.completed_work_items}
    for job_id, mutant in mutants.items():
        result = results.get(job_id)
        if result is None or result.worker_outcome != WorkerOutcome.NORMAL:
            detail = "no result" if result is None else f"{result.worker_outcome.value}: {result.output}"
            raise AnalysisError(f"Cosmic Ray could not test {mutant.describe()}\n{detail}")
        if result.test_outcome == TestOutcome.INCOMPETENT:
            raise AnalysisError(f"the oracle could not be started for {mutant.describe()}\n{result.output}")
        applied = _mutated_line_from_diff(result.diff) or mutant.mutated
        shown = Mutant(mutant.file, mutant.region, mutant.line, mutant.operator, mutant.place,
                       mutant.lineno, applied)
        summary = (result.output or "").strip().splitlines()
        outcomes.append(Outcome(shown, result.test_outcome == TestOutcome.KILLED, summary[-1] if summary else ""))
    outcomes.sort(key=lambda o: (o.mutant.file, o.mutant.lineno, o.mutant.operator, o.mutant.place))
    return outcomes


@contextlib.contextmanager
def workspace_in(keep: Path | None, base_seed: int, flavour: str = "cs231n"):
    if keep is not None:
        if keep.exists() and any(keep.iterdir()):
            raise AnalysisError(f"{keep} exists and is not empty")
        keep.mkdir(parents=True, exist_ok=True)
        yield prepare(keep, base_seed, flavour=flavour)
        return
    with tempfile.TemporaryDirectory(prefix="dropout-lab-mutation-") as root:
        yield prepare(Path(root), base_seed, flavour=flavour)


def list_mutants(base_seed: int = DEFAULT_BASE_SEED, flavour: str = "cs231n") -> list[Mutant]:
    """Every mutant of the student regions, without grading any (for checking the equivalence list)."""
    with workspace_in(None, base_seed, flavour) as workspace:
        init_session(workspace)
        return sorted(session_mutants(workspace).values(), key=lambda m: (m.file, m.lineno, m.operator, m.place))


def analyse(sample: set[tuple] | None = None, base_seed: int = DEFAULT_BASE_SEED, keep: Path | None = None,
            progress=None, flavour: str = "cs231n") -> Report:
    """Run the analysis: every mutant of the student regions, or only those whose keys are in ``sample``."""
    started = time.perf_counter()
    with workspace_in(keep, base_seed, flavour) as workspace:
        init_session(workspace)
        return grade_session(workspace, sample, progress, started)


def grade_session(workspace: Workspace, sample: set[tuple] | None = None, progress=None,
                  started: float | None = None) -> Report:
    """Grade the pending mutants of an initialised session (only the ``sample`` ones, if given)."""
    started = time.perf_counter() if started is None else started
    if sample is not None:
        restrict(workspace, set(sample))
    count = len(session_mutants(workspace, with_changes=False))
    if progress:
        progress(f"{count} mutants in the student regions; grading the unmutated reference first")
    check_baseline(workspace)
    if progress:
        progress(f"grading {count} mutants, one at a time")
    outcomes = execute(workspace)
    equivalents = load_equivalents(EQUIVALENTS_FILES[workspace.convention.flavour])
    return Report(outcomes, equivalents, time.perf_counter() - started, workspace.base_seed,
                  complete=sample is None, convention=workspace.convention)


def survivors_text(report: Report) -> str:
    """The survivors, one block each with the line as changed and the line it replaced."""
    lines = [
        f"# {len(report.survivors)} surviving mutants (full marks, not listed as equivalent) of "
        f"{len(report.outcomes)}; base seed {report.base_seed}",
    ]
    for outcome in report.survivors:
        lines += ["", outcome.mutant.describe()]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError

    try:
        import cosmic_ray  # noqa: F401
    except ModuleNotFoundError:
        raise UsageError("Cosmic Ray is not installed: run `bash setup.sh` (it installs the lock file's cosmic-ray)")
    if args.list:
        try:
            mutants = list_mutants(args.seed, args.flavour)
        except AnalysisError as error:
            raise UsageError(str(error)) from None
        for mutant in mutants:
            print(mutant.describe())
        print(f"{len(mutants)} mutants")
        return 0
    keep = Path(args.keep).resolve() if args.keep else None
    try:
        report = analyse(base_seed=args.seed, keep=keep, flavour=args.flavour,
                         progress=lambda text: print(text, file=sys.stderr, flush=True))
    except AnalysisError as error:
        raise UsageError(str(error)) from None
    print(report.text(verbose=args.verbose))
    if args.survivors:
        Path(args.survivors).write_text(survivors_text(report), encoding="utf-8")
    return 1 if report.survivors or report.equivalent_killed or report.stale_equivalents else 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "mutation",
        help="mutation analysis of the reference's student regions, with the grader as the oracle",
        description=(
            "Grade every mutant that Cosmic Ray makes of the student regions of solution/ and print the "
            "mutation score, killed / (mutants - equivalent), with the surviving mutants that "
            "autograder/mutation/equivalent.toml does not list. Exit status 0 when every other mutant "
            "lost points, 1 when one survived, an equivalent one lost points or the list names a mutant "
            "that does not exist."
        ),
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_BASE_SEED,
                        help="the grader's base seed (default: %(default)s)")
    parser.add_argument("--flavour", choices=("cs231n", "scratch"), default="cs231n",
                        help="whose student regions: the CS231n flavour's or the scratch flavour's (default: %(default)s)")
    parser.add_argument("--survivors", metavar="FILE", help="also write the surviving mutants to FILE")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR (new or empty) and keep Cosmic Ray's session there")
    parser.add_argument("--list", action="store_true", help="list the mutants without grading them")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="also print every mutant with its grade and the checks that lost points")
    parser.set_defaults(run=run)
