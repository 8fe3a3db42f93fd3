#!/usr/bin/env bash
# Usage: scripts/pyenv.sh NAME LOCK_FILE
# Prints the path of a Python 3.11 virtual environment holding exactly the pinned packages of LOCK_FILE
# (a fully pinned requirements file, installed with --no-deps). Environments are cached outside the
# checkout, keyed by the lock's hash, under ${AUTOML_CACHE_DIR:-$HOME/.cache/automl-training}; a half-built
# one (no .complete marker) is rebuilt. Concurrent callers wait on a lock file. Never install a checkout's
# own package into the cached environment: checkouts share it (put the source on PYTHONPATH instead).
set -euo pipefail
name=${1:?usage: scripts/pyenv.sh NAME LOCK_FILE}
lock=${2:?usage: scripts/pyenv.sh NAME LOCK_FILE}
python=${AUTOML_PYTHON:-python3.11}
cache=${AUTOML_CACHE_DIR:-$HOME/.cache/automl-training}
hash=$(cat "$lock" <("$python" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)
dir="$cache/venv-$name-$hash"
mkdir -p "$cache"
exec 9>"$dir.lock"
flock 9
if [ ! -f "$dir/.complete" ]; then
  rm -rf "$dir"
  echo "pyenv: building $name from $lock into $dir" >&2
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-input --upgrade pip==26.3 >&2
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-input --no-deps -r "$lock" >&2
  "$dir/bin/python" -m pip check >&2
  touch "$dir/.complete"
fi
echo "$dir"
