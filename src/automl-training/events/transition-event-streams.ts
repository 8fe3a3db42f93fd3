import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Response } from 'express';
import { once } from 'node:events';
import { AsyncResource } from 'node:async_hooks';
import { ownerScope, Principal } from '../../common/auth/principal';
import { APP_CONFIG, AppConfig } from '../../config/app.config';
import { MetricsService } from '../../metrics/metrics.service';
import { TooManyStreamsError } from '../domain/automl-training.errors';
import { mlflowLinks, MlflowLinks } from '../domain/mlflow-links';
import {
  CompletionResult,
  TrainingJobTransitionRepository,
  TransitionEventRow,
  TransitionFilter,
} from '../persistence/training-job-transition.repository';
import { TransitionFeed } from './transition-feed';

/** Transitions read per replay query. */
const REPLAY_PAGE = 500;
/** Live events held for a stream still replaying; a stream that falls further behind is dropped. */
const MAX_HELD_EVENTS = 10_000;
/** A replaying consumer that does not drain its socket within this long is dropped. */
const REPLAY_DRAIN_TIMEOUT_MS = 10_000;
/** setTimeout's longest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Reconnection delay suggested to EventSource clients. */
const RETRY_MS = 3_000;

export interface StreamRequest {
  principal: Principal;
  jobIds?: string[];
  domain?: string;
  owner?: string;
  /** The Last-Event-ID the client resumes after, if any. */
  lastEventId: number | null;
}

interface OpenStream {
  response: Response;
  credential: string;
  filter: { jobIds: Set<string> | null; domain: string | null; owner: string | null; none: boolean };
  /** Only events with greater ids are written. */
  after: number;
  /** Live events arriving while the stream replays, written once it has caught up. */
  held: TransitionEventRow[] | null;
  closed: boolean;
  /** Ends the stream when the bearer token it was opened with expires. */
  expiry: NodeJS.Timeout | null;
}

/**
 * A completion's result in the job response's shapes (timestamps as ISO 8601
 * with milliseconds), with the job's MLflow links at `mlflowUiUrl`.
 */
function completionFields(result: CompletionResult, mlflowUiUrl: string | null): CompletionResult & MlflowLinks {
  const iso = (value: string | null) => (value === null ? null : new Date(value).toISOString());
  const links = mlflowLinks(mlflowUiUrl, {
    mlflowRunId: result.mlflow_run_id,
    registeredModelName: result.registered_model_name,
    modelVersion: result.model_version,
  });
  return { ...result, started_at: iso(result.started_at), finished_at: iso(result.finished_at), ...links };
}

/** One SSE frame; the data line is a single line of JSON. `mlflowUiUrl` is MLFLOW_UI_URL (or null). */
export function eventFrame(event: TransitionEventRow, mlflowUiUrl: string | null): string {
  const data = JSON.stringify({
    job_id: event.jobId,
    from: event.from,
    to: event.to,
    status: event.to,
    error_message: event.errorMessage,
    updated_at: event.at.toISOString(),
    ...(event.result ? completionFields(event.result, mlflowUiUrl) : {}),
  });
  return `id: ${event.id}\ndata: ${data}\n\n`;
}

/**
 * Serves GET /jobs/events: Server-Sent Events of status transitions from the
 * transition feed, filtered per stream, resumable with Last-Event-ID (missed
 * transitions are replayed from the table), with heartbeats. Streams are
 * capped in total and per credential; a consumer that stops reading is
 * dropped once its backlog passes STREAM_MAX_BUFFER_BYTES instead of being
 * buffered without end (it reconnects with Last-Event-ID and loses nothing).
 * A stream opened with a bearer token ends when the token expires.
 */
