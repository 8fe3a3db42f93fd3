#!/usr/bin/env bash
# npm run bench:quality: builds (or reuses) the venvs of bench/quality/requirements.lock (FLAML, AutoGluon) and of
# trainer/requirements.lock, then runs bench/quality/run.py (see its docstring for the BENCH_* settings) with bench/shared
# (the results file's header) on PYTHONPATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bench=$("$root/scripts/pyenv.sh" bench-quality "$root/bench/quality/requirements.lock")
trainer=$("$root/scripts/pyenv.sh" trainer "$root/trainer/requirements.lock")
export BENCH_TRAINER_PYTHON=${BENCH_TRAINER_PYTHON:-$trainer/bin/python}
PYTHONPATH="$root/bench/shared" exec "$bench/bin/python" "$root/bench/quality/run.py" "$@"
