import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { PublisherMetrics } from '../domain/event-publisher';
import { databaseErrorKind } from '../repositories/database-errors';

/** The service's Prometheus metrics, on a registry of its own (never the global one). */
export class ServiceMetrics implements PublisherMetrics {
  readonly registry = new Registry();
  private readonly httpDuration = new Histogram({
    name: 'parley_http_request_duration_seconds',
    help: 'HTTP request latency by route and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly eventsPublished = new Counter({
    name: 'parley_bus_events_published_total',
    help: 'Events handed to the bus, by type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  private readonly eventsFailed = new Counter({
    name: 'parley_bus_publish_failures_total',
    help: 'Events the bus could not take (subscribers recover them through sync).',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  private readonly dbErrors = new Counter({
    name: 'parley_db_errors_total',
    help: 'Requests that failed on PostgreSQL: `unavailable` (unreachable, overloaded, pool or lock timeout) or `query` (any other SQLSTATE).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly messagesStored = new Counter({
    name: 'parley_messages_stored_total',
    help: 'Messages committed to PostgreSQL (retries that found the original are not counted).',
    registers: [this.registry],
  });
  readonly sendBatchSize = new Histogram({
    name: 'parley_send_batch_size',
    help: 'Sends stored per transaction (group commit): 1 at low load, more as concurrent sends queue up.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'parley_message_' });
  }

  published(type: string): void {
    this.eventsPublished.inc({ type });
  }

  failed(type: string): void {
    this.eventsFailed.inc({ type });
  }

  /** Times every request and serves the registry at GET /metrics. */
  install(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      this.httpDuration.observe(
        { method: request.method, route, status: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
    });
    app.addHook('onError', async (_request, _reply, error) => {
      const kind = databaseErrorKind(error);
      if (kind) this.dbErrors.inc({ kind });
    });
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
      reply.type(this.registry.contentType);
      return this.registry.metrics();
    });
  }
}
