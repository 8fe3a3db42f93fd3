import { DomainError } from '../../common/errors/domain.error';
import { AutoMLTrainingJobStatus } from './automl-training.enums';

export class TrainingJobNotFoundError extends DomainError {
  constructor(jobId: string) {
    super('not_found', `Training job ${jobId} not found`);
  }
}

export class InvalidStatusTransitionError extends DomainError {
  constructor(jobId: string, current: AutoMLTrainingJobStatus, requested: AutoMLTrainingJobStatus) {
    super('conflict', `Training job ${jobId} is ${current}; it cannot move to ${requested}`);
  }
}

export class ConcurrentUpdateError extends DomainError {
  constructor(jobId: string) {
    super('conflict', `Training job ${jobId} is being updated concurrently; retry the request`);
  }
}

export class JobNotTriggerableError extends DomainError {
  constructor(jobId: string, current: AutoMLTrainingJobStatus) {
    super('conflict', `Training job ${jobId} is ${current}; only ready or failed jobs can be triggered`);
  }
}

export class JobNotCancellableError extends DomainError {
  constructor(jobId: string, current: AutoMLTrainingJobStatus) {
    super('conflict', `Training job ${jobId} is ${current}; only queued or running jobs can be cancelled`);
  }
}

export class DagNotReadyError extends DomainError {
  constructor(dagId: string, reason: string) {
    super('conflict', `Airflow ${reason} DAG ${dagId} yet; retry in a minute`);
  }
}

export class IdempotencyKeyReusedError extends DomainError {
  constructor() {
    super('conflict', 'This Idempotency-Key was already used with a different request; use a new key');
  }
}

export class IdempotencyKeyInFlightError extends DomainError {
  constructor() {
    super('conflict', 'The first request with this Idempotency-Key is still being processed; retry');
  }
}

/** Too many open event streams, in total or for the caller's credential. */
export class TooManyStreamsError extends DomainError {
  override readonly retryAfterSeconds = 5;

  constructor(message: string) {
    super('too_many_requests', message);
  }
}

export class NoAirflowRunError extends DomainError {
  constructor(jobId: string) {
    super('not_found', `Training job ${jobId} has no Airflow run yet`);
  }
}

export class TaskNotInRunError extends DomainError {
  constructor(taskId: string, runId: string) {
    super('not_found', `Task ${taskId} is not part of run ${runId}`);
  }
}
