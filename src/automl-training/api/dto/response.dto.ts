import { ApiProperty, ApiPropertyOptions, ApiSchema } from '@nestjs/swagger';
import { fieldTitle } from '../../../common/validation/fields';
import {
  AutoMLAlgorithm,
  AutoMLTrainingJobStatus,
  Preset,
  ProblemType,
  TransitionSource,
} from '../../domain/automl-training.enums';
import { presetsTable } from '../../dag/training-presets';

const AIRFLOW_RUN_ID =
  "The Airflow run (dag_run_id) of the job's current attempt: `scheduled__<created_at to the second>` for an auto-triggered job's run " +
  '(its logical date is when the job was created), `manual__<time>__<job_id>__v<version>` for a run started by trigger (the time of the ' +
  'status it was triggered from, to the second); null before any run.';

type Kind = 'string' | 'uuid' | 'date-time' | 'integer' | 'string-list' | 'number-map' | 'tuning';

const SCHEMA: Record<Kind, object> = {
  string: { type: 'string' },
  uuid: { type: 'string', format: 'uuid' },
  'date-time': { type: 'string', format: 'date-time' },
  integer: { type: 'integer' },
  'string-list': { type: 'array', items: { type: 'string' } },
  'number-map': { type: 'object', additionalProperties: { type: 'number' } },
  tuning: { $ref: '#/components/schemas/AutoMLTrainingTuningBudget' },
};

/** A response property, titled as FastAPI titles it; nullable ones as anyOf [T, null]. */
function Prop(
  kind: Kind,
  options: { nullable?: boolean; required?: boolean; description?: string } = {},
): PropertyDecorator {
  return (target, key) => {
    const { nullable = false, required = true, description } = options;
    const base = SCHEMA[kind];
    const schema = nullable ? { anyOf: [base, { type: 'null' }] } : base;
    ApiProperty({
      ...schema,
      required,
      title: fieldTitle(String(key)),
      ...(description ? { description } : {}),
    } as ApiPropertyOptions)(target, key);
  };
}

function EnumProp(enumType: Record<string, string>, enumName: string): PropertyDecorator {
  return ApiProperty({ enum: enumType, enumName, required: true });
}

@ApiSchema({
  name: 'AutoMLTrainingTuningBudget',
  description:
    "The search budget a job runs with: its request's `tuning` over what its preset means for its algorithm.",
})
export class AutoMLTrainingTuningBudget {
  @Prop('integer', {
    description: 'At most this many trials (an upper bound: the search also ends once it stops improving).',
  })
  trials!: number;
  @Prop('integer', {
    description:
      'Wall-clock minutes of the whole training (loading, search, final model, evaluation, registration, report), from when the trainer starts.',
  })
  time_budget_minutes!: number;
}

const MLFLOW_RUN_URL =
  "The MLflow run's page in the MLflow UI (`<MLFLOW_UI_URL>/#/runs/<mlflow_run_id>`); null without MLFLOW_UI_URL or a run id.";
const MODEL_VERSION_URL =
  "The registered model version's page in the MLflow UI (`<MLFLOW_UI_URL>/#/models/<registered_model_name>/versions/<model_version>`, " +
  'path segments percent-encoded); null without MLFLOW_UI_URL, a registered model name or a model version.';

