import { ApiSchema } from '@nestjs/swagger';
import { Field } from '../../../common/validation/fields';
import { valueError, ValidationItem } from '../../../common/validation/pydantic-errors';
import {
  AutoMLAlgorithm,
  AutoMLTrainingJobStatus,
  Preset,
  ProblemType,
  problemTypesFor,
} from '../../domain/automl-training.enums';
import { MAX_WRITEBACK_METRICS, WRITEBACK_NAME_MAX_LENGTH } from '../../domain/writeback-limits';
import { presetsTable, TUNING_LIMITS } from '../../dag/training-presets';

const JOB_ID_DOC = 'Training job ID.';

/** An unquoted part of source_table: letters, digits, underscores, not starting with a digit; read in lower case. */
export const UNQUOTED_IDENTIFIER = '[A-Za-z_][A-Za-z0-9_]*';
/** A double-quoted part of source_table: read as written, case included. */
const QUOTED_IDENTIFIER = '"[A-Za-z0-9_]+"';
const IDENTIFIER = `(?:${UNQUOTED_IDENTIFIER}|${QUOTED_IDENTIFIER})`;
/** What the parts of source_table name, last part first: `table`, `schema.table` or `catalog.schema.table`. */
export const SOURCE_TABLE_PARTS = ['catalog', 'schema', 'table'] as const;
export const SOURCE_TABLE_PATTERN = new RegExp(
  `^${IDENTIFIER}(?:\\.${IDENTIFIER}){0,${SOURCE_TABLE_PARTS.length - 1}}$`,
);

/** The problem types a job may leave label_column out for; every other one requires it. */
export const LABEL_OPTIONAL_FOR: readonly ProblemType[] = [ProblemType.AnomalyDetection];

/** Column names, as label_column and each feature column. */
const COLUMN_MAX_LENGTH = 500;

/** The columns only some problem types use; each is required for its type and refused for the others. */
export const PROBLEM_COLUMNS = {
  group_column: ProblemType.Ranking,
  action_column: ProblemType.ContextualBandit,
  propensity_column: ProblemType.ContextualBandit,
  reward_column: ProblemType.ContextualBandit,
  cost_column: ProblemType.ContextualBandit,
} as const;

type ProblemColumn = keyof typeof PROBLEM_COLUMNS;

/** Problem columns of which a job of their problem type gives exactly one; each other problem column is required. */
export const EXCLUSIVE_PROBLEM_COLUMNS: readonly ProblemColumn[] = ['reward_column', 'cost_column'];

/**
 * The problem-type column rules, each reported at the field it concerns
 * (`["body", "<field>"]`, a value_error whose message names the field):
 * a column another problem type uses is refused; ranking needs group_column;
 * a contextual bandit needs action_column, propensity_column and exactly one
 * of reward_column and cost_column.
 */
function problemColumnErrors(request: AutoMLTrainingRequest, raw: Record<string, unknown>): ValidationItem[] {
  const items: ValidationItem[] = [];
  const problemType = request.problem_type;
  const given = (field: ProblemColumn) => request[field] != null;
  const refuse = (field: ProblemColumn, message: string) =>
    items.push(valueError(['body', field], raw[field] ?? null, message));
  for (const [field, owner] of Object.entries(PROBLEM_COLUMNS) as [ProblemColumn, ProblemType][]) {
    if (owner !== problemType) {
      if (given(field)) refuse(field, `${field} applies only to problem_type '${owner}', not '${problemType}'`);
    } else if (!EXCLUSIVE_PROBLEM_COLUMNS.includes(field) && !given(field)) {
      refuse(field, `${field} is required for problem_type '${problemType}'`);
    }
  }
  if (problemType === ProblemType.ContextualBandit) {
    if (!given('reward_column') && !given('cost_column')) {
      refuse(
        'reward_column',
        `reward_column or cost_column is required for problem_type '${problemType}' (exactly one of them)`,
      );
    } else if (given('reward_column') && given('cost_column')) {
      refuse('cost_column', 'reward_column and cost_column are exclusive: give exactly one of them');
    }
  }
  return items;
}

export class JobIdParams {
  @Field({ kind: 'uuid', required: true, nullable: false }, { description: JOB_ID_DOC })
  job_id!: string;
}

@ApiSchema({ name: 'AutoMLTrainingStatusUpdate', description: 'Status writeback payload sent by the Airflow DAG.' })
export class AutoMLTrainingStatusUpdate {
  @Field(
    { kind: 'enum', values: Object.values(AutoMLTrainingJobStatus), required: true, nullable: false },
    {
      enum: AutoMLTrainingJobStatus,
      enumName: 'AutoMLTrainingJobStatus',
    },
  )
  status!: AutoMLTrainingJobStatus;

