"""grade-batch --executor dask on a real (local, loopback-only) Dask cluster grades like the local path."""

from __future__ import annotations

import json

import pytest

from autograder.cli import main

from test_grader_batch import class_folder, grades

distributed = pytest.importorskip("dask.distributed")


def graded(out) -> dict[str, tuple]:
    """Per student: score, and per check its score, status and diagnosis."""
    table = {}
    for path in sorted(out.glob("*.json")):
        result = json.loads(path.read_text())
        checks = tuple((t["name"], t["score"], t["status"], t["extra_data"].get("diagnosis")) for t in result["tests"])
        table[path.stem] = (result["score"], result["max_score"], checks)
    return table


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local.scheduler_address


def test_dask_path_grades_a_batch_identically_and_resumes(tmp_path, cluster, capsys):
    folder = class_folder(tmp_path, copies=3)
    local, remote = tmp_path / "local", tmp_path / "dask"
    assert main(["grade-batch", str(folder), "--out", str(local), "--jobs", "2"]) == 0
    assert main(["grade-batch", str(folder), "--out", str(remote), "--executor", "dask", "--scheduler", cluster]) == 0
    assert len(graded(local)) == 5 and graded(remote) == graded(local)
    assert grades(remote) == grades(local)
    for name in ("ann", "cat"):
        extra = json.loads((remote / f"{name}.json").read_text())["extra_data"]
        assert "bubblewrap" in extra["protections"] or extra["missing_protections"]  # the report says which
    kept = (remote / "ann.json").stat().st_mtime_ns
    (remote / "cat.json").unlink()
    capsys.readouterr()
    assert main(["grade-batch", str(folder), "--out", str(remote), "--executor", "dask", "--scheduler", cluster]) == 0
    assert "(4 resumed)" in capsys.readouterr().err
    assert (remote / "ann.json").stat().st_mtime_ns == kept
    assert graded(remote) == graded(local) and grades(remote) == grades(local)


def test_dask_executor_needs_a_scheduler(tmp_path):
    folder = class_folder(tmp_path)
    assert main(["grade-batch", str(folder), "--out", str(tmp_path / "o"), "--executor", "dask"]) != 0
