import { AutoMLTrainingJobStatus } from '../domain/automl-training.enums';
import { AirflowRunState } from './airflow-api';

/** Airflow's DAG run state → our job status (spec, "Reconciliation"). */
export function statusOfRun(state: AirflowRunState): AutoMLTrainingJobStatus | null {
  switch (state) {
    case 'queued':
      return AutoMLTrainingJobStatus.Queued;
    case 'running':
      return AutoMLTrainingJobStatus.Running;
    case 'success':
      return AutoMLTrainingJobStatus.Complete;
    case 'failed':
      return AutoMLTrainingJobStatus.Failed;
    default:
      // A state this version does not know: leave the stored status alone.
      return null;
  }
}
