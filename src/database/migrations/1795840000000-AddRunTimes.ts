import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * When the job's current attempt started running and when it
 * finished, kept on the row by the same statements that record the
 * transitions (so a listing needs no join). Existing rows are filled from
 * their recorded transitions.
 */
export class AddRunTimes1795840000000 implements MigrationInterface {
  name = 'AddRunTimes1795840000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE "automl_training_jobs"
        ADD COLUMN "started_at" TIMESTAMP(3) WITH TIME ZONE,
        ADD COLUMN "finished_at" TIMESTAMP(3) WITH TIME ZONE`);
    // The latest attempt: transitions after the last move to ready/queued (a creation or a retry).
    await queryRunner.query(`
      UPDATE "automl_training_jobs" job SET
        started_at = (SELECT max(t.at) FROM automl_training_job_transitions t
                       WHERE t.job_id = job.job_id AND t.to_status = 'running'
                         AND t.id > (SELECT max(q.id) FROM automl_training_job_transitions q
                                      WHERE q.job_id = job.job_id AND q.to_status IN ('ready', 'queued'))),
        finished_at = CASE WHEN job.status IN ('complete', 'failed') THEN
                        (SELECT max(t.at) FROM automl_training_job_transitions t
                          WHERE t.job_id = job.job_id AND t.to_status = job.status) END`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "automl_training_jobs" DROP COLUMN "finished_at", DROP COLUMN "started_at"`);
  }
}
