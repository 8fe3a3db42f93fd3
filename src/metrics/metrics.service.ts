import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DataSource } from 'typeorm';

export type WritebackResult = 'advanced' | 'repeated' | 'filled' | 'refused' | 'not_found';
export type AirflowOutcome = 'ok' | 'refused' | 'unavailable';
/** Why a request failed authentication: no credential, a wrong PSK, a bad bearer token, or over the failure limit (429). */
export type AuthFailureReason = 'missing' | 'invalid_psk' | 'invalid_token' | 'limited';

/**
 * Prometheus metrics of one app instance, in its own registry (a second app
 * in the same process must not collide). Job counts and the breaker state
 * are read at scrape time.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private breakerOpen: () => boolean = () => false;

  private readonly requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route template and status.',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });

  private readonly latency = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by method, route template and status.',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  private readonly writebacks = new Counter({
    name: 'automl_writebacks_total',
    help: 'DAG status writebacks by result.',
    labelNames: ['result'],
    registers: [this.registry],
  });

  private readonly reconcileBatch = new Histogram({
    name: 'automl_reconcile_batch_size',
    help: 'Non-terminal jobs reconciled against Airflow in one batch request.',
    buckets: [1, 5, 10, 50, 100, 250, 500, 1000],
    registers: [this.registry],
  });

  private readonly airflowCalls = new Histogram({
    name: 'automl_airflow_request_duration_seconds',
    help: 'Airflow API calls by operation and outcome (ok, refused = 4xx, unavailable = timeout/5xx/open breaker).',
    labelNames: ['operation', 'outcome'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    registers: [this.registry],
  });

  private readonly openStreams = new Gauge({
    name: 'automl_event_streams',
    help: 'Event streams (GET /jobs/events) open on this replica.',
    registers: [this.registry],
  });

  private readonly eventsSent = new Counter({
    name: 'automl_events_sent_total',
    help: 'Transition events written to event streams (replayed or live).',
    labelNames: ['kind'],
    registers: [this.registry],
  });

  private readonly streamsDropped = new Counter({
    name: 'automl_event_streams_dropped_total',
    help: 'Event streams closed by the service: slow consumers and shutdown.',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  private readonly authFailures = new Counter({
    name: 'automl_auth_failures_total',
    help: 'Requests refused for their credential, by reason: missing, invalid_psk, invalid_token (401) or limited (429).',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  constructor(@InjectDataSource() dataSource: DataSource) {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'automl_jobs',
      help: 'Live (not deleted) training jobs by status.',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const rows: { status: string; count: number }[] = await dataSource
          .query(
            'SELECT status, count(*)::int AS count FROM automl_training_jobs WHERE deleted_at IS NULL GROUP BY status',
          )
          .catch(() => []);
        for (const row of rows) this.set({ status: row.status }, row.count);
      },
    });
    const breakerOpen = () => this.breakerOpen();
    new Gauge({
      name: 'automl_airflow_circuit_open',
      help: '1 while the Airflow circuit breaker is open (failing fast), else 0.',
      registers: [this.registry],
      collect() {
        this.set(breakerOpen() ? 1 : 0);
      },
    });
  }

  watchBreaker(isOpen: () => boolean): void {
    this.breakerOpen = isOpen;
  }

  writeback(result: WritebackResult): void {
    this.writebacks.inc({ result });
  }

  authFailure(reason: AuthFailureReason): void {
    this.authFailures.inc({ reason });
  }

  reconcileBatchSize(size: number): void {
    this.reconcileBatch.observe(size);
  }

  streamOpened(): void {
    this.openStreams.inc();
  }

  streamClosed(): void {
    this.openStreams.dec();
  }

  streamDropped(reason: 'slow_consumer' | 'shutdown'): void {
    this.streamsDropped.inc({ reason });
  }

  eventsWritten(kind: 'live' | 'replay', count: number): void {
    this.eventsSent.inc({ kind }, count);
  }

  airflowCall(operation: string, outcome: AirflowOutcome, seconds: number): void {
    this.airflowCalls.observe({ operation, outcome }, seconds);
  }

  /** One finished HTTP request. */
  httpRequest(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.requests.inc(labels);
    this.latency.observe(labels, seconds);
  }
}
