import { mlflowLinks } from './mlflow-links';

describe(mlflowLinks.name, () => {
  const ids = {
    mlflowRunId: '0a1b2c3d4e5f60718293a4b5c6d7e8f9',
    registeredModelName: 'automl.churn',
    modelVersion: '3',
  };

  it('should give no links without a UI URL', () => {
    expect(mlflowLinks(null, ids)).toEqual({ mlflow_run_url: null, model_version_url: null });
  });

  it("should link the run's direct route and the model version's page", () => {
    expect(mlflowLinks('http://mlflow:5000', ids)).toEqual({
      mlflow_run_url: 'http://mlflow:5000/#/runs/0a1b2c3d4e5f60718293a4b5c6d7e8f9',
      model_version_url: 'http://mlflow:5000/#/models/automl.churn/versions/3',
    });
  });

  it('should percent-encode each path segment', () => {
    expect(
      mlflowLinks('https://m/p', { mlflowRunId: 'r/1', registeredModelName: 'churn #2 (v?) ü', modelVersion: '1' }),
    ).toEqual({
      mlflow_run_url: 'https://m/p/#/runs/r%2F1',
      model_version_url: 'https://m/p/#/models/churn%20%232%20(v%3F)%20%C3%BC/versions/1',
    });
  });

  it('should leave a link null while what it needs is unknown', () => {
    expect(mlflowLinks('http://m', { mlflowRunId: null, registeredModelName: 'x', modelVersion: null })).toEqual({
      mlflow_run_url: null,
      model_version_url: null,
    });
    expect(mlflowLinks('http://m', { mlflowRunId: 'r', registeredModelName: null, modelVersion: '2' })).toEqual({
      mlflow_run_url: 'http://m/#/runs/r',
      model_version_url: null,
    });
  });
});
