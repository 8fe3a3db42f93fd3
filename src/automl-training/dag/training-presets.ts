import { AutoMLAlgorithm, Preset } from '../automl-training.enums';

/**
 * The search budget a job's trainer honours exactly: at most `trials` tuning
 * trials, and no new trial once `time_budget_minutes` have passed since the
 * tuning began (the final refit, evaluation and registration come after; the
 * DAG's train task allows 30 minutes more than the budget).
 */
export interface TuningBudget {
  trials: number;
  time_budget_minutes: number;
}

type Family = 'lightgbm' | 'xgboost' | 'vw' | 'isolation_forest';

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
 * The one place a preset becomes a budget. Trials end early (early stopping
 * per trial), so the trial count is what binds on small tables and the time
 * on large ones.
 * - fast: a quick, useful model in minutes (FLAML's spirit: a short budget
 *   searched well) — enough trials for a TPE sampler to leave its random
 *   start-up phase on the tree families.
 * - balanced: the default; about an hour for boosted trees.
 * - best_quality: a long search (AutoGluon's best_quality is likewise the
 *   slow, thorough preset), bounded to a few hours so a job finishes the
 *   same working day.
 * Per family: LightGBM trials are cheap; XGBoost's cost more (fewer trials,
 * more time); Vowpal Wabbit learns online in seconds (many short trials);
 * an isolation forest has few parameters and, without a label, only a weak
 * tuning signal, so a handful of trials is all it can use.
 */
const BUDGETS: Record<Family, Record<Preset, TuningBudget>> = {
  lightgbm: {
    [Preset.Fast]: { trials: 20, time_budget_minutes: 10 },
    [Preset.Balanced]: { trials: 60, time_budget_minutes: 45 },
    [Preset.BestQuality]: { trials: 200, time_budget_minutes: 180 },
  },
  xgboost: {
    [Preset.Fast]: { trials: 15, time_budget_minutes: 15 },
    [Preset.Balanced]: { trials: 50, time_budget_minutes: 60 },
    [Preset.BestQuality]: { trials: 150, time_budget_minutes: 240 },
  },
  vw: {
    [Preset.Fast]: { trials: 30, time_budget_minutes: 5 },
    [Preset.Balanced]: { trials: 100, time_budget_minutes: 20 },
    [Preset.BestQuality]: { trials: 300, time_budget_minutes: 90 },
  },
  isolation_forest: {
    [Preset.Fast]: { trials: 5, time_budget_minutes: 5 },
    [Preset.Balanced]: { trials: 15, time_budget_minutes: 15 },
    [Preset.BestQuality]: { trials: 40, time_budget_minutes: 45 },
  },
};

/** The concrete tuning budget a preset means for an algorithm. */
export function tuningBudget(algorithm: AutoMLAlgorithm, preset: Preset): TuningBudget {
  return { ...BUDGETS[familyOf(algorithm)][preset] };
}
