"""``python -m autograder gradescope OUT.zip``: the kit as a Gradescope autograder.

The zip follows Gradescope's autograder specification: ``setup.sh`` and ``run_autograder`` at its
root; Gradescope unpacks it to /autograder/source, runs setup.sh once (as root) when it builds the
image, and runs run_autograder once per submission with the student's files in
/autograder/submission, expecting /autograder/results/results.json when it ends.

Inside the zip, ``dropout_lab/`` holds what grading needs and nothing more: the ``autograder``
package (without the self-validation bank, whose right entries are model answers, and without the
mutation analysis, which quotes the reference's lines), the pristine ``assignment/`` tree the
grader builds each private tree from, the rubric, and the lock files that setup.sh installs from.
There is no ``solution/``: for a rubric of another flavour (``flavour = "scratch"``), that flavour's
released library, answers taken out, goes in ``released/FLAVOUR/nnlab/`` instead
(autograder.paths.RELEASED_LIBRARIES_DIR), its settings file fixing the dropout style.

run_autograder grades with the kit's sandboxed grader, the same code as ``python -m autograder
grade``, then writes results.json itself, after the student's code has stopped, with an atomic
rename: whatever a submission prints or writes on its way cannot become the result. It never
refuses for want of bubblewrap (Gradescope's container often forbids its namespaces): it grades
with the protections that work there and tells instructors, not students, which were missing.
There, as root, the child still runs as a uid of its own (autograder.sandbox), which can read only
what every user may read; run_autograder first closes the kit's folder (the checks, the rubric) to
other users, so that child cannot read it.

The roots can be moved for tests: DROPOUT_LAB_GS_ROOT (default /autograder), or each of
DROPOUT_LAB_GS_SOURCE, DROPOUT_LAB_GS_SUBMISSION and DROPOUT_LAB_GS_RESULTS, and DROPOUT_LAB_PYTHON
for the interpreter (default: the virtual environment setup.sh made).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path, PurePosixPath

from autograder.paths import ASSIGNMENT_DIR, GRADED_FILES, RELEASED_LIBRARIES_DIR, REPO_ROOT
from autograder.submission import holds_graded_files, pristine_library, release_convention

# The folder inside the zip (and so under /autograder/source) that holds the kit.
KIT_DIR = "dropout_lab"
CONFIG_NAME = "gradescope.json"
RUBRIC_NAME = "rubric.toml"
# Where setup.sh puts the virtual environment that run_autograder uses.
DEFAULT_VENV = "/autograder/dropout-lab-venv"
# What the grader needs at run time (the rest of the lock is for notebooks and nbgrader).
RUNTIME_PACKAGES = ("numpy", "pytest", "tomli; python_version < '3.11'")

# Left out of the zip: caches, the bank (its "right" entries hold working answers) and the mutation
# analysis (it needs solution/, and its list of equivalent mutants quotes the reference's lines).
SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", "bank", "mutation"}
SKIPPED_FILES = {"bank.py"}
SKIPPED_SUFFIXES = (".pyc", ".executed.ipynb")
# A fixed timestamp makes the zip depend on its contents only.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)
# How results.json's top-level output describes the checks that students do not see at once.
WHEN_SHOWN = {
    "hidden": "never shown to students",
    "after_due_date": "shown after the due date",
    "after_published": "shown when grades are published",
}

SETUP_SH = r"""#!/usr/bin/env bash
# Dropout Lab autograder: Gradescope runs this once, as root, when it builds the autograder image.
# It installs bubblewrap (the grader's sandbox) and Python, and makes a virtual environment with
# the exact versions of the kit's lock file for the grader's few dependencies.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kit=$here/dropout_lab
venv=${DROPOUT_LAB_VENV:-__DEFAULT_VENV__}
fail() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends bubblewrap python3 python3-venv python3-pip ||
    fail "apt-get could not install bubblewrap and Python 3 (its messages are above)"

version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    fail "the grader needs Python 3.10 or newer and this image has Python $version: choose the Ubuntu 22.04 (or newer) base image in the assignment's autograder settings"
lock=$kit/requirements/py311.lock
[ "$version" = "3.10" ] && lock=$kit/requirements/py310.lock

python3 -m venv "$venv" || fail "could not create the virtual environment $venv"
"$venv/bin/python" -m pip install --disable-pip-version-check -c "$lock" __PACKAGES__ ||
    fail "pip could not install the grader's dependencies from $lock (its messages are above)"