@Injectable()
export class TransitionEventStreams implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(TransitionEventStreams.name);
  private readonly streams = new Set<OpenStream>();
  private readonly perCredential = new Map<string, number>();
  /** Streams open or opening (a slot is taken before the database is asked). */
  private slots = 0;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly deliver = AsyncResource.bind((events: readonly TransitionEventRow[]) => this.fanOut(events));
  private readonly frame = (event: TransitionEventRow): string => eventFrame(event, this.config.mlflow.uiUrl);

  constructor(
    private readonly feed: TransitionFeed,
    private readonly repository: TrainingJobTransitionRepository,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    feed.subscribe(this.deliver);
  }

  onApplicationBootstrap(): void {
    this.heartbeat = setInterval(() => this.beat(), this.config.events.heartbeatMs);
    this.heartbeat.unref();
  }

  beforeApplicationShutdown(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const stream of [...this.streams]) {
      // A clean end: EventSource reconnects (to another replica) with its Last-Event-ID.
      this.metrics.streamDropped('shutdown');
      stream.response.end();
      this.close(stream);
    }
  }

  /**
   * Opens a stream on `response`. Throws (before anything is written) when a
   * cap is reached or the database cannot be read; afterwards the stream
   * lives until the client goes away, it is dropped, or the service stops.
   */
  async open(request: StreamRequest, response: Response): Promise<void> {
    const credential = request.principal.kind === 'psk' ? 'psk' : `keycloak:${request.principal.subject}`;
    this.reserve(credential);
    // The client may hang up while the database is asked below.
    let gone = false;
    const hungUp = () => (gone = true);
    response.once('close', hungUp);
    let stream: OpenStream;
    let resumeAfter = request.lastEventId;
    try {
      await this.feed.acquire();
    } catch (error) {
      this.release(credential);
      throw error;
    }
    try {
      // An id this database never issued (one from before a restore, say) cannot be resumed after: start live.
      if (
        resumeAfter !== null &&
        resumeAfter > this.feed.position &&
        resumeAfter > (await this.repository.lastTransitionId())
      ) {
        resumeAfter = null;
      }
      stream = {
        response,
        credential,
        filter: streamFilter(request),
        after: this.feed.position,
        held: resumeAfter === null ? null : [],
        closed: false,
        expiry: null,
      };
    } catch (error) {
      this.feed.release();
      this.release(credential);
      throw error;
    }
    response.off('close', hungUp);
    if (gone) {
      this.feed.release();
      this.release(credential);
      return;
    }
    const replayUpTo = stream.after;
    this.streams.add(stream);
    this.metrics.streamOpened();
    response.on('close', () => this.close(stream));
    const { principal } = request;
    if (principal.kind === 'keycloak' && principal.validUntil !== null) {
      // A stream lives no longer than its token: the client reconnects with a fresh one and Last-Event-ID.
      const left = Math.min(Math.max(principal.validUntil - Date.now(), 0), MAX_TIMER_MS);
      stream.expiry = setTimeout(() => {
        stream.response.end();
        this.close(stream);
      }, left);
      stream.expiry.unref();
    }
    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    response.write(`retry: ${RETRY_MS}\n: connected\n\n`);
    if (resumeAfter !== null) await this.replay(stream, resumeAfter, replayUpTo);
  }

  private reserve(credential: string): void {
    const { maxStreams, maxStreamsPerCredential } = this.config.events;
    if (this.slots >= maxStreams) {
      throw new TooManyStreamsError(`This instance already serves ${maxStreams} event streams; retry shortly`);
    }
    const open = this.perCredential.get(credential) ?? 0;
    if (open >= maxStreamsPerCredential) {
      throw new TooManyStreamsError(`At most ${maxStreamsPerCredential} event streams per credential; close one first`);
    }
    this.perCredential.set(credential, open + 1);
    this.slots++;
  }

  private release(credential: string): void {
    this.slots--;
    const open = (this.perCredential.get(credential) ?? 1) - 1;
    if (open > 0) this.perCredential.set(credential, open);
    else this.perCredential.delete(credential);
  }

  private close(stream: OpenStream): void {
    if (stream.closed) return;
    stream.closed = true;
    if (stream.expiry) clearTimeout(stream.expiry);
    this.streams.delete(stream);
    this.feed.release();
    this.release(stream.credential);
    this.metrics.streamClosed();
  }

  private drop(stream: OpenStream, why: string): void {
    if (stream.closed) return;
    this.logger.warn(`Dropping an event stream: ${why}`);
    this.metrics.streamDropped('slow_consumer');
    stream.response.destroy();
    this.close(stream);
  }

  /** Writes the transitions in (lastEventId, upTo] matching the stream, then whatever arrived meanwhile. */
  private async replay(stream: OpenStream, lastEventId: number, upTo: number): Promise<void> {
    const filter: TransitionFilter = {
      jobIds: stream.filter.jobIds ? [...stream.filter.jobIds] : undefined,
      domain: stream.filter.domain ?? undefined,
      owner: stream.filter.owner ?? undefined,
    };
    try {
      for (let cursor = lastEventId; !stream.filter.none && cursor < upTo && !stream.closed;) {
        const page = await this.repository.transitionsAfter(cursor, REPLAY_PAGE, filter, upTo);
        if (page.length === 0) break;
        cursor = page[page.length - 1].id;
        this.metrics.eventsWritten('replay', page.length);
        if (!stream.response.write(page.map(this.frame).join(''))) await this.drained(stream);
      }
    } catch (error) {
      if (!stream.closed) {
        this.logger.warn(`Event replay failed: ${(error as Error).message}`);
        stream.response.destroy();
        this.close(stream);
      }
      return;
    }
    const held = stream.held ?? [];
    stream.held = null;
    stream.after = Math.max(upTo, lastEventId);
    const late = held.filter((event) => event.id > stream.after);
    this.write(stream, late.map(this.frame).join(''), late.length);
  }

  private async drained(stream: OpenStream): Promise<void> {
    const timeout = AbortSignal.timeout(REPLAY_DRAIN_TIMEOUT_MS);
    try {
      await once(stream.response, 'drain', { signal: timeout });
    } catch {
      this.drop(stream, `no drain within ${REPLAY_DRAIN_TIMEOUT_MS} ms during replay`);
    }
  }

  private fanOut(events: readonly TransitionEventRow[]): void {
    const frames = new Map<TransitionEventRow, string>();
    const frameOf = (event: TransitionEventRow): string => {
      let frame = frames.get(event);
      if (frame === undefined) frames.set(event, (frame = this.frame(event)));
      return frame;
    };
    // Streams that take the whole batch (the unfiltered ones) share one encoded chunk.
    let whole: Buffer | null = null;
    for (const stream of this.streams) {
      const matching = events.filter((event) => event.id > stream.after && matches(stream.filter, event));
      if (matching.length === 0) continue;
      if (stream.held) {
        stream.held.push(...matching);
        if (stream.held.length > MAX_HELD_EVENTS)
          this.drop(stream, `more than ${MAX_HELD_EVENTS} events behind while replaying`);
        continue;
      }
      const chunk =
        matching.length === events.length
          ? (whole ??= Buffer.from(events.map(frameOf).join(''), 'utf8'))
          : matching.map(frameOf).join('');
      this.write(stream, chunk, matching.length);
    }
  }

  /**
   * Writes without waiting. A consumer that has not taken what it was sent
   * before (its unsent backlog is past the limit) is dropped instead, so a
   * stream holds at most the limit plus one chunk.
   */
  private write(stream: OpenStream, chunk: string | Buffer, events: number): void {
    if (chunk.length === 0 || stream.closed) return;
    if (stream.response.writableLength > this.config.events.maxBufferedBytes) {
      this.drop(stream, `more than ${this.config.events.maxBufferedBytes} bytes unsent`);
      return;
    }
    stream.response.write(chunk);
    if (events > 0) this.metrics.eventsWritten('live', events);
  }

  private beat(): void {
    for (const stream of this.streams) {
      if (!stream.held) this.write(stream, ': keep-alive\n\n', 0);
    }
  }
}
function streamFilter(request: StreamRequest): OpenStream['filter'] {
  const scope = ownerScope(request.principal);
  return {
    jobIds: request.jobIds && request.jobIds.length > 0 ? new Set(request.jobIds.map((id) => id.toLowerCase())) : null,
    domain: request.domain ?? null,
    owner: scope ?? request.owner ?? null,
    // A user confined to their own jobs asking for another owner's sees nothing, as in the listing.
    none: scope !== null && request.owner !== undefined && request.owner !== scope,
  };
}

function matches(filter: OpenStream['filter'], event: TransitionEventRow): boolean {
  if (filter.none) return false;
  if (filter.jobIds && !filter.jobIds.has(event.jobId)) return false;
  if (filter.domain !== null && event.domain !== filter.domain) return false;
  return filter.owner === null || event.owner === filter.owner;
}
