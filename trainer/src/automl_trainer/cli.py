"""The process: environment in, exit code and result JSON out; SIGTERM and crashes end the MLflow run.

SIGTERM is blocked in every thread and taken by a watchdog thread with sigwait(), so it is handled at once
even while the main thread sits in native code (a LightGBM/XGBoost round, a driver call): the watchdog ends
the MLflow run as KILLED (bounded wait) and exits 143.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback

from automl_trainer.errors import TrainerError

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)

KILL_GRACE_SECONDS = 4.0  # SIGTERM: how long ending the run KILLED may delay the exit
FAIL_GRACE_SECONDS = 20.0  # failure: how long to wait for MLflow to record FAILED


def fail(message: str) -> None:
    """The last stderr line: what the DAG reports as the job's error_message."""
    print(f"error: {message}", file=sys.stderr, flush=True)


def thread_count() -> int:
    """AUTOML_TRAINER_THREADS, else the CPUs this process may run on."""
    raw = os.environ.get("AUTOML_TRAINER_THREADS", "")
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return max(1, len(os.sched_getaffinity(0)))


def _watch_sigterm(run: object) -> None:
    from automl_trainer.track import Run

    assert isinstance(run, Run)
    signal.sigwait({signal.SIGTERM})
    ended = run.end_within("KILLED", KILL_GRACE_SECONDS)
    fail("terminated by SIGTERM" + ("; MLflow run ended KILLED" if run.run_id and ended else ""))
    os._exit(143)


def write_result(path: str, result: dict[str, object]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    os.replace(partial, path)


def return_freed_memory() -> None:
    """Freed table-sized memory goes back to the system, so the peak is what is live, not what was ever held.

    Arrow allocates through malloc (not its own mimalloc pool, which keeps freed pages), and glibc serves every
    allocation of 128 KiB or more by mmap, returned on free (its default threshold rises to 32 MiB once big
    blocks are freed, after which the reader's per-batch columns stay in the heap). Measured on
    `npm run bench:trainer`'s 3M-row table: peak RSS of load + prepare + split 1,325 → 803 MiB.
    """
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")  # read when pyarrow is first imported
    if sys.platform.startswith("linux"):
        import ctypes
        import ctypes.util

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)  # glibc only (musl has no mallopt: AttributeError)


def main() -> int:
    started = time.monotonic()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    threads = thread_count()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))
    # OpenMP threads sleep instead of spinning while idle: on a shared Airflow worker a spinning LightGBM/XGBoost
    # thread pool was measured 20x slower than one thread (2 cores, load 12).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    return_freed_memory()

    from automl_trainer.track import Run

    run = Run()
    threading.Thread(target=_watch_sigterm, args=(run,), name="sigterm", daemon=True).start()
    try:
        from automl_trainer.spec import load_spec

        spec = load_spec()
        result_path = os.environ.get("AUTOML_RESULT_PATH")
        source_url = os.environ.get("AUTOML_SOURCE_URL")
        if not result_path:
            raise TrainerError("AUTOML_RESULT_PATH is not set")
        if not source_url:
            raise TrainerError("AUTOML_SOURCE_URL is not set")
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            raise TrainerError("MLFLOW_TRACKING_URI is not set")
        run_id = run.start(spec)
        print(f"automl_trainer: job {spec.job_id}: MLflow run {run_id}", file=sys.stderr, flush=True)

        from automl_trainer.pipeline import run_pipeline

        result = run_pipeline(spec, source_url, run_id, threads, started)
        run.end("FINISHED")
        write_result(result_path, result)
        print(json.dumps(result), flush=True)
        return 0
    except TrainerError as error:
        return _leave(run, "FAILED", str(error), 1)
    except KeyboardInterrupt:
        return _leave(run, "KILLED", "interrupted", 130)
    except Exception as error:  # a crash: the traceback for the log, then one line for the writeback
        traceback.print_exc()
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return _leave(run, "FAILED", f"{type(error).__name__}: {first}" if first else type(error).__name__, 1)


def _leave(run: object, status: str, message: str, code: int) -> int:
    from automl_trainer.track import Run

    assert isinstance(run, Run)
    ended = run.run_id is None or run.end_within(status, FAIL_GRACE_SECONDS)
    fail(message)
    if not ended:  # MLflow did not answer: skip its atexit hook, which would wait on it again
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(code)
    return code
