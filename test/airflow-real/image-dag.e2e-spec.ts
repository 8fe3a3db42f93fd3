import { KeycloakDouble } from '../doubles/keycloak.double';
import { createJob } from '../utils/jobs';
import { AirflowRest, RealAirflowInfo } from '../utils/real-airflow';
import { bearer, startTestApp, TestApp } from '../utils/test-app';
import { describeRealAirflow, realAirflowInfo, realAirflowRest } from './real-airflow-env';

/**
 * Why the lock carries the cncf.kubernetes provider: with TRAINING_IMAGE set the rendered DAG imports
 * KubernetesPodOperator, and the real dag-processor must parse it without an import error. (No cluster
 * here, so the job stays manual and never runs.)
 */
describeRealAirflow('a container-path DAG (TRAINING_IMAGE) on a real Airflow 3', () => {
  const info = realAirflowInfo() as RealAirflowInfo;
  let rest: AirflowRest;
  let keycloak: KeycloakDouble;
  let testApp: TestApp;

  beforeAll(async () => {
    rest = realAirflowRest(info);
    keycloak = await KeycloakDouble.start();
    testApp = await startTestApp({
      ...keycloak.env(),
      AIRFLOW_URL: info.url,
      AIRFLOW_API_VERSION: 'v2',
      AIRFLOW_USERNAME: info.username,
      AIRFLOW_PASSWORD: info.password,
      AIRFLOW_DAGS_DIR: info.dagsDir,
      AIRFLOW_TIMEOUT_MS: '30000',
      TRAINING_IMAGE: 'registry.example/automl-trainer:1',
    });
  });

  afterAll(async () => {
    await testApp?.close();
    await keycloak?.stop();
  });

  it('should be parsed by the dag-processor with no import error, and deleted', async () => {
    const job = await createJob(testApp, {}, false);
    const dag = await rest.waitDag(job.airflow_dag_id, 200, 60_000);
    expect(dag).toMatchObject({ dag_id: job.airflow_dag_id, has_import_errors: false, is_paused: false });
    const errors = await rest.api('GET', `/api/v2/importErrors?filename_pattern=${job.airflow_dag_id}`);
    expect(errors.body.import_errors ?? []).toEqual([]);
    await testApp.http().delete(`/api/automl/train/jobs/${job.job_id}`).set(bearer(keycloak.token())).expect(204);
    await rest.waitDag(job.airflow_dag_id, 404, 30_000);
  }, 120_000);
});