"$venv/bin/python" -c 'import numpy, pytest' || fail "numpy or pytest does not import in $venv"
command -v bwrap >/dev/null && echo "setup.sh: bubblewrap $(bwrap --version 2>/dev/null)" ||
    echo "setup.sh: warning: bwrap is not on PATH; the grader will run without it and say so in each result"
echo "setup.sh: ready. Python $version in $venv"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Dropout Lab autograder: Gradescope runs this once per submission. It grades the files in
# /autograder/submission with the kit's sandboxed grader and writes /autograder/results/results.json.
# Tests move the roots with DROPOUT_LAB_GS_ROOT (or _SOURCE, _SUBMISSION, _RESULTS) and choose the
# interpreter with DROPOUT_LAB_PYTHON.
set -euo pipefail
root=${DROPOUT_LAB_GS_ROOT:-/autograder}
source_dir=${DROPOUT_LAB_GS_SOURCE:-$root/source}
submission=${DROPOUT_LAB_GS_SUBMISSION:-$root/submission}
results=${DROPOUT_LAB_GS_RESULTS:-$root/results/results.json}
python=${DROPOUT_LAB_PYTHON:-__DEFAULT_VENV__/bin/python}
kit=$source_dir/dropout_lab
[ -x "$python" ] || { echo "run_autograder: no Python at $python: did setup.sh run? (set DROPOUT_LAB_PYTHON to choose one)" >&2; exit 2; }
# From the kit's folder, so that `autograder` is the kit unpacked here and no other copy.
cd "$kit"
exec "$python" -m autograder.gradescope --kit "$kit" --submission "$submission" --results "$results"
"""


class ExportError(Exception):
    """The autograder zip cannot be built; the message says why."""


# -- building the zip -----------------------------------------------------------------------------
def _kit_files(folder: Path) -> list[Path]:
    files = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if path.is_dir() or SKIPPED_PARTS.intersection(parts) or path.name in SKIPPED_FILES:
            continue
        if path.name.endswith(SKIPPED_SUFFIXES):
            continue
        files.append(path)
    return files


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, ZIP_DATE)
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def zip_contents(rubric_path: Path, hidden_as: str = "hidden") -> dict[str, bytes]:
    """Every file of the autograder zip by its name in the zip (the rubric is validated first)."""
    from autograder.rubric import RubricError, load_rubric

    try:
        rubric = load_rubric(rubric_path)
    except RubricError as error:
        raise ExportError(f"the rubric cannot be used, so no zip was written: {error}") from None
    if not (ASSIGNMENT_DIR / GRADED_FILES[0]).is_file():
        raise ExportError(f"{ASSIGNMENT_DIR} has no {GRADED_FILES[0]}: run `python -m autograder release` first")
    contents = {
        "setup.sh": SETUP_SH.replace("__DEFAULT_VENV__", DEFAULT_VENV)
        .replace("__PACKAGES__", " ".join(f'"{p}"' for p in RUNTIME_PACKAGES)).encode(),
        "run_autograder": RUN_AUTOGRADER.replace("__DEFAULT_VENV__", DEFAULT_VENV).encode(),
    }
    for folder in ("autograder", "assignment", "requirements"):
        for path in _kit_files(REPO_ROOT / folder):
            contents[f"{KIT_DIR}/{path.relative_to(REPO_ROOT).as_posix()}"] = path.read_bytes()
    if rubric.flavour != "cs231n":
        released = RELEASED_LIBRARIES_DIR.relative_to(REPO_ROOT).as_posix()
        for name, content in pristine_library(rubric.flavour).items():
            contents[f"{KIT_DIR}/{released}/{rubric.flavour}/{name}"] = content
    contents[f"{KIT_DIR}/{RUBRIC_NAME}"] = Path(rubric_path).read_bytes()
    config = {"hidden_as": hidden_as, "checks": len(rubric.entries), "max_score": rubric.max_score}
    contents[f"{KIT_DIR}/{CONFIG_NAME}"] = (json.dumps(config, indent=2) + "\n").encode()
    return contents


def build_zip(out: Path, rubric_path: Path, hidden_as: str = "hidden") -> dict[str, bytes]:
    contents = zip_contents(rubric_path, hidden_as)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name in sorted(contents):
            _add(archive, name, contents[name], executable=name in ("setup.sh", "run_autograder"))
    os.replace(partial, out)
    return contents


# -- finding the student's files in /autograder/submission --------------------------------------------
def _regular_files(folder: Path, depth: int = 4) -> list[Path]:
    """Regular files under folder (symlinks neither followed nor listed), at most depth levels down."""
    found = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        level = len(Path(current).relative_to(folder).parts)
        dirs[:] = sorted(d for d in dirs if level < depth and not (Path(current) / d).is_symlink())
        for name in sorted(files):
            path = Path(current) / name
            if not path.is_symlink() and path.is_file():
                found.append(path)
    return found


def locate_submission(folder: Path, staging: Path, flavour: str = "cs231n") -> tuple[Path, list[str]]:
    """What to hand to the grader for Gradescope's submission folder, and notes for the student.

    Students upload the zip from ``python -m autograder collect`` (Gradescope unpacks it, keeping
    its folders), a zip that Gradescope kept as it is, or the graded files dropped in flat. The
    first is the grader's own layout; a single zip is graded as the zip; flat files with a unique
    name are copied into place in ``staging``.
    """
    notes: list[str] = []
    if not folder.is_dir():
        return folder, [f"No submission folder was found ({folder})."]
    files = _regular_files(folder)
    relative = {path.relative_to(folder).as_posix() for path in files}
    graded_files = release_convention(flavour).graded_files
    if holds_graded_files(relative, release_convention(flavour)):
        return folder, notes
    zips = [path for path in files if path.suffix.lower() == ".zip" and path.parent == folder]
    if len(zips) == 1:
        return zips[0], notes
    placed = 0
    for graded in graded_files:
        basename = PurePosixPath(graded).name
        candidates = [path for path in files if path.name == basename]
        if len(candidates) == 1:
            target = staging / graded
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(candidates[0], target)
            placed += 1
        elif len(candidates) > 1:
            notes.append(f"Several files are named {basename}, so none of them was graded: upload the "
                         f"zip made by `python -m autograder collect`, which puts it at {graded}.")
    return (staging if placed else folder), notes


# -- results.json ----------------------------------------------------------------------------------
def gradescope_results(result, hidden_as: str, notes: list[str]) -> dict:
    """Gradescope's results.json for a GradeResult: the grader's JSON, visibilities mapped."""
    data = result.to_json()
    # Gradescope has no top-level max_score (the assignment's settings hold it); keep it for instructors.
    data["extra_data"]["max_score"] = data.pop("max_score")
    for number, test in enumerate(data["tests"], start=1):
        test["number"] = str(number)
        if test["visibility"] == "hidden":
            test["visibility"] = hidden_as
    lines = [f"Dropout Lab autograder: {len(data['tests'])} checks."]
    not_shown = [f"{sum(t['visibility'] == v for t in data['tests'])} {when}" for v, when in WHEN_SHOWN.items()
                 if any(t["visibility"] == v for t in data["tests"])]
    if not_shown:
        lines.append("Not shown to you now, but counted in your score: " + ", ".join(not_shown) + ".")
    missing = result.extra_data.get("missing_files") or []
    if missing:
        lines.append("Not found in your submission, so graded as the empty stubs: " + ", ".join(missing)
                     + ". Upload the zip made by `python -m autograder collect`.")
    if result.extra_data.get("error"):
        lines.append(f"Not graded: {result.extra_data['error']}")
    lines += notes
    data["output"] = "\n".join(lines)
    # The run's own stdout has the full report, hidden checks included: instructors only.
    data["stdout_visibility"] = "hidden"
    return data


def write_results(path: Path, data: dict) -> None:
    """Write results.json atomically, replacing whatever is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(data, stream, indent=2)
        stream.write("\n")
    os.replace(temporary, path)


