import { Check, Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { AutoMLAlgorithm, AutoMLTrainingJobStatus, Preset, ProblemType } from '../domain/automl-training.enums';

/**
 * One training job. `version` is the compare-and-set token: every write is
 * `… WHERE job_id = $1 AND version = $2` and bumps it.
 * `created_at` keeps millisecond precision so the listing's keyset cursor,
 * which round-trips through a JS Date, compares exactly.
 */
@Entity({ name: 'automl_training_jobs' })
@Check('CHK_automl_training_jobs_status', `"status" IN ('ready', 'queued', 'running', 'complete', 'failed')`)
@Index('IDX_automl_training_jobs_listing', ['createdAt', 'jobId'], { where: 'deleted_at IS NULL' })
@Index('IDX_automl_training_jobs_status', ['status', 'createdAt', 'jobId'], { where: 'deleted_at IS NULL' })
@Index('IDX_automl_training_jobs_domain', ['domain', 'createdAt', 'jobId'], { where: 'deleted_at IS NULL' })
@Index('IDX_automl_training_jobs_owner', ['owner', 'createdAt', 'jobId'], { where: 'deleted_at IS NULL' })
@Index('IDX_automl_training_jobs_dag_retirement', ['finishedAt'], {
  where: 'deleted_at IS NULL AND dag_retired_at IS NULL AND finished_at IS NOT NULL',
})
@Index('IDX_automl_training_jobs_deleted_dags', ['deletedAt'], {
  where: 'deleted_at IS NOT NULL AND airflow_dag_id IS NOT NULL',
})
export class TrainingJobEntity {
  @PrimaryColumn({ name: 'job_id', type: 'uuid' })
  jobId!: string;

  @Column({ name: 'name', type: 'text' })
  name!: string;

  @Column({ name: 'domain', type: 'text' })
  domain!: string;

  @Column({ name: 'owner', type: 'text' })
  owner!: string;

  @Column({ name: 'source_table', type: 'text' })
  sourceTable!: string;

  @Column({ name: 'label_column', type: 'text', nullable: true })
  labelColumn!: string | null;

  @Column({ name: 'feature_columns', type: 'jsonb', nullable: true })
  featureColumns!: string[] | null;

  @Column({ name: 'problem_type', type: 'varchar', length: 32 })
  problemType!: ProblemType;

  @Column({ name: 'algorithm', type: 'varchar', length: 32 })
  algorithm!: AutoMLAlgorithm;

  @Column({ name: 'preset', type: 'varchar', length: 16 })
  preset!: Preset;

  /**
   * The search budget the job runs with (its request's `tuning` over its preset's), fixed at creation as
   * its DAG's JOB_SPEC carries it; null means the preset's (training-presets.ts, tuningBudget).
   */
  @Column({ name: 'tuning_trials', type: 'integer', nullable: true })
  tuningTrials!: number | null;

  @Column({ name: 'tuning_time_budget_minutes', type: 'integer', nullable: true })
  tuningTimeBudgetMinutes!: number | null;

  @Column({ name: 'status', type: 'varchar', length: 16 })
  status!: AutoMLTrainingJobStatus;

  @Column({ name: 'auto_trigger', type: 'boolean' })
  autoTrigger!: boolean;

  @Column({ name: 'rendered_dag', type: 'text', nullable: true })
  renderedDag!: string | null;

  @Column({ name: 'mlflow_run_id', type: 'text', nullable: true })
  mlflowRunId!: string | null;

  @Column({ name: 'mlflow_experiment_name', type: 'text', nullable: true })
  mlflowExperimentName!: string | null;

  @Column({ name: 'registered_model_name', type: 'text', nullable: true })
  registeredModelName!: string | null;

  @Column({ name: 'airflow_dag_id', type: 'text', nullable: true })
  airflowDagId!: string | null;

  @Column({ name: 'airflow_dag_url', type: 'text', nullable: true })
  airflowDagUrl!: string | null;

  @Column({ name: 'airflow_run_id', type: 'text', nullable: true })
  airflowRunId!: string | null;

  @Column({ name: 'error_message', type: 'text', nullable: true })
  errorMessage!: string | null;

  @Column({ name: 'feature_engineering_job_id', type: 'uuid', nullable: true })
  featureEngineeringJobId!: string | null;

  /** Ranking: the query/group id column. */
  @Column({ name: 'group_column', type: 'text', nullable: true })
  groupColumn!: string | null;

  /** Contextual bandit: the logged action. */
  @Column({ name: 'action_column', type: 'text', nullable: true })
  actionColumn!: string | null;

  /** Contextual bandit: the logging policy's probability of the logged action. */
  @Column({ name: 'propensity_column', type: 'text', nullable: true })
  propensityColumn!: string | null;

  /** Contextual bandit: exactly one of reward_column and cost_column. */
  @Column({ name: 'reward_column', type: 'text', nullable: true })
  rewardColumn!: string | null;

  @Column({ name: 'cost_column', type: 'text', nullable: true })
  costColumn!: string | null;

  /** Result summary from the complete writeback: registered model version, optimised metric, metrics. */
  @Column({ name: 'model_version', type: 'text', nullable: true })
  modelVersion!: string | null;

  @Column({ name: 'objective', type: 'text', nullable: true })
  objective!: string | null;

  @Column({ name: 'metrics', type: 'jsonb', nullable: true })
  metrics!: Record<string, number> | null;

  /** When the current attempt's run started (its latest move to running); null before, and again on a retry. */
  @Column({ name: 'started_at', type: 'timestamptz', precision: 3, nullable: true })
  startedAt!: Date | null;

  /** When the job reached complete or failed; null while it is not terminal. */
  @Column({ name: 'finished_at', type: 'timestamptz', precision: 3, nullable: true })
  finishedAt!: Date | null;

  /** When the DAG file left the DAG folder, DAG_RETENTION_MS after the job finished; null while it is deployed. */
  @Column({ name: 'dag_retired_at', type: 'timestamptz', precision: 3, nullable: true })
  dagRetiredAt!: Date | null;

  @Column({ name: 'created_by', type: 'text' })
  createdBy!: string;

  @Column({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', precision: 3 })
  updatedAt!: Date;

  @Column({ name: 'deleted_at', type: 'timestamptz', precision: 3, nullable: true })
  deletedAt!: Date | null;

  @Column({ name: 'version', type: 'integer' })
  version!: number;
}