  @Field({ kind: 'string', required: false, nullable: true, nul: 'replace' })
  mlflow_run_id?: string | null;

  @Field({ kind: 'string', required: false, nullable: true, nul: 'replace' })
  registered_model_name?: string | null;

  // A DAG's failure text may hold anything; the callback must not be lost over a NUL.
  @Field({ kind: 'string', required: false, nullable: true, nul: 'replace' })
  error_message?: string | null;

  @Field(
    { kind: 'string', required: false, nullable: true, maxLength: WRITEBACK_NAME_MAX_LENGTH, nul: 'replace' },
    {
      description: 'Version of the registered model the run produced (from the trainer result).',
    },
  )
  model_version?: string | null;

  @Field(
    { kind: 'string', required: false, nullable: true, maxLength: WRITEBACK_NAME_MAX_LENGTH, nul: 'replace' },
    {
      description: 'Name of the metric the training optimised, e.g. roc_auc (from the trainer result).',
    },
  )
  objective?: string | null;

  @Field(
    {
      kind: 'number_map',
      required: false,
      nullable: true,
      maxItems: MAX_WRITEBACK_METRICS,
      keyMaxLength: WRITEBACK_NAME_MAX_LENGTH,
      nul: 'replace',
    },
    {
      description: `Evaluation metrics of the trained model: metric name → finite number (at most ${MAX_WRITEBACK_METRICS} metrics, names of at most ${WRITEBACK_NAME_MAX_LENGTH} characters).`,
    },
  )
  metrics?: Record<string, number> | null;
}

/** The presets table, from the budgets themselves (training-presets.ts), for the `preset` and `tuning` descriptions. */
const PRESETS_DOC = presetsTable();

@ApiSchema({
  name: 'AutoMLTrainingTuning',
  description:
    "A job's own search budget: each value given overrides its preset's; one left out (or null) comes from the preset. Unknown fields are ignored.",
})
export class AutoMLTrainingTuning {
  @Field(
    { kind: 'strict_int', required: false, nullable: true, ...TUNING_LIMITS.trials },
    {
      description: 'At most this many trials (an upper bound: the search also ends once it stops improving).',
    },
  )
  trials?: number | null;

  @Field(
    { kind: 'strict_int', required: false, nullable: true, ...TUNING_LIMITS.time_budget_minutes },
    {
      description:
        'Wall-clock minutes of the whole training (loading, search, final model, evaluation, registration, report), from when the trainer starts.',
    },
  )
  time_budget_minutes?: number | null;
}

@ApiSchema({
  name: 'AutoMLTrainingRequest',
  description: 'Create an AutoML training job. Unknown fields are ignored.',
})
export class AutoMLTrainingRequest {
  @Field(
    { kind: 'string', required: true, nullable: false, minLength: 1, maxLength: 200 },
    { description: 'Job name.' },
  )
  name!: string;

  @Field(
    { kind: 'string', required: true, nullable: false, minLength: 1, maxLength: 200 },
    {
      description: 'Data domain the job belongs to.',
    },
  )
  domain!: string;

  @Field(
    { kind: 'string', required: false, nullable: true, minLength: 1, maxLength: 200 },
    {
      description: "Owner. Defaults to the bearer token's preferred_username; required with a PSK.",
    },
  )
  owner?: string | null;

  @Field(
    { kind: 'string', required: true, nullable: false, minLength: 1, maxLength: 500, pattern: SOURCE_TABLE_PATTERN },
    {
      description:
        'Source table: `table`, `schema.table` or `catalog.schema.table`; each part letters, digits and underscores ' +
        '(not starting with a digit), or the same in double quotes to keep its case or start with a digit.',
    },
  )
  source_table!: string;

  @Field(
    { kind: 'string', required: false, nullable: true, minLength: 1, maxLength: 500 },
    {
      description: 'Label column. Required except for anomaly_detection.',
    },
  )
  label_column?: string | null;

  @Field(
    { kind: 'string_list', required: false, nullable: true, maxItems: 5000, itemMinLength: 1, itemMaxLength: 500 },
    {
      description: 'Feature columns, each once and never the label. Defaults to every column but the label.',
    },
  )
  feature_columns?: string[] | null;

  @Field(
    { kind: 'enum', values: Object.values(ProblemType), required: true, nullable: false },
    {
      enum: ProblemType,
      enumName: 'ProblemType',
    },
  )
  problem_type!: ProblemType;

