import 'reflect-metadata';
import { applyDecorators } from '@nestjs/common';
import { plainToInstance, Transform } from 'class-transformer';
import { isIP } from 'node:net';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  Validate,
  validateSync,
  ValidatorConstraint,
  ValidatorConstraintInterface,
} from 'class-validator';

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
const emptyToUndefined = ({ value }: { value: unknown }) =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

/** An optional integer variable within [min, max]; `what` names the expected value in the error line. */
function IntVariable(min: number, max: number, what: string): PropertyDecorator {
  const message = `${what} between ${min} and ${max}`;
  return applyDecorators(
    IsOptional(),
    Transform(toInt),
    IsInt({ message }),
    Min(min, { message }),
    Max(max, { message }),
  );
}

/** An optional http(s) URL variable; blank counts as unset. */
function UrlVariable(): PropertyDecorator {
  return applyDecorators(
    IsOptional(),
    Transform(emptyToUndefined),
    Matches(/^https?:\/\/[^\s]+$/, { message: 'an http(s) URL' }),
  );
}

/** An Airflow pool or queue name. */
const AIRFLOW_NAME = /^[A-Za-z0-9_.-]{1,256}$/;
/** `preset=queue` pairs, comma-separated, e.g. `best_quality=train-large`. */
const QUEUE_BY_PRESET =
  /^\s*(fast|balanced|best_quality)=[A-Za-z0-9_.-]+\s*(,\s*(fast|balanced|best_quality)=[A-Za-z0-9_.-]+\s*)*$/;

/** A namespace (an RFC 1123 label) and a service account or Secret name (an RFC 1123 subdomain). */
const KUBERNETES_NAME = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const KUBERNETES_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Names Express's `trust proxy` (proxy-addr) takes for well-known ranges. */
const TRUST_PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];
const TRUST_PROXY_MESSAGE =
  'a hop count (0-99) or comma-separated IP addresses and CIDRs (or loopback, linklocal, uniquelocal)';

/** True for an IP address, an address/prefix within its family's length, or a proxy-addr range name. */
function isTrustedProxyEntry(entry: string): boolean {
  if (TRUST_PROXY_NAMES.includes(entry)) return true;
  const [address, prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  // proxy-addr refuses a /0 (it would trust every address).
  return /^\d{1,3}$/.test(prefix) && Number(prefix) >= 1 && Number(prefix) <= (family === 4 ? 32 : 128);
}

@ValidatorConstraint({ name: 'trustProxyAddresses' })
class TrustProxyAddresses implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    if (typeof value !== 'string') return false;
    if (/^\d+$/.test(value)) return Number(value) <= 99;
    return value.split(',').every((entry) => isTrustedProxyEntry(entry.trim()));
  }
}

/**
 * Every environment variable the service reads, with its rule. Defaults that
 * the contract gives live in app.config.ts next to the typed config.
 */
export class EnvironmentVariables {
  @IsOptional()
  @IsIn(['development', 'production', 'test'])
  NODE_ENV?: string;

