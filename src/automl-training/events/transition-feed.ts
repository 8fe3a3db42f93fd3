import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { AsyncResource } from 'node:async_hooks';
import { TrainingJobRepository, TransitionEventRow } from '../training-job.repository';
import { TransitionNotifications } from './transition-notifications';

/** Transitions read per query. */
const PAGE_SIZE = 500;
/** Reads start at most this often, so a burst of commits becomes one read and one write per stream. */
const MIN_READ_INTERVAL_MS = 25;
/** A read also runs this often without any notification: a lost NOTIFY delays an event, never loses it. */
const POLL_INTERVAL_MS = 2_000;
/**
 * How long a hole in the ids is waited for. Ids come from a sequence when a
 * row is inserted, and a transaction that took a lower id may commit after
 * one that took a higher id; events are held back until the hole fills so
 * streams stay in id order and Last-Event-ID resumes exactly. A hole left by
 * a rolled-back insert never fills: after this long it is skipped.
 */
const GAP_WAIT_MS = 500;

export type TransitionListener = (events: readonly TransitionEventRow[]) => void;

/**
 * Tails the transitions table in id order from a high-water mark and hands
 * each new batch to its listeners. NOTIFY only says "something committed";
 * the table is the source of truth, so every replica sees every transition
 * exactly once, whichever replica wrote it.
 */
@Injectable()
export class TransitionFeed implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(TransitionFeed.name);
  private readonly listeners = new Set<TransitionListener>();
  private highWater = 0;
  private starting: Promise<void> | null = null;
  private started = false;
  private stopped = false;
  private reading = false;
  private again = false;
  private lastReadAt = 0;
  private scheduled: NodeJS.Timeout | null = null;
  private poll: NodeJS.Timeout | null = null;
  private hole: { id: number; since: number } | null = null;
  private lastFailureLog = 0;
  /** Wakes run in the feed's own async context, never in the request that committed. */
  readonly wake: () => void = AsyncResource.bind(() => this.schedule());

  constructor(
    private readonly repository: TrainingJobRepository,
    private readonly notifications: TransitionNotifications,
  ) {}

  onApplicationBootstrap(): void {
    this.start().catch((error) => this.logger.warn(`Transition feed not started yet: ${(error as Error).message}`));
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    if (this.scheduled) clearTimeout(this.scheduled);
    if (this.poll) clearInterval(this.poll);
    this.listeners.clear();
  }

  /** Starts tailing (once); rejects while the database cannot be read. */
  start(): Promise<void> {
    if (this.started) return Promise.resolve();
    this.starting ??= this.begin().finally(() => {
      this.starting = null;
    });
    return this.starting;
  }

  /** The id up to which every transition has been handed to listeners. */
  get position(): number {
    return this.highWater;
  }

  /**
   * Adds a listener and returns the position it starts after: it receives
   * exactly the transitions with greater ids.
   */
  subscribe(listener: TransitionListener): number {
    this.listeners.add(listener);
    return this.highWater;
  }

  unsubscribe(listener: TransitionListener): void {
    this.listeners.delete(listener);
  }

  private async begin(): Promise<void> {
    const highWater = await this.repository.lastTransitionId();
    if (this.started || this.stopped) return;
    this.highWater = highWater;
    this.started = true;
    this.poll = setInterval(this.wake, POLL_INTERVAL_MS);
    this.poll.unref();
    this.notifications
      .listen(this.wake)
      .catch((error) => this.logger.warn(`LISTEN failed, polling every ${POLL_INTERVAL_MS} ms: ${(error as Error).message}`));
  }

  private schedule(): void {
    if (!this.started || this.stopped) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    const wait = Math.max(0, this.lastReadAt + MIN_READ_INTERVAL_MS - Date.now());
    this.scheduled = setTimeout(() => {
      this.scheduled = null;
      void this.read();
    }, wait);
    this.scheduled.unref();
  }

  private async read(): Promise<void> {
    this.reading = true;
    this.again = false;
    this.lastReadAt = Date.now();
    try {
      const rows = await this.repository.transitionsAfter(this.highWater, PAGE_SIZE);
      const ready = this.contiguous(rows);
      if (ready.length > 0) {
        this.highWater = ready[ready.length - 1].id;
        this.dispatch(ready);
      }
      // A full page, or a hole still awaited: read again soon.
      if (rows.length === PAGE_SIZE || ready.length < rows.length) this.again = true;
    } catch (error) {
      if (!this.stopped && Date.now() - this.lastFailureLog > 10_000) {
        this.lastFailureLog = Date.now();
        this.logger.warn(`Reading transitions failed: ${(error as Error).message}`);
      }
    } finally {
      this.reading = false;
      if (this.again) this.schedule();
    }
  }

  /** The rows that follow the high-water mark without a hole, or whose hole has waited long enough. */
  private contiguous(rows: TransitionEventRow[]): TransitionEventRow[] {
    let expected = this.highWater + 1;
    for (let index = 0; index < rows.length; index++) {
      const row = rows[index];
      if (row.id !== expected) {
        const now = Date.now();
        if (this.hole?.id !== expected) this.hole = { id: expected, since: now };
        if (now - this.hole.since < GAP_WAIT_MS) return rows.slice(0, index);
        this.hole = null;
      }
      expected = row.id + 1;
    }
    return rows;
  }

  private dispatch(events: readonly TransitionEventRow[]): void {
    for (const listener of this.listeners) {
      try {
        listener(events);
      } catch (error) {
        this.logger.error(`Transition listener failed: ${(error as Error).message}`);
      }
    }
  }
}
