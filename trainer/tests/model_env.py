"""A virtual environment built only from a registered model's own requirements.txt (the trainer is not importable
there), cached by the hash of the requirements and the Python version under AUTOML_CACHE_DIR like the project's
other venvs, so a second run costs nothing."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("AUTOML_CACHE_DIR", Path.home() / ".cache" / "automl-training"))
PYTHON = os.environ.get("AUTOML_PYTHON", "python3.11")


def model_venv(requirements: Path) -> Path:
    text = requirements.read_text(encoding="utf-8")
    key = hashlib.sha256(f"{text}\n{sys.version}".encode()).hexdigest()[:16]
    directory = CACHE / f"venv-model-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(f"{directory}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / ".complete").exists():
            shutil.rmtree(directory, ignore_errors=True)
            subprocess.run([PYTHON, "-m", "venv", str(directory)], check=True)
            pip = [str(directory / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            subprocess.run([*pip, "--no-input", "-r", str(requirements)], check=True, stdout=sys.stderr)
            (directory / "requirements.txt").write_text(text, encoding="utf-8")
            (directory / ".complete").touch()
    return directory