def grader_fault_results(message: str, elapsed: float) -> dict:
    return {
        "score": 0.0,
        "execution_time": round(elapsed, 3),
        "output": "The autograder itself could not run, which is not your fault: your instructor "
                  "has the details and will regrade your submission.",
        "stdout_visibility": "hidden",
        "tests": [],
        "extra_data": {"grader_error": message},
    }


def close_to_other_users(folder: Path) -> bool:
    """Under root, take every access to ``folder`` away from other users, so that a child running as
    a uid of its own (where bubblewrap cannot run) cannot read the kit: its checks, the rubric.
    Returns whether it did (a grader that is not root shares its uid with the child anyway)."""
    if os.geteuid() != 0:
        return False
    folder.chmod(stat.S_IMODE(folder.stat().st_mode) & ~0o077)
    return True


def uid_note(result) -> str:
    """For instructors, where bubblewrap was not used: whether the child ran as a uid of its own."""
    from autograder.sandbox import OWN_UID, own_uid_status

    if OWN_UID in (result.extra_data.get("missing_protections") or []):
        return f"The child ran as the grader's own uid (root), not one of its own: {own_uid_status()[1]}."
    if OWN_UID in (result.extra_data.get("protections") or []) and result.extra_data.get("missing_protections"):
        return ("The child ran as a uid of its own: the process limit held, and it could read only what every "
                "user may read (not the kit, whose folder is closed to other users).")
    return ""


