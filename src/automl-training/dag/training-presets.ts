import { AutoMLAlgorithm, Preset } from '../domain/automl-training.enums';

/**
 * The search budget a job's trainer runs with. `time_budget_minutes` is the
 * wall clock of the whole training, counted from when the trainer starts:
 * loading the table, the search, the final model, evaluation, registration
 * and the report all fit in it. No new trial starts after NO_NEW_TRIAL_AFTER
 * of it and a trial still running then stops there; the rest is for the
 * final fit, evaluation, registration and the report (the
 * DAG's train task allows 30 minutes more than the budget). `trials` is an
 * upper bound only: the search also ends once it stops improving (the
 * trainer's patience rule, trainer/README.md).
 */
export interface TuningBudget {
  trials: number;
  time_budget_minutes: number;
}

/** What a create request's `tuning` may set; a value left out or null comes from the preset. */
export interface TuningOverride {
  trials?: number | null;
  time_budget_minutes?: number | null;
}

/** The share of `time_budget_minutes` by which the best trial's refit must be expected to end (trainer REFIT_BY). */
export const REFIT_ENDS_BY = 0.95;

/** The share of `time_budget_minutes` after which the trainer starts no new trial. */
export const NO_NEW_TRIAL_AFTER = 0.8;

/** Bounds of a create request's `tuning` values (whole numbers, inclusive). */
export const TUNING_LIMITS = {
  trials: { ge: 1, le: 1000 },
  // 24 h: a job finishes within a day; the DAG's train task gets 30 minutes more.
  time_budget_minutes: { ge: 1, le: 1440 },
} as const;

type Family = 'lightgbm' | 'xgboost' | 'vw' | 'isolation_forest';

const FAMILY_NAMES: Record<Family, string> = {
  lightgbm: 'LightGBM',
  xgboost: 'XGBoost',
  vw: 'Vowpal Wabbit',
  isolation_forest: 'IsolationForest',
};

function familyOf(algorithm: AutoMLAlgorithm): Family {
  switch (algorithm) {
    case AutoMLAlgorithm.LightgbmClassifier:
    case AutoMLAlgorithm.LightgbmRegressor:
    case AutoMLAlgorithm.LightgbmRanker:
      return 'lightgbm';
    case AutoMLAlgorithm.XgboostClassifier:
    case AutoMLAlgorithm.XgboostRegressor:
    case AutoMLAlgorithm.XgboostRanker:
      return 'xgboost';
    case AutoMLAlgorithm.VwClassifier:
    case AutoMLAlgorithm.VwRegressor:
    case AutoMLAlgorithm.VwContextualBandit:
      return 'vw';
    case AutoMLAlgorithm.IsolationForest:
      return 'isolation_forest';
  }
}

/**
 * The one place a preset becomes a budget, and the one source of the presets
 * table in the API docs, docs/dag-runtime.md and trainer/README.md (`npm run
 * docs:presets`). The time binds: trial caps sit far above what the minutes
 * usually allow, and the trainer's patience rule ends a search that stopped
 * improving before either.
 * - fast: a quick, useful model in minutes (FLAML's spirit: a short budget
 *   searched well).
 * - balanced: the default; about an hour for boosted trees.
 * - best_quality: a long search (AutoGluon's best_quality is likewise the
 *   slow, thorough preset), bounded to a few hours so a job finishes the
 *   same working day.
 * Per family: LightGBM trials are cheap; XGBoost's cost more (more time);
 * Vowpal Wabbit learns online in seconds (many short trials, little time);
 * an isolation forest has few parameters and, without a label, only a weak
 * tuning signal, so a few dozen trials is all it can use.
 */
export const BUDGETS: Readonly<Record<Family, Readonly<Record<Preset, TuningBudget>>>> = {
  lightgbm: {
    [Preset.Fast]: { trials: 100, time_budget_minutes: 10 },
    [Preset.Balanced]: { trials: 300, time_budget_minutes: 45 },
    [Preset.BestQuality]: { trials: 1000, time_budget_minutes: 180 },
  },
  xgboost: {
    [Preset.Fast]: { trials: 80, time_budget_minutes: 15 },
    [Preset.Balanced]: { trials: 250, time_budget_minutes: 60 },
    [Preset.BestQuality]: { trials: 800, time_budget_minutes: 240 },
  },
  vw: {
    [Preset.Fast]: { trials: 200, time_budget_minutes: 5 },
    [Preset.Balanced]: { trials: 600, time_budget_minutes: 20 },
    [Preset.BestQuality]: { trials: 1000, time_budget_minutes: 90 },
  },
  isolation_forest: {
    [Preset.Fast]: { trials: 20, time_budget_minutes: 5 },
    [Preset.Balanced]: { trials: 50, time_budget_minutes: 15 },
    [Preset.BestQuality]: { trials: 100, time_budget_minutes: 45 },
  },
};

