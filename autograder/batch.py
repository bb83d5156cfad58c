"""``python -m autograder grade-batch DIR --out OUT [--jobs N]``: grade a whole class.

Every folder or .zip directly under DIR is one student's submission. Students are graded in
parallel worker processes, each grading a chunk of students in one pytest session; as each student
finishes, its worker writes OUT/<student>.json atomically (a temporary file, then a rename) and
tells the parent, the only writer of OUT/grades.csv, which appends the student's line. A progress
bar (tqdm) goes to stderr.

Where bubblewrap does not work, the command refuses to grade (autograder.sandbox.require_sandbox)
unless the instructor opts out with --allow-unsandboxed or DROPOUT_LAB_ALLOW_UNSANDBOXED=1; an
opted-out batch says which protections are missing, and so does every result.

Rerunning resumes: a student whose JSON result is present and readable is not graded again; a
missing, truncated or corrupt result is regraded. Workers and the queue's manager die with the
batch (PR_SET_PDEATHSIG), and sandboxed children die with their worker, so a batch killed even with
SIGKILL leaves nothing grading on that could write a result twice. grades.csv is rebuilt from the results present
at the start, so a run interrupted between the two writes never leaves them disagreeing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.managers
import os
import queue
import signal
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from autograder.cli import UsageError
from autograder.limits import DEFAULT_BASE_SEED
from autograder.rubric import FLAVOUR_RUBRICS
from autograder.sandbox import (ALLOW_UNSANDBOXED_FLAG, ALLOW_UNSANDBOXED_VARIABLE, SandboxRequired, bwrap_status,
                                require_sandbox)
from autograder.submission import release_convention, submission_name

CSV_NAME = "grades.csv"
CSV_HEADER = ("student", "score", "max_score")


def find_submissions(folder: Path) -> dict[str, Path]:
    """Student name -> submission path, for every folder or .zip directly under ``folder``."""
    found = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not (path.is_dir() or path.suffix.lower() == ".zip"):
            continue
        name = submission_name(path)
        if name in found:
            raise UsageError(f"two submissions for {name!r}: {found[name].name} and {path.name}")
        found[name] = path
    return found


def read_result(path: Path) -> dict | None:
    """A finished result file, or None if it is missing, truncated or not a result."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(key in data for key in ("score", "max_score", "tests")):
        return None
    numbers = all(isinstance(data[key], (int, float)) and not isinstance(data[key], bool) for key in ("score", "max_score"))
    if not numbers or not isinstance(data["tests"], list) or not isinstance(data.get("extra_data"), dict):
        return None
    return data


def _die_with_parent() -> None:
    """In a worker or the queue's manager: the kernel kills it when grade-batch dies, even by SIGKILL,
    so that a killed batch leaves nothing grading on (and a rerun never grades anyone twice)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent was already gone
        os._exit(1)


def free_cpus(jobs: int) -> list[int]:
    """The CPUs to give one worker each, or [] when there are more workers than CPUs.

    A worker and its sandboxed child take turns (one waits while the other runs), so on its own
    CPU the pair hands over without waking another CPU or moving caches, which took about a tenth
    off each submission's time on a 2-CPU machine. With more workers than CPUs, the kernel places
    them."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []
    return available[:jobs] if jobs <= len(available) else []


def _start_worker(cpus) -> None:
    """A worker's start: die with the batch, and take a CPU of its own if there is one for it."""
    _die_with_parent()
    if cpus is None:
        return
    try:
        os.sched_setaffinity(0, {cpus.get_nowait()})
    except (queue.Empty, OSError):
        pass


