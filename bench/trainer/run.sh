#!/usr/bin/env bash
# npm run bench:trainer: the trainer's load and prepare stages (and, with BENCH_TRAIN=1, whole runs) on generated
# tables of 1M and 5M rows, against the COPY (FORMAT binary) floor. Runs with the trainer's venv
# (trainer/requirements.lock, built and cached by scripts/pyenv.sh), the trainer's source and bench/shared (the results
# file's header) on PYTHONPATH. Settings: bench/trainer/run.py.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=$("$root/scripts/pyenv.sh" trainer "$root/trainer/requirements.lock")
PYTHONPATH="$root/trainer/src:$root/bench/shared" exec "$venv/bin/python" "$root/bench/trainer/run.py" "$@"
