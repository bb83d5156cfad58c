"""The pytest plugin that turns the checks in autograder/checks/ into graded results.

One pytest session serves any number of grading jobs (a job is one submission tree graded with one
base seed): every check is parametrized over the jobs with session scope, the items are ordered job
by job, and as soon as a job's last check has run its ``GradeResult`` is built and handed to
``on_result``. Collection therefore happens once per session, not once per submission or per check,
and jobs that share a tree (the bank's seeds) share one child process.

Fixtures for checks:
- ``submission``: the student's code (autograder.observations.Submission), running in the child;
- ``rng``: a numpy Generator seeded from the job's base seed and the check's name, for inputs and
  for the seeds passed to the student; the seeds go into the result so a failure can be replayed;
- ``partial_credit``: ``partial_credit.case(passed)`` counts a check's cases for partial credit;
- ``convention``: the flavour's convention (autograder.conventions): what a kept unit is multiplied
  by in training and at test time, which the checks state their properties in.

The rubric names the flavour; checks marked ``@pytest.mark.only_in(...)`` for another flavour are
left out of the session.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from dropout_lab_check.conventions import Convention
from dropout_lab_check.diagnoses import Measured, Misconception
from dropout_lab_check.limits import DEFAULT_LIMITS, ChildLimits
from dropout_lab_check.observations import Submission
from dropout_lab_check.rubric import CHECKS_DIR, Rubric
from dropout_lab_check.runner import Child, ChildFailure, bwrap_status, protections
from dropout_lab_check.runner import release_convention
from dropout_lab_check.verdicts import GradeResult, Outcome, verdict

class GraderError(RuntimeError):
    """The grader itself could not run (not the submission's fault)."""


@dataclass(eq=False)
class GradingJob:
    key: str  # unique within a session
    name: str  # the submission's name, shown in results
    tree: Path  # private tree built by autograder.submission
    base_seed: int
    missing: list[str] = field(default_factory=list)
    only_checks: frozenset | None = None  # run only these checks (the bank's wrong entries)

    def runs(self, check: str) -> bool:
        return self.only_checks is None or check in self.only_checks


def check_name(item_or_function) -> str:
    function = getattr(item_or_function, "function", item_or_function)
    return function.__name__[len("test_"):]


def check_seed(base_seed: int, check: str) -> int:
    """The seed of one check in one grade: a stable function of the base seed and the check's name."""
    digest = hashlib.sha256(f"{base_seed}:{check}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


class PartialCredit:
    """Counts a check's cases. A check declares up front how many cases it will run
    (``expect(n)``), so that one that stops early, by a crash or a misconception raised mid-way,
    earns the share of ALL its cases that passed, never more than a wrong answer would."""

    def __init__(self):
        self.passed = 0
        self.total = 0
        self.expected = 0

    def expect(self, cases: int) -> None:
        self.expected = cases

    def case(self, passed: bool) -> bool:
        self.total += 1
        self.passed += bool(passed)
        return bool(passed)

    @property
    def fraction(self) -> float | None:
        cases = max(self.total, self.expected)
        return self.passed / cases if cases else None


def _job_of(item) -> GradingJob | None:
    callspec = getattr(item, "callspec", None)
    job = callspec.params.get("grading_job") if callspec else None
    return job if isinstance(job, GradingJob) else None


def applies_to(item_or_function, flavour: str) -> bool:
    """Whether a check serves ``flavour`` (its ``only_in`` marker, if any, names it)."""
    marks = getattr(item_or_function, "pytestmark", None) or getattr(getattr(item_or_function, "function", None), "pytestmark", [])
    for mark in marks:
        if mark.name == "only_in":
            return flavour in mark.args
    return True


def _diagnosis_marker(item) -> str | None:
    marker = item.get_closest_marker("diagnosis")
    return marker.args[0] if marker and marker.args else None


def outcome_of(item, excinfo) -> Outcome:
    """What a check's exception (or its absence) means for the student."""
    credit = item.funcargs.get("partial_credit") if hasattr(item, "funcargs") else None
    fraction = credit.fraction if isinstance(credit, PartialCredit) else None
    if excinfo is None:
        return Outcome(passed=True)
    error = excinfo.value
    if isinstance(error, Measured):
        return Outcome(False, "measured", error.detail, statement=error.statement, fraction=fraction)
    if isinstance(error, Misconception):
        return Outcome(False, error.diagnosis_id, error.detail, fraction=fraction)
    if isinstance(error, ChildFailure):
        return Outcome(False, error.kind, student_lines=[error.message, *error.frames], fraction=fraction)
    if isinstance(error, AssertionError):
        return Outcome(False, _diagnosis_marker(item), fraction=fraction)
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return Outcome(False, None, fraction=fraction, internal_error=text[-4000:])


class GradingPlugin:
    def __init__(self, jobs: list[GradingJob], rubric: Rubric, limits: ChildLimits = DEFAULT_LIMITS,
                 on_result=None, brief_reports: bool = False, convention: Convention | None = None):
        self.jobs = list(jobs)
        self.convention = convention or release_convention(rubric.flavour)
        if self.convention.flavour != rubric.flavour:
            raise GraderError(f"the rubric grades flavour {rubric.flavour}, not {self.convention.flavour}")
        self.brief_reports = brief_reports
        self.rubric = rubric
        self.limits = limits
        self.on_result = on_result
        self.results: dict[str, GradeResult] = {}
        self._order = {job.key: index for index, job in enumerate(self.jobs)}
        self._outcomes: dict[str, dict[str, Outcome]] = {job.key: {} for job in self.jobs}
        self._seeds: dict[tuple[str, str], dict] = {}
        self._pending: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self._children: dict[Path, Child] = {}
        self._tree_users: dict[Path, int] = {}
        self._budget_owner: dict[Path, GradingJob] = {}

    # -- collection ---------------------------------------------------------------------------
    def pytest_generate_tests(self, metafunc):
        if "grading_job" in metafunc.fixturenames:
            check = check_name(metafunc.function)
            applies = applies_to(metafunc.function, self.convention.flavour)
            jobs = [job for job in self.jobs if applies and job.runs(check)]
            metafunc.parametrize("grading_job", jobs, ids=[job.key for job in jobs], scope="session")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        unknown = sorted({check_name(item) for item in items if applies_to(item, self.convention.flavour)}
                         - set(self.rubric.entries))
        if unknown:
            raise GraderError(f"checks without a rubric entry: {', '.join(unknown)}")
        graded = [item for item in items if _job_of(item) is not None]
        # Job by job, so that each job's result is complete as early as possible.
        graded.sort(key=lambda item: self._order[_job_of(item).key])
        items[:] = graded
        for item in graded:
            job = _job_of(item)
            self._pending[job.key] = self._pending.get(job.key, 0) + 1
        for job in self.jobs:
            if job.key in self._pending:
                self._tree_users[job.tree] = self._tree_users.get(job.tree, 0) + 1
            else:  # nothing to run (only_checks matched nothing): still a result
                self._finish(job)

    # -- running ------------------------------------------------------------------------------
    def child_for(self, job: GradingJob) -> Child:
        child = self._children.get(job.tree)
        if child is None:
            workdir = job.tree.parent / "child"
            workdir.mkdir(exist_ok=True)
            child = self._children[job.tree] = Child(job.tree, workdir, self.limits)
        if self._budget_owner.get(job.tree) is not job:  # each submission gets its own wall-clock budget
            self._budget_owner[job.tree] = job
            child.reset_budget()
        return child

    def record_seed(self, job: GradingJob, check: str, seed: int) -> None:
        self._seeds[(job.key, check)] = {"base": job.base_seed, "check": seed}

    def pytest_runtest_setup(self, item):
        job = _job_of(item)
        if job is not None:
            self._started.setdefault(job.key, time.perf_counter())

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item, call):
        job = _job_of(item)
        if job is None:
            return None
        outcome = outcome_of(item, call.excinfo)
        failed_setup = call.excinfo is not None and not isinstance(call.excinfo.value, pytest.skip.Exception)
        if call.when == "call" or (call.when == "setup" and failed_setup):
            self._outcomes[job.key][check_name(item)] = outcome
        if not self.brief_reports or outcome.internal_error is not None:
            return None  # pytest's own report, with the traceback a check's author wants to see
        # A failing check is the grader's ordinary answer, and the grade keeps its own record of
        # it: the report carries one line instead of the traceback pytest would format for it.
        error = call.excinfo.value if call.excinfo is not None else None
        return pytest.TestReport(
            item.nodeid, item.location, {}, "passed" if error is None else "failed",
            None if error is None else f"{type(error).__name__}: {error}", call.when, [],
            call.duration, call.start, call.stop, user_properties=item.user_properties,
        )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item, nextitem):
        try:
            return (yield)
        finally:
            job = _job_of(item)
            if job is not None:
                self._pending[job.key] -= 1
                if self._pending[job.key] == 0:
                    self._finish(job)

    def pytest_sessionfinish(self, session):
        for child in self._children.values():
            child.stop()
        self._children.clear()

    # -- results ------------------------------------------------------------------------------
    def _finish(self, job: GradingJob) -> None:
        outcomes = self._outcomes[job.key]
        tests = [
            verdict(check, entry, outcomes[check], self._seeds.get((job.key, check), {}), self.convention.flavour)
            for check, entry in self.rubric.entries.items() if check in outcomes
        ]
        in_force, missing = protections(self.limits)
        extra = {
            "base_seed": job.base_seed,
            "missing_files": list(job.missing),
            "protections": in_force,
            "missing_protections": missing,
        }
        if missing and self.limits.use_bubblewrap:
            extra["sandbox_note"] = bwrap_status()[1]
        internal = {check: o.internal_error for check, o in outcomes.items() if o.internal_error}
        if internal:
            extra["grader_errors"] = internal
        child = self._children.get(job.tree)
        if child is not None:
            extra["student_output"] = child.output()
            self._tree_users[job.tree] -= 1
            if self._tree_users[job.tree] == 0:
                child.stop()
                del self._children[job.tree]
        elapsed = time.perf_counter() - self._started.get(job.key, time.perf_counter())
        result = GradeResult(job.name, tests, elapsed, extra)
        self.results[job.key] = result
        if self.on_result is not None:
            self.on_result(job, result)