def write_atomically(path: Path, text: str) -> None:
    """Write a temporary file, then rename it over ``path``: a reader sees the old file or the new
    one, never a half-written one. No fsync: after a power cut a result may be lost or cut short,
    and a rerun then finds it unreadable and grades that student again."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def csv_line(student: str, result: dict) -> str:
    return f"{student},{result['score']:g},{result['max_score']:g}\n"


def rebuild_csv(out: Path, finished: dict[str, dict]) -> None:
    lines = [",".join(CSV_HEADER) + "\n", *(csv_line(name, finished[name]) for name in sorted(finished))]
    write_atomically(out / CSV_NAME, "".join(lines))


def start_or_resume(folder: Path, out: Path) -> tuple[dict[str, Path], dict[str, dict], list[str]]:
    """The submissions, the results already finished in ``out``, and the students still to grade.

    Temporary files left by a run that was killed between writing a file and renaming it are
    removed, and grades.csv is rebuilt from the finished results, so a resumed run starts clean.
    """
    submissions = find_submissions(folder)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    finished = {name: result for name in submissions if (result := read_result(out / f"{name}.json")) is not None}
    rebuild_csv(out, finished)
    todo = [name for name in submissions if name not in finished]
    return submissions, finished, todo


def append_csv(out: Path, student: str, result: dict) -> None:
    """Append one student's line (the JSON results are the record: a rerun rebuilds the CSV)."""
    with open(out / CSV_NAME, "a", encoding="utf-8") as stream:
        stream.write(csv_line(student, result))


def grade_chunk(students: list[tuple[str, str]], rubric_path: str, seed: int, out: str, finished) -> list[str]:
    """Runs in a worker process: grade several students in ONE pytest session (collection and
    start-up paid once), writing each student's JSON atomically as soon as it is done and telling
    the parent through the ``finished`` queue. Returns the students the grader failed on."""
    from autograder.plugin import GraderError, GradingJob, run_grading
    from autograder.reports import as_json
    from autograder.rubric import load_rubric
    from autograder.submission import SubmissionRefused, prepare
    from autograder.verdicts import refused_result

    rubric = load_rubric(rubric_path)

    def deliver(name: str, result) -> None:
        text = as_json(result)
        write_atomically(Path(out) / f"{name}.json", text + "\n")
        finished.put((name, json.loads(text)))

    with tempfile.TemporaryDirectory(prefix="dropout-lab-batch-") as workdir:
        jobs = []
        for name, path in students:
            workspace = Path(workdir) / name
            workspace.mkdir()
            try:
                prepared = prepare(Path(path), workspace, release_convention(rubric.flavour))
            except SubmissionRefused as refusal:
                deliver(name, refused_result(name, rubric, str(refusal)))
                continue
            jobs.append(GradingJob(name, name, prepared.tree, seed, prepared.missing))
        try:
            run_grading(jobs, rubric, on_result=lambda job, result: deliver(job.key, result))
        except GraderError as error:
            return [f"{job.key}: {error}" for job in jobs if not (Path(out) / f"{job.key}.json").exists()]
    return []


def grade_shipped(students: list[tuple[str, dict]], rubric_text: str, seed: int,
                  allow_unsandboxed: bool = False) -> list[tuple[str, dict]]:
    """Runs on a Dask worker: grade students whose graded files were shipped as bytes (a cluster
    need not share the class folder), in one pytest session, each in the worker's own sandbox.
    Returns (student, result) pairs; the batch's parent writes them, so OUT need not be shared.
    A worker whose bubblewrap does not work refuses (SandboxRequired), unless opted out."""
    import socket

    from autograder.plugin import GradingJob, run_grading
    from autograder.reports import as_json
    from autograder.rubric import load_rubric
    from autograder.submission import prepare

    require_sandbox(allow_unsandboxed, f"grade-batch's Dask worker on {socket.gethostname()}")
    with tempfile.TemporaryDirectory(prefix="dropout-lab-dask-") as workdir:
        rubric_path = Path(workdir) / "rubric.toml"
        rubric_path.write_text(rubric_text, encoding="utf-8")
        rubric = load_rubric(rubric_path)
        jobs = []
        for name, files in students:
            folder = Path(workdir) / "in" / name
            for graded, content in files.items():
                (folder / graded).parent.mkdir(parents=True, exist_ok=True)
                (folder / graded).write_bytes(content)
            folder.mkdir(parents=True, exist_ok=True)
            (Path(workdir) / "work" / name).mkdir(parents=True)
            prepared = prepare(folder, Path(workdir) / "work" / name, release_convention(rubric.flavour))
            jobs.append(GradingJob(name, name, prepared.tree, seed, prepared.missing))
        results = run_grading(jobs, rubric)
        return [(job.key, json.loads(as_json(results[job.key]))) for job in jobs]


