import { Logger } from '@nestjs/common';
import { Client } from 'pg';
import { DatabaseConfig } from '../../config/app.config';
import { AdvisoryLockKey } from './lock-keys';

/**
 * Leadership of one background task across replicas: a PostgreSQL session
 * advisory lock on `key`, held on a dedicated connection. Replicas never
 * double the work, and when the leader dies its session ends and another
 * takes over. An embedded database belongs to one process: it always leads.
 */
export class LeaderLock {
  private client: Client | null = null;

  constructor(
    private readonly key: AdvisoryLockKey,
    private readonly what: string,
    private readonly database: DatabaseConfig,
    private readonly logger: Logger,
  ) {}

  /** True while this replica holds the lock (taking it if free). */
  async lead(): Promise<boolean> {
    if (this.database.kind !== 'postgres') return true;
    if (this.client) return true;
    const client = new Client({ connectionString: this.database.url, connectionTimeoutMillis: 5_000 });
    client.on('error', () => {
      if (this.client === client) this.client = null;
    });
    await client.connect();
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [this.key]);
    if (rows[0]?.locked) {
      this.client = client;
      this.logger.log(`Leading ${this.what}`);
      return true;
    }
    await client.end();
    return false;
  }

  async release(): Promise<void> {
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }
}
