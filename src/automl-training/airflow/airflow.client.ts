import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import CircuitBreaker from 'opossum';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { MetricsService } from '../../metrics/metrics.service';
import {
  AirflowApi,
  AirflowDag,
  AirflowLogChunk,
  AirflowRun,
  AirflowRunTaskState,
  AirflowTaskInstance,
} from './airflow-api';
import { AirflowNotConfiguredError, AirflowRequestError, AirflowUnavailableError } from './airflow.errors';
import { AirflowServerError } from './airflow-http';
import type { AirflowV1Api } from './airflow-v1.api';
import type { AirflowV2Api } from './airflow-v2.api';

type Operation<T> = (signal: AbortSignal) => Promise<T>;

const CONSECUTIVE_FAILURES_TO_OPEN = 3;
/** Deletes tried while Airflow answers 409 (task instances still running), failing the active runs between. */
const DELETE_ATTEMPTS = 4;

export interface AirflowCallOptions {
  /** Overall time for the call, retries included; defaults to AIRFLOW_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Retry once after a transport failure or 5xx. Only for calls that are safe to repeat. */
  retry?: boolean;
}

/**
 * The only class that talks to Airflow. Every call has a deadline; safe calls
 * are retried once; a circuit breaker opens after repeated outages (timeouts,
 * connection errors, 5xx — never Airflow's 4xx answers) so that a dead Airflow
 * costs microseconds per request until it is probed again.
 */
