#!/usr/bin/env bash
# Python lint: ruff (lint and format) and mypy on every Python file of the repository (`git ls-files`, tracked and
# new, not ignored), with the settings of the root pyproject.toml, in the trainer-dev venv
# (trainer/requirements-dev.lock); then mypy once more on the DAG runtime with Apache Airflow's own types (the
# Airflow venv, deploy/airflow/requirements.lock), since the runtime subclasses and calls Airflow's classes.
# With --fix, ruff applies its fixes and formats the files first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
runtime=src/automl-training/dag/training_runtime.py
t0=$(date +%s)
dev=$(scripts/pyenv.sh trainer-dev trainer/requirements-dev.lock)
airflow=$(scripts/pyenv.sh airflow deploy/airflow/requirements.lock)
files=()
while IFS= read -r file; do
  if [ -f "$file" ]; then files+=("$file"); fi
done < <(git ls-files --cached --others --exclude-standard -- '*.py')
echo "lint-python: ${#files[@]} files, venvs ready in $(( $(date +%s) - t0 ))s"
if [ "${1:-}" = "--fix" ]; then
  "$dev/bin/ruff" check --fix "${files[@]}"
  "$dev/bin/ruff" format "${files[@]}"
fi
"$dev/bin/ruff" check "${files[@]}"
"$dev/bin/ruff" format --check "${files[@]}"
"$dev/bin/mypy" "${files[@]}"
"$dev/bin/mypy" --python-executable "$airflow/bin/python" --cache-dir .mypy_cache/airflow "$runtime"
echo "lint-python: done in $(( $(date +%s) - t0 ))s"
