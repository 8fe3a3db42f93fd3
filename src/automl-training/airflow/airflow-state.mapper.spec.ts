import { AutoMLTrainingJobStatus } from '../domain/automl-training.enums';
import { AirflowRunState } from './airflow-api';
import { isWaitingTaskState, statusOfRun, statusOfRunningRun } from './airflow-state.mapper';

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

describe('statusOfRunningRun', () => {
  it.each([
    [null, AutoMLTrainingJobStatus.Queued],
    ['scheduled', AutoMLTrainingJobStatus.Queued],
    ['queued', AutoMLTrainingJobStatus.Queued],
    ['running', AutoMLTrainingJobStatus.Running],
    ['success', AutoMLTrainingJobStatus.Running],
    ['failed', AutoMLTrainingJobStatus.Running],
    ['up_for_retry', AutoMLTrainingJobStatus.Running],
    [undefined, AutoMLTrainingJobStatus.Running],
  ] as [string | null | undefined, AutoMLTrainingJobStatus][])(
    'should show a running run whose train task is %s as %s',
    (state, status) => {
      expect(statusOfRunningRun(state)).toBe(status);
    },
  );

  it('should count only the states before a task starts as waiting', () => {
    expect(['none', 'scheduled', 'queued'].every(isWaitingTaskState)).toBe(true);
    expect(['running', 'deferred', 'success', 'failed', 'removed', 'skipped'].some(isWaitingTaskState)).toBe(false);
  });
});
