export enum AutoMLTrainingJobStatus {
  Ready = 'ready',
  Queued = 'queued',
  Running = 'running',
  Complete = 'complete',
  Failed = 'failed',
}

export enum ProblemType {
  BinaryClassification = 'binary_classification',
  MulticlassClassification = 'multiclass_classification',
  Regression = 'regression',
  Ranking = 'ranking',
  AnomalyDetection = 'anomaly_detection',
  ContextualBandit = 'contextual_bandit',
}

export enum AutoMLAlgorithm {
  LightgbmClassifier = 'lightgbm_classifier',
  LightgbmRegressor = 'lightgbm_regressor',
  LightgbmRanker = 'lightgbm_ranker',
  XgboostClassifier = 'xgboost_classifier',
  XgboostRegressor = 'xgboost_regressor',
  XgboostRanker = 'xgboost_ranker',
  IsolationForest = 'isolation_forest',
  VwClassifier = 'vw_classifier',
  VwRegressor = 'vw_regressor',
  VwContextualBandit = 'vw_contextual_bandit',
}

export enum Preset {
  Fast = 'fast',
  Balanced = 'balanced',
  BestQuality = 'best_quality',
}

/** Who caused a status transition. */
export enum TransitionSource {
  Callback = 'callback',
  Reconcile = 'reconcile',
  User = 'user',
}

/** Algorithm ↔ problem type (spec, "Algorithm ↔ problem type"). */
export function problemTypesFor(algorithm: AutoMLAlgorithm): readonly ProblemType[] {
  switch (algorithm) {
    case AutoMLAlgorithm.LightgbmClassifier:
    case AutoMLAlgorithm.XgboostClassifier:
    case AutoMLAlgorithm.VwClassifier:
      return [ProblemType.BinaryClassification, ProblemType.MulticlassClassification];
    case AutoMLAlgorithm.LightgbmRegressor:
    case AutoMLAlgorithm.XgboostRegressor:
    case AutoMLAlgorithm.VwRegressor:
      return [ProblemType.Regression];
    case AutoMLAlgorithm.LightgbmRanker:
    case AutoMLAlgorithm.XgboostRanker:
      return [ProblemType.Ranking];
    case AutoMLAlgorithm.IsolationForest:
      return [ProblemType.AnomalyDetection];
    case AutoMLAlgorithm.VwContextualBandit:
      return [ProblemType.ContextualBandit];
  }
}

/** Titles and descriptions of the enum components, as the contract's document has them. */
export const ENUM_SCHEMA_DOCS: Record<string, { title: string; description: string }> = {
  AutoMLTrainingJobStatus: {
    title: 'AutoMLTrainingJobStatus',
    description:
      'Lifecycle of an AutoML training job.\n\n' +
      '- `READY`: DAG uploaded but not yet triggered. The user opted out of\n' +
      '  auto-trigger at create time. Manual trigger flips it to `QUEUED`.\n' +
      '- `QUEUED`: DAG triggered, waiting for Airflow to pick it up.\n' +
      '- `RUNNING`: Airflow has the run going.\n' +
      '- `COMPLETE`/`FAILED`: terminal.',
  },
  ProblemType: { title: 'ProblemType', description: 'Supervised / unsupervised problem categories.' },
  AutoMLAlgorithm: { title: 'AutoMLAlgorithm', description: 'Supported AutoML algorithms.' },
  Preset: { title: 'Preset', description: 'Tuning presets shared across algorithms.' },
  AutoMLTrainingTransitionSource: {
    title: 'AutoMLTrainingTransitionSource',
    description: 'What caused a status transition: a DAG callback, reconciliation against Airflow, or a user action.',
  },
};
