import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateTrainingJobs1763836800000 implements MigrationInterface {
  name = 'CreateTrainingJobs1763836800000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "automl_training_jobs" (
        "job_id" uuid NOT NULL,
        "name" text NOT NULL,
        "domain" text NOT NULL,
        "owner" text NOT NULL,
        "source_table" text NOT NULL,
        "label_column" text,
        "feature_columns" jsonb,
        "problem_type" character varying(32) NOT NULL,
        "algorithm" character varying(32) NOT NULL,
        "preset" character varying(16) NOT NULL,
        "status" character varying(16) NOT NULL,
        "auto_trigger" boolean NOT NULL,
        "rendered_dag" text,
        "mlflow_run_id" text,
        "mlflow_experiment_name" text,
        "registered_model_name" text,
        "airflow_dag_id" text,
        "airflow_dag_url" text,
        "airflow_run_id" text,
        "error_message" text,
        "feature_engineering_job_id" uuid,
        "created_by" text NOT NULL,
        "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL,
        "updated_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL,
        "deleted_at" TIMESTAMP(3) WITH TIME ZONE,
        "version" integer NOT NULL,
        CONSTRAINT "PK_automl_training_jobs" PRIMARY KEY ("job_id"),
        CONSTRAINT "CHK_automl_training_jobs_status"
          CHECK ("status" IN ('ready', 'queued', 'running', 'complete', 'failed'))
      )`);
    await queryRunner.query(
      `CREATE INDEX "IDX_automl_training_jobs_listing" ON "automl_training_jobs" ("created_at", "job_id") WHERE deleted_at IS NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX "IDX_automl_training_jobs_status" ON "automl_training_jobs" ("status", "created_at", "job_id") WHERE deleted_at IS NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX "IDX_automl_training_jobs_domain" ON "automl_training_jobs" ("domain", "created_at", "job_id") WHERE deleted_at IS NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX "IDX_automl_training_jobs_owner" ON "automl_training_jobs" ("owner", "created_at", "job_id") WHERE deleted_at IS NULL`,
    );
    await queryRunner.query(`
      CREATE TABLE "automl_training_job_transitions" (
        "id" BIGSERIAL NOT NULL,
        "job_id" uuid NOT NULL,
        "from_status" character varying(16),
        "to_status" character varying(16) NOT NULL,
        "source" character varying(16) NOT NULL,
        "actor" text NOT NULL,
        "error_message" text,
        "at" TIMESTAMP(3) WITH TIME ZONE NOT NULL,
        CONSTRAINT "PK_automl_training_job_transitions" PRIMARY KEY ("id"),
        CONSTRAINT "CHK_automl_training_job_transitions_source" CHECK ("source" IN ('callback', 'reconcile', 'user'))
      )`);
    await queryRunner.query(
      `CREATE INDEX "IDX_automl_training_job_transitions_job" ON "automl_training_job_transitions" ("job_id", "id")`,
    );
    await queryRunner.query(`
      ALTER TABLE "automl_training_job_transitions"
        ADD CONSTRAINT "FK_automl_training_job_transitions_job"
        FOREIGN KEY ("job_id") REFERENCES "automl_training_jobs"("job_id") ON DELETE CASCADE`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "automl_training_job_transitions"`);
    await queryRunner.query(`DROP TABLE "automl_training_jobs"`);
  }
}
