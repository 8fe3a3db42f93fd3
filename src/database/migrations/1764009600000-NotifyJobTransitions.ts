import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Every committed status transition wakes the event streams of every replica
 * through PostgreSQL NOTIFY. The payload is empty on purpose: the transitions
 * table is the source of truth, listeners read it from their high-water mark,
 * and identical notifications of one transaction fold into one.
 */
export class NotifyJobTransitions1764009600000 implements MigrationInterface {
  name = 'NotifyJobTransitions1764009600000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION "automl_training_job_transitions_notify"() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('automl_training_job_transitions', '');
        RETURN NULL;
      END
      $$`);
    await queryRunner.query(`
      CREATE TRIGGER "TRG_automl_training_job_transitions_notify"
      AFTER INSERT ON "automl_training_job_transitions"
      FOR EACH ROW EXECUTE FUNCTION "automl_training_job_transitions_notify"()`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "TRG_automl_training_job_transitions_notify" ON "automl_training_job_transitions"`);
    await queryRunner.query(`DROP FUNCTION "automl_training_job_transitions_notify"()`);
  }
}