def grade_batch_dask(folder: Path, out: Path, scheduler: str, rubric_path: str, seed: int,
                     allow_unsandboxed: bool = False) -> list[str]:
    """grade-batch on an existing Dask distributed cluster: the same students, results and files
    as the local path, and resumable the same way (the parent writes each result as it arrives)."""
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise UsageError("--executor dask needs dask.distributed: pip install 'dask[distributed]'") from None
    from autograder.reports import as_json
    from autograder.rubric import load_rubric
    from autograder.submission import SubmissionRefused, read_graded_files
    from autograder.verdicts import refused_result

    submissions, finished, todo = start_or_resume(folder, out)
    progress = progress_bar(len(submissions), len(finished))

    def deliver(name: str, result: dict) -> None:
        write_atomically(out / f"{name}.json", json.dumps(result, indent=2) + "\n")
        append_csv(out, name, result)
        advance(progress, name)

    shipped = []
    for name in todo:
        try:
            shipped.append((name, read_graded_files(submissions[name], release_convention(load_rubric(rubric_path).flavour))))
        except SubmissionRefused as refusal:
            deliver(name, json.loads(as_json(refused_result(name, load_rubric(rubric_path), str(refusal)))))
    rubric_text = Path(rubric_path).read_text(encoding="utf-8")
    failures: list[str] = []
    try:
        with Client(scheduler) as client:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            by_name = dict(shipped)
            futures = [client.submit(grade_shipped, [(name, by_name[name]) for name in chunk], rubric_text, seed,
                                     allow_unsandboxed, pure=False)
                       for chunk in chunks([name for name, _ in shipped], workers)]
            for future in as_completed(futures):
                try:
                    for name, result in future.result():
                        deliver(name, result)
                except Exception as error:  # a worker failed (or refused): its students stay ungraded
                    message = f"a Dask task failed: {error}"
                    if message not in failures:
                        failures.append(message)
    finally:
        progress.close()
    return failures


