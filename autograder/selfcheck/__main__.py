"""``python -m dropout_lab_check [check|collect] ...``: the student's two commands."""

from __future__ import annotations

import argparse
import sys

from autograder.selfcheck.runner import PACKAGE


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in ("check", "collect", "-h", "--help"):
        argv = ["check", *argv]  # plain `python -m dropout_lab_check` checks the current folder
    parser = argparse.ArgumentParser(
        prog=f"python -m {PACKAGE}",
        description="Dropout Lab, the student's side: check your work with the grader's public checks, "
                    "then collect your submission.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from autograder.selfcheck.check import register as register_check

    register_check(subparsers)
    if argv[0] != "check":
        # collect reads notebooks with nbformat, whose import alone takes seconds (its schema
        # validator builds parsers as it loads); check needs none of it, so it starts without it.
        from autograder.collect import register as register_collect

        register_collect(subparsers)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
