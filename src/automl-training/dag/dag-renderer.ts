import { Inject, Injectable } from '@nestjs/common';
import type { TemplateDelegate } from 'handlebars';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { AutoMLAlgorithm, Preset, ProblemType } from '../domain/automl-training.enums';
import { runIdTime } from '../airflow/run-ids';
import { pythonJsonLiteral, pythonString } from './python-literal';
import { tuningBudget } from './training-presets';

export interface DagJob {
  jobId: string;
  name: string;
  domain: string;
  owner: string;
  sourceTable: string;
  labelColumn: string | null;
  featureColumns: string[] | null;
  problemType: ProblemType;
  algorithm: AutoMLAlgorithm;
  preset: Preset;
  autoTrigger: boolean;
  /** The DAG's start_date: an auto-triggered DAG's one run has it as its logical date (and in its run id). */
  startDate: Date;
  featureEngineeringJobId: string | null;
  groupColumn: string | null;
  actionColumn: string | null;
  propensityColumn: string | null;
  rewardColumn: string | null;
  costColumn: string | null;
}

export interface RenderedDag {
  dagId: string;
  source: string;
  mlflowExperimentName: string;
  registeredModelName: string;
  /**
   * With TRAINING_IMAGE: the length of the pod's AUTOML_JOB_SPEC_GZ_B64 value
   * (gzip + base64 of the spec JSON, rendered into the DAG); null on the
   * command path, where the spec travels in a file of any size.
   */
  containerSpecBytes: number | null;
}

/**
 * Linux refuses any one environment string over 128 KiB (MAX_ARG_STRLEN,
 * "NAME=value" and its NUL included). The API refuses a container-path job
 * whose encoded spec is longer than this (the name, "=" and NUL fit in the
 * rest).
 */
export const MAX_CONTAINER_SPEC_BYTES = 128_000;

/** The runtime module every DAG file imports: its module name (versioned by content) and its text. */
export interface TrainingRuntime {
  module: string;
  fileName: string;
  source: string;
}

/**
 * The pattern, one line of the DAG folder's .airflowignore, that keeps Airflow's
 * parser off every runtime version: the same files as a glob (Airflow 3's
 * default syntax) and as a regular expression (Airflow 2's).
 */
export const RUNTIME_IGNORE_PATTERN = 'automl_runtime_*';

let compiled: TemplateDelegate | null = null;
let runtime: TrainingRuntime | null = null;

function handlebars(): typeof import('handlebars') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('handlebars') as typeof import('handlebars');
}

/** The DAG template, compiled on the first render (handlebars is loaded then: reads and writebacks never need it). */
function template(): TemplateDelegate {
  compiled ??= handlebars().compile(readFileSync(join(__dirname, 'training-dag.py.hbs'), 'utf8'), {
    noEscape: true,
    strict: true,
  });
  return compiled;
}

/**
 * The runtime's source, deployed as it is: a plain Python module (under ruff,
 * mypy and pytest) that carries the writeback limits as literals; a unit test
 * holds them equal to MAX_WRITEBACK_METRICS and WRITEBACK_NAME_MAX_LENGTH.
 */
export const RUNTIME_SOURCE_FILE = 'training_runtime.py';

/**
 * This build's runtime module, named by a hash of its text: a DAG file names
 * the version it was rendered with, so a changed runtime is a new file and
 * never changes a DAG already deployed.
 */
export function trainingRuntime(): TrainingRuntime {
  if (!runtime) {
    const source = readFileSync(join(__dirname, RUNTIME_SOURCE_FILE), 'utf8');
    const module = `automl_runtime_${createHash('sha256').update(source).digest('hex').slice(0, 16)}`;
    runtime = { module, fileName: `${module}.py`, source };
  }
  return runtime;
}

/** The pod's AUTOML_JOB_SPEC_GZ_B64: base64 of the gzip of the spec's ASCII-only JSON. */
export function containerSpecValue(spec: unknown): string {
  const json = JSON.stringify(spec).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return gzipSync(Buffer.from(json, 'ascii'), { level: 9 }).toString('base64');
}

