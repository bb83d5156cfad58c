"""The student checker's child process: imports the student's library and serves the checks' calls.

Started as ``python -m PACKAGE.driver TREE`` by ``runner.Child``. It answers each request with the
very operations the grader's sandboxed child uses (``operations``, taken from the grader's
child_driver.py when the release is built), so the checks observe the same things. Requests come on
standard input and replies leave on the original standard output; everything the student's code
prints goes to standard error, which the parent keeps in a file.
"""

from __future__ import annotations

import os
import sys

from autograder import child_driver as operations
from autograder import wire


def serve(requests, send) -> None:
    try:
        operations.import_student_library()
    except BaseException as error:  # anything the student's module does on import
        send({"error": operations.describe_error(error, importing=True)})
        return
    send({"ready": True})
    while True:
        request = wire.read_message(requests)
        if request is None:
            return
        try:
            reply = {"id": request["id"], "value": operations.OPERATIONS[request["op"]](**request["args"])}
        except BaseException as error:  # student code may raise anything, SystemExit included
            reply = {"id": request.get("id"), "error": operations.describe_error(error)}
        send(reply)


def main() -> None:
    tree = os.path.realpath(sys.argv[1])
    operations.TREE = tree
    if tree not in sys.path:
        sys.path.insert(0, tree)
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the student's prints never reach the replies
    requests = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, sys.stdin.fileno())  # and the student's code reads nothing from the channel

    def send(message) -> None:
        replies.write(wire.encode(message))
        replies.flush()

    serve(requests, send)


if __name__ == "__main__":
    main()
