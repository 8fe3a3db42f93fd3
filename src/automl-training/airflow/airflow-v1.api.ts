import createClient, { Client } from 'openapi-fetch';
import {
  AirflowApi,
  AirflowDag,
  AirflowLogChunk,
  AirflowRun,
  AirflowRunState,
  AirflowRunTaskState,
  AirflowTaskInstance,
  CallOptions,
} from './airflow-api';
import { AirflowRequestError } from './airflow.errors';
import { basicAuthorization, correlationMiddleware, unwrap } from './airflow-http';
import type { components, paths } from './generated/airflow-v1';

type DagRun = components['schemas']['DAGRun'];

function toRun(run: DagRun): AirflowRun {
  return {
    dagId: run.dag_id ?? '',
    runId: run.dag_run_id ?? '',
    state: run.state as AirflowRunState,
    sortKey: run.execution_date ?? run.logical_date ?? '',
  };
}

/** Airflow 2: `/api/v1`, basic auth, RFC 7807 errors. */
export class AirflowV1Api implements AirflowApi {
  private readonly client: Client<paths>;

  constructor(baseUrl: string, username: string | null, password: string | null) {
    this.client = createClient<paths>({
      baseUrl: `${baseUrl}/api/v1`,
      headers: username ? { Authorization: basicAuthorization(username, password ?? '') } : {},
    });
    this.client.use(correlationMiddleware);
  }

  async getDag(
    dagId: string,
    { signal, includeStale }: CallOptions & { includeStale?: boolean },
  ): Promise<AirflowDag | null> {
    const dag = unwrap(await this.client.GET('/dags/{dag_id}', { params: { path: { dag_id: dagId } }, signal }), true);
    if (!dag || (dag.is_active === false && !includeStale)) return null;
    return { dagId, isPaused: dag.is_paused === true, hasImportErrors: false };
  }

  async setPaused(dagId: string, paused: boolean, { signal }: CallOptions): Promise<void> {
    unwrap(
      await this.client.PATCH('/dags/{dag_id}', {
        params: { path: { dag_id: dagId }, query: { update_mask: ['is_paused'] } },
        body: { is_paused: paused },
        signal,
      }),
    );
  }

  async triggerRun(
    dagId: string,
    runId: string,
    conf: Record<string, unknown>,
    note: string,
    options: CallOptions,
  ): Promise<AirflowRun> {
    try {
      const run = unwrap(
        await this.client.POST('/dags/{dag_id}/dagRuns', {
          params: { path: { dag_id: dagId } },
          // v1.yaml declares conf as a property-less object; any JSON object is accepted.
          body: { dag_run_id: runId, conf: conf as DagRun['conf'], note },
          signal: options.signal,
        }),
      );
      return toRun(run!);
    } catch (error) {
      if (!(error instanceof AirflowRequestError) || error.status !== 409) throw error;
      const existing = unwrap(
        await this.client.GET('/dags/{dag_id}/dagRuns/{dag_run_id}', {
          params: { path: { dag_id: dagId, dag_run_id: runId } },
          signal: options.signal,
        }),
      );
      return toRun(existing!);
    }
  }

  async setRunFailed(dagId: string, runId: string, { signal }: CallOptions): Promise<void> {
    unwrap(
      await this.client.PATCH('/dags/{dag_id}/dagRuns/{dag_run_id}', {
        params: { path: { dag_id: dagId, dag_run_id: runId } },
        body: { state: 'failed' },
        signal,
      }),
    );
  }

  async deleteDag(dagId: string, { signal }: CallOptions): Promise<void> {
    unwrap(await this.client.DELETE('/dags/{dag_id}', { params: { path: { dag_id: dagId } }, signal }), true);
  }

  async healthy({ signal }: CallOptions): Promise<boolean> {
    return (await this.client.GET('/health', { signal })).response.ok;
  }

  async listTaskInstances(dagId: string, runId: string, { signal }: CallOptions): Promise<AirflowTaskInstance[]> {
    const page = unwrap(
      await this.client.GET('/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances', {
        params: { path: { dag_id: dagId, dag_run_id: runId }, query: { limit: 100 } },
        signal,
      }),
    )!;
    return (page.task_instances ?? [])
      .filter((ti) => (ti.map_index ?? -1) === -1)
      .map((ti) => ({ taskId: ti.task_id ?? '', tryNumber: ti.try_number ?? 0, state: ti.state ?? null }));
  }

  /**
   * Airflow 2 always answers a continuation token (its log metadata); the log
   * has nothing more for now when a chunk comes back empty.
   */
  async getTaskLog(
    dagId: string,
    runId: string,
    taskId: string,
    tryNumber: number,
    token: string | null,
    { signal }: CallOptions,
  ): Promise<AirflowLogChunk> {
    // Asked for JSON (not text/plain): the body is the object form.
    const body = unwrap(
      await this.client.GET('/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{task_try_number}', {
        params: {
          path: { dag_id: dagId, dag_run_id: runId, task_id: taskId, task_try_number: tryNumber },
          query: { full_content: false, ...(token ? { token } : {}) },
        },
        headers: { accept: 'application/json' },
        signal,
      }),
    ) as { continuation_token?: string; content?: string };
    const content = body.content ?? '';
    const lines = content === '' ? [] : content.replace(/\n$/, '').split('\n');
    return { lines, continuationToken: lines.length > 0 ? (body.continuation_token ?? null) : null };
  }

  async listTaskStates(
    taskId: string,
    runs: { dagId: string; runId: string }[],
    { signal }: CallOptions,
  ): Promise<AirflowRunTaskState[]> {
    const wanted = new Set(runs.map((run) => `${run.dagId}\n${run.runId}`));
    // Airflow 2's batch form has no paging: one answer holds every match.
    const page = unwrap(
      await this.client.POST('/dags/~/dagRuns/~/taskInstances/list', {
        body: {
          dag_ids: [...new Set(runs.map((run) => run.dagId))],
          dag_run_ids: [...new Set(runs.map((run) => run.runId))],
          task_ids: [taskId],
        },
        signal,
      }),
    )!;
    // The filters are ANDed per field, not per pair: keep the asked (DAG, run) pairs only.
    return (page.task_instances ?? [])
      .filter((ti) => (ti.map_index ?? -1) === -1 && wanted.has(`${ti.dag_id}\n${ti.dag_run_id}`))
      .map((ti) => ({ dagId: ti.dag_id ?? '', runId: ti.dag_run_id ?? '', state: ti.state ?? null }));
  }

  async listRuns(dagIds: string[], { signal }: CallOptions): Promise<AirflowRun[]> {
    const runs: AirflowRun[] = [];
    // Ask for every run in one page; follow total_entries only if Airflow caps the page.
    const pageLimit = Math.max(100, dagIds.length * 4);
    for (let offset = 0; ;) {
      const page = unwrap(
        await this.client.POST('/dags/~/dagRuns/list', {
          body: { dag_ids: dagIds, order_by: '-execution_date', page_offset: offset, page_limit: pageLimit },
          signal,
        }),
      )!;
      const batch = page.dag_runs ?? [];
      runs.push(...batch.map(toRun));
      offset += batch.length;
      if (batch.length === 0 || offset >= (page.total_entries ?? 0)) return runs;
    }
  }
}
