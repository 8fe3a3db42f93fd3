"""AutoML trainer: one job spec in, one tuned model tracked and registered in MLflow, one result JSON out.

Stages, one module each: spec (read the job) → load (read the table) → prepare (features, labels, splits)
→ tune (Optuna search under the job's budget, then a refit) → evaluate (metrics per problem type)
→ track (MLflow run, model logged and registered). cli wires them together and owns signals and exit codes.
"""

__version__ = "0.1.0"