  @Field(
    { kind: 'enum', values: Object.values(AutoMLAlgorithm), required: true, nullable: false },
    {
      enum: AutoMLAlgorithm,
      enumName: 'AutoMLAlgorithm',
    },
  )
  algorithm!: AutoMLAlgorithm;

  @Field(
    { kind: 'enum', values: Object.values(Preset), required: false, nullable: false },
    {
      enum: Preset,
      enumName: 'Preset',
      default: Preset.Balanced,
      description: `The search budget per algorithm family (\`tuning\` overrides either value):\n\n${PRESETS_DOC}`,
    },
  )
  preset?: Preset;

  @Field(
    { kind: 'model', required: false, nullable: true, model: AutoMLTrainingTuning, schemaName: 'AutoMLTrainingTuning' },
    {
      description: `This job's own \`trials\` and \`time_budget_minutes\`, each over its preset's (optional):\n\n${PRESETS_DOC}`,
    },
  )
  tuning?: AutoMLTrainingTuning | null;

  @Field(
    { kind: 'uuid', required: false, nullable: true },
    {
      description: 'The feature engineering job that produced the source table.',
    },
  )
  feature_engineering_job_id?: string | null;

  @Field(
    { kind: 'string', required: false, nullable: true, minLength: 1, maxLength: COLUMN_MAX_LENGTH },
    {
      description: 'Query/group id column. Required for ranking; only for ranking.',
    },
  )
  group_column?: string | null;

  @Field(
    { kind: 'string', required: false, nullable: true, minLength: 1, maxLength: COLUMN_MAX_LENGTH },
    {
      description: 'Logged action column. Required for contextual_bandit; only for contextual_bandit.',
    },
  )
  action_column?: string | null;

  @Field(
    { kind: 'string', required: false, nullable: true, minLength: 1, maxLength: COLUMN_MAX_LENGTH },
    {
      description:
        "Column with the logging policy's probability of the logged action. Required for contextual_bandit; only for contextual_bandit.",
    },
  )
  propensity_column?: string | null;

  @Field(
    { kind: 'string', required: false, nullable: true, minLength: 1, maxLength: COLUMN_MAX_LENGTH },
    {
      description:
        'Reward column (higher is better). contextual_bandit needs exactly one of reward_column and cost_column.',
    },
  )
  reward_column?: string | null;

  @Field(
    { kind: 'string', required: false, nullable: true, minLength: 1, maxLength: COLUMN_MAX_LENGTH },
    {
      description:
        'Cost column (lower is better). contextual_bandit needs exactly one of reward_column and cost_column.',
    },
  )
  cost_column?: string | null;

  /** pydantic model validator: runs once every field is valid. */
  static modelErrors(value: object, raw: Record<string, unknown>): ValidationItem[] {
    const request = value as AutoMLTrainingRequest;
    if (!problemTypesFor(request.algorithm).includes(request.problem_type)) {
      return [
        valueError(
          ['body'],
          raw,
          `algorithm '${request.algorithm}' cannot be used for problem_type '${request.problem_type}' (it supports ${problemTypesFor(request.algorithm).join(', ')})`,
        ),
      ];
    }
    const items: ValidationItem[] = [];
    if (!LABEL_OPTIONAL_FOR.includes(request.problem_type) && !request.label_column) {
      items.push(valueError(['body'], raw, `label_column is required for problem_type '${request.problem_type}'`));
    }
    return [
      ...items,
      ...problemColumnErrors(request, raw),
      ...featureColumnErrors(request.feature_columns ?? [], request.label_column ?? null),
    ];
  }
}

/** Feature columns name each column once and never the label: 422 items at the offending index. */
function featureColumnErrors(columns: string[], label: string | null): ValidationItem[] {
  const items: ValidationItem[] = [];
  const firstIndex = new Map<string, number>();
  columns.forEach((column, index) => {
    const loc = ['body', 'feature_columns', index];
    if (column === label)
      items.push(valueError(loc, column, `feature_columns must not contain the label column '${column}'`));
    else if (firstIndex.has(column)) {
      items.push(valueError(loc, column, `duplicate column '${column}' (also at index ${firstIndex.get(column)})`));
    } else firstIndex.set(column, index);
  });
  return items;
}

export class JobLogsQuery {
  @Field(
    { kind: 'string', required: false, nullable: false, minLength: 1, maxLength: 250, pattern: /^[A-Za-z0-9_.-]+$/ },
    {
      description: 'Only this task (e.g. `train`); required with `token`.',
    },
  )
  task?: string;

  @Field(
    { kind: 'int', ge: 1, le: 1000 },
    { description: 'This try of the task instead of its latest; required with `token`.' },
  )
  try_number?: number;

