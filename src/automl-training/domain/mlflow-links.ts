/** Links from a job into MLflow's UI, as the job response and a completion event carry them. */
export interface MlflowLinks {
  mlflow_run_url: string | null;
  model_version_url: string | null;
}

/** What the links are built from: the complete writeback's result, as stored on the job. */
export interface MlflowResultIds {
  mlflowRunId: string | null;
  registeredModelName: string | null;
  modelVersion: string | null;
}

/**
 * Links into the MLflow UI at `uiUrl` (no trailing slash; null: no links).
 * MLflow 3's UI is a hash router; these are two of its routes (mlflow 3.17.2,
 * server/js/build): `/runs/:runUuid` finds the run's experiment itself and
 * redirects to the run's page, so the run link needs no experiment id, and
 * `/models/:modelName/versions/:version` is a registered model version's page.
 * Each path segment is percent-encoded, as the UI's own route builders do.
 * (The model version page decodes the name once more after the router has:
 * a name with '%' does not open there, from its own links either.)
 */
export function mlflowLinks(uiUrl: string | null, ids: MlflowResultIds): MlflowLinks {
  if (uiUrl === null) return { mlflow_run_url: null, model_version_url: null };
  const segment = encodeURIComponent;
  const { mlflowRunId, registeredModelName, modelVersion } = ids;
  return {
    mlflow_run_url: mlflowRunId ? `${uiUrl}/#/runs/${segment(mlflowRunId)}` : null,
    model_version_url:
      registeredModelName && modelVersion
        ? `${uiUrl}/#/models/${segment(registeredModelName)}/versions/${segment(modelVersion)}`
        : null,
  };
}