@ApiSchema({ name: 'AutoMLTrainingJobResponse', description: 'A persisted training job.' })
export class AutoMLTrainingJobResponse {
  @Prop('uuid') job_id!: string;
  @Prop('string') name!: string;
  @Prop('string') domain!: string;
  @Prop('string') owner!: string;
  @Prop('string') source_table!: string;
  @EnumProp(ProblemType, 'ProblemType') problem_type!: ProblemType;
  @EnumProp(AutoMLAlgorithm, 'AutoMLAlgorithm') algorithm!: AutoMLAlgorithm;
  @EnumProp(Preset, 'Preset') preset!: Preset;
  @EnumProp(AutoMLTrainingJobStatus, 'AutoMLTrainingJobStatus') status!: AutoMLTrainingJobStatus;
  @Prop('string', { nullable: true, required: false, description: 'The rendered DAG source. Populated on creation.' })
  rendered_dag!: string | null;
  @Prop('string', { nullable: true, required: false }) mlflow_run_id!: string | null;
  @Prop('string', { nullable: true, required: false }) mlflow_experiment_name!: string | null;
  @Prop('string', { nullable: true, required: false }) registered_model_name!: string | null;
  @Prop('string', { nullable: true, required: false }) airflow_dag_id!: string | null;
  @Prop('string', { nullable: true, required: false }) airflow_dag_url!: string | null;
  @Prop('string', { nullable: true, required: false }) error_message!: string | null;
  @Prop('uuid', { nullable: true, required: false }) feature_engineering_job_id!: string | null;
  @Prop('date-time') created_at!: string;
  @Prop('date-time') updated_at!: string;
  // Beyond the seed's fields: optional and nullable, after them.
  @Prop('string', {
    nullable: true,
    required: false,
    description: 'The submitted label column; null for anomaly detection without one.',
  })
  label_column?: string | null;
  @Prop('string-list', {
    nullable: true,
    required: false,
    description: 'The submitted feature columns; null means every column but the label and the special columns.',
  })
  feature_columns?: string[] | null;
  @Prop('string', { nullable: true, required: false, description: 'Ranking: the query/group id column.' })
  group_column?: string | null;
  @Prop('string', { nullable: true, required: false, description: 'Contextual bandit: the logged action column.' })
  action_column?: string | null;
  @Prop('string', {
    nullable: true,
    required: false,
    description: "Contextual bandit: the logging policy's probability column.",
  })
  propensity_column?: string | null;
  @Prop('string', {
    nullable: true,
    required: false,
    description: 'Contextual bandit: the reward column (or cost_column).',
  })
  reward_column?: string | null;
  @Prop('string', {
    nullable: true,
    required: false,
    description: 'Contextual bandit: the cost column (or reward_column).',
  })
  cost_column?: string | null;
  @Prop('tuning', {
    nullable: true,
    required: false,
    description: `The budget the job runs with: its request's \`tuning\` values over its preset's:\n\n${presetsTable()}`,
  })
  tuning?: AutoMLTrainingTuningBudget | null;
  @Prop('date-time', {
    nullable: true,
    required: false,
    description: "When the current attempt's run started (its move to running); null before.",
  })
  started_at?: string | null;
  @Prop('date-time', {
    nullable: true,
    required: false,
    description: 'When the job reached complete or failed; null until then.',
  })
  finished_at?: string | null;
  @Prop('string', {
    nullable: true,
    required: false,
    description: 'Registered model version, from the complete writeback.',
  })
  model_version?: string | null;
  @Prop('string', {
    nullable: true,
    required: false,
    description: 'The metric the search optimised (e.g. roc_auc), from the complete writeback.',
  })
  objective?: string | null;
  @Prop('number-map', {
    nullable: true,
    required: false,
    description: 'Evaluation metrics by name, from the complete writeback.',
  })
  metrics?: Record<string, number> | null;
  // Links into the MLflow UI at MLFLOW_UI_URL, built when answering.
  @Prop('string', { nullable: true, required: false, description: MLFLOW_RUN_URL })
  mlflow_run_url?: string | null;
  @Prop('string', { nullable: true, required: false, description: MODEL_VERSION_URL })
  model_version_url?: string | null;
  // The Airflow run of the current attempt.
  @Prop('string', { nullable: true, required: false, description: AIRFLOW_RUN_ID })
  airflow_run_id?: string | null;
}

@ApiSchema({
  name: 'AutoMLTrainingJobStatusItem',
  description:
    'Lightweight per-job status, reconciled against Airflow.\n\nReturned by the bulk status endpoint so the listing can render from the\nDB immediately and refresh statuses independently.',
})
export class AutoMLTrainingJobStatusItem {
  @Prop('uuid') job_id!: string;
  @EnumProp(AutoMLTrainingJobStatus, 'AutoMLTrainingJobStatus') status!: AutoMLTrainingJobStatus;
  @Prop('string', { nullable: true, required: false }) error_message!: string | null;
  @Prop('date-time') updated_at!: string;
}

@ApiSchema({ name: 'AutoMLTrainingJobStatuses' })
export class AutoMLTrainingJobStatuses {
  @ApiProperty({ type: [AutoMLTrainingJobStatusItem], title: 'Items', required: true })
  items!: AutoMLTrainingJobStatusItem[];
}

@ApiSchema({ name: 'AutoMLTrainingJobList', description: 'One page of training jobs, newest first.' })
export class AutoMLTrainingJobList {
  @ApiProperty({ type: [AutoMLTrainingJobResponse], title: 'Items', required: true })
  items!: AutoMLTrainingJobResponse[];

  @Prop('string', {
    nullable: true,
    description: 'Cursor of the next page; null on the last page.',
  })
  next_cursor!: string | null;
}

@ApiSchema({ name: 'AutoMLTrainingJobTransition', description: 'One recorded status change of a job.' })
export class AutoMLTrainingJobTransition {
  @Prop('integer', { description: 'Transition id, increasing with time.' }) id!: number;
  @ApiProperty({
    anyOf: [{ $ref: '#/components/schemas/AutoMLTrainingJobStatus' }, { type: 'null' }],
    title: 'From Status',
    required: true,
    description: 'Status before the change; null for the creation.',
  })
  from_status!: AutoMLTrainingJobStatus | null;
  @EnumProp(AutoMLTrainingJobStatus, 'AutoMLTrainingJobStatus') to_status!: AutoMLTrainingJobStatus;
  @ApiProperty({ enum: TransitionSource, enumName: 'AutoMLTrainingTransitionSource', required: true })
  source!: TransitionSource;
  @Prop('string', { description: 'Who made the change: a username, "psk" or "airflow".' }) actor!: string;
  @Prop('string', { nullable: true }) error_message!: string | null;
  @Prop('date-time') at!: string;
}

