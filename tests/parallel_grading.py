"""Grading many jobs for a test on every core: the jobs are split into groups that each share a
child (one bank entry's seeds), the groups dealt out to worker processes in turn, and each worker
grades its share in one pytest session of its own (autograder.plugin.run_grading). The results are
the same as one session's: every job's grade depends on its tree and base seed only."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor


def grade_in_parallel(groups, rubric, limits, convention=None, workers: int | None = None) -> dict:
    """Job key -> GradeResult for every job of ``groups`` (lists of GradingJob)."""
    from autograder.plugin import run_grading

    groups = [group for group in groups if group]
    workers = max(1, min(workers or os.cpu_count() or 1, len(groups)))
    shares = [[job for group in groups[start::workers] for job in group] for start in range(workers)]
    if workers == 1:
        return run_grading(shares[0], rubric, limits, convention=convention) if shares else {}
    # spawn: a fresh interpreter per worker, so no state of the test process (threads, open kernels,
    # the grader's warm sandbox) is copied into it.
    context = multiprocessing.get_context("spawn")
    results: dict = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        for done in [pool.submit(run_grading, share, rubric, limits, None, convention) for share in shares]:
            results.update(done.result())
    return results
