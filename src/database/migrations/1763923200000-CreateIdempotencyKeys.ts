import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateIdempotencyKeys1763923200000 implements MigrationInterface {
  name = 'CreateIdempotencyKeys1763923200000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "automl_training_idempotency_keys" (
        "scope" text NOT NULL,
        "key" text NOT NULL,
        "request_hash" character varying(64) NOT NULL,
        "job_id" uuid,
        "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL,
        "expires_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL,
        CONSTRAINT "PK_automl_training_idempotency_keys" PRIMARY KEY ("scope", "key")
      )`);
    await queryRunner.query(
      `CREATE INDEX "IDX_automl_training_idempotency_keys_expiry" ON "automl_training_idempotency_keys" ("expires_at")`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "automl_training_idempotency_keys"`);
  }
}