  @Field(
    { kind: 'string', required: false, nullable: false, minLength: 1, maxLength: 4096 },
    {
      description: "A task log's `continuation_token`: the next piece of that log.",
    },
  )
  token?: string;

  /** A continuation belongs to one task's try: `token` needs both. */
  static modelErrors(value: object, raw: Record<string, unknown>): ValidationItem[] {
    const query = value as JobLogsQuery;
    if (query.token === undefined || (query.task !== undefined && query.try_number !== undefined)) return [];
    return [
      valueError(['query', 'token'], raw.token, 'token continues one task log: give task and try_number with it'),
    ];
  }
}

export class CreateJobQuery {
  @Field(
    { kind: 'bool' },
    {
      description:
        'Run the DAG as soon as Airflow parses it (status queued) or wait for a manual trigger (status ready).',
      default: true,
    },
  )
  auto_trigger?: boolean;
}

export const MAX_STATUS_IDS = 1000;

export class JobStatusesQuery {
  // No description: the parameter is seed 003's, reproduced as it is (plus the limit it enforces).
  @Field({ kind: 'uuid_list', maxItems: MAX_STATUS_IDS })
  ids?: string[];
}

export class JobEventsQuery {
  @Field({ kind: 'uuid_list', maxItems: MAX_STATUS_IDS }, { description: 'Only transitions of these jobs.' })
  ids?: string[];

  @Field(
    { kind: 'string', required: false, nullable: false, maxLength: 200 },
    { description: 'Only jobs of this domain.' },
  )
  domain?: string;

  @Field(
    { kind: 'string', required: false, nullable: false, maxLength: 200 },
    { description: 'Only jobs of this owner.' },
  )
  owner?: string;
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

/** Listing order: by creation time, newest first (the default) or oldest first. */
export enum JobSort {
  NewestFirst = '-created_at',
  OldestFirst = 'created_at',
}

export const MAX_STATUS_FILTERS = 5;

export class ListJobsQuery {
  @Field(
    { kind: 'enum_list', values: Object.values(AutoMLTrainingJobStatus), maxItems: MAX_STATUS_FILTERS },
    {
      enum: AutoMLTrainingJobStatus,
      enumName: 'AutoMLTrainingJobStatus',
      description:
        'Only jobs in one of these statuses; repeat the parameter for several (`status=queued&status=running`).',
    },
  )
  status?: AutoMLTrainingJobStatus[];

  @Field(
    { kind: 'string', required: false, nullable: false, maxLength: 200 },
    { description: 'Only jobs of this domain.' },
  )
  domain?: string;

  @Field(
    { kind: 'string', required: false, nullable: false, maxLength: 200 },
    {
      description: 'Only jobs of this owner (a bearer user without an admin role only ever sees their own).',
    },
  )
  owner?: string;

  @Field(
    { kind: 'enum', values: Object.values(ProblemType), required: false, nullable: false },
    {
      enum: ProblemType,
      enumName: 'ProblemType',
      description: 'Only jobs of this problem type.',
    },
  )
  problem_type?: ProblemType;

  @Field(
    { kind: 'enum', values: Object.values(AutoMLAlgorithm), required: false, nullable: false },
    {
      enum: AutoMLAlgorithm,
      enumName: 'AutoMLAlgorithm',
      description: 'Only jobs of this algorithm.',
    },
  )
  algorithm?: AutoMLAlgorithm;

  @Field(
    { kind: 'string', required: false, nullable: false, maxLength: 200 },
    {
      description: 'Case-insensitive substring of the job name.',
    },
  )
  q?: string;

  @Field(
    { kind: 'date_time' },
    {
      description:
        'Only jobs created at or after this instant: an ISO 8601 date-time with a time zone, or a date (midnight UTC).',
    },
  )
  created_after?: Date;

  @Field(
    { kind: 'date_time' },
    {
      description:
        'Only jobs created before this instant (exclusive): an ISO 8601 date-time with a time zone, or a date (midnight UTC).',
    },
  )
  created_before?: Date;

  @Field(
    { kind: 'enum', values: Object.values(JobSort), required: false, nullable: false },
    {
      description: 'Order by creation time: `-created_at` newest first (default) or `created_at` oldest first.',
      default: JobSort.NewestFirst,
    },
  )
  sort?: JobSort;

  @Field({ kind: 'int', ge: 1, le: MAX_PAGE_SIZE }, { description: 'Page size.', default: DEFAULT_PAGE_SIZE })
  limit?: number;

  @Field(
    { kind: 'string', required: false, nullable: false, maxLength: 500 },
    {
      description: 'Opaque cursor from a previous page’s next_cursor, with the same filters and sort.',
    },
  )
  cursor?: string;
}