# -- fixtures (re-exported by autograder/checks/conftest.py) ------------------------------------
PLUGIN_KEY = pytest.StashKey[GradingPlugin]()


def registered_plugin(config) -> GradingPlugin | None:
    """The session's grading plugin (looked up once, then kept in the config's stash)."""
    plugin = config.stash.get(PLUGIN_KEY, None)
    if plugin is None:
        plugin = next((found for found in config.pluginmanager.get_plugins() if isinstance(found, GradingPlugin)), None)
        if plugin is not None:
            config.stash[PLUGIN_KEY] = plugin
    return plugin


def _plugin(request) -> GradingPlugin:
    plugin = registered_plugin(request.config)
    if plugin is None:
        raise GraderError("the grading plugin is not registered: run the checks with --submission PATH")
    return plugin


@pytest.fixture
def submission(request, grading_job) -> Submission:
    """The student's code; each call runs in the sandboxed child."""
    plugin = _plugin(request)
    return Submission(plugin.child_for(grading_job), plugin.convention)


@pytest.fixture
def convention(request) -> Convention:
    """The flavour's convention: the factors a kept unit gets in training and at test time."""
    return _plugin(request).convention


@pytest.fixture
def rng(request, grading_job) -> np.random.Generator:
    """This check's generator, seeded from the base seed and the check's name (recorded)."""
    seed = check_seed(grading_job.base_seed, check_name(request.node))
    _plugin(request).record_seed(grading_job, check_name(request.node), seed)
    return np.random.default_rng(seed)


