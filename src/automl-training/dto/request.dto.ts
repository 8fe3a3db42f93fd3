import { ApiSchema } from '@nestjs/swagger';
import { Field } from '../../common/validation/fields';
import { valueError, ValidationItem } from '../../common/validation/pydantic-errors';
import { AutoMLAlgorithm, AutoMLTrainingJobStatus, Preset, ProblemType, problemTypesFor } from '../automl-training.enums';

const JOB_ID_DOC = 'Training job ID.';

export class JobIdParams {
  @Field({ kind: 'uuid', required: true, nullable: false }, { description: JOB_ID_DOC })
  job_id!: string;
}

@ApiSchema({ name: 'AutoMLTrainingStatusUpdate', description: 'Status writeback payload sent by the Airflow DAG.' })
export class AutoMLTrainingStatusUpdate {
  @Field({ kind: 'enum', values: Object.values(AutoMLTrainingJobStatus), required: true, nullable: false }, {
    enum: AutoMLTrainingJobStatus,
    enumName: 'AutoMLTrainingJobStatus',
  })
  status!: AutoMLTrainingJobStatus;

  @Field({ kind: 'string', required: false, nullable: true, nul: 'replace' })
  mlflow_run_id?: string | null;

  @Field({ kind: 'string', required: false, nullable: true, nul: 'replace' })
  registered_model_name?: string | null;

  // A DAG's failure text may hold anything; the callback must not be lost over a NUL.
  @Field({ kind: 'string', required: false, nullable: true, nul: 'replace' })
  error_message?: string | null;
}

@ApiSchema({
  name: 'AutoMLTrainingRequest',
  description: 'Create an AutoML training job. Unknown fields are ignored.',
})
export class AutoMLTrainingRequest {
  @Field({ kind: 'string', required: true, nullable: false, minLength: 1, maxLength: 200 }, { description: 'Job name.' })
  name!: string;

  @Field({ kind: 'string', required: true, nullable: false, minLength: 1, maxLength: 200 }, {
    description: 'Data domain the job belongs to.',
  })
  domain!: string;

  @Field({ kind: 'string', required: false, nullable: true, minLength: 1, maxLength: 200 }, {
    description: "Owner. Defaults to the bearer token's preferred_username; required with a PSK.",
  })
  owner?: string | null;

  @Field({ kind: 'string', required: true, nullable: false, minLength: 1, maxLength: 500 }, {
    description: 'Fully qualified source table.',
  })
  source_table!: string;

  @Field({ kind: 'string', required: false, nullable: true, minLength: 1, maxLength: 500 }, {
    description: 'Label column. Required except for anomaly_detection.',
  })
  label_column?: string | null;

  @Field({ kind: 'string_list', required: false, nullable: true, maxItems: 5000, itemMaxLength: 500 }, {
    description: 'Feature columns. Defaults to every column but the label.',
  })
  feature_columns?: string[] | null;

  @Field({ kind: 'enum', values: Object.values(ProblemType), required: true, nullable: false }, {
    enum: ProblemType,
    enumName: 'ProblemType',
  })
  problem_type!: ProblemType;

  @Field({ kind: 'enum', values: Object.values(AutoMLAlgorithm), required: true, nullable: false }, {
    enum: AutoMLAlgorithm,
    enumName: 'AutoMLAlgorithm',
  })
  algorithm!: AutoMLAlgorithm;

  @Field({ kind: 'enum', values: Object.values(Preset), required: false, nullable: false }, {
    enum: Preset,
    enumName: 'Preset',
    default: Preset.Balanced,
  })
  preset?: Preset;

  @Field({ kind: 'uuid', required: false, nullable: true }, {
    description: 'The feature engineering job that produced the source table.',
  })
  feature_engineering_job_id?: string | null;

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
    if (request.problem_type !== ProblemType.AnomalyDetection && !request.label_column) {
      return [valueError(['body'], raw, `label_column is required for problem_type '${request.problem_type}'`)];
    }
    return [];
  }
}

export class CreateJobQuery {
  @Field({ kind: 'bool' }, { description: 'Run the DAG as soon as Airflow parses it (status queued) or wait for a manual trigger (status ready).', default: true })
  auto_trigger?: boolean;
}

export const MAX_STATUS_IDS = 1000;

export class JobStatusesQuery {
  @Field({ kind: 'uuid_list', maxItems: MAX_STATUS_IDS })
  ids?: string[];
}

export class JobEventsQuery {
  @Field({ kind: 'uuid_list', maxItems: MAX_STATUS_IDS }, { description: 'Only transitions of these jobs.' })
  ids?: string[];

  @Field({ kind: 'string', required: false, nullable: false, maxLength: 200 }, { description: 'Only jobs of this domain.' })
  domain?: string;

  @Field({ kind: 'string', required: false, nullable: false, maxLength: 200 }, { description: 'Only jobs of this owner.' })
  owner?: string;
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export class ListJobsQuery {
  @Field({ kind: 'enum', values: Object.values(AutoMLTrainingJobStatus), required: false, nullable: false }, {
    enum: AutoMLTrainingJobStatus,
    enumName: 'AutoMLTrainingJobStatus',
  })
  status?: AutoMLTrainingJobStatus;

  @Field({ kind: 'string', required: false, nullable: false, maxLength: 200 })
  domain?: string;

  @Field({ kind: 'string', required: false, nullable: false, maxLength: 200 })
  owner?: string;

  @Field({ kind: 'enum', values: Object.values(ProblemType), required: false, nullable: false }, {
    enum: ProblemType,
    enumName: 'ProblemType',
  })
  problem_type?: ProblemType;

  @Field({ kind: 'enum', values: Object.values(AutoMLAlgorithm), required: false, nullable: false }, {
    enum: AutoMLAlgorithm,
    enumName: 'AutoMLAlgorithm',
  })
  algorithm?: AutoMLAlgorithm;

  @Field({ kind: 'string', required: false, nullable: false, maxLength: 200 }, {
    description: 'Case-insensitive substring of the job name.',
  })
  q?: string;

  @Field({ kind: 'int', ge: 1, le: MAX_PAGE_SIZE }, { description: 'Page size.', default: DEFAULT_PAGE_SIZE })
  limit?: number;

  @Field({ kind: 'string', required: false, nullable: false, maxLength: 500 }, {
    description: 'Opaque cursor from a previous page’s next_cursor.',
  })
  cursor?: string;
}
