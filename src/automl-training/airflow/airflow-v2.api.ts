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
import { correlationMiddleware, unwrap } from './airflow-http';
import type { paths as authPaths } from './generated/airflow-v2-auth';
import type { components, paths } from './generated/airflow-v2';

type DagRun = components['schemas']['DAGRunResponse'];
type LogMessage = components['schemas']['StructuredLogMessage'];

/** Airflow 3's structured log line as text: `timestamp [level] event`, plain lines as they are. */
function logLine(message: LogMessage | string): string {
  if (typeof message === 'string') return message;
  const level = typeof message.level === 'string' ? ` [${message.level}]` : '';
  return `${message.timestamp ?? ''}${level} ${message.event}`.trim();
}

/** Refresh the bearer token this long before it expires. */
const TOKEN_REFRESH_MARGIN_MS = 60_000;

function toRun(run: DagRun): AirflowRun {
  return { dagId: run.dag_id, runId: run.dag_run_id, state: run.state as AirflowRunState, sortKey: run.run_after };
}

function expiryOf(token: string): number {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      exp?: number;
    };
    if (typeof payload.exp === 'number') return payload.exp * 1000;
  } catch {
    // Opaque token: fall through to Airflow's default lifetime.
  }
  return Date.now() + 86_400_000;
}

/**
 * Airflow 3: `/api/v2`, bearer token from `POST /auth/token`, refreshed
 * before it expires and once more on a 401.
 */
export class AirflowV2Api implements AirflowApi {
  private readonly client: Client<paths>;
  private readonly auth: Client<authPaths>;
  private token: { value: string; expiresAt: number } | null = null;
  private pendingToken: Promise<string> | null = null;

  constructor(
    baseUrl: string,
    private readonly username: string | null,
    private readonly password: string | null,
  ) {
    this.auth = createClient<authPaths>({ baseUrl });
    this.client = createClient<paths>({ baseUrl });
    this.client.use(correlationMiddleware);
    this.client.use({
      onRequest: async ({ request }) => {
        if (this.username) request.headers.set('Authorization', `Bearer ${await this.bearer(request.signal)}`);
        return request;
      },
    });
  }

  private async bearer(signal: AbortSignal): Promise<string> {
    if (this.token && this.token.expiresAt - TOKEN_REFRESH_MARGIN_MS > Date.now()) return this.token.value;
    this.pendingToken ??= this.fetchToken(signal).finally(() => (this.pendingToken = null));
    return this.pendingToken;
  }

  private async fetchToken(signal: AbortSignal): Promise<string> {
    const body = unwrap(
      await this.auth.POST('/auth/token', {
        body: { username: this.username ?? '', password: this.password ?? '' },
        signal,
      }),
    ) as { access_token: string };
    this.token = { value: body.access_token, expiresAt: expiryOf(body.access_token) };
    return body.access_token;
  }