  @IntVariable(0, 65535, 'an integer port')
  PORT?: number;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^(postgres|postgresql):\/\/.+|^pglite:\/\/(memory|\/.+)$/, {
    message: 'postgres://… or pglite://memory or pglite:///absolute/dir',
  })
  DATABASE_URL?: string;

  @IntVariable(1, 100, 'an integer')
  DATABASE_POOL_SIZE?: number;

  @IsOptional()
  @IsIn(['true', 'false'], { message: 'true or false' })
  DATABASE_MIGRATIONS_RUN?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  API_PSK?: string;

  @UrlVariable()
  KEYCLOAK_URL?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^[A-Za-z0-9._-]+$/, { message: 'a realm name' })
  KEYCLOAK_REALM?: string;

  @UrlVariable()
  KEYCLOAK_INTERNAL_URL?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  KEYCLOAK_CLIENT_ID?: string;

  @UrlVariable()
  AIRFLOW_URL?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  AIRFLOW_USERNAME?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  AIRFLOW_PASSWORD?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsIn(['v1', 'v2'], { message: 'v1 or v2' })
  AIRFLOW_API_VERSION?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  AIRFLOW_DAGS_DIR?: string;

  @UrlVariable()
  AIRFLOW_UI_URL?: string;

  // Links append `/#/…` (MLflow's UI is a hash router): a query or fragment of its own would break them.
  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^https?:\/\/[^\s/?#][^\s?#]*$/, { message: 'an http(s) URL without ?query or #fragment' })
  MLFLOW_UI_URL?: string;

  @IntVariable(100, 60_000, 'an integer number of milliseconds')
  AIRFLOW_TIMEOUT_MS?: number;

  @IntVariable(100, 30_000, 'an integer number of milliseconds')
  RECONCILE_BUDGET_MS?: number;

  @IntVariable(0, 3_600_000, 'an integer number of milliseconds (0 turns background reconciliation off)')
  RECONCILE_INTERVAL_MS?: number;

  @IntVariable(10_000, 86_400_000, 'an integer number of milliseconds')
  DAG_PARSE_TIMEOUT_MS?: number;

  // Up to ten years: past that, 0 (never retire) says it better.
  @IntVariable(0, 315_360_000_000, 'an integer number of milliseconds (0 keeps every DAG file)')
  DAG_RETENTION_MS?: number;

  @IntVariable(1, 100_000, 'an integer')
  STREAM_MAX_TOTAL?: number;

  @IntVariable(1, 100_000, 'an integer')
  STREAM_MAX_PER_CREDENTIAL?: number;

  @IntVariable(100, 300_000, 'an integer number of milliseconds')
  STREAM_HEARTBEAT_MS?: number;

  @IntVariable(1_024, 67_108_864, 'an integer number of bytes')
  STREAM_MAX_BUFFER_BYTES?: number;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^[A-Za-z0-9_.-]+$/, { message: 'an Airflow Variable key (letters, digits, _ . -)' })
  AIRFLOW_PSK_VARIABLE?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^[A-Za-z0-9_.-]+$/, { message: 'an Airflow Connection id (letters, digits, _ . -)' })
  AIRFLOW_SOURCE_CONN_ID?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^[A-Za-z0-9_.-]+$/, { message: 'an Airflow Connection id (letters, digits, _ . -)' })
  AIRFLOW_MLFLOW_CONN_ID?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^[A-Za-z0-9_.-]+$/, { message: 'an Airflow Connection id (letters, digits, _ . -)' })
  AIRFLOW_DASK_CONN_ID?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  TRAINING_IMAGE?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  TRAINING_COMMAND?: string;

  @IntVariable(1, 1_440, 'an integer number of minutes')
  TRAINING_TIMEOUT_MARGIN_MINUTES?: number;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(AIRFLOW_NAME, { message: 'an Airflow pool name (letters, digits, _ . -)' })
  TRAINING_POOL?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(AIRFLOW_NAME, { message: 'an Airflow queue name (letters, digits, _ . -)' })
  TRAINING_QUEUE?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(QUEUE_BY_PRESET, {
    message:
      'comma-separated preset=queue pairs (presets fast, balanced, best_quality; queues of letters, digits, _ . -)',
  })
  TRAINING_QUEUE_BY_PRESET?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(KUBERNETES_NAME, { message: 'a Kubernetes name (lower-case letters, digits, -, at most 63)' })
  TRAINING_POD_NAMESPACE?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(KUBERNETES_SUBDOMAIN, { message: 'a Kubernetes name (lower-case letters, digits, - and ., at most 253)' })
  TRAINING_POD_SERVICE_ACCOUNT?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(KUBERNETES_SUBDOMAIN, { message: 'a Kubernetes name (lower-case letters, digits, - and ., at most 253)' })
  TRAINING_POD_SECRET?: string;

  @UrlVariable()
  PUBLIC_URL?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^\d+(kb|mb)$/i, { message: 'a size such as 1mb or 512kb' })
  BODY_LIMIT?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^[^,\s]+(,[^,\s]+)*$/, { message: 'comma-separated Keycloak role names' })
  ADMIN_ROLES?: string;

  @IsOptional()
  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    message: 'fatal, error, warn, info, debug, trace or silent',
  })
  LOG_LEVEL?: string;

  @IntVariable(1, 100_000, 'an integer number of failed authentications per minute and client address')
  AUTH_FAILURE_LIMIT?: number;

  @IntVariable(0, 10_000, 'an integer number of milliseconds (0 answers at once)')
  AUTH_FAILURE_DELAY_MS?: number;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Validate(TrustProxyAddresses, { message: TRUST_PROXY_MESSAGE })
  TRUST_PROXY?: string;
}

/** Names of variables whose values must never be echoed in an error. */
const SECRET_VARIABLES = new Set(['API_PSK', 'AIRFLOW_PASSWORD', 'DATABASE_URL']);

export class ConfigurationError extends Error {}

/**
 * Validates the raw environment. Throws one ConfigurationError whose message is
 * a single line naming each bad variable and what was expected.
 */
export function validateEnv(raw: Record<string, unknown>): EnvironmentVariables {
  const env = plainToInstance(EnvironmentVariables, raw, { exposeDefaultValues: true });
  const errors = validateSync(env, { skipMissingProperties: false, whitelist: false });
  if (errors.length > 0) {
    const parts = errors.map((error) => {
      const expected = Object.values(error.constraints ?? {})[0] ?? 'a valid value';
      const shown = SECRET_VARIABLES.has(error.property) ? '' : ` (got ${JSON.stringify(raw[error.property])})`;
      return `${error.property}: expected ${expected}${shown}`;
    });
    throw new ConfigurationError(`Invalid configuration: ${parts.join('; ')}`);
  }
  return env;
}
