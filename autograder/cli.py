"""Command line of the kit: ``python -m autograder COMMAND``.

Each command lives in its own module, which exposes ``register(subparsers)``; that function adds the
command's parser and sets ``run`` to a function taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that provide a command, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "autograder.release",
    "autograder.notebook_run",
    "autograder.grade",
    "autograder.batch",
    "autograder.demo",
)


class UsageError(Exception):
    """A problem with what the user asked for; printed as one message, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autograder",
        description="Dropout Lab: release the assignment, run its notebook and grade submissions.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
