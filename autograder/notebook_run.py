"""``python -m autograder notebook``: execute a tree's Dropout.ipynb headless in a Jupyter kernel.

The notebook runs with its own folder as working directory, exactly as when a student opens it in
Jupyter, and the executed copy (with every output and plot) is written elsewhere so that the
committed notebook stays clean. With ``--flavour scratch`` the flavour's tree is first written by
release into a temporary folder (with the answers in for ``--tree solution``), and its notebook runs
there.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from autograder.paths import ASSIGNMENT_DIR, NOTEBOOK_NAME, REPO_ROOT, SOLUTION_DIR

TREES = {"solution": SOLUTION_DIR, "assignment": ASSIGNMENT_DIR}
# "python3" makes jupyter_client start the kernel with this very interpreter, so the kernel sees
# the packages of the environment that runs this command.
KERNEL_NAME = "python3"
CELL_TIMEOUT_SECONDS = 600


def execute_notebook(notebook_path: Path, output_path: Path | None = None) -> tuple[nbformat.NotebookNode, float]:
    """Run every cell of a notebook in a fresh kernel; returns the executed notebook and seconds taken.

    Raises nbclient's CellExecutionError at the first failing cell; the partly executed notebook is
    still written to output_path first, so its outputs can be read.
    """
    notebook = nbformat.read(notebook_path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_SECONDS,
        resources={"metadata": {"path": str(notebook_path.parent)}},
    )
    started = time.perf_counter()
    try:
        client.execute()
    finally:
        if output_path is not None:
            output_path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, output_path)
    return notebook, time.perf_counter() - started


def run(args: argparse.Namespace) -> int:
    if args.flavour == "cs231n":
        return run_tree(TREES[args.tree], args.out or REPO_ROOT / "out" / f"{args.tree}-{NOTEBOOK_NAME}")
    from autograder.flavours import FLAVOURS, released_tree
    from autograder.release import write_tree

    with tempfile.TemporaryDirectory(prefix=f"dropout-lab-{args.flavour}-") as folder:
        write_tree(released_tree(FLAVOURS[args.flavour], answers=args.tree == "solution"), Path(folder))
        return run_tree(Path(folder), args.out or REPO_ROOT / "out" / f"{args.flavour}-{args.tree}-{NOTEBOOK_NAME}")


def run_tree(tree: Path, out) -> int:
    notebook_path = tree / NOTEBOOK_NAME
    output_path = Path(out)
    print(f"Running {notebook_path} in a fresh Jupyter kernel...", flush=True)
    try:
        _, seconds = execute_notebook(notebook_path, output_path)
    except CellExecutionError as error:
        print(f"A cell failed; the partly executed copy is {output_path}.", file=sys.stderr)
        print(f"{error.ename}: {error.evalue}", file=sys.stderr)
        return 1
    print(f"Done in {seconds:.0f} s. The executed notebook, with every output and plot, is {output_path}")
    print("Open it with: .venv/bin/jupyter lab " + str(output_path))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "notebook",
        help="run Dropout.ipynb headless and save the executed copy",
        description="Execute a tree's Dropout.ipynb top to bottom in a fresh Jupyter kernel.",
    )
    parser.add_argument("--tree", choices=sorted(TREES), default="solution", help="which tree's notebook (default: %(default)s)")
    parser.add_argument("--flavour", choices=("cs231n", "scratch"), default="cs231n",
                        help="which flavour's notebook (default: %(default)s)")
    parser.add_argument("--out", help="where to write the executed notebook (default: out/TREE-Dropout.ipynb, "
                        "or out/FLAVOUR-TREE-Dropout.ipynb)")
    parser.set_defaults(run=run)