  /**
   * Runs `call`; when Airflow refuses the token, drops it and tries once more
   * with a fresh one. Airflow 3 answers a missing token 401 but an expired,
   * unknown or badly signed one (say after its JWT secret changed) 403
   * "Invalid JWT token".
   */
  private async authed<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof AirflowRequestError) || (error.status !== 401 && error.status !== 403) || !this.username)
        throw error;
      this.token = null;
      return call();
    }
  }

  getDag(
    dagId: string,
    { signal, includeStale }: CallOptions & { includeStale?: boolean },
  ): Promise<AirflowDag | null> {
    return this.authed(async () => {
      const dag = unwrap(
        await this.client.GET('/api/v2/dags/{dag_id}', { params: { path: { dag_id: dagId } }, signal }),
        true,
      );
      if (!dag || (dag.is_stale && !includeStale)) return null;
      return { dagId, isPaused: dag.is_paused, hasImportErrors: dag.has_import_errors };
    });
  }

  setPaused(dagId: string, paused: boolean, { signal }: CallOptions): Promise<void> {
    return this.authed(async () => {
      unwrap(
        await this.client.PATCH('/api/v2/dags/{dag_id}', {
          params: { path: { dag_id: dagId } },
          body: { is_paused: paused },
          signal,
        }),
      );
    });
  }

  triggerRun(
    dagId: string,
    runId: string,
    conf: Record<string, unknown>,
    note: string,
    { signal }: CallOptions,
  ): Promise<AirflowRun> {
    return this.authed(async () => {
      try {
        const run = unwrap(
          await this.client.POST('/api/v2/dags/{dag_id}/dagRuns', {
            params: { path: { dag_id: dagId } },
            // logical_date is a required, nullable key in Airflow 3 (AIP-83).
            body: { dag_run_id: runId, logical_date: null, conf, note },
            signal,
          }),
        );
        return toRun(run!);
      } catch (error) {
        if (!(error instanceof AirflowRequestError) || error.status !== 409) throw error;
        const existing = unwrap(
          await this.client.GET('/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}', {
            params: { path: { dag_id: dagId, dag_run_id: runId } },
            signal,
          }),
        );
        return toRun(existing!);
      }
    });
  }

  setRunFailed(dagId: string, runId: string, { signal }: CallOptions): Promise<void> {
    return this.authed(async () => {
      unwrap(
        await this.client.PATCH('/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}', {
          params: { path: { dag_id: dagId, dag_run_id: runId } },
          body: { state: 'failed' },
          signal,
        }),
      );
    });
  }

  deleteDag(dagId: string, { signal }: CallOptions): Promise<void> {
    return this.authed(async () => {
      unwrap(await this.client.DELETE('/api/v2/dags/{dag_id}', { params: { path: { dag_id: dagId } }, signal }), true);
    });
  }

  async healthy({ signal }: CallOptions): Promise<boolean> {
    return (await this.client.GET('/api/v2/monitor/health', { signal })).response.ok;
  }

  listTaskInstances(dagId: string, runId: string, { signal }: CallOptions): Promise<AirflowTaskInstance[]> {
    return this.authed(async () => {
      const page = unwrap(
        await this.client.GET('/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances', {
          params: { path: { dag_id: dagId, dag_run_id: runId }, query: { limit: 100 } },
          signal,
        }),
      )!;
      return page.task_instances
        .filter((ti) => ti.map_index === -1)
        .map((ti) => ({ taskId: ti.task_id, tryNumber: ti.try_number, state: ti.state ?? null }));
    });
  }

  getTaskLog(
    dagId: string,
    runId: string,
    taskId: string,
    tryNumber: number,
    token: string | null,
    { signal }: CallOptions,
  ): Promise<AirflowLogChunk> {
    return this.authed(async () => {
      const body = unwrap(
        await this.client.GET('/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}', {
          params: {
            path: { dag_id: dagId, dag_run_id: runId, task_id: taskId, try_number: tryNumber },
            query: { full_content: false, ...(token ? { token } : {}) },
            header: { accept: 'application/json' },
          },
          signal,
        }),
        // Asked for JSON (not NDJSON): the body is the object form.
      ) as components['schemas']['TaskInstancesLogResponse'];
      return {
        lines: (body.content as (LogMessage | string)[]).map(logLine),
        continuationToken: body.continuation_token,
      };
    });
  }

  listTaskStates(
    taskId: string,
    runs: { dagId: string; runId: string }[],
    { signal }: CallOptions,
  ): Promise<AirflowRunTaskState[]> {
    return this.authed(async () => {
      const wanted = new Set(runs.map((run) => `${run.dagId}\n${run.runId}`));
      const states: AirflowRunTaskState[] = [];
      const pageLimit = Math.max(100, runs.length);
      for (let offset = 0; ;) {
        const page = unwrap(
          await this.client.POST('/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list', {
            params: { path: { dag_id: '~', dag_run_id: '~' } },
            body: {
              dag_ids: [...new Set(runs.map((run) => run.dagId))],
              dag_run_ids: [...new Set(runs.map((run) => run.runId))],
              task_ids: [taskId],
              page_offset: offset,
              page_limit: pageLimit,
            },
            signal,
          }),
        )!;
        for (const ti of page.task_instances) {
          // The filters are ANDed per field, not per pair: keep the asked (DAG, run) pairs only.
          if (ti.map_index === -1 && wanted.has(`${ti.dag_id}\n${ti.dag_run_id}`))
            states.push({ dagId: ti.dag_id, runId: ti.dag_run_id, state: ti.state ?? null });
        }
        offset += page.task_instances.length;
        if (page.task_instances.length === 0 || offset >= page.total_entries) return states;
      }
    });
  }

  listRuns(dagIds: string[], { signal }: CallOptions): Promise<AirflowRun[]> {
    return this.authed(async () => {
      const runs: AirflowRun[] = [];
      const pageLimit = Math.max(100, dagIds.length * 4);
      for (let offset = 0; ;) {
        const page = unwrap(
          await this.client.POST('/api/v2/dags/{dag_id}/dagRuns/list', {
            params: { path: { dag_id: '~' } },
            body: { dag_ids: dagIds, order_by: '-run_after', page_offset: offset, page_limit: pageLimit },
            signal,
          }),
        )!;
        runs.push(...page.dag_runs.map(toRun));
        offset += page.dag_runs.length;
        if (page.dag_runs.length === 0 || offset >= page.total_entries) return runs;
      }
    });
  }
}
