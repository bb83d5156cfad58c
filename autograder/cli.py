"""Command line of the kit: ``python -m autograder COMMAND``.

Each command lives in its own module, which exposes ``register(subparsers)``; that function adds the
command's parser and sets ``run`` to a function taking the parsed arguments and returning an exit code.
Only the module of the command being run is imported (some pull in Jupyter's libraries, which take
seconds to import); ``--help`` imports them all to list them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Command name -> the module that provides it, in the order ``--help`` lists them.
COMMANDS = {
    "release": "autograder.release",
    "notebook": "autograder.notebook_run",
    "grade": "autograder.grade",
    "grade-batch": "autograder.batch",
    "demo": "autograder.demo",
    "class-report": "autograder.class_report",
    "check": "autograder.student",
    "collect": "autograder.collect",
    "nbgrader-course": "autograder.nbgrader_course",
    "nbgrader-autograde": "autograder.nbgrader_fast",
    "nbgrader-audit": "autograder.nbgrader_audit",
    "gradescope": "autograder.gradescope",
    "mutation": "autograder.mutation",
}


class UsageError(Exception):
    """A problem with what the user asked for; printed as one message, exit code 2."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for one command, or for all of them when ``command`` is None."""
    parser = argparse.ArgumentParser(
        prog="python -m autograder",
        description="Dropout Lab: release the assignment, run its notebook and grade submissions.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        if command in (None, name):
            importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # No global options come before the command, so the first word that is not an option is it.
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