@pytest.fixture
def partial_credit() -> PartialCredit:
    return PartialCredit()


# -- running a session ---------------------------------------------------------------------------
# --tb=native: failures are expected and frequent, and pytest's rich tracebacks are slow to build.
# -s and the -p no: list: the checks print nothing, use no pytest logging, debugging, report,
# temporary-folder, unittest or subtest support, and start no threads, and each of these plugins
# costs time on every item (capture, log handlers, exception hooks) or every session (third-party
# plugins' imports). The warnings plugin stays: it applies the -W filter, and it keeps warnings
# raised in checks out of the grader's own output.
UNUSED_PLUGINS = ("logging", "faulthandler", "junitxml", "doctest", "pastebin", "stepwise", "legacypath",
                  "setuponly", "setupplan", "debugging", "anyio", "platformdirs", "unraisableexception",
                  "threadexception", "unittest", "tmpdir", "subtests")
PYTEST_ARGS = ("-q", "--tb=native", "--no-header", "-s", "-W", "ignore::pytest.PytestAssertRewriteWarning",
               *(argument for name in UNUSED_PLUGINS for argument in ("-p", f"no:{name}")))


def run_grading(jobs: list[GradingJob], rubric: Rubric, limits: ChildLimits = DEFAULT_LIMITS,
                on_result=None, convention: Convention | None = None) -> dict[str, GradeResult]:
    """Grade every job in one pytest session; returns results by job key. The jobs' trees must
    have been prepared for the same convention (autograder.submission.prepare)."""
    plugin = GradingPlugin(jobs, rubric, limits, on_result, brief_reports=True, convention=convention)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        code = pytest.main(
            [str(CHECKS_DIR), "-c", str(CHECKS_DIR / "pytest.ini"), "--rootdir", str(CHECKS_DIR), *PYTEST_ARGS],
            plugins=[plugin],
        )
    missing = [job.key for job in jobs if job.key not in plugin.results]
    if missing:
        raise GraderError(f"pytest ended (exit code {int(code)}) without results for {', '.join(missing)}:\n{log.getvalue()[-3000:]}")
    return plugin.results


