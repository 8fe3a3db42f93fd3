import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { sqlRows } from '../../database/sql';

/** How long a key answers with its first job. */
export const IDEMPOTENCY_TTL_HOURS = 24;
const CLEANUP_EVERY_MS = 60 * 60 * 1000;
const WAIT_STEP_MS = 50;

export type Claim = { owned: true } | { owned: false; requestHash: string; jobId: string | null };

/**
 * Idempotency-Key records in PostgreSQL. A key is claimed by an atomic insert
 * (one winner among concurrent duplicates); the winner records the job it
 * created; expired keys are deleted hourly and ignored before that.
 */
@Injectable()
export class IdempotencyStore implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(IdempotencyStore.name);
  private cleanup: NodeJS.Timeout | null = null;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  onModuleInit(): void {
    this.cleanup = setInterval(() => void this.deleteExpired(), CLEANUP_EVERY_MS);
    this.cleanup.unref();
  }

  onModuleDestroy(): void {
    if (this.cleanup) clearInterval(this.cleanup);
  }

  async claim(scope: string, key: string, requestHash: string): Promise<Claim> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const inserted = await sqlRows(
        this.dataSource,
        `INSERT INTO automl_training_idempotency_keys (scope, key, request_hash, job_id, created_at, expires_at)
         VALUES ($1, $2, $3, NULL, clock_timestamp(), clock_timestamp() + make_interval(hours => $4))
         ON CONFLICT (scope, key) DO NOTHING
         RETURNING key`,
        [scope, key, requestHash, IDEMPOTENCY_TTL_HOURS],
      );
      if (inserted.length > 0) return { owned: true };
      const [existing] = await sqlRows<{ request_hash: string; job_id: string | null; expired: boolean }>(
        this.dataSource,
        `SELECT request_hash, job_id, expires_at < clock_timestamp() AS expired
           FROM automl_training_idempotency_keys WHERE scope = $1 AND key = $2`,
        [scope, key],
      );
      if (existing && !existing.expired)
        return { owned: false, requestHash: existing.request_hash, jobId: existing.job_id };
      await sqlRows(
        this.dataSource,
        'DELETE FROM automl_training_idempotency_keys WHERE scope = $1 AND key = $2 AND expires_at < clock_timestamp()',
        [scope, key],
      );
    }
    throw new Error('Idempotency key could not be claimed');
  }

  async complete(scope: string, key: string, jobId: string): Promise<void> {
    await sqlRows(
      this.dataSource,
      'UPDATE automl_training_idempotency_keys SET job_id = $3 WHERE scope = $1 AND key = $2',
      [scope, key, jobId],
    );
  }

  /** Gives the key back when the create it guarded failed, so a retry can succeed. */
  async release(scope: string, key: string): Promise<void> {
    await sqlRows(
      this.dataSource,
      'DELETE FROM automl_training_idempotency_keys WHERE scope = $1 AND key = $2 AND job_id IS NULL',
      [scope, key],
    );
  }

  /** The job of a key whose first request is still being served, once it has one. */
  async waitForJob(scope: string, key: string, timeoutMs: number): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const [row] = await sqlRows<{ job_id: string | null }>(
        this.dataSource,
        'SELECT job_id FROM automl_training_idempotency_keys WHERE scope = $1 AND key = $2',
        [scope, key],
      );
      if (!row) return null;
      if (row.job_id) return row.job_id;
      await new Promise((resolve) => setTimeout(resolve, WAIT_STEP_MS));
    }
    return null;
  }

  async deleteExpired(): Promise<number> {
    try {
      const rows = await sqlRows(
        this.dataSource,
        'DELETE FROM automl_training_idempotency_keys WHERE expires_at < clock_timestamp() RETURNING key',
        [],
      );
      return rows.length;
    } catch (error) {
      this.logger.warn(`Expired idempotency keys not deleted: ${(error as Error).message}`);
      return 0;
    }
  }
}
