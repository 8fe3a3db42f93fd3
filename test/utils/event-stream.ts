import { request as httpRequest, IncomingMessage, ClientRequest } from 'node:http';
import { createParser } from 'eventsource-parser';

export interface StreamEvent {
  id: number;
  data: Record<string, any>;
  /** ms since the stream opened */
  receivedAt: number;
}

/**
 * A Server-Sent Events client over plain node:http (frames parsed by
 * eventsource-parser), recording every event and comment it receives.
 */
export class EventStreamClient {
  readonly events: StreamEvent[] = [];
  readonly comments: string[] = [];
  /** Resolves when the server ends or drops the stream. */
  readonly ended: Promise<void>;
  private readonly opened = Date.now();
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly request: ClientRequest,
    readonly response: IncomingMessage,
  ) {
    const parser = createParser({
      onEvent: (event) => {
        this.events.push({ id: Number(event.id), data: JSON.parse(event.data), receivedAt: Date.now() - this.opened });
        this.notify();
      },
      onComment: (comment) => {
        this.comments.push(comment.trim());
        this.notify();
      },
    });
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => parser.feed(chunk));
    this.ended = new Promise((resolve) => {
      response.on('close', () => {
        this.notify();
        resolve();
      });
      response.on('error', () => resolve());
    });
  }

  /** Opens `url`; rejects with the status and body when the answer is not a 200 stream. */
  static open(url: string, headers: Record<string, string>): Promise<EventStreamClient> {
    return new Promise((resolve, reject) => {
      const request = httpRequest(
        url,
        { headers: { Accept: 'text/event-stream', ...headers }, agent: false },
        (response) => {
          if (response.statusCode !== 200) {
            let body = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (body += chunk));
            response.on('end', () => reject(new StreamRefused(response.statusCode ?? 0, response.headers, body)));
            return;
          }
          resolve(new EventStreamClient(request, response));
        },
      );
      request.on('error', reject);
      request.end();
    });
  }

  get lastEventId(): number | null {
    return this.events.at(-1)?.id ?? null;
  }

  /** Waits until `check` holds (re-checked on every event and comment). */
  async until(check: (client: EventStreamClient) => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`stream: ${what} not met within ${timeoutMs} ms (${this.events.length} events)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  untilEvents(count: number, timeoutMs: number): Promise<void> {
    return this.until((client) => client.events.length >= count, timeoutMs, `${count} events`);
  }

  close(): Promise<void> {
    this.request.destroy();
    return this.ended;
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

export class StreamRefused extends Error {
  constructor(
    readonly status: number,
    readonly headers: IncomingMessage['headers'],
    readonly body: string,
  ) {
    super(`stream refused: ${status} ${body}`);
  }
}