# -- `pytest autograder/checks --submission PATH` ---------------------------------------------------
def add_options(parser) -> None:
    group = parser.getgroup("dropout-lab", "Dropout Lab grading")
    group.addoption("--submission", help="a submission folder or .zip to grade")
    group.addoption("--grade-seed", type=int, default=None, help="the base seed of the grade")
    group.addoption("--rubric", default=None, help="the rubric TOML file (default: autograder/rubric.toml)")


def configure_from_options(config) -> None:
    """Register a plugin for --submission, unless the grade command registered one already."""
    config.addinivalue_line("markers", "diagnosis(id): the catalogue id a failing plain assert stands for")
    config.addinivalue_line("markers", "only_in(*flavours): the check serves only these flavours")
    if registered_plugin(config) is not None:
        return
    path = config.getoption("submission")
    if not path:
        raise pytest.UsageError("pass the submission to grade: pytest autograder/checks --submission PATH")
    import tempfile

    from dropout_lab_check.limits import DEFAULT_BASE_SEED
    from dropout_lab_check.rubric import DEFAULT_RUBRIC, RubricError, load_rubric
    from dropout_lab_check.runner import SubmissionRefused, prepare

    try:
        rubric = load_rubric(config.getoption("rubric") or DEFAULT_RUBRIC)
        workdir = Path(tempfile.mkdtemp(prefix="dropout-lab-"))
        config.add_cleanup(lambda: __import__("shutil").rmtree(workdir, ignore_errors=True))
        prepared = prepare(Path(path), workdir, release_convention(rubric.flavour))
    except (RubricError, SubmissionRefused, FileNotFoundError) as error:
        raise pytest.UsageError(str(error)) from None
    seed = config.getoption("grade_seed")
    job = GradingJob(prepared.name, prepared.name, prepared.tree,
                     DEFAULT_BASE_SEED if seed is None else seed, prepared.missing)
    config.pluginmanager.register(GradingPlugin([job], rubric), "dropout-lab-grading")


def summarize(terminalreporter, config) -> None:
    from dropout_lab_check.reports import as_text

    plugin = registered_plugin(config)
    if plugin is None or not config.getoption("submission", None):
        return
    for result in plugin.results.values():
        terminalreporter.write_sep("=", "Dropout Lab grade")
        terminalreporter.write_line(as_text(result))
