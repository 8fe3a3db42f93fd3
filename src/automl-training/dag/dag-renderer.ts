import { Inject, Injectable } from '@nestjs/common';
import Handlebars from 'handlebars';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { AutoMLAlgorithm, Preset, ProblemType } from '../automl-training.enums';
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
}

const TEMPLATE = Handlebars.compile(readFileSync(join(__dirname, 'training-dag.py.hbs'), 'utf8'), {
  noEscape: true,
  strict: true,
});

/** `dag_id` of a job: derived from the job id only, so it is always a safe identifier. */
export function dagIdOf(jobId: string): string {
  return `automl_training_${jobId.replace(/-/g, '_')}`;
}

/** MLflow experiment of a job: one per domain and job name. */
export function experimentNameOf(domain: string, name: string): string {
  return `/automl/${domain}/${name}`;
}

function registeredModelNameOf(domain: string, name: string): string {
  const slug = (text: string) => text.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'model';
  return `${slug(domain)}.${slug(name)}`;
}

/**
 * Renders a job's Airflow DAG from training-dag.py.hbs. Every value the
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
      tuning: tuningBudget(job.algorithm, job.preset),
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
    const { pskVariable, trainingImage, trainingCommand } = this.config.airflow;
    const source = TEMPLATE({
      job_id_comment: job.jobId,
      dag_id: pythonString(dagId),
      callback_url: pythonString(`${publicUrl}/api/automl/train/jobs/${job.jobId}/status`),
      psk_variable: pythonString(pskVariable),
      auto_trigger: job.autoTrigger ? 'True' : 'False',
      training_image: trainingImage ? pythonString(trainingImage) : 'None',
      training_command_json: pythonJsonLiteral(trainingCommand),
      job_spec_json: pythonJsonLiteral(spec),
    });
    return { dagId, source, mlflowExperimentName, registeredModelName };
  }
}
