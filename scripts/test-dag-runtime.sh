#!/usr/bin/env bash
# Unit tests of the DAG runtime (src/automl-training/dag/training_runtime.py) with pytest in the trainer-dev venv:
# test/dag-runtime, with stand-ins for the Airflow names the runtime imports (the real Airflow runs it in
# npm run test:airflow). No bytecode is written next to the runtime (src/ is the build's input). Extra arguments go
# to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv=$(scripts/pyenv.sh trainer-dev trainer/requirements-dev.lock)
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest test/dag-runtime "$@"