def chunks(names: list[str], jobs: int) -> list[list[str]]:
    """Split the students into sessions of at most 16 (so that an interruption loses little and the
    progress bar moves), shrinking towards the end (a share of what is left, split over twice the
    workers), so that the workers run out of work at nearly the same time instead of one grading a
    whole last session alone."""
    found, start = [], 0
    while start < len(names):
        size = max(1, min(16, (len(names) - start) // (2 * jobs)))
        found.append(names[start:start + size])
        start += size
    return found


def progress_bar(total: int, resumed: int):
    """grade-batch's progress bar on stderr (tqdm): students graded out of the class, with the
    students found already graded counted from the start, the rate and the time left."""
    from tqdm import tqdm

    note = f" ({resumed} resumed)" if resumed else ""
    return tqdm(total=total, initial=resumed, file=sys.stderr, unit="student", dynamic_ncols=True,
                bar_format="{bar:30}| {n_fmt}/{total_fmt} graded" + note + " [{elapsed}<{remaining}]{postfix}")


def advance(bar, student: str) -> None:
    bar.set_postfix_str(student[:30], refresh=False)
    bar.update(1)


def _terminate_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def grade_batch(folder: Path, out: Path, jobs: int, rubric_path: str, seed: int) -> list[str]:
    """Grade every unfinished student; returns the students the grader failed on."""
    submissions, finished, todo = start_or_resume(folder, out)
    progress = progress_bar(len(submissions), len(finished))
    failures: list[str] = []
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    manager = multiprocessing.managers.SyncManager()
    manager.start(_die_with_parent)
    finished = manager.Queue()
    pinned = free_cpus(jobs)
    cpus = manager.Queue() if pinned else None
    for cpu in pinned:
        cpus.put(cpu)
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_start_worker, initargs=(cpus,))
    try:
        pending = {
            pool.submit(grade_chunk, [(name, str(submissions[name])) for name in chunk], rubric_path, seed, str(out), finished)
            for chunk in chunks(todo, jobs)
        }
        while pending or not finished.empty():
            try:
                student, result = finished.get(timeout=0.1)
            except queue.Empty:
                done = {future for future in pending if future.done()}
                for future in done:
                    try:
                        failures += future.result()
                    except Exception as error:  # a worker died: its students stay ungraded
                        failures.append(f"a worker failed: {error}")
                pending -= done
                continue
            append_csv(out, student, result)
            advance(progress, student)
    finally:
        signal.signal(signal.SIGTERM, previous)
        progress.close()
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()  # an interrupted batch must not leave workers grading on
        pool.shutdown(wait=True, cancel_futures=True)
        manager.shutdown()
    return failures


def _sandbox_policy(opted_out: bool, what: str) -> list[str]:
    """The sandbox policy (autograder.sandbox.require_sandbox), its refusal as a usage error."""
    try:
        return require_sandbox(opted_out, what)
    except SandboxRequired as refusal:
        raise UsageError(str(refusal)) from None


def run(args: argparse.Namespace) -> int:
    from autograder.grade import rubric_for

    args.rubric = str(rubric_for(args).path)  # refuse a bad rubric before grading anyone
    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder of submissions")
    if args.executor == "dask":
        if not args.scheduler:
            raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
        # Each Dask worker applies the sandbox policy on its own machine (grade_shipped).
        failures = grade_batch_dask(folder, Path(args.out), args.scheduler, str(args.rubric), args.seed,
                                    args.allow_unsandboxed)
    else:
        missing = _sandbox_policy(args.allow_unsandboxed, "grade-batch")
        if missing:
            print(f"grade-batch: warning: grading without the sandbox, as asked. Missing: {', '.join(missing)} "
                  f"({bwrap_status()[1]}). Each student's JSON lists them too.", file=sys.stderr)
        failures = grade_batch(folder, Path(args.out), max(1, args.jobs), str(args.rubric), args.seed)
    if failures:
        print("The grader could not grade:", *failures, sep="\n  ", file=sys.stderr)
        return 1
    print(f"Results in {args.out} ({CSV_NAME} and one JSON per student).")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "grade-batch", help="grade every submission in a folder, in parallel and resumably",
        description="Grade every folder or .zip under DIR; write OUT/<student>.json and OUT/grades.csv.",
    )
    parser.add_argument("dir", help="folder holding one folder or .zip per student")
    parser.add_argument("--out", required=True, help="folder for the results")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel workers (default: %(default)s)")
    parser.add_argument("--flavour", choices=tuple(FLAVOUR_RUBRICS),
                        help="the flavour of the assignment (default: the rubric's, cs231n without --rubric)")
    parser.add_argument("--rubric", help="rubric TOML file (default: the flavour's, autograder/rubric.toml for cs231n)")
    parser.add_argument("--seed", type=int, default=DEFAULT_BASE_SEED, help="base seed (default: %(default)s)")
    parser.add_argument("--executor", choices=("local", "dask"), default="local",
                        help="local worker processes (--jobs), or an existing Dask cluster (--scheduler)")
    parser.add_argument("--scheduler", help="the Dask scheduler's address, with --executor dask")
    parser.add_argument(
        ALLOW_UNSANDBOXED_FLAG, dest="allow_unsandboxed", action="store_true",
        help=f"grade even where bubblewrap does not work (refused by default; {ALLOW_UNSANDBOXED_VARIABLE}=1 "
             "does the same); the missing protections are printed and kept in every result")
    parser.set_defaults(run=run)
