"""How the Python benchmarks (bench/quality, bench/trainer) keep their figures, with the header bench/shared/results.ts
writes for the TypeScript ones: every results file starts with the header of its last write,

    date     when it was written, ISO 8601 UTC
    commit   the git HEAD the figures were measured on (null outside a git checkout)
    dirty    whether tracked files other than results files differed from that commit
    machine  {arch, cpus, cpu_model, memory_gib, runtime}

then the benchmark's figures, as entries a run replaces or keeps (bench/quality: "runs", one per table, seed,
system and budget; bench/trainer: "sizes", one per row count); every entry a run writes carries the date, commit
and dirty of that run (`stamp`). On the PYTHONPATH the run.sh scripts set.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    done = subprocess.run([git, "-C", str(ROOT), *args], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> int | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError, AttributeError):
        return None


def run_header() -> dict[str, Any]:
    """The header of a results file written now: date, commit, dirty, machine."""
    commit = _git("rev-parse", "HEAD")
    changes = None
    if commit is not None:
        changes = _git(
            "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude,glob)bench/**/results*.json"
        )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit,
        "dirty": None if changes is None else changes != "",
        "machine": {
            "arch": platform.machine(),
            "cpus": os.cpu_count(),
            "cpu_model": _cpu_model(),
            "memory_gib": _memory_gib(),
            "runtime": f"Python {platform.python_version()}",
        },
    }


def stamp(header: dict[str, Any]) -> dict[str, Any]:
    """What every entry carries of the run that measured it: its date, commit and dirty."""
    return {key: header[key] for key in ("date", "commit", "dirty")}


def write_results(path: Path, document: dict[str, Any]) -> None:
    """Writes a results document as every benchmark does: JSON indented by one space, a final newline."""
    path.write_text(json.dumps(document, indent=1) + "\n")
