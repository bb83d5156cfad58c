#!/usr/bin/env bash
# Set up Dropout Lab: a virtual environment in .venv with the pinned dependencies and the kit itself,
# and a Jupyter kernel named "dropout-lab" that runs in it. Safe to run again: it only does what is
# missing or out of date. Choose the interpreter with PYTHON=/path/to/python3 bash setup.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PYTHON=${PYTHON:-python3}
fail() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 ||
    fail "no '$PYTHON' on PATH. Install Python 3.10 or newer, or point PYTHON at one: PYTHON=/usr/bin/python3.11 bash setup.sh"
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    fail "Dropout Lab needs Python 3.10 or newer, and '$PYTHON' is Python $version. Install a newer one and run: PYTHON=/path/to/python3.11 bash setup.sh"

# Python 3.10 cannot have the newest releases of numpy and nbgrader, so it gets its own lock file.
lock=requirements/py311.lock
[ "$version" = "3.10" ] && lock=requirements/py310.lock

# A .venv made by another Python version would hold the wrong lock's packages: start it again.
if [ -x .venv/bin/python ] && [ "$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$version" ]; then
    echo "setup.sh: .venv was made with another Python version; making it again with Python $version"
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    echo "setup.sh: creating .venv with Python $version"
    "$PYTHON" -m venv .venv ||
        fail "'$PYTHON -m venv' failed. On Debian or Ubuntu install the venv module first: sudo apt-get install python3-venv"
fi

# Skip pip entirely when nothing it would install has changed since the last successful run.
stamp=.venv/.dropout-lab-installed
wanted=$(cat "$lock" pyproject.toml | "$PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "setup.sh: installing the pinned dependencies from $lock (a few minutes the first time)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$lock" ||
        fail "pip could not install the dependencies in $lock (its messages are above). Check the connection to the Python package index (or your proxy settings), then run 'bash setup.sh' again."
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e . ||
        fail "pip could not install the kit itself from this folder (its messages are above)."
    echo "$wanted" > "$stamp"
fi

.venv/bin/python -m ipykernel install --user --name dropout-lab --display-name "Python (Dropout Lab)" >/dev/null ||
    fail "could not register the Jupyter kernel 'dropout-lab' (its messages are above)."

echo "setup.sh: ready. Python $version in .venv; Jupyter kernel 'dropout-lab' registered."
