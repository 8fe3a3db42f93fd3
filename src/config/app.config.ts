import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { ConfigurationError, EnvironmentVariables, validateEnv } from './env.validation';

export type DatabaseConfig =
  | { kind: 'postgres'; url: string; poolSize: number; migrationsRun: boolean }
  | { kind: 'pglite'; dataDir: string | null; migrationsRun: boolean };

export interface KeycloakConfig {
  issuer: string;
  jwksUri: string;
  authorizationUrl: string;
  tokenUrl: string;
  clientId: string | null;
}

export interface AuthConfig {
  psks: string[];
  /** Keycloak roles (realm, or of KEYCLOAK_CLIENT_ID) that may see and act on every owner's jobs. */
  adminRoles: string[];
  /** Failed authentications allowed per minute and client address before 429. */
  failureLimitPerMinute: number;
  /** How long a 429 for an address over the limit is held before it is sent (a closed-loop flood then waits, not spins). */
  limitedDelayMs: number;
  /** True when no API_PSK was configured and a key was generated for this process. */
  pskGenerated: boolean;
  keycloak: KeycloakConfig | null;
}

export interface AirflowConfig {
  url: string | null;
  username: string | null;
  password: string | null;
  apiVersion: 'v1' | 'v2';
  dagsDir: string;
  /** Base of links to a DAG in Airflow's UI. */
  uiUrl: string;
  timeoutMs: number;
  /** Time bulk status waits for Airflow before answering from the database. */
  reconcileBudgetMs: number;
  /** Period of background reconciliation of every in-flight job; 0 turns it off. */
  reconcileIntervalMs: number;
  /** A queued job whose DAG has no run in Airflow after this long is failed. */
  dagParseTimeoutMs: number;
  /** A terminal job's DAG file leaves the DAG folder this long after the job finished; 0 keeps every file. */
  dagRetentionMs: number;
  /** Airflow Variable holding the PSK the DAG sends back; the key is never written into a DAG. */
  pskVariable: string;
  /** Airflow Connection the DAG reads the trainer's source database URL from at run time (AUTOML_SOURCE_URL). */
  sourceConnId: string;
  /** Airflow Connection the DAG reads the trainer's MLflow tracking URI and credentials from at run time. */
  mlflowConnId: string;
  /** The optional Connection naming a Dask scheduler the trainer may train on (none: one worker). */
  daskConnId: string;
  /** Training runs in this container image (KubernetesPodOperator) when set, else as `command`. */
  trainingImage: string | null;
  trainingCommand: string[];
  /** The train task's execution_timeout is the job's time budget plus this many minutes. */
  trainingTimeoutMarginMinutes: number;
  /** Airflow pool every train task takes one slot of (the cap on trainings across jobs); null: default_pool. */
  trainingPool: string | null;
  /** Queue of a job's train task: `queueByPreset[preset]`, else `queue`; null: Airflow's default queue. */
  trainingQueue: string | null;
  trainingQueueByPreset: Record<string, string>;
  /**
   * The container path's pod: namespace, service account, and the Kubernetes Secret the trainer's credentials come
   * from by secretKeyRef (null: the provider's default namespace, the namespace's default account, the Connections'
   * values set when the task runs).
   */
  trainingPod: { namespace: string | null; service_account: string | null; secret: string | null };
}

export interface EventsConfig {
  /** Open event streams this replica serves at most. */
  maxStreams: number;
  /** Open event streams per credential (a bearer subject, or the platform PSK). */
  maxStreamsPerCredential: number;
  /** A comment line is sent this often on every stream so proxies and clients see it alive. */
  heartbeatMs: number;
  /** A consumer whose unsent backlog passes this many bytes is dropped (it resumes with Last-Event-ID). */
  maxBufferedBytes: number;
}

export interface MlflowConfig {
  /** Base of the MLflow UI links on a job (no trailing slash); null: the links are null. */
  uiUrl: string | null;
}

