import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * When a terminal job's DAG file was retired from the DAG folder
 * (DAG_RETENTION_MS after it finished), and the partial index the retirement
 * sweep reads: only terminal jobs whose file is still deployed, so years of
 * retired history cost the sweep nothing.
 */
export class AddDagRetiredAt1795900000000 implements MigrationInterface {
  name = 'AddDagRetiredAt1795900000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE "automl_training_jobs" ADD COLUMN "dag_retired_at" TIMESTAMP(3) WITH TIME ZONE`,
    );
    await queryRunner.query(
      `CREATE INDEX "IDX_automl_training_jobs_dag_retirement" ON "automl_training_jobs" ("finished_at") WHERE deleted_at IS NULL AND dag_retired_at IS NULL AND finished_at IS NOT NULL`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "IDX_automl_training_jobs_dag_retirement"`);
    await queryRunner.query(`ALTER TABLE "automl_training_jobs" DROP COLUMN "dag_retired_at"`);
  }
}