@Injectable()
export class AirflowClient implements OnModuleDestroy {
  private readonly logger = new Logger(AirflowClient.name);
  private readonly api: AirflowApi | null;
  private readonly breaker: CircuitBreaker<[Operation<unknown>, number], unknown>;
  private readonly timeoutMs: number;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    const { url, username, password, apiVersion, timeoutMs } = config.airflow;
    this.timeoutMs = timeoutMs;
    // Only the configured API version's client is loaded.
    /* eslint-disable @typescript-eslint/no-require-imports */
    this.api = !url
      ? null
      : apiVersion === 'v1'
        ? new (require('./airflow-v1.api') as { AirflowV1Api: typeof AirflowV1Api }).AirflowV1Api(
            url,
            username,
            password,
          )
        : new (require('./airflow-v2.api') as { AirflowV2Api: typeof AirflowV2Api }).AirflowV2Api(
            url,
            username,
            password,
          );
    /* eslint-enable @typescript-eslint/no-require-imports */
    this.breaker = new CircuitBreaker(
      (operation: Operation<unknown>, deadline: number) => this.attempt(operation, deadline),
      {
        timeout: false,
        errorThresholdPercentage: 50,
        volumeThreshold: 3,
        rollingCountTimeout: 10_000,
        resetTimeout: 5_000,
        errorFilter: (error: unknown) => error instanceof AirflowRequestError,
      },
    );
    // Percentages alone react slowly when a healthy period fills the window: a run of
    // consecutive outages opens the circuit too.
    let consecutiveFailures = 0;
    this.breaker.on('success', () => (consecutiveFailures = 0));
    this.breaker.on('failure', () => {
      if (++consecutiveFailures >= CONSECUTIVE_FAILURES_TO_OPEN && !this.breaker.opened) this.breaker.open();
    });
    this.breaker.on('open', () => this.logger.warn('Airflow circuit breaker opened: failing fast'));
    metrics.watchBreaker(() => this.breaker.opened);
    this.breaker.on('halfOpen', () => this.logger.log('Airflow circuit breaker half-open: probing'));
    this.breaker.on('close', () => this.logger.log('Airflow circuit breaker closed'));
  }

  get configured(): boolean {
    return this.api !== null;
  }

  get breakerOpen(): boolean {
    return this.breaker.opened;
  }

  onModuleDestroy(): void {
    this.breaker.shutdown();
  }

  /** A readiness probe: Airflow's health endpoint within `timeoutMs`, outside the breaker. */
  async probe(timeoutMs = 1_000): Promise<{ reachable: boolean; breaker: 'open' | 'closed' | 'half-open' }> {
    const breaker = this.breaker.opened ? 'open' : this.breaker.halfOpen ? 'half-open' : 'closed';
    if (!this.api) return { reachable: false, breaker };
    const reachable = await this.api.healthy({ signal: AbortSignal.timeout(timeoutMs) }).catch(() => false);
    return { reachable, breaker };
  }

  /** The DAG as Airflow has it; null when it has not parsed it, or (unless `includeStale`) its file is gone. */
  getDag(dagId: string, { includeStale = false }: { includeStale?: boolean } = {}): Promise<AirflowDag | null> {
    return this.call('getDag', (api, signal) => api.getDag(dagId, { signal, includeStale }), { retry: true });
  }

  setPaused(dagId: string, paused: boolean): Promise<void> {
    return this.call('setPaused', (api, signal) => api.setPaused(dagId, paused, { signal }), { retry: true });
  }

  /** Idempotent by run id (a repeat returns the existing run), so it may be retried. */
  triggerRun(dagId: string, runId: string, conf: Record<string, unknown>, note: string): Promise<AirflowRun> {
    return this.call('triggerRun', (api, signal) => api.triggerRun(dagId, runId, conf, note, { signal }), {
      retry: true,
    });
  }

  setRunFailed(dagId: string, runId: string): Promise<void> {
    return this.call('setRunFailed', (api, signal) => api.setRunFailed(dagId, runId, { signal }), { retry: true });
  }

  /**
   * Airflow refuses (409) to delete a DAG while one of its task instances runs: its active runs are
   * marked failed (which fails their running task instances) and the delete is tried again.
   */
  async deleteDag(dagId: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.call('deleteDag', (api, signal) => api.deleteDag(dagId, { signal }), { retry: true });
      } catch (error) {
        if (!(error instanceof AirflowRequestError) || error.status !== 409 || attempt >= DELETE_ATTEMPTS) throw error;
      }
      const runs = await this.call('listRuns', (api, signal) => api.listRuns([dagId], { signal }), { retry: true });
      const active = runs.filter((run) => run.dagId === dagId && (run.state === 'running' || run.state === 'queued'));
      this.logger.log(
        `Airflow refused to delete ${dagId} while its tasks run: failing ${active.length} active run(s) first`,
      );
      for (const run of active) await this.setRunFailed(dagId, run.runId);
      if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }

  listTaskInstances(dagId: string, runId: string): Promise<AirflowTaskInstance[]> {
    return this.call('listTaskInstances', (api, signal) => api.listTaskInstances(dagId, runId, { signal }), {
      retry: true,
    });
  }

  getTaskLog(
    dagId: string,
    runId: string,
    taskId: string,
    tryNumber: number,
    token: string | null,
  ): Promise<AirflowLogChunk> {
    return this.call(
      'getTaskLog',
      (api, signal) => api.getTaskLog(dagId, runId, taskId, tryNumber, token, { signal }),
      { retry: true },
    );
  }

  /** The state of task `taskId` in each of `runs`, from one batch request (none asked: no request). */
  async taskStates(
    taskId: string,
    runs: { dagId: string; runId: string }[],
    options: AirflowCallOptions = {},
  ): Promise<AirflowRunTaskState[]> {
    if (runs.length === 0) return [];
    return this.call('listTaskStates', (api, signal) => api.listTaskStates(taskId, runs, { signal }), {
      retry: false,
      ...options,
    });
  }

  /** Latest run of each DAG that has one, from one batch request. */
  async latestRuns(dagIds: string[], options: AirflowCallOptions = {}): Promise<Map<string, AirflowRun>> {
    const runs = await this.call('listRuns', (api, signal) => api.listRuns(dagIds, { signal }), {
      retry: false,
      ...options,
    });
    const latest = new Map<string, AirflowRun>();
    for (const run of runs) {
      const seen = latest.get(run.dagId);
      if (!seen || run.sortKey > seen.sortKey) latest.set(run.dagId, run);
    }
    return latest;
  }

  private async call<T>(
    name: string,
    operation: (api: AirflowApi, signal: AbortSignal) => Promise<T>,
    options: AirflowCallOptions,
  ): Promise<T> {
    if (!this.api) throw new AirflowNotConfiguredError();
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      const result = await this.attempts(operation, options);
      this.metrics.airflowCall(name, 'ok', seconds());
      return result;
    } catch (error) {
      this.metrics.airflowCall(name, error instanceof AirflowRequestError ? 'refused' : 'unavailable', seconds());
      throw error;
    }
  }

  private async attempts<T>(
    operation: (api: AirflowApi, signal: AbortSignal) => Promise<T>,
    options: AirflowCallOptions,
  ): Promise<T> {
    const api = this.api;
    if (!api) throw new AirflowNotConfiguredError();
    const deadline = Date.now() + (options.timeoutMs ?? this.timeoutMs);
    const bound: Operation<T> = (signal) => operation(api, signal);
    const attempts = options.retry ? 2 : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.breaker.fire(bound as Operation<unknown>, deadline)) as T;
      } catch (error) {
        if (error instanceof AirflowRequestError) throw error;
        if (this.breaker.opened || attempt >= attempts || Date.now() >= deadline) throw this.unavailable(error);
      }
    }
  }

  private attempt<T>(operation: Operation<T>, deadline: number): Promise<T> {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return Promise.reject(new Error('deadline exceeded'));
    return operation(AbortSignal.timeout(remaining));
  }

  private unavailable(error: unknown): AirflowUnavailableError {
    if ((error as { code?: string }).code === 'EOPENBREAKER')
      return new AirflowUnavailableError('circuit open after repeated failures');
    if (error instanceof AirflowServerError) return new AirflowUnavailableError(`HTTP ${error.status}`);
    const name = (error as { name?: string }).name;
    if (name === 'TimeoutError' || name === 'AbortError') return new AirflowUnavailableError('timed out');
    return new AirflowUnavailableError('unreachable');
  }
}