export interface AppConfig {
  env: 'development' | 'production' | 'test';
  port: number;
  logLevel: string;
  publicUrl: string;
  bodyLimit: string;
  /**
   * Express's `trust proxy`: which hops may name the client in X-Forwarded-For
   * (a hop count, or the proxies' addresses and CIDRs); false: the socket address is the client.
   */
  trustProxy: number | string[] | false;
  database: DatabaseConfig;
  auth: AuthConfig;
  airflow: AirflowConfig;
  events: EventsConfig;
  mlflow: MlflowConfig;
}

export const APP_CONFIG = Symbol('APP_CONFIG');

const MIN_PRODUCTION_PSK_LENGTH = 16;

/** TRAINING_QUEUE_BY_PRESET (`preset=queue,…`, already validated) as a map; a preset named twice keeps its last. */
function queueByPreset(raw: string | undefined): Record<string, string> {
  const pairs = (raw ?? '')
    .split(',')
    .map((pair) => pair.trim())
    .filter(Boolean)
    .map((pair) => pair.split('=') as [string, string]);
  return Object.fromEntries(pairs);
}

function databaseConfig(env: EnvironmentVariables): DatabaseConfig {
  const migrationsRun = env.DATABASE_MIGRATIONS_RUN !== 'false';
  const url = env.DATABASE_URL ?? `pglite://${resolve('.data', 'pglite')}`;
  if (url === 'pglite://memory') return { kind: 'pglite', dataDir: null, migrationsRun };
  if (url.startsWith('pglite://')) {
    return { kind: 'pglite', dataDir: url.slice('pglite://'.length), migrationsRun };
  }
  return { kind: 'postgres', url, poolSize: env.DATABASE_POOL_SIZE ?? 10, migrationsRun };
}

function authConfig(env: EnvironmentVariables, appEnv: AppConfig['env']): AuthConfig {
  const configured = (env.API_PSK ?? '')
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key.length > 0);
  if (appEnv === 'production') {
    if (configured.length === 0) {
      throw new ConfigurationError('Invalid configuration: API_PSK: required in production (comma-separated keys)');
    }
    if (configured.some((key) => key.length < MIN_PRODUCTION_PSK_LENGTH)) {
      throw new ConfigurationError(
        `Invalid configuration: API_PSK: every key must have at least ${MIN_PRODUCTION_PSK_LENGTH} characters in production`,
      );
    }
  }
  const pskGenerated = configured.length === 0;
  const psks = pskGenerated ? [randomBytes(24).toString('base64url')] : configured;

  let keycloak: KeycloakConfig | null = null;
  if (env.KEYCLOAK_URL && env.KEYCLOAK_REALM) {
    const issuer = `${env.KEYCLOAK_URL.replace(/\/+$/, '')}/realms/${env.KEYCLOAK_REALM}`;
    // Tokens name the browser-facing URL as issuer; the keys may be fetched over an internal one.
    const keysBase = env.KEYCLOAK_INTERNAL_URL
      ? `${env.KEYCLOAK_INTERNAL_URL.replace(/\/+$/, '')}/realms/${env.KEYCLOAK_REALM}`
      : issuer;
    keycloak = {
      issuer,
      jwksUri: `${keysBase}/protocol/openid-connect/certs`,
      authorizationUrl: `${issuer}/protocol/openid-connect/auth`,
      tokenUrl: `${issuer}/protocol/openid-connect/token`,
      clientId: env.KEYCLOAK_CLIENT_ID ?? null,
    };
  } else if (env.KEYCLOAK_URL || env.KEYCLOAK_REALM) {
    const missing = env.KEYCLOAK_URL ? 'KEYCLOAK_REALM' : 'KEYCLOAK_URL';
    throw new ConfigurationError(`Invalid configuration: ${missing}: required when the other Keycloak variable is set`);
  }
  return {
    psks,
    pskGenerated,
    keycloak,
    adminRoles: (env.ADMIN_ROLES ?? 'automl-admin').split(','),
    failureLimitPerMinute: env.AUTH_FAILURE_LIMIT ?? 30,
    limitedDelayMs: env.AUTH_FAILURE_DELAY_MS ?? 500,
  };
}

