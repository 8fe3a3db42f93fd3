import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The create request's problem-type columns (ranking's group, the
 * contextual bandit's action, propensity and reward or cost) and the complete
 * writeback's result summary (model version, objective, metrics). All
 * nullable: existing rows keep meaning what they meant.
 */
export class AddProblemColumnsAndResultSummary1795837482000 implements MigrationInterface {
  name = 'AddProblemColumnsAndResultSummary1795837482000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE "automl_training_jobs"
        ADD COLUMN "group_column" text,
        ADD COLUMN "action_column" text,
        ADD COLUMN "propensity_column" text,
        ADD COLUMN "reward_column" text,
        ADD COLUMN "cost_column" text,
        ADD COLUMN "model_version" text,
        ADD COLUMN "objective" text,
        ADD COLUMN "metrics" jsonb`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE "automl_training_jobs"
        DROP COLUMN "metrics",
        DROP COLUMN "objective",
        DROP COLUMN "model_version",
        DROP COLUMN "cost_column",
        DROP COLUMN "reward_column",
        DROP COLUMN "propensity_column",
        DROP COLUMN "action_column",
        DROP COLUMN "group_column"`);
  }
}
