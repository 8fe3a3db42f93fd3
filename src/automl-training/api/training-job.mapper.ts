import { tuningBudget } from '../dag/training-presets';
import { mlflowLinks } from '../domain/mlflow-links';
import {
  AutoMLTrainingJobResponse,
  AutoMLTrainingJobStatusItem,
  AutoMLTrainingJobTransition,
} from './dto/response.dto';
import { TrainingJobTransitionEntity } from '../persistence/training-job-transition.entity';
import { TrainingJobEntity } from '../persistence/training-job.entity';

/** The job as the API answers it; `mlflowUiUrl` (MLFLOW_UI_URL, or null) is the base of its MLflow links. */
export function toJobResponse(job: TrainingJobEntity, mlflowUiUrl: string | null): AutoMLTrainingJobResponse {
  return {
    job_id: job.jobId,
    name: job.name,
    domain: job.domain,
    owner: job.owner,
    source_table: job.sourceTable,
    problem_type: job.problemType,
    algorithm: job.algorithm,
    preset: job.preset,
    status: job.status,
    rendered_dag: job.renderedDag,
    mlflow_run_id: job.mlflowRunId,
    mlflow_experiment_name: job.mlflowExperimentName,
    registered_model_name: job.registeredModelName,
    airflow_dag_id: job.airflowDagId,
    airflow_dag_url: job.airflowDagUrl,
    error_message: job.errorMessage,
    feature_engineering_job_id: job.featureEngineeringJobId,
    created_at: job.createdAt.toISOString(),
    updated_at: job.updatedAt.toISOString(),
    label_column: job.labelColumn,
    feature_columns: job.featureColumns,
    group_column: job.groupColumn,
    action_column: job.actionColumn,
    propensity_column: job.propensityColumn,
    reward_column: job.rewardColumn,
    cost_column: job.costColumn,
    tuning: tuningBudget(job),
    started_at: job.startedAt?.toISOString() ?? null,
    finished_at: job.finishedAt?.toISOString() ?? null,
    model_version: job.modelVersion,
    objective: job.objective,
    metrics: job.metrics,
    ...mlflowLinks(mlflowUiUrl, job),
    airflow_run_id: job.airflowRunId,
  };
}

/** A listing item: the job without its DAG source (`rendered_dag` null), which only create and GET /jobs/{id} carry. */
export function toListItem(job: TrainingJobEntity, mlflowUiUrl: string | null): AutoMLTrainingJobResponse {
  return { ...toJobResponse(job, mlflowUiUrl), rendered_dag: null };
}

export function toStatusItem(
  job: Pick<TrainingJobEntity, 'jobId' | 'status' | 'errorMessage' | 'updatedAt'>,
): AutoMLTrainingJobStatusItem {
  return {
    job_id: job.jobId,
    status: job.status,
    error_message: job.errorMessage,
    updated_at: job.updatedAt.toISOString(),
  };
}

export function toTransition(transition: TrainingJobTransitionEntity): AutoMLTrainingJobTransition {
  return {
    id: Number(transition.id),
    from_status: transition.fromStatus,
    to_status: transition.toStatus,
    source: transition.source,
    actor: transition.actor,
    error_message: transition.errorMessage,
    at: transition.at.toISOString(),
  };
}
