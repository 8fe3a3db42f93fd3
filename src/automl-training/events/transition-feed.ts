import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { AsyncResource } from 'node:async_hooks';
import { TrainingJobTransitionRepository, TransitionEventRow } from '../persistence/training-job-transition.repository';
import { TransitionNotifications } from './transition-notifications';

/** Transitions read per query. */
const PAGE_SIZE = 500;
/**
 * Reads start at most this often, so a burst of commits becomes one read and
 * one write per stream. Measured with 200 streams: at 25 ms the writes to the
 * streams cost about 0.3 ms of CPU per writeback, at 50 ms hardly any.
 */
const MIN_READ_INTERVAL_MS = 50;
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
 * exactly once, whichever replica wrote it. It reads only while someone
 * holds it (an open stream): an instance serving no stream costs nothing,
 * and the first holder brings it up to the newest transition.
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
  private holders = 0;
  private catchingUp: Promise<void> | null = null;
  private lastFailureLog = 0;
  /** Wakes run in the feed's own async context, never in the request that committed. */
  readonly wake: () => void = AsyncResource.bind(() => this.schedule());

  constructor(
    private readonly repository: TrainingJobTransitionRepository,
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

  subscribe(listener: TransitionListener): void {
    this.listeners.add(listener);
  }

  unsubscribe(listener: TransitionListener): void {
    this.listeners.delete(listener);
  }

  /**
   * Keeps the feed reading for one more consumer; rejects while the database
   * cannot be read. Once it resolves, `position` is where the consumer starts:
   * listeners get exactly the transitions with greater ids.
   */
  async acquire(): Promise<void> {
    await this.start();
    this.holders++;
    try {
      if (this.holders === 1) this.catchingUp ??= this.catchUp().finally(() => (this.catchingUp = null));
      await this.catchingUp;
    } catch (error) {
      this.holders--;
      throw error;
    }
  }

  release(): void {
    this.holders = Math.max(0, this.holders - 1);
  }

  /** Skips what committed while nobody held the feed. */
  private async catchUp(): Promise<void> {
    const newest = await this.repository.lastTransitionId();
    if (newest > this.highWater) {
      this.highWater = newest;
      this.hole = null;
    }
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
      .catch((error) =>
        this.logger.warn(`LISTEN failed, polling every ${POLL_INTERVAL_MS} ms: ${(error as Error).message}`),
      );
  }

  private schedule(): void {
    if (!this.started || this.stopped || this.holders === 0) return;
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
      const from = this.highWater;
      const rows = await this.repository.transitionsAfter(from, PAGE_SIZE);
      // Caught up (or released) meanwhile: these rows start at a stale point; read again from the new one.
      if (this.highWater !== from || this.holders === 0) {
        this.again = true;
        return;
      }
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
