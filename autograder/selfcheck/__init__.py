"""Check your dropout assignment with the grader's own public checks, on your own machine.

From a terminal, in the folder that holds ``nnlab/`` and ``Dropout.ipynb``::

    python -m dropout_lab_check check        # the public checks, with the grader's messages
    python -m dropout_lab_check collect      # builds dropout_submission.zip for upload

From a notebook cell in that folder::

    from dropout_lab_check import check
    check()

The checks are the grader's own public checks, run with the grader's seeds, so they give the
verdicts, points and explanations that the grader will give for them. The grader runs more checks
than these; the last line of the output says how many and what they are worth.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECK_TIMEOUT_SECONDS = 600
_HERE = Path(__file__).resolve().parent


def check(path: str | Path | None = None) -> None:
    """Run the public checks on the files saved on disk and print what the grader says about them.

    ``path`` is your assignment folder (the one holding nnlab/); by default the folder the notebook
    runs in. The checks run in a separate Python, so nothing this notebook has defined or changed
    takes part: save your .py files first.
    """
    folder = Path(path) if path is not None else Path.cwd()
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_HERE.parent), environment.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", _HERE.name, "check", str(folder)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace",
                                   timeout=CHECK_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL, env=environment)
    except subprocess.TimeoutExpired:
        print(f"The checks did not finish within {CHECK_TIMEOUT_SECONDS} s. Run `python -m {_HERE.name} check` "
              "in a terminal to see where they stop.")
        return
    print(completed.stdout, end="")
    if completed.returncode not in (0, 1) or not completed.stdout:
        print(completed.stderr, end="")
