import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The search budget a job runs with (a create request's `tuning`
 * over its preset's), fixed at creation as the DAG's JOB_SPEC carries it.
 * Existing rows get what their DAGs were rendered with: the preset budgets
 * of the schema this migration upgrades, written out here because
 * training-presets.ts holds today's.
 * Null (a row from an older replica during a rolling update) means the preset's.
 */
const PRESET_BUDGETS_OF_OLDER_ROWS: Record<
  string,
  { algorithms: string[]; budgets: Record<string, [number, number]> }
> = {
  lightgbm: {
    algorithms: ['lightgbm_classifier', 'lightgbm_regressor', 'lightgbm_ranker'],
    budgets: { fast: [20, 10], balanced: [60, 45], best_quality: [200, 180] },
  },
  xgboost: {
    algorithms: ['xgboost_classifier', 'xgboost_regressor', 'xgboost_ranker'],
    budgets: { fast: [15, 15], balanced: [50, 60], best_quality: [150, 240] },
  },
  vw: {
    algorithms: ['vw_classifier', 'vw_regressor', 'vw_contextual_bandit'],
    budgets: { fast: [30, 5], balanced: [100, 20], best_quality: [300, 90] },
  },
  isolation_forest: {
    algorithms: ['isolation_forest'],
    budgets: { fast: [5, 5], balanced: [15, 15], best_quality: [40, 45] },
  },
};

export class AddTuningBudget1795850000000 implements MigrationInterface {
  name = 'AddTuningBudget1795850000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE "automl_training_jobs"
        ADD COLUMN "tuning_trials" integer,
        ADD COLUMN "tuning_time_budget_minutes" integer`);
    for (const { algorithms, budgets } of Object.values(PRESET_BUDGETS_OF_OLDER_ROWS)) {
      for (const [preset, [trials, minutes]] of Object.entries(budgets)) {
        await queryRunner.query(
          `UPDATE "automl_training_jobs" SET "tuning_trials" = $1, "tuning_time_budget_minutes" = $2
            WHERE "algorithm" = ANY($3::text[]) AND "preset" = $4`,
          [trials, minutes, algorithms, preset],
        );
      }
    }
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE "automl_training_jobs" DROP COLUMN "tuning_time_budget_minutes", DROP COLUMN "tuning_trials"`,
    );
  }
}