/**
 * The queue a job's train task goes to: TRAINING_QUEUE_BY_PRESET's for its
 * preset, else TRAINING_QUEUE; null leaves Airflow's default queue.
 */
export function trainingQueueOf(
  airflow: Pick<AppConfig['airflow'], 'trainingQueue' | 'trainingQueueByPreset'>,
  preset: Preset,
): string | null {
  return airflow.trainingQueueByPreset[preset] ?? airflow.trainingQueue;
}

/** `dag_id` of a job: derived from the job id only, so it is always a safe identifier. */
export function dagIdOf(jobId: string): string {
  return `automl_training_${jobId.replace(/-/g, '_')}`;
}

/** MLflow experiment of a job: one per domain and job name. */
export function experimentNameOf(domain: string, name: string): string {
  return `/automl/${domain}/${name}`;
}

function registeredModelNameOf(domain: string, name: string): string {
  const slug = (text: string) =>
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '') || 'model';
  return `${slug(domain)}.${slug(name)}`;
}

/**
 * Renders a job's Airflow DAG from training-dag.py.hbs: the job's own values
 * and tasks, importing the shared runtime (trainingRuntime). Every value the
 * template receives is already a Python literal built by pythonString or
 * pythonJsonLiteral; user text only ever travels inside the JOB_SPEC JSON.
 */
@Injectable()
export class DagRenderer {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  render(job: DagJob): RenderedDag {
    const dagId = dagIdOf(job.jobId);
    const mlflowExperimentName = experimentNameOf(job.domain, job.name);
    const registeredModelName = registeredModelNameOf(job.domain, job.name);
    const spec = {
      job_id: job.jobId,
      name: job.name,
      description: `AutoML training: ${job.name}`,
      domain: job.domain,
      owner: job.owner,
      source_table: job.sourceTable,
      label_column: job.labelColumn,
      feature_columns: job.featureColumns,
      problem_type: job.problemType,
      algorithm: job.algorithm,
      preset: job.preset,
      tuning: tuningBudget(job),
      mlflow_experiment_name: mlflowExperimentName,
      registered_model_name: registeredModelName,
      feature_engineering_job_id: job.featureEngineeringJobId,
      group_column: job.groupColumn,
      action_column: job.actionColumn,
      propensity_column: job.propensityColumn,
      reward_column: job.rewardColumn,
      cost_column: job.costColumn,
    };
    const { publicUrl } = this.config;
    const { pskVariable, sourceConnId, mlflowConnId, daskConnId, trainingImage, trainingCommand } = this.config.airflow;
    const { trainingPool, trainingTimeoutMarginMinutes, trainingPod } = this.config.airflow;
    const trainingQueue = trainingQueueOf(this.config.airflow, job.preset);
    // Encoded here, not by the DAG: the API's size check then measures exactly what the pod gets.
    const containerSpec = trainingImage ? containerSpecValue(spec) : null;
    const source = template()({
      job_id_comment: job.jobId,
      runtime_module: trainingRuntime().module,
      dag_id: pythonString(dagId),
      callback_url: pythonString(`${publicUrl}/api/automl/train/jobs/${job.jobId}/status`),
      psk_variable: pythonString(pskVariable),
      source_conn_id: pythonString(sourceConnId),
      mlflow_conn_id: pythonString(mlflowConnId),
      dask_conn_id: pythonString(daskConnId),
      auto_trigger: job.autoTrigger ? 'True' : 'False',
      start_date: pythonString(runIdTime(job.startDate)),
      training_image: trainingImage ? pythonString(trainingImage) : 'None',
      training_command_json: pythonJsonLiteral(trainingCommand),
      training_pool: trainingPool ? pythonString(trainingPool) : 'None',
      training_queue: trainingQueue ? pythonString(trainingQueue) : 'None',
      training_timeout_margin_minutes: String(trainingTimeoutMarginMinutes),
      training_pod_json: pythonJsonLiteral(trainingPod),
      job_spec_json: pythonJsonLiteral(spec),
      job_spec_gz_b64: containerSpec === null ? 'None' : pythonString(containerSpec),
    });
    return {
      dagId,
      source,
      mlflowExperimentName,
      registeredModelName,
      containerSpecBytes: containerSpec?.length ?? null,
    };
  }
}
