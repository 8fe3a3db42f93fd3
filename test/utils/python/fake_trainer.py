"""A stand-in for `python -m automl_trainer` that reports what it was given (test use only).

Modes (argv[1]):
- dump: write the result JSON with the trainer's whole environment, the spec it read and the spec file's modes.
- fail: write a few stderr lines, the last naming the cause, and exit 1.
- sleep: start a grandchild, write both pids to $TMPDIR/trainer-pids.json, wait; on SIGTERM record it
  (trainer-pids.json.sigterm) and exit 143 as the contract says.
- stubborn: as sleep, but ignore SIGTERM.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from types import FrameType


def dump() -> None:
    spec_path = os.environ["AUTOML_JOB_SPEC_PATH"]
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    result = {
        "mlflow_run_id": "run-fake",
        "registered_model_name": spec["registered_model_name"],
        "model_version": "7",
        "objective": "roc_auc",
        "metrics": {"roc_auc": 0.93, "log_loss": 0.21},
        "trials_run": 1,
        "best_params": {},
        "time_used_seconds": 0.1,
        "env": dict(os.environ),
        "spec": spec,
        "spec_file_mode": stat.S_IMODE(os.stat(spec_path).st_mode),
        "spec_dir_mode": stat.S_IMODE(os.stat(os.path.dirname(spec_path)).st_mode),
        "cwd": os.getcwd(),
    }
    with open(os.environ["AUTOML_RESULT_PATH"], "w", encoding="utf-8") as handle:
        json.dump(result, handle)


def fail() -> None:
    print("loading table public.t", file=sys.stderr)
    print("Traceback (most recent call last): ...", file=sys.stderr)
    print("column 'x' not found in table public.t", file=sys.stderr, flush=True)
    sys.exit(1)


def pids_file() -> str:
    return os.path.join(os.environ["TMPDIR"], "trainer-pids.json")


def wait(stubborn: bool) -> None:
    def on_term(_signum: int, _frame: FrameType | None) -> None:
        with open(pids_file() + ".sigterm", "w", encoding="utf-8") as handle:
            handle.write(str(os.getpid()))
        if not stubborn:
            os._exit(143)

    signal.signal(signal.SIGTERM, on_term)
    grandchild = subprocess.Popen(["sleep", "300"])  # noqa: S607 - found on the allowlisted PATH, as the trainer's tools are
    with open(pids_file() + ".tmp", "w", encoding="utf-8") as handle:
        json.dump({"trainer": os.getpid(), "grandchild": grandchild.pid}, handle)
    os.rename(pids_file() + ".tmp", pids_file())
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(0.1)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "dump":
        dump()
    elif mode == "fail":
        fail()
    else:
        wait(stubborn=mode == "stubborn")