def run_autograder(kit: Path, submission: Path, results: Path) -> int:
    """Grade one Gradescope submission and write results.json; the body of run_autograder."""
    from autograder.grade import grade_submission
    from autograder.plugin import GraderError
    from autograder.reports import as_text, protection_warning
    from autograder.rubric import RubricError, load_rubric

    started = time.perf_counter()
    # A stale or planted results.json must never survive a run that fails before the end.
    if results.exists() or results.is_symlink():
        results.unlink()
    close_to_other_users(kit)
    try:
        config = json.loads((kit / CONFIG_NAME).read_text(encoding="utf-8"))
        hidden_as = config.get("hidden_as", "hidden")
        rubric = load_rubric(kit / RUBRIC_NAME)
        with tempfile.TemporaryDirectory(prefix="dropout-lab-gs-") as staging:
            path, notes = locate_submission(submission, Path(staging) / "submission", rubric.flavour)
            result = grade_submission(path, rubric)
    except Exception as error:  # noqa: BLE001  anything raised here is the grader's fault, never the student's
        known = isinstance(error, (GraderError, RubricError, OSError, ValueError))
        message = f"{type(error).__name__}: {error}" if known else traceback.format_exc()[-4000:]
        print(f"run_autograder: the grader could not run: {message}", file=sys.stderr)
        write_results(results, grader_fault_results(message, time.perf_counter() - started))
        return 1
    result.execution_time = time.perf_counter() - started
    data = gradescope_results(result, hidden_as, notes)
    # Where bubblewrap cannot run (often so in Gradescope's container) the grade goes on with the
    # protections that do work; which were missing goes to instructors only: the run's stdout
    # (stdout_visibility is hidden) and results.json's top-level extra_data, never a test's output.
    warning = protection_warning(result)
    if warning:
        warning = f"{warning} {uid_note(result)}".strip()
        data["extra_data"]["sandbox_warning"] = warning
    write_results(results, data)
    print(as_text(result))
    print()
    print(warning or "run_autograder: graded inside bubblewrap, with every protection of the sandbox in force.")
    print(f"\nrun_autograder: wrote {results} (score {result.score:g} / {result.max_score:g})")
    return 0


def run_autograder_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_autograder", description="Grade one Gradescope submission.")
    parser.add_argument("--kit", required=True, type=Path)
    parser.add_argument("--submission", required=True, type=Path)
    parser.add_argument("--results", required=True, type=Path)
    args = parser.parse_args(argv)
    return run_autograder(args.kit, args.submission, args.results)


# -- the command ---------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    from autograder.cli import UsageError

    out = Path(args.out)
    if out.suffix.lower() != ".zip":
        raise UsageError(f"{out}: the autograder file must end in .zip (Gradescope asks for a zip)")
    from autograder.grade import rubric_for

    try:
        contents = build_zip(out, rubric_for(args).path, args.hidden_as)
    except ExportError as error:
        raise UsageError(str(error)) from None
    config = json.loads(contents[f"{KIT_DIR}/{CONFIG_NAME}"])
    print(f"Wrote {out} ({len(contents)} files; {config['checks']} checks, {config['max_score']:g} points).")
    print("On Gradescope: create a Programming Assignment, choose the Ubuntu 22.04 base image, upload this")
    print("zip under Configure Autograder, then test it with the zip that `python -m autograder collect` makes.")
    return 0


def register(subparsers) -> None:
    from autograder.rubric import FLAVOUR_RUBRICS

    parser = subparsers.add_parser(
        "gradescope", help="build a Gradescope autograder zip",
        description="Build a Gradescope autograder zip (setup.sh, run_autograder and the sandboxed grader).",
    )
    parser.add_argument("out", metavar="OUT.zip", help="where to write the autograder zip")
    parser.add_argument("--flavour", choices=tuple(FLAVOUR_RUBRICS),
                        help="the flavour of the assignment (default: the rubric's, cs231n without --rubric)")
    parser.add_argument("--rubric", help="rubric TOML file (default: the flavour's, autograder/rubric.toml for cs231n)")
    parser.add_argument(
        "--hidden-as", choices=("hidden", "after_due_date", "after_published"), default="hidden",
        help="Gradescope visibility for the rubric's hidden checks (default: %(default)s: never shown to students)",
    )
    parser.set_defaults(run=run)


if __name__ == "__main__":
    sys.exit(run_autograder_main())
