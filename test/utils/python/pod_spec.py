"""Builds the pod of a rendered container-path DAG's `train` task through the real cncf.kubernetes provider, without a
cluster (test use only).

Run in the Airflow venv: python pod_spec.py DAG_FILE. Prints one JSON object: the pod manifest as the Kubernetes API
takes it (camelCase, from the client's own serializer) and the operator's settings that are not in the pod (what
happens to the pod when the task ends, whether the result is pushed to XCom). The DAG folder goes on sys.path as
Airflow puts it, so the file imports its runtime module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any


def main(path: str) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location("rendered_training_dag", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    task: Any = module.dag.task_dict["train"]
    # What KubernetesPodOperator.dry_run() prints, built the same way (no cluster, no in-cluster lookup).
    pod = task.build_pod_request_obj(dry_run=True)
    from kubernetes.client import ApiClient

    print(
        json.dumps(
            {
                "manifest": ApiClient().sanitize_for_serialization(pod),
                "operator": type(task).__name__,
                "on_finish_action": task.on_finish_action.value,
                "do_xcom_push": task.do_xcom_push,
                "execution_timeout_seconds": task.execution_timeout.total_seconds(),
                "pool": task.pool,
                "queue": task.queue,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