@ApiSchema({
  name: 'AutoMLTrainingJobEvent',
  description:
    'The JSON `data` of one event on GET /jobs/events: a status transition. The SSE `id` of the event is the ' +
    "transition's id (as in the job's history), which Last-Event-ID resumes after.",
})
export class AutoMLTrainingJobEvent {
  @Prop('uuid') job_id!: string;
  @ApiProperty({
    anyOf: [{ $ref: '#/components/schemas/AutoMLTrainingJobStatus' }, { type: 'null' }],
    title: 'From',
    required: true,
    description: 'Status before the transition; null for the creation.',
  })
  from!: AutoMLTrainingJobStatus | null;
  @EnumProp(AutoMLTrainingJobStatus, 'AutoMLTrainingJobStatus') to!: AutoMLTrainingJobStatus;
  @ApiProperty({
    enum: AutoMLTrainingJobStatus,
    enumName: 'AutoMLTrainingJobStatus',
    required: true,
    description: "The job's status after this transition (equals `to`), as in a bulk status item.",
  })
  status!: AutoMLTrainingJobStatus;
  @Prop('string', { nullable: true, description: 'Error recorded with the transition (failures), else null.' })
  error_message!: string | null;
  @Prop('date-time', { description: 'When the transition happened.' }) updated_at!: string;
  // Only on a transition to complete: the job's result, as GET /jobs/{job_id} has it.
  @Prop('string', { nullable: true, required: false, description: 'On complete only.' }) mlflow_run_id?: string | null;
  @Prop('string', { nullable: true, required: false, description: 'On complete only.' }) registered_model_name?:
    string | null;
  @Prop('string', { nullable: true, required: false, description: 'On complete only.' }) model_version?: string | null;
  @Prop('string', { nullable: true, required: false, description: 'On complete only.' }) objective?: string | null;
  @Prop('number-map', { nullable: true, required: false, description: 'On complete only.' }) metrics?: Record<
    string,
    number
  > | null;
  @Prop('date-time', { nullable: true, required: false, description: 'On complete only.' }) started_at?: string | null;
  @Prop('date-time', { nullable: true, required: false, description: 'On complete only.' }) finished_at?: string | null;
  @Prop('string', { nullable: true, required: false, description: `On complete only. ${MLFLOW_RUN_URL}` })
  mlflow_run_url?: string | null;
  @Prop('string', { nullable: true, required: false, description: `On complete only. ${MODEL_VERSION_URL}` })
  model_version_url?: string | null;
}

@ApiSchema({ name: 'AutoMLTrainingJobHistory', description: 'Status transitions of a job, oldest first.' })
export class AutoMLTrainingJobHistory {
  @Prop('uuid') job_id!: string;

  @ApiProperty({ type: [AutoMLTrainingJobTransition], title: 'Items', required: true })
  items!: AutoMLTrainingJobTransition[];
}

@ApiSchema({
  name: 'AutoMLTrainingTaskLog',
  description: "One task of the job's latest Airflow run and a piece of its log.",
})
export class AutoMLTrainingTaskLog {
  @Prop('string', {
    description:
      'Airflow task id: `train` (which writes back `running` as it starts), then the callback task `report_complete`.',
  })
  task_id!: string;
  @Prop('integer', {
    description: 'The try this log belongs to (the latest unless try_number was given); 0 when the task has not run.',
  })
  try_number!: number;
  @Prop('string', { nullable: true, description: "Airflow's state of the task instance (null: not scheduled yet)." })
  state!: string | null;
  @ApiProperty({
    type: 'array',
    items: { type: 'string' },
    title: 'Lines',
    required: true,
    description: 'Log lines, oldest first.',
  })
  lines!: string[];
  @Prop('string', {
    nullable: true,
    description:
      'More of this log may follow: call again with `task`, `try_number` and this `token`. Null once the log has ended ' +
      '(Airflow 2 does not say so: there, a chunk without lines ends it).',
  })
  continuation_token!: string | null;
}

@ApiSchema({ name: 'AutoMLTrainingJobLogs', description: "Task logs of the job's latest Airflow run, training first." })
export class AutoMLTrainingJobLogs {
  @Prop('uuid') job_id!: string;
  @Prop('string') dag_id!: string;
  @Prop('string') run_id!: string;
  @ApiProperty({ type: [AutoMLTrainingTaskLog], title: 'Tasks', required: true })
  tasks!: AutoMLTrainingTaskLog[];
}

@ApiSchema({ name: 'ErrorResponse' })
export class ErrorResponse {
  @ApiProperty({
    type: 'string',
    title: 'Error',
    description: 'A brief description of the error that occurred.',
    required: true,
  })
  error!: string;

  @ApiProperty({
    type: 'integer',
    title: 'Code',
    description: 'The HTTP status code associated with the error.',
    default: 500,
    required: false,
  })
  code!: number;
}
