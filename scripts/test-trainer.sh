#!/usr/bin/env bash
# Trainer tests: build (or reuse) the cached venv of trainer/requirements-dev.lock, then pytest against the machine's
# PostgreSQL (TRAINER_TEST_PG, an admin URL the tests create and drop a database on) and an MLflow server the tests
# start on a free loopback port. Extra arguments go to pytest. ruff and mypy of the trainer (and of every other
# Python file): scripts/lint-python.sh (npm run lint:py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/trainer"
t0=$(date +%s)
venv=$("$root/scripts/pyenv.sh" trainer-dev requirements-dev.lock)
echo "test-trainer: venv $venv ready in $(( $(date +%s) - t0 ))s"
export TRAINER_TEST_PG=${TRAINER_TEST_PG:-postgresql://postgres@127.0.0.1:5432/postgres}
PYTHONPATH=src "$venv/bin/python" -m pytest "$@"
echo "test-trainer: done in $(( $(date +%s) - t0 ))s"
