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

# The grader runs students' code inside bubblewrap (bwrap), and grade-batch refuses to grade without
# it unless told otherwise. Install it where this script has the right to (as root, or through sudo
# that asks for no password); otherwise print the command to run. Nothing here fails the set-up.
bubblewrap_works() {
    # Installed is not enough: some containers forbid the namespaces bwrap needs.
    if bwrap --unshare-all --ro-bind / / true >/dev/null 2>&1; then
        echo "setup.sh: bubblewrap is installed and works ($(command -v bwrap)): the grader sandboxes students' code."
    else
        echo "setup.sh: warning: bubblewrap is installed but cannot create its namespaces here" \
             "(a container, or unprivileged user namespaces turned off). grade-batch refuses to grade students'" \
             "code without it unless you pass --allow-unsandboxed; its message says what to change." >&2
    fi
}
bubblewrap_step() {
    if command -v bwrap >/dev/null 2>&1; then
        bubblewrap_works
        return 0
    fi
    local install update="" shown
    if command -v apt-get >/dev/null 2>&1; then
        update="apt-get update -qq"
        install="apt-get install -y -qq bubblewrap"
        shown="apt-get install bubblewrap"
    elif command -v dnf >/dev/null 2>&1; then
        install="dnf install -y bubblewrap"
        shown="dnf install bubblewrap"
    elif command -v zypper >/dev/null 2>&1; then
        install="zypper --non-interactive install bubblewrap"
        shown="zypper install bubblewrap"
    elif command -v pacman >/dev/null 2>&1; then
        install="pacman -S --noconfirm bubblewrap"
        shown="pacman -S bubblewrap"
    else
        echo "setup.sh: warning: bubblewrap (bwrap) is not installed and no known package manager was found." \
             "Install the package 'bubblewrap' with your system's package manager: grade-batch refuses to grade" \
             "students' code without it unless you pass --allow-unsandboxed." >&2
        return 0
    fi
    local prefix
    if [ "$(id -u)" -eq 0 ]; then
        prefix=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        prefix="sudo -n "
    else
        echo "setup.sh: warning: bubblewrap (bwrap) is not installed, and installing it needs root rights." \
             "Run: sudo $shown   (then 'bash setup.sh' again). grade-batch refuses to grade students' code without it" \
             "unless you pass --allow-unsandboxed." >&2
        return 0
    fi
    echo "setup.sh: installing bubblewrap, the grader's sandbox: ${prefix}$install"
    if { [ -z "$update" ] || ${prefix}$update >/dev/null 2>&1; } && ${prefix}$install >/dev/null 2>&1 &&
        command -v bwrap >/dev/null 2>&1; then
        bubblewrap_works
    else
        echo "setup.sh: warning: could not install bubblewrap with '${prefix}$install'." \
             "Install the package 'bubblewrap' yourself: grade-batch refuses to grade students' code without it" \
             "unless you pass --allow-unsandboxed." >&2
    fi
    return 0
}
bubblewrap_step || true

echo "setup.sh: ready. Python $version in .venv; Jupyter kernel 'dropout-lab' registered."
