import 'reflect-metadata';
import { plainToInstance, Transform } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  validateSync,
} from 'class-validator';

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
const emptyToUndefined = ({ value }: { value: unknown }) =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

/**
 * Every environment variable the service reads, with its rule. Defaults that
 * the contract gives live in app.config.ts next to the typed config.
 */
export class EnvironmentVariables {
  @IsOptional()
  @IsIn(['development', 'production', 'test'])
  NODE_ENV?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'an integer port between 0 and 65535' })
  @Min(0, { message: 'an integer port between 0 and 65535' })
  @Max(65535, { message: 'an integer port between 0 and 65535' })
  PORT?: number;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^(postgres|postgresql):\/\/.+|^pglite:\/\/(memory|\/.+)$/, {
    message: 'postgres://… or pglite://memory or pglite:///absolute/dir',
  })
  DATABASE_URL?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'an integer between 1 and 100' })
  @Min(1, { message: 'an integer between 1 and 100' })
  @Max(100, { message: 'an integer between 1 and 100' })
  DATABASE_POOL_SIZE?: number;

  @IsOptional()
  @IsIn(['true', 'false'], { message: 'true or false' })
  DATABASE_MIGRATIONS_RUN?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  API_PSK?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^https?:\/\/[^\s]+$/, { message: 'an http(s) URL' })
  KEYCLOAK_URL?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^[A-Za-z0-9._-]+$/, { message: 'a realm name' })
  KEYCLOAK_REALM?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  KEYCLOAK_CLIENT_ID?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^https?:\/\/[^\s]+$/, { message: 'an http(s) URL' })
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

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^https?:\/\/[^\s]+$/, { message: 'an http(s) URL' })
  AIRFLOW_UI_URL?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'an integer number of milliseconds between 100 and 60000' })
  @Min(100, { message: 'an integer number of milliseconds between 100 and 60000' })
  @Max(60_000, { message: 'an integer number of milliseconds between 100 and 60000' })
  AIRFLOW_TIMEOUT_MS?: number;

  @IsOptional()
  @Transform(toInt)
  @IsInt({ message: 'an integer number of milliseconds between 100 and 30000' })
  @Min(100, { message: 'an integer number of milliseconds between 100 and 30000' })
  @Max(30_000, { message: 'an integer number of milliseconds between 100 and 30000' })
  RECONCILE_BUDGET_MS?: number;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^[A-Za-z0-9_.-]+$/, { message: 'an Airflow Variable key (letters, digits, _ . -)' })
  AIRFLOW_PSK_VARIABLE?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  TRAINING_IMAGE?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  TRAINING_COMMAND?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^https?:\/\/[^\s]+$/, { message: 'an http(s) URL' })
  PUBLIC_URL?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^\d+(kb|mb)$/i, { message: 'a size such as 1mb or 512kb' })
  BODY_LIMIT?: string;
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
