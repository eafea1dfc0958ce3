#!/bin/sh
# Prerequisite checks for ssrbench, one line of advice per missing piece (POSIX sh, no bash needed).
#
#   sh scripts/bootstrap.sh            check python >= 3.11, its venv module, and make
#   sh scripts/bootstrap.sh .venv      the same checks, then create .venv if it is missing
#                                      (the Makefile calls it this way)
#
# PYTHON=/path/to/python3.11 picks the interpreter (default: python3).
set -u

PYTHON="${PYTHON:-python3}"
VENV="${1:-}"
NEED="ssrbench needs Python >= 3.11"
INSTALL="install python3.11 (apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11"

fail() {
    echo "$*" >&2
    exit 1
}

# A venv that exists and works is reused as it is: no system interpreter is needed then.
if [ -n "$VENV" ] && [ -e "$VENV" ]; then
    if "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        exit 0
    fi
    fail "$VENV exists but $VENV/bin/python is missing, broken or older than 3.11: remove it (make clean-venv) and run again"
fi

command -v "$PYTHON" >/dev/null 2>&1 || fail "$NEED: '$PYTHON' not found; $INSTALL"
found=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) ||
    fail "$NEED: '$PYTHON' does not run; $INSTALL"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    fail "$NEED, '$PYTHON' is $found: $INSTALL"
# Debian/Ubuntu ship venv's pip bootstrap (ensurepip) in a separate package.
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
    fail "'$PYTHON -m venv' cannot work: the venv module is missing; install python3-venv (apt-get install python$found-venv)"

if [ -z "$VENV" ]; then
    command -v make >/dev/null 2>&1 || fail "no make? apt-get install make (or use the plain pip commands in README.md)"
    echo "ok: $PYTHON is Python $found with venv; make found"
    exit 0
fi

echo "$PYTHON -m venv $VENV    # Python $found"
if ! "$PYTHON" -m venv "$VENV"; then
    rm -rf "$VENV"
    fail "'$PYTHON -m venv $VENV' failed; if the venv module is missing, install python3-venv (apt-get install python$found-venv)"
fi
