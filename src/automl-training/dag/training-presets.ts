import { AutoMLAlgorithm, Preset } from '../automl-training.enums';

export interface TuningBudget {
  trials: number;
  time_budget_minutes: number;
}

const BASE: Record<Preset, TuningBudget> = {
  [Preset.Fast]: { trials: 10, time_budget_minutes: 15 },
  [Preset.Balanced]: { trials: 40, time_budget_minutes: 60 },
  [Preset.BestQuality]: { trials: 150, time_budget_minutes: 240 },
};

/** Per-family scaling: VW trains fast (more, shorter trials); XGBoost trials are slower; isolation forests need few. */
function scale(algorithm: AutoMLAlgorithm): { trials: number; time: number } {
  switch (algorithm) {
    case AutoMLAlgorithm.LightgbmClassifier:
    case AutoMLAlgorithm.LightgbmRegressor:
    case AutoMLAlgorithm.LightgbmRanker:
      return { trials: 1, time: 1 };
    case AutoMLAlgorithm.XgboostClassifier:
    case AutoMLAlgorithm.XgboostRegressor:
    case AutoMLAlgorithm.XgboostRanker:
      return { trials: 0.8, time: 1.5 };
    case AutoMLAlgorithm.VwClassifier:
    case AutoMLAlgorithm.VwRegressor:
    case AutoMLAlgorithm.VwContextualBandit:
      return { trials: 2, time: 0.5 };
    case AutoMLAlgorithm.IsolationForest:
      return { trials: 0.5, time: 0.5 };
  }
}

/** The concrete tuning budget a preset means for an algorithm. */
export function tuningBudget(algorithm: AutoMLAlgorithm, preset: Preset): TuningBudget {
  const base = BASE[preset];
  const factor = scale(algorithm);
  return {
    trials: Math.max(1, Math.round(base.trials * factor.trials)),
    time_budget_minutes: Math.max(5, Math.round(base.time_budget_minutes * factor.time)),
  };
}
