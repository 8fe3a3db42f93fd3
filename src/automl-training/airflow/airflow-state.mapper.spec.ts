import { AutoMLTrainingJobStatus } from '../domain/automl-training.enums';
import { AirflowRunState } from './airflow-api';
import { statusOfRun } from './airflow-state.mapper';

describe('statusOfRun', () => {
  it.each([
    ['queued', AutoMLTrainingJobStatus.Queued],
    ['running', AutoMLTrainingJobStatus.Running],
    ['success', AutoMLTrainingJobStatus.Complete],
    ['failed', AutoMLTrainingJobStatus.Failed],
  ] as [AirflowRunState, AutoMLTrainingJobStatus][])('should map Airflow %s to %s', (state, status) => {
    expect(statusOfRun(state)).toBe(status);
  });

  it('should leave an unknown state alone', () => {
    expect(statusOfRun('restarting' as AirflowRunState)).toBeNull();
  });
});
