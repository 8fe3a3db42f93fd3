#!/usr/bin/env bash
# Trainer checks: build (or reuse) the cached venv of trainer/requirements-dev.lock, then ruff (also on the bench's
# FastAPI reference, bench/references/fastapi, the trainer bench, bench/trainer, the quality bench, bench/quality, and
# their shared results header, bench/shared, with the trainer's settings: see their ruff.toml), mypy and pytest against the machine's PostgreSQL (TRAINER_TEST_PG, an admin URL the tests create and
# drop a database on) and an MLflow server the tests start on a free loopback port. Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/trainer"
t0=$(date +%s)
venv=$("$root/scripts/pyenv.sh" trainer-dev requirements-dev.lock)
echo "test-trainer: venv $venv ready in $(( $(date +%s) - t0 ))s"
"$venv/bin/ruff" check src tests ../bench/references/fastapi ../bench/trainer ../bench/quality ../bench/shared
"$venv/bin/ruff" format --check src tests ../bench/references/fastapi ../bench/trainer ../bench/quality ../bench/shared
PYTHONPATH=src "$venv/bin/mypy" src
export TRAINER_TEST_PG=${TRAINER_TEST_PG:-postgresql://postgres@127.0.0.1:5432/postgres}
PYTHONPATH=src "$venv/bin/python" -m pytest "$@"
echo "test-trainer: done in $(( $(date +%s) - t0 ))s"
