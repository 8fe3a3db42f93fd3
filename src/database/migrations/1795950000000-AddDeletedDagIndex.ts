import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The partial index the background reconciler reads to delete again a DAG
 * Airflow re-created after its job was deleted (a parse under way when the
 * file went): only deleted jobs with a DAG, by deletion time, so the live
 * jobs cost the lookup nothing.
 */
export class AddDeletedDagIndex1795950000000 implements MigrationInterface {
  name = 'AddDeletedDagIndex1795950000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX "IDX_automl_training_jobs_deleted_dags" ON "automl_training_jobs" ("deleted_at") WHERE deleted_at IS NOT NULL AND airflow_dag_id IS NOT NULL`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "IDX_automl_training_jobs_deleted_dags"`);
  }
}