function trustProxy(value: string | undefined): AppConfig['trustProxy'] {
  if (value === undefined) return false;
  if (/^\d+$/.test(value)) return Number(value) === 0 ? false : Number(value);
  return value.split(',').map((entry) => entry.trim());
}

/** Builds the typed configuration from the process environment; throws ConfigurationError on bad input. */
export function loadAppConfig(raw: Record<string, unknown> = process.env): AppConfig {
  const env = validateEnv(raw);
  const appEnv = (env.NODE_ENV ?? 'development') as AppConfig['env'];
  const port = env.PORT ?? 3000;
  return {
    env: appEnv,
    port,
    logLevel: env.LOG_LEVEL ?? 'info',
    publicUrl: (env.PUBLIC_URL ?? `http://localhost:${port}`).replace(/\/+$/, ''),
    bodyLimit: env.BODY_LIMIT ?? '1mb',
    trustProxy: trustProxy(env.TRUST_PROXY),
    database: databaseConfig(env),
    auth: authConfig(env, appEnv),
    airflow: {
      url: env.AIRFLOW_URL ? env.AIRFLOW_URL.replace(/\/+$/, '') : null,
      username: env.AIRFLOW_USERNAME ?? null,
      password: env.AIRFLOW_PASSWORD ?? null,
      apiVersion: (env.AIRFLOW_API_VERSION ?? 'v2') as 'v1' | 'v2',
      dagsDir: resolve(env.AIRFLOW_DAGS_DIR ?? resolve('.data', 'dags')),
      // The spec has create return airflow_dag_url filled; Airflow's own default UI address stands in when none is set.
      uiUrl: (env.AIRFLOW_UI_URL ?? env.AIRFLOW_URL ?? 'http://localhost:8080').replace(/\/+$/, ''),
      timeoutMs: env.AIRFLOW_TIMEOUT_MS ?? 5_000,
      reconcileBudgetMs: env.RECONCILE_BUDGET_MS ?? 2_000,
      reconcileIntervalMs: env.RECONCILE_INTERVAL_MS ?? 30_000,
      dagParseTimeoutMs: env.DAG_PARSE_TIMEOUT_MS ?? 600_000,
      dagRetentionMs: env.DAG_RETENTION_MS ?? 7 * 86_400_000,
      pskVariable: env.AIRFLOW_PSK_VARIABLE ?? 'automl_training_psk',
      sourceConnId: env.AIRFLOW_SOURCE_CONN_ID ?? 'automl_source',
      mlflowConnId: env.AIRFLOW_MLFLOW_CONN_ID ?? 'automl_mlflow',
      daskConnId: env.AIRFLOW_DASK_CONN_ID ?? 'automl_dask',
      trainingImage: env.TRAINING_IMAGE ?? null,
      trainingCommand: (env.TRAINING_COMMAND ?? 'python -m automl_trainer').split(/\s+/).filter(Boolean),
      trainingTimeoutMarginMinutes: env.TRAINING_TIMEOUT_MARGIN_MINUTES ?? 30,
      trainingPool: env.TRAINING_POOL ?? null,
      trainingQueue: env.TRAINING_QUEUE ?? null,
      trainingQueueByPreset: queueByPreset(env.TRAINING_QUEUE_BY_PRESET),
      trainingPod: {
        namespace: env.TRAINING_POD_NAMESPACE ?? null,
        service_account: env.TRAINING_POD_SERVICE_ACCOUNT ?? null,
        secret: env.TRAINING_POD_SECRET ?? null,
      },
    },
    events: {
      maxStreams: env.STREAM_MAX_TOTAL ?? 1_000,
      maxStreamsPerCredential: env.STREAM_MAX_PER_CREDENTIAL ?? 10,
      heartbeatMs: env.STREAM_HEARTBEAT_MS ?? 15_000,
      maxBufferedBytes: env.STREAM_MAX_BUFFER_BYTES ?? 1_048_576,
    },
    mlflow: {
      uiUrl: env.MLFLOW_UI_URL ? env.MLFLOW_UI_URL.replace(/\/+$/, '') : null,
    },
  };
}
