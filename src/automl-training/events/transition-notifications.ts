import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Client, Notification } from 'pg';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { sqlRows } from '../../database/sql';
import { TransitionCommits } from '../persistence/transition-commits';

/** Channel on which replicas say "a transition committed". */
export const TRANSITIONS_CHANNEL = 'automl_training_job_transitions';

/**
 * Commits within this window share one NOTIFY. PostgreSQL serialises the
 * commits of every transaction that notifies (a database-wide lock held
 * through the commit's WAL flush), so notifying from each writeback's own
 * transaction cost about a fifth of writeback throughput; one NOTIFY per
 * window from a separate, write-free statement costs nothing measurable.
 */
const SIGNAL_WINDOW_MS = 20;

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30_000;

interface NotifyingClient {
  on(event: 'notification', listener: (message: Notification) => void): unknown;
  query(text: string): Promise<unknown>;
  release(): void;
}

interface PgPool {
  on(event: 'connect', listener: (client: NotifyingClient) => void): unknown;
  connect(): Promise<NotifyingClient>;
}

/**
 * Tells every replica, through PostgreSQL LISTEN/NOTIFY, that a status
 * transition committed, and calls back on each such signal.
 *
 * The job repository reports each transition it commits (`committed`, as its TransitionCommits): the local
 * listener wakes at once, and the other replicas get one NOTIFY per
 * SIGNAL_WINDOW_MS. A signal carries no data: listeners read the transitions
 * table, and poll it too, so a lost signal delays an event, never loses it.
 *
 * On PostgreSQL a dedicated connection LISTENs, and reconnects with backoff
 * when it is lost; every (re)connection also wakes the listener, which then
 * reads whatever it missed. Embedded PGlite has a single session that every
 * socket shares, and it hands a notification to whichever connection ran
 * the statement, so there the session LISTENs and the handler sits on the
 * pool's connections.
 */
@Injectable()
export class TransitionNotifications implements TransitionCommits, OnApplicationShutdown {
  private readonly logger = new Logger(TransitionNotifications.name);
  private onWake: (() => void) | null = null;
  private client: Client | null = null;
  private reconnect: NodeJS.Timeout | null = null;
  private backoffMs = RECONNECT_MIN_MS;
  private stopped = false;
  private signalling: NodeJS.Timeout | null = null;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Starts listening; `onWake` runs on every notification and after every (re)connection. */
  async listen(onWake: () => void): Promise<void> {
    this.onWake = onWake;
    if (this.config.database.kind === 'postgres') await this.connect(this.config.database.url);
    else await this.listenOnPool();
  }

  /** A transition committed here: wake the local listener now and signal the other replicas (coalesced). */
  committed(): void {
    this.onWake?.();
    if (this.signalling || this.stopped) return;
    this.signalling = setTimeout(() => {
      this.signalling = null;
      sqlRows(this.dataSource, 'SELECT pg_notify($1, $2)', [TRANSITIONS_CHANNEL, ''], 'transitions_notify').catch(
        // The listeners' poll picks the transition up: a failed signal only delays it.
        () => undefined,
      );
    }, SIGNAL_WINDOW_MS);
    this.signalling.unref();
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    if (this.signalling) clearTimeout(this.signalling);
    if (this.reconnect) clearTimeout(this.reconnect);
    const client = this.client;
    this.client = null;
    void client?.end().catch(() => undefined);
  }

  private notify = (message: Notification): void => {
    if (message.channel === TRANSITIONS_CHANNEL) this.onWake?.();
  };

  private async connect(url: string): Promise<void> {
    if (this.stopped) return;
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000, keepAlive: true });
    client.on('notification', this.notify);
    client.on('error', (error) => this.lost(client, url, error));
    client.on('end', () => this.lost(client, url, null));
    try {
      await client.connect();
      await client.query(`LISTEN ${TRANSITIONS_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      if (this.client === null && !this.stopped) this.retry(url, error as Error);
      throw error;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.backoffMs = RECONNECT_MIN_MS;
    this.onWake?.();
  }

  private lost(client: Client, url: string, error: Error | null): void {
    if (this.client !== client || this.stopped) return;
    this.client = null;
    this.retry(url, error ?? new Error('connection ended'));
  }

  private retry(url: string, error: Error): void {
    if (this.reconnect || this.stopped) return;
    this.logger.warn(`Transition notifications lost (${error.message}); reconnecting in ${this.backoffMs} ms`);
    this.reconnect = setTimeout(() => {
      this.reconnect = null;
      this.connect(url).catch(() => undefined);
    }, this.backoffMs);
    this.reconnect.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, RECONNECT_MAX_MS);
  }

  private async listenOnPool(): Promise<void> {
    const pool = (this.dataSource.driver as unknown as { master?: PgPool }).master;
    if (!pool) throw new Error('The PostgreSQL driver has no pool');
    const watched = new WeakSet<NotifyingClient>();
    const watch = (client: NotifyingClient): void => {
      if (watched.has(client)) return;
      watched.add(client);
      client.on('notification', this.notify);
    };
    pool.on('connect', watch);
    const client = await pool.connect();
    try {
      watch(client);
      await client.query(`LISTEN ${TRANSITIONS_CHANNEL}`);
    } finally {
      client.release();
    }
  }
}
