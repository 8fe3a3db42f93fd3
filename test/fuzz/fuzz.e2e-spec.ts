import { AirflowDouble } from '../doubles/airflow.double';
import { KeycloakDouble } from '../doubles/keycloak.double';
import { createJob } from '../utils/jobs';
import { baseUrl, bearer, psk, startTestAppWithAirflow, TestApp } from '../utils/test-app';
import { ContractFuzzer } from './contract-fuzzer';

/** FUZZ_COUNT (default 1500 in CI) requests; FUZZ_SEED replays a run (printed on failure). */
const COUNT = Number(process.env.FUZZ_COUNT ?? 1500);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

describe('contract fuzzing', () => {
  let keycloak: KeycloakDouble;
  let airflow: AirflowDouble;
  let testApp: TestApp;
  let stop: () => Promise<void>;

  beforeAll(async () => {
    ({ keycloak, airflow, testApp, close: stop } = await startTestAppWithAirflow());
  });

  afterAll(() => stop());

  it(`should answer ${COUNT} malformed requests without a 5xx, every 4xx contract-shaped`, async () => {
    const known = [
      await createJob(testApp),
      await createJob(testApp, {}, false),
      await createJob(testApp, { owner: 'alice' }),
    ];
    airflow.parse();
    const url = await baseUrl(testApp);
    const fuzzer = new ContractFuzzer(
      {
        baseUrl: url,
        credentials: [
          psk(),
          bearer(keycloak.token({ preferred_username: 'alice' })),
          bearer(keycloak.token({ realm_access: { roles: ['automl-admin'] } })),
        ],
        knownIds: known.map((job) => job.job_id),
      },
      SEED,
    );
    await fuzzer.load();
    await fuzzer.run(COUNT);
    const summary = `seed ${SEED} (replay: FUZZ_SEED=${SEED} FUZZ_COUNT=${COUNT}); statuses ${JSON.stringify(Object.fromEntries(fuzzer.statusCounts))}`;
    expect({ summary, failures: fuzzer.failures.slice(0, 5) }).toEqual({ summary, failures: [] });
    expect(fuzzer.statusCounts.get(422) ?? 0).toBeGreaterThan(COUNT / 10);
  });
});
