import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { dagBody, healthBody, runBody, taskInstanceBody } from './airflow-double.shapes';
import { AirflowSpecValidator } from './airflow-spec.validator';

type RunState = 'queued' | 'running' | 'success' | 'failed';

export interface DagRecord {
  dagId: string;
  fileloc: string;
  isPaused: boolean;
  autoTrigger: boolean;
  parsedAt: string;
  /** The task ids its file declares (`task_id="…"`), in file order. */
  taskIds: string[];
  /** Its file was gone at the last parse (v2 `is_stale`, v1 `is_active: false`); kept, as Airflow keeps it. */
  stale?: boolean;
}

export interface TaskRecord {
  taskId: string;
  /** The latest try; 0 before the task first runs. */
  tryNumber: number;
  state: string | null;
  startDate: string | null;
  endDate: string | null;
  /** Log lines per try number. */
  logs: Map<number, string[]>;
}

export interface RunRecord {
  dagId: string;
  runId: string;
  state: RunState;
  runType: 'manual' | 'scheduled';
  conf: Record<string, unknown>;
  note: string | null;
  runAfter: string;
  startDate: string | null;
  endDate: string | null;
  tasks: TaskRecord[];
}

export interface AirflowDoubleOptions {
  version: 'v1' | 'v2';
  dagsDir: string;
  username?: string;
  password?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
  correlationId: string | undefined;
}

/** Thrown by handlers to answer with Airflow's error shape for the API version. */
class HttpError {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    /** Airflow 3's structured `detail` when it is not a string (pydantic 422 items, the 409 of a unique violation). */
    readonly v2Detail?: unknown,
  ) {}
}

/** Distinct answers whose spec check is remembered (the oldest forgotten first). */
const CHECKED_ANSWERS = 16;

/**
 * A stateful Airflow on 127.0.0.1 speaking the official REST shapes of the
 * endpoints the service uses (v1 for Airflow 2 with basic auth and problem
 * details; v2 for Airflow 3 with /auth/token bearer tokens and FastAPI
 * errors). DAGs appear when `parse()` reads the dags folder; `@once` DAGs
 * get their scheduled run then; runs move on `setRunState`. Every request
 * and response body is checked against the spec: a violation is answered
 * with 599 and recorded in `violations`. Knobs: `latencyMs`, `hang`,
 * `failWith` (5xx).
 */
export class AirflowDouble {
  private server!: Server;
  private readonly validator: AirflowSpecValidator;
  private readonly dags = new Map<string, DagRecord>();
  private readonly runs: RunRecord[] = [];
  private readonly tokens = new Set<string>();
  private readonly hanging = new Set<ServerResponse>();
  private readonly checkedAnswers = new Map<string, string[]>();
  readonly requests: RecordedRequest[] = [];
  readonly violations: string[] = [];
  latencyMs = 0;
  /** Log lines per answer of the log endpoint, before a continuation token is needed. */
  logChunkLines = 100;
  hang = false;
  failWith: number | null = null;
  /** Answer the batch task-instance list 404, as an Airflow without that endpoint would. */
  withoutTaskInstanceBatch = false;
  url = '';

  private constructor(private readonly options: Required<AirflowDoubleOptions>) {
    this.validator = options.version === 'v1' ? AirflowSpecValidator.v1() : AirflowSpecValidator.v2();
  }

  /**
   * Compiles the checks of the task-instance answers ahead: v1's TaskInstance schema pulls in most of the spec,
   * and compiling it during a request took longer than the service's one-second deadline in the tests.
   */
  private warmValidator(): void {
    const prefix = this.options.version === 'v1' ? '' : '/api/v2';
    this.validator.responseErrors(`${prefix}/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances`, 'get', 200, {});
    const batch = prefix
      ? '/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list'
      : '/dags/~/dagRuns/~/taskInstances/list';
    this.validator.responseErrors(`${prefix}${batch}`, 'post', 200, {});
  }

  static async start(options: AirflowDoubleOptions): Promise<AirflowDouble> {
    const double = new AirflowDouble({ username: 'airflow', password: 'airflow-secret', ...options });
    double.warmValidator();
    await double.listen();
    return double;
  }

