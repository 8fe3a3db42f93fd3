import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateAuthFailures1764288000000 implements MigrationInterface {
  name = 'CreateAuthFailures1764288000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "automl_training_auth_failures" (
        "client" text NOT NULL,
        "window_started_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL,
        "failures" integer NOT NULL,
        CONSTRAINT "PK_automl_training_auth_failures" PRIMARY KEY ("client")
      )`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "automl_training_auth_failures"`);
  }
}
