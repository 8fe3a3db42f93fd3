import autocannon from 'autocannon';
import { generateKeyPairSync } from 'node:crypto';
import { KeycloakDouble } from '../../test/doubles/keycloak.double';
import { createBenchDatabase, startProductionService } from '../shared/bench-app';
import { figures, LoadFigures, query, seedJobs, writebackLoad } from '../shared/writeback-load';

const JOBS = 100_000;
const SECONDS = 6;
const FLOOD_CONNECTIONS = 50;

export interface FloodFigures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers by status code. */
  statuses: Record<string, number>;
  /** Failures the service wrote to the shared count during the flood (sum of the table's counters). */
  failuresWritten: number | null;
}

export interface AuthFloodBenchResult {
  /** Valid writebacks (50 connections) alone, before and after the floods. */
  alone: LoadFigures[];
  /** Valid writebacks while each flood of bad credentials runs from the same machine. */
  during: { flood: string; valid: LoadFigures; floodFigures: FloodFigures }[];
  /** Valid writeback throughput during the worst flood ÷ alone (mean of before and after). */
  worstRatio: number;
}

function flood(url: string, headers: () => Record<string, string>): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}/api/automl/train/jobs?limit=1`,
    connections: FLOOD_CONNECTIONS,
    duration: SECONDS,
    requests: [{ setupRequest: (request) => ({ ...request, headers: headers() }) }],
  });
}

const randomAddress = () => `10.${(Math.random() * 256) | 0}.${(Math.random() * 256) | 0}.${(Math.random() * 256) | 0}`;

/**
 * Valid PSK writebacks while floods of bad credentials run: from the same
 * address (limited after AUTH_FAILURE_LIMIT), and from a different address
 * per request (X-Forwarded-For through a trusted proxy: every failure is
 * counted in the database), with wrong PSKs and with RS256 tokens signed by a
 * foreign key (a full signature check each). Valid requests must keep being
 * served: 200s, and a throughput that only shares the CPU with the flood.
 */
export async function benchAuthFlood(): Promise<AuthFloodBenchResult> {
  const keycloak = await KeycloakDouble.start();
  const database = await createBenchDatabase();
  const service = await startProductionService(database.url, { TRUST_PROXY: '127.0.0.1', ...keycloak.env() });
  const foreignToken = keycloak.token({}, { key: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey });
  const floods: [string, () => Record<string, string>][] = [
    ['wrong PSK, one address', () => ({ 'Authorization-PSK': 'wrong-psk-from-a-stale-dag' })],
    [
      'wrong PSK, a new address per request',
      () => ({ 'Authorization-PSK': 'wrong-psk-from-a-stale-dag', 'X-Forwarded-For': randomAddress() }),
    ],
    [
      'foreign-key RS256 token, a new address per request',
      () => ({ Authorization: `Bearer ${foreignToken}`, 'X-Forwarded-For': randomAddress() }),
    ],
  ];
  try {
    await seedJobs(database.url, JOBS);
    const ids = (await query<{ job_id: string }>(database.url, 'SELECT job_id FROM automl_training_jobs')).map(
      (row) => row.job_id,
    );
    const slice = (run: number) => ids.slice(run * 18_000, (run + 1) * 18_000);
    await writebackLoad(service.url, ids.slice(-2_000), 2);
    const before = figures(await writebackLoad(service.url, slice(0), SECONDS));
    const during: AuthFloodBenchResult['during'] = [];
    // null where the service keeps no shared count (a build from before it existed, for comparison).
    const written = async () =>
      query<{ sum: string | null }>(
        database.url,
        'SELECT sum(failures) AS sum FROM automl_training_auth_failures',
      ).then(
        ([row]) => Number(row.sum ?? 0),
        () => null,
      );
    for (const [index, [name, headers]] of floods.entries()) {
      const writtenBefore = await written();
      const [valid, bad] = await Promise.all([
        writebackLoad(service.url, slice(index + 1), SECONDS),
        flood(service.url, headers),
      ]);
      const statuses = Object.fromEntries(
        Object.entries(bad.statusCodeStats ?? {}).map(([code, stats]) => [code, stats?.count ?? 0]),
      );
      during.push({
        flood: name,
        valid: figures(valid),
        floodFigures: {
          requestsPerSecond: Math.round(bad.requests.average),
          p50Ms: bad.latency.p50,
          p99Ms: bad.latency.p99,
          statuses,
          failuresWritten: writtenBefore === null ? null : (await written())! - writtenBefore,
        },
      });
    }
    const after = figures(await writebackLoad(service.url, slice(4), SECONDS));
    const alone = (before.requestsPerSecond + after.requestsPerSecond) / 2;
    const worst = Math.min(...during.map((run) => run.valid.requestsPerSecond - run.valid.non2xx / SECONDS));
    return { alone: [before, after], during, worstRatio: Math.round((worst / alone) * 100) / 100 };
  } finally {
    await service.stop();
    await database.drop();
    await keycloak.stop();
  }
}