  /** Environment that points the service at this double. */
  env(): Record<string, string> {
    return {
      AIRFLOW_URL: this.url,
      AIRFLOW_USERNAME: this.options.username,
      AIRFLOW_PASSWORD: this.options.password,
      AIRFLOW_API_VERSION: this.options.version,
      AIRFLOW_DAGS_DIR: this.options.dagsDir,
    };
  }

  /**
   * The DAG processor: registers every DAG file in the folder; `@once` DAGs get their scheduled run. A DAG whose
   * file is gone is marked stale (and kept), one whose file is back is not, as Airflow 3's dag-processor does.
   */
  parse(): string[] {
    const found: string[] = [];
    for (const dag of this.dags.values()) dag.stale = !existsSync(dag.fileloc);
    for (const file of readdirSync(this.options.dagsDir).filter(
      (name) => name.endsWith('.py') && !name.startsWith('.'),
    )) {
      const own = readFileSync(join(this.options.dagsDir, file), 'utf8');
      // A DAG file's tasks and dates may come from the runtime module it imports, as Airflow would see them.
      const runtime = /^from (automl_runtime_\w+) import /m.exec(own)?.[1];
      const runtimePath = runtime ? join(this.options.dagsDir, `${runtime}.py`) : null;
      const source = runtimePath && existsSync(runtimePath) ? `${own}\n${readFileSync(runtimePath, 'utf8')}` : own;
      const dagId = /^DAG_ID = "([^"]+)"$/m.exec(source)?.[1];
      if (!dagId) continue;
      found.push(dagId);
      if (this.dags.has(dagId)) continue;
      const autoTrigger = /^AUTO_TRIGGER = True$/m.test(source);
      const taskIds = [...new Set([...source.matchAll(/task_id="([^"]+)"/g)].map((m) => m[1]))];
      this.dags.set(dagId, {
        dagId,
        fileloc: join(this.options.dagsDir, file),
        isPaused: false,
        autoTrigger,
        parsedAt: now(),
        taskIds,
      });
      if (autoTrigger) {
        // An @once DAG's run is scheduled at its start_date (its logical date and run_after), as Airflow 3 does.
        const start = /start_date=datetime\.fromisoformat\("([^"]+)"\)/.exec(source);
        const at = start ? new Date(start[1]).toISOString() : now();
        this.addRun(dagId, `scheduled__${at.replace('.000Z', '+00:00')}`, 'scheduled', {}, null, at);
      }
    }
    return found;
  }

  /**
   * Moves the latest run of `dagId` (or the named run) to `state`. A run that starts runs its first task, `train`,
   * as the scheduler does when a slot is free (see `holdTraining` for one that waits).
   */
  setRunState(dagId: string, state: RunState, runId?: string): void {
    const run = runId ? this.runs.find((r) => r.dagId === dagId && r.runId === runId) : this.latest(dagId);
    if (!run) throw new Error(`no run for ${dagId}`);
    run.state = state;
    const train = run.tasks.find((task) => task.taskId === 'train');
    if (
      state === 'running' &&
      train &&
      train.tryNumber === 0 &&
      (train.state === null || train.state === 'scheduled')
    ) {
      train.tryNumber = 1;
      train.state = 'running';
      train.startDate = now();
      train.logs.set(1, []);
    }
    // Airflow marks a failed run's running task instances failed (and its unfinished ones skipped) with it.
    if (state === 'failed') {
      for (const task of run.tasks) {
        if (task.state === 'running') {
          task.state = 'failed';
          task.endDate = now();
        }
      }
    }
    if (state !== 'queued') run.startDate ??= now();
    if (state === 'success' || state === 'failed') run.endDate = now();
  }

  /**
   * The latest run of `dagId` starts while its `train` task waits, `scheduled`, as Airflow holds a task back when its
   * pool has no free slot.
   */
  holdTraining(dagId: string): void {
    const run = this.latest(dagId);
    const train = run?.tasks.find((task) => task.taskId === 'train');
    if (!run || !train) throw new Error(`no train task in the latest run of ${dagId}`);
    train.state = 'scheduled';
    run.state = 'running';
    run.startDate ??= now();
  }

  /**
   * A task of the latest run of `dagId` writes `lines` to its log: its first try starts if it has not run,
   * `newTry` starts another (as a retry or clear would). The task instance takes `state`.
   */
  writeTaskLog(
    dagId: string,
    taskId: string,
    lines: string[],
    options: { state?: string; newTry?: boolean } = {},
  ): TaskRecord {
    const run = this.latest(dagId);
    const task = run?.tasks.find((t) => t.taskId === taskId);
    if (!run || !task) throw new Error(`no task ${taskId} in the latest run of ${dagId}`);
    if (task.tryNumber === 0 || options.newTry) {
      task.tryNumber++;
      task.startDate = now();
      task.logs.set(task.tryNumber, []);
    }
    task.logs.get(task.tryNumber)!.push(...lines);
    task.state = options.state ?? 'running';
    if (task.state === 'success' || task.state === 'failed') task.endDate = now();
    return task;
  }

  runsOf(dagId: string): RunRecord[] {
    return this.runs.filter((run) => run.dagId === dagId);
  }

  dag(dagId: string): DagRecord | undefined {
    return this.dags.get(dagId);
  }

  count(method: string, pathPart: string): number {
    return this.requests.filter((r) => r.method === method && r.path.includes(pathPart)).length;
  }

  async stop(): Promise<void> {
    for (const response of this.hanging) response.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private findRun(dagId: string, runId: string): RunRecord {
    const run = this.runs.find((r) => r.dagId === dagId && r.runId === runId);
    if (!run)
      throw new HttpError(
        404,
        'DAGRun not found',
        `DAGRun with DAG ID: '${dagId}' and DagRun ID: '${runId}' not found`,
      );
    return run;
  }

  /**
   * One chunk of a log from the position a token carries (a signed `{"log_pos": n}`, as Airflow's
   * URLSafeSerializer makes it). Airflow 3 answers structured lines and no token once the log has ended
   * (a finished task's end reached); Airflow 2 a text chunk and always a token.
   */
  private logChunk(task: TaskRecord, tryNumber: number, lines: string[], token: string | null): unknown {
    let position = 0;
    if (token !== null) {
      const [payload, signature] = token.split('.');
      if (!payload || signature !== sign(payload))
        throw new HttpError(400, 'BadRequest', 'Bad Signature. Please use only the tokens provided by the API.');
      position = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { log_pos: number }).log_pos;
    }
    const chunk = lines.slice(position, position + this.logChunkLines);
    const next = position + chunk.length;
    const finished = task.tryNumber > tryNumber || task.state === 'success' || task.state === 'failed';
    const ended = finished && next >= lines.length;
    const payload = Buffer.from(JSON.stringify({ log_pos: next, end_of_log: ended })).toString('base64url');
    const continuation = `${payload}.${sign(payload)}`;
    if (this.options.version === 'v1') {
      return { continuation_token: continuation, content: chunk.map((line) => `${line}\n`).join('') };
    }
    const at = task.startDate ?? now();
    return {
      content: chunk.map((event) => ({ timestamp: at, event, level: 'info', logger: 'task.stdout' })),
      continuation_token: ended ? null : continuation,
    };
  }

  private latest(dagId: string): RunRecord | undefined {
    return this.runsOf(dagId).sort((a, b) => (a.runAfter < b.runAfter ? 1 : -1))[0];
  }

  private run(run: RunRecord): unknown {
    return runBody(run, this.options.version, this.options.username);
  }

  private addRun(
    dagId: string,
    runId: string,
    runType: RunRecord['runType'],
    conf: Record<string, unknown>,
    note: string | null,
    scheduledAt?: string,
  ): RunRecord {
    // Strictly increasing run_after for manual runs, as a real scheduler's clock would give in this test's time scale.
    const last = this.runs.filter((r) => r.runType === 'manual').at(-1)?.runAfter;
    const at = scheduledAt ?? (last && last >= now() ? new Date(Date.parse(last) + 1).toISOString() : now());
    const tasks = (this.dags.get(dagId)?.taskIds ?? []).map((taskId): TaskRecord => ({
      taskId,
      tryNumber: 0,
      state: null,
      startDate: null,
      endDate: null,
      logs: new Map(),
    }));
    const run: RunRecord = {
      dagId,
      runId,
      state: 'queued',
      runType,
      conf,
      note,
      runAfter: at,
      startDate: null,
      endDate: null,
      tasks,
    };
    this.runs.push(run);
    return run;
  }

  private listen(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () => {
        this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
        resolve();
      }),
    );
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text ? safeJson(text) : undefined;
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const method = (req.method ?? 'GET').toLowerCase();
    this.requests.push({
      method: method.toUpperCase(),
      path,
      body,
      correlationId: req.headers['x-correlation-id'] as string | undefined,
    });
    if (this.hang) {
      this.hanging.add(res);
      return;
    }
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
    if (this.failWith) return this.send(res, this.failWith, { detail: 'injected failure' });
    try {
      const { template, status, payload } = this.route(
        method,
        path,
        req,
        body,
        new URL(req.url ?? '/', 'http://x').searchParams,
      );
      const text = payload === undefined ? '' : JSON.stringify(payload);
      const errors = this.answerErrors(template, method, status, payload, text);
      if (errors.length > 0) this.violation(`${method} ${template} → ${status}: ${errors.join('; ')}`);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(text);
    } catch (error) {
      if (!(error instanceof HttpError)) {
        this.violation(String(error));
        return this.send(res, 500, { detail: String(error) });
      }
      const payload =
        this.options.version === 'v1'
          ? {
              type: `https://airflow.apache.org/docs/apache-airflow/2.10.0/stable-rest-api-ref.html#section/Errors/${error.title.replace(/\s/g, '')}`,
              title: error.title,
              status: error.status,
              detail: error.detail,
            }
          : { detail: error.v2Detail ?? error.detail };
      this.send(
        res,
        error.status,
        payload,
        this.options.version === 'v1' ? 'application/problem+json' : 'application/json',
      );
    }
  }

  /**
   * The answer's errors against the spec. The check is a function of the JSON
   * alone, so an answer repeated word for word (a list of a thousand runs
   * polled again) reuses the result of its first check instead of paying the
   * schema validation again.
   */
  private answerErrors(template: string, method: string, status: number, payload: unknown, text: string): string[] {
    const key = `${method} ${template} ${status}\n${text}`;
    const known = this.checkedAnswers.get(key);
    if (known) return known;
    const errors = this.validator.responseErrors(
      template,
      method,
      status,
      payload,
      template === '/auth/token' ? 'airflow-v2-auth' : undefined,
    );
    if (this.checkedAnswers.size >= CHECKED_ANSWERS)
      this.checkedAnswers.delete(this.checkedAnswers.keys().next().value!);
    this.checkedAnswers.set(key, errors);
    return errors;
  }

  private violation(message: string): void {
    this.violations.push(message);
  }

  private send(res: ServerResponse, status: number, payload: unknown, type = 'application/json'): void {
    res.writeHead(status, { 'content-type': type });
    res.end(payload === undefined ? '' : JSON.stringify(payload));
  }

  private checkRequest(template: string, method: string, body: unknown, specId?: string): void {
    const errors = this.validator.requestErrors(template, method, body, specId);
    if (errors.length > 0) {
      this.violation(`request ${method} ${template}: ${errors.join('; ')}`);
      const items = this.validator.requestErrorItems(template, method, body, specId);
      throw new HttpError(this.options.version === 'v1' ? 400 : 422, 'BadRequest', errors.join('; '), items);
    }
  }

  private authenticate(req: IncomingMessage): void {
    const header = req.headers.authorization ?? '';
    if (this.options.version === 'v1') {
      const expected = `Basic ${Buffer.from(`${this.options.username}:${this.options.password}`).toString('base64')}`;
      if (header !== expected) throw new HttpError(401, 'Unauthorized', 'Invalid credentials');
    } else if (!header.startsWith('Bearer ')) {
      throw new HttpError(401, 'Unauthorized', 'Not authenticated');
    } else if (!this.tokens.has(header.slice('Bearer '.length))) {
      // Airflow 3 answers an unknown, expired or badly signed token with 403, not 401.
      throw new HttpError(403, 'Forbidden', 'Invalid JWT token');
    }
  }

  /** Dispatches one request; returns the spec path template, status and payload. */
  private route(
    method: string,
    path: string,
    req: IncomingMessage,
    body: unknown,
    query: URLSearchParams,
  ): { template: string; status: number; payload: unknown } {
    const v1 = this.options.version === 'v1';
    if (!v1 && method === 'post' && path === '/auth/token') {
      this.checkRequest('/auth/token', 'post', body, 'airflow-v2-auth');
      const { username, password } = body as { username: string; password: string };
      if (username !== this.options.username || password !== this.options.password)
        throw new HttpError(401, 'Unauthorized', 'Invalid credentials');
      const token = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: username, exp: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url')}.${randomUUID()}`;
      this.tokens.add(token);
      return { template: '/auth/token', status: 201, payload: { access_token: token } };
    }
    const prefix = v1 ? '/api/v1' : '/api/v2';
    if (method === 'get' && path === (v1 ? '/api/v1/health' : '/api/v2/monitor/health')) {
      return {
        template: v1 ? '/health' : '/api/v2/monitor/health',
        status: 200,
        payload: healthBody(this.options.version),
      };
    }
    if (!path.startsWith(prefix)) throw new HttpError(404, 'NotFound', 'Not Found');
    this.authenticate(req);
    const rest = path.slice(prefix.length);
    const t = (template: string) => (v1 ? template : `/api/v2${template}`);
    let match: RegExpExecArray | null;

    if (method === 'post' && /^\/dags\/~\/dagRuns\/list$/.test(rest)) {
      const template = t(v1 ? '/dags/~/dagRuns/list' : '/dags/{dag_id}/dagRuns/list');
      this.checkRequest(template, 'post', body);
      const {
        dag_ids: dagIds,
        page_offset: offset = 0,
        page_limit: limit = 100,
      } = body as { dag_ids?: string[]; page_offset?: number; page_limit?: number };
      const wanted = dagIds && new Set(dagIds);
      const selected = this.runs
        .filter((run) => !wanted || wanted.has(run.dagId))
        .sort((a, b) => (a.runAfter < b.runAfter ? 1 : -1));
      const page = selected.slice(offset, offset + limit).map((run) => this.run(run));
      const payload = v1
        ? { dag_runs: page, total_entries: selected.length }
        : {
            dag_runs: page,
            total_entries: selected.length,
            total_entries_limit: null,
            next_cursor: null,
            previous_cursor: null,
          };
      return { template, status: 200, payload };
    }
    if (
      method === 'post' &&
      /^\/dags\/~\/dagRuns\/~\/taskInstances\/list$/.test(rest) &&
      !this.withoutTaskInstanceBatch
    ) {
      const template = t(
        v1 ? '/dags/~/dagRuns/~/taskInstances/list' : '/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/list',
      );
      this.checkRequest(template, 'post', body);
      const filters = body as { dag_ids?: string[]; dag_run_ids?: string[]; task_ids?: string[]; page_limit?: number };
      const among = (values: string[] | undefined, value: string) => !values || values.includes(value);
      const instances = this.runs
        .filter((run) => among(filters.dag_ids, run.dagId) && among(filters.dag_run_ids, run.runId))
        .flatMap((run) =>
          run.tasks
            .filter((task) => among(filters.task_ids, task.taskId))
            .map((task) => taskInstanceBody(run, task, this.options.version)),
        );
      const page = instances.slice(0, filters.page_limit ?? 100);
      const payload = v1
        ? { task_instances: page, total_entries: instances.length }
        : {
            task_instances: page,
            total_entries: instances.length,
            total_entries_limit: null,
            next_cursor: null,
            previous_cursor: null,
          };
      return { template, status: 200, payload };
    }
    if (method === 'get' && (match = /^\/dags\/([^/]+)\/dagRuns\/([^/]+)\/taskInstances$/.exec(rest))) {
      const run = this.findRun(decodeURIComponent(match[1]), decodeURIComponent(match[2]));
      const instances = run.tasks.map((task) => taskInstanceBody(run, task, this.options.version));
      return {
        template: t('/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances'),
        status: 200,
        payload: { task_instances: instances, total_entries: instances.length },
      };
    }
    if (
      method === 'get' &&
      (match = /^\/dags\/([^/]+)\/dagRuns\/([^/]+)\/taskInstances\/([^/]+)\/logs\/(\d+)$/.exec(rest))
    ) {
      const run = this.findRun(decodeURIComponent(match[1]), decodeURIComponent(match[2]));
      const taskId = decodeURIComponent(match[3]);
      const tryNumber = Number(match[4]);
      const task = run.tasks.find((t) => t.taskId === taskId);
      if (!task) throw new HttpError(404, 'TaskInstance not found', `TaskInstance not found`);
      const lines = task.logs.get(tryNumber);
      if (!lines) throw new HttpError(404, 'TaskInstance not found', `TaskInstance not found`);
      const template = t(
        v1
          ? '/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{task_try_number}'
          : '/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{try_number}',
      );
      return { template, status: 200, payload: this.logChunk(task, tryNumber, lines, query.get('token')) };
    }
    if ((match = /^\/dags\/([^/]+)\/dagRuns\/([^/]+)$/.exec(rest))) {
      const [dagId, runId] = [decodeURIComponent(match[1]), decodeURIComponent(match[2])];
      const template = t('/dags/{dag_id}/dagRuns/{dag_run_id}');
      const run = this.runs.find((r) => r.dagId === dagId && r.runId === runId);
      if (!run) {
        throw new HttpError(
          404,
          'DAGRun not found',
          v1
            ? `DAGRun with DAG ID: '${dagId}' and DagRun ID: '${runId}' not found`
            : `The DagRun with dag_id: \`${dagId}\` and run_id: \`${runId}\` was not found`,
        );
      }
      if (method === 'patch') {
        this.checkRequest(template, 'patch', body);
        this.setRunState(dagId, (body as { state: RunState }).state, runId);
      }
      return { template, status: 200, payload: this.run(run) };
    }
    if (method === 'post' && (match = /^\/dags\/([^/]+)\/dagRuns$/.exec(rest))) {
      const dagId = decodeURIComponent(match[1]);
      const template = t('/dags/{dag_id}/dagRuns');
      this.checkRequest(template, 'post', body);
      if (!this.dags.has(dagId))
        throw new HttpError(404, 'DAG not found', `${v1 ? 'DAG' : 'Dag'} with dag_id: '${dagId}' not found`);
      const {
        dag_run_id: runId = `manual__${now()}`,
        conf = {},
        note = null,
      } = body as { dag_run_id?: string; conf?: Record<string, unknown>; note?: string | null };
      if (this.runs.some((r) => r.dagId === dagId && r.runId === runId)) {
        throw new HttpError(
          409,
          'AlreadyExists',
          `DAGRun with DAG ID: '${dagId}' and DAGRun ID: '${runId}' already exists`,
          {
            reason: 'Unique constraint violation',
            statement: 'hidden',
            orig_error: 'hidden',
            message:
              'Serious error when handling your request. Check logs for more details - you will find it in api server when you look for ID double',
          },
        );
      }
      return { template, status: 200, payload: this.run(this.addRun(dagId, runId, 'manual', conf, note)) };
    }
    if ((match = /^\/dags\/([^/]+)$/.exec(rest))) {
      const dagId = decodeURIComponent(match[1]);
      const template = t('/dags/{dag_id}');
      const dag = this.dags.get(dagId);
      if (!dag)
        throw new HttpError(
          404,
          'DAG not found',
          v1 ? `The DAG with dag_id: ${dagId} was not found` : `The Dag with ID: \`${dagId}\` was not found`,
        );
      if (method === 'patch') {
        this.checkRequest(template, 'patch', body);
        dag.isPaused = (body as { is_paused: boolean }).is_paused;
      } else if (method === 'delete') {
        // Airflow 2 and 3 refuse to delete a DAG while any of its task instances runs (checked on Airflow 3.3).
        if (this.runs.some((r) => r.dagId === dagId && r.tasks.some((task) => task.state === 'running'))) {
          throw new HttpError(409, 'AlreadyExists', `Task instances of dag with id: '${dagId}' are still running`);
        }
        this.dags.delete(dagId);
        for (let i = this.runs.length - 1; i >= 0; i--) if (this.runs[i].dagId === dagId) this.runs.splice(i, 1);
        // Both answer 204 with no body (Airflow 3.3 checked by test/airflow-real/contract.e2e-spec.ts).
        return { template, status: 204, payload: undefined };
      }
      return { template, status: 200, payload: dagBody(dag, this.options.version) };
    }
    throw new HttpError(404, 'NotFound', `${method.toUpperCase()} ${path} is not served by this double`);
  }
}

/** Stands in for the secret-keyed signature of Airflow's token serializer. */
function sign(payload: string): string {
  return createHash('sha256').update(`airflow-double:${payload}`).digest('base64url').slice(0, 27);
}

function now(): string {
  return new Date().toISOString();
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
