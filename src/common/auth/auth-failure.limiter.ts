import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { sqlRows } from '../../database/sql';

/** The limit counts failures per client address in fixed windows of this length, started by a window's first failure. */
export const FAILURE_WINDOW_SECONDS = 60;
/** Clients written by one statement at most (a flood from many addresses takes several statements, one at a time). */
const MAX_CLIENTS_PER_WRITE = 500;
/** Locally remembered limited clients beyond which ended entries are swept. */
const MAX_BLOCKED_ENTRIES = 10_000;
const ERROR_LOG_EVERY_MS = 10_000;
/** A failure the database has not counted by then is answered 401 anyway (it is still counted when the write lands). */
const ANSWER_DEADLINE_MS = 5_000;

export type FailureVerdict = { limited: false } | { limited: true; retryAfterSeconds: number };

type Waiter = (verdict: FailureVerdict) => void;

/**
 * Adds each client's failures of this batch to its window, or starts a new
 * window when the stored one has ended. Rows are taken in client order so two
 * replicas writing overlapping batches lock them in the same order.
 */
const RECORD_FAILURES = `
  INSERT INTO automl_training_auth_failures AS f (client, window_started_at, failures)
  SELECT client, now(), n FROM unnest($1::text[], $2::int[]) AS batch(client, n) ORDER BY client
  ON CONFLICT (client) DO UPDATE SET
    window_started_at = CASE WHEN f.window_started_at <= now() - interval '${FAILURE_WINDOW_SECONDS} seconds'
                             THEN excluded.window_started_at ELSE f.window_started_at END,
    failures = CASE WHEN f.window_started_at <= now() - interval '${FAILURE_WINDOW_SECONDS} seconds'
                    THEN excluded.failures ELSE f.failures + excluded.failures END
  RETURNING client, failures,
    ceil(extract(epoch FROM f.window_started_at + interval '${FAILURE_WINDOW_SECONDS} seconds' - now()) * 1000)::int AS ms_left`;

const DELETE_ENDED = `DELETE FROM automl_training_auth_failures WHERE window_started_at <= now() - interval '${FAILURE_WINDOW_SECONDS} seconds'`;

/**
 * Failed authentications per client address and minute, counted in
 * PostgreSQL so every replica shares one count. Only failures touch the
 * database: a valid credential never reaches this class.
 *
 * A flood of failures cannot take the pool from valid requests: failures are
 * queued per client and written by one statement at a time (one connection),
 * each carrying every failure that arrived while the previous one ran. A
 * client found over the limit is remembered here until its window ends, so
 * its further failures are refused without any database write.
 */
@Injectable()
export class AuthFailureLimiter {
  private readonly logger = new Logger(AuthFailureLimiter.name);
  private readonly limit: number;
  private pending = new Map<string, Waiter[]>();
  private writing = false;
  /** Clients over the limit, until when (Date.now() milliseconds). */
  private readonly blocked = new Map<string, number>();
  private lastCleanup = 0;
  private lastErrorLog = 0;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.limit = config.auth.failureLimitPerMinute;
  }

  /** Counts one failed authentication of `client`; limited once the client's failures in its window pass the limit. */
  recordFailure(client: string): Promise<FailureVerdict> {
    const until = this.blocked.get(client);
    if (until !== undefined) {
      const msLeft = until - Date.now();
      if (msLeft > 0) return Promise.resolve({ limited: true, retryAfterSeconds: Math.ceil(msLeft / 1000) });
      this.blocked.delete(client);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.warn('A failed authentication was answered before the database counted it (slow database)');
        resolve({ limited: false });
      }, ANSWER_DEADLINE_MS);
      const waiter: Waiter = (verdict) => {
        clearTimeout(timer);
        resolve(verdict);
      };
      const waiters = this.pending.get(client);
      if (waiters) waiters.push(waiter);
      else this.pending.set(client, [waiter]);
      if (!this.writing) void this.writeAll();
    });
  }

  private async writeAll(): Promise<void> {
    this.writing = true;
    try {
      while (this.pending.size > 0) await this.write(this.takeBatch());
    } finally {
      this.writing = false;
    }
  }

  private takeBatch(): Map<string, Waiter[]> {
    if (this.pending.size <= MAX_CLIENTS_PER_WRITE) {
      const batch = this.pending;
      this.pending = new Map();
      return batch;
    }
    const batch = new Map<string, Waiter[]>();
    for (const [client, waiters] of this.pending) {
      if (batch.size === MAX_CLIENTS_PER_WRITE) break;
      batch.set(client, waiters);
      this.pending.delete(client);
    }
    return batch;
  }

  private async write(batch: Map<string, Waiter[]>): Promise<void> {
    try {
      const clients = [...batch.keys()];
      const rows = await sqlRows<{ client: string; failures: number; ms_left: number }>(
        this.dataSource,
        RECORD_FAILURES,
        [clients, clients.map((client) => batch.get(client)!.length)],
        'auth_failures_record',
      );
      for (const row of rows) {
        const waiters = batch.get(row.client);
        if (!waiters) continue;
        batch.delete(row.client);
        const msLeft = Math.max(1, row.ms_left);
        if (row.failures > this.limit) this.block(row.client, msLeft);
        const before = row.failures - waiters.length;
        const limited: FailureVerdict = { limited: true, retryAfterSeconds: Math.ceil(msLeft / 1000) };
        waiters.forEach((resolve, index) => resolve(before + index + 1 > this.limit ? limited : { limited: false }));
      }
    } catch (error) {
      this.warn(`Failed authentications not counted: ${(error as Error).message}`);
    } finally {
      // Failures the database did not count are refused as plain failures (401), never let through.
      for (const waiters of batch.values()) for (const resolve of waiters) resolve({ limited: false });
    }
    await this.deleteEndedWindows().catch((error) =>
      this.warn(`Ended failure windows not deleted: ${(error as Error).message}`),
    );
  }

  private block(client: string, msLeft: number): void {
    const now = Date.now();
    if (this.blocked.size >= MAX_BLOCKED_ENTRIES) {
      for (const [other, until] of this.blocked) if (until <= now) this.blocked.delete(other);
    }
    if (this.blocked.size < MAX_BLOCKED_ENTRIES) this.blocked.set(client, now + msLeft);
  }

  /** Rows of ended windows, at most once per window length, on the failure path only. */
  private async deleteEndedWindows(): Promise<void> {
    const now = Date.now();
    if (now - this.lastCleanup < FAILURE_WINDOW_SECONDS * 1000) return;
    this.lastCleanup = now;
    await sqlRows(this.dataSource, DELETE_ENDED, []);
  }

  private warn(message: string): void {
    const now = Date.now();
    if (now - this.lastErrorLog < ERROR_LOG_EVERY_MS) return;
    this.lastErrorLog = now;
    this.logger.warn(message);
  }
}