/** A create request's budget: its `tuning` values over what its preset means for its algorithm. */
export function presetBudget(
  algorithm: AutoMLAlgorithm,
  preset: Preset,
  override?: TuningOverride | null,
): TuningBudget {
  const budget = BUDGETS[familyOf(algorithm)][preset];
  return {
    trials: override?.trials ?? budget.trials,
    time_budget_minutes: override?.time_budget_minutes ?? budget.time_budget_minutes,
  };
}

/**
 * A job's stored budget (`tuning_trials`, `tuning_time_budget_minutes`): fixed at creation, as its DAG's
 * JOB_SPEC carries it, so a later change of BUDGETS changes no existing job. Null: the preset's value
 * (a row written by a replica older than the columns).
 */
export interface StoredTuning {
  algorithm: AutoMLAlgorithm;
  preset: Preset;
  tuningTrials: number | null;
  tuningTimeBudgetMinutes: number | null;
}

// The renderer reads a job's budget from the same stored fields as the API (a type-only merge into DagJob).
declare module './dag-renderer' {
  interface DagJob {
    tuningTrials: number | null;
    tuningTimeBudgetMinutes: number | null;
  }
}

/** The budget a job runs with, as its responses and its DAG's JOB_SPEC show it. */
export function tuningBudget(job: StoredTuning): TuningBudget {
  return presetBudget(job.algorithm, job.preset, {
    trials: job.tuningTrials,
    time_budget_minutes: job.tuningTimeBudgetMinutes,
  });
}

/**
 * The presets table (Markdown): per family, its algorithms and each preset's
 * trial cap and minutes, then what the two numbers mean. docs/dag-runtime.md,
 * trainer/README.md and the OpenAPI descriptions of `preset` and `tuning`
 * carry exactly this text.
 */
export function presetsTable(): string {
  const presets = Object.values(Preset);
  const families = Object.keys(BUDGETS) as Family[];
  const algorithms = (family: Family) =>
    Object.values(AutoMLAlgorithm)
      .filter((algorithm) => familyOf(algorithm) === family)
      .map((algorithm) => `\`${algorithm}\``)
      .join(', ');
  const cell = ({ trials, time_budget_minutes }: TuningBudget) => `≤ ${trials} trials, ${time_budget_minutes} min`;
  const percent = Math.round(NO_NEW_TRIAL_AFTER * 100);
  const refitPercent = Math.round(REFIT_ENDS_BY * 100);
  const { trials, time_budget_minutes: minutes } = TUNING_LIMITS;
  return [
    `| family (algorithms) | ${presets.map((preset) => `\`${preset}\``).join(' | ')} |`,
    `| --- | ${presets.map(() => '---').join(' | ')} |`,
    ...families.map(
      (family) =>
        `| ${FAMILY_NAMES[family]} (${algorithms(family)}) | ${presets.map((preset) => cell(BUDGETS[family][preset])).join(' | ')} |`,
    ),
    '',
    `\`time_budget_minutes\` is the wall clock of the whole training, counted from when the trainer starts: loading the ` +
      `table, the search, the final model, evaluation, registration and the report all fit in it. No new trial starts ` +
      `after ${percent} % of it (nor once the best trial's refit on every training row would end past ${refitPercent} % ` +
      `of it) and a trial still running then stops there; the report gets what is left. \`trials\` is an upper bound only: ` +
      `the search also ends once it stops improving, so the time is what binds. A create request's \`tuning\` overrides either ` +
      `value for its job (\`trials\` ${trials.ge}–${trials.le}, \`time_budget_minutes\` ${minutes.ge}–${minutes.le}, whole numbers).`,
  ].join('\n');
}
