import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The gateway's Prometheus metrics, on a registry of its own. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: 'parley_gateway_connections',
    help: 'Open client sockets.',
    registers: [this.registry],
  });
  readonly upgradesRejected = new Counter({
    name: 'parley_gateway_upgrades_rejected_total',
    help: 'Upgrades refused, by HTTP status and reason (path, draining, full, origin, token, jwks, session, message-service, per-user).',
    labelNames: ['status', 'reason'] as const,
    registers: [this.registry],
  });
  readonly framesIn = new Counter({
    name: 'parley_gateway_frames_in_total',
    help: 'Client frames received, by type (`invalid` for frames that failed validation).',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly framesOut = new Counter({
    name: 'parley_gateway_frames_out_total',
    help: 'Frames sent to clients, by type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly deliveries = new Counter({
    name: 'parley_gateway_event_deliveries_total',
    help: 'Bus events delivered to local sockets (one per socket).',
    registers: [this.registry],
  });
  readonly drops = new Counter({
    name: 'parley_gateway_event_drops_total',
    help: 'Events not delivered, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly closes = new Counter({
    name: 'parley_gateway_closes_total',
    help: 'Sockets closed by the gateway, by close code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly slowConsumerCloses = new Counter({
    name: 'parley_gateway_slow_consumer_closes_total',
    help: 'Sockets closed because their send buffer passed the limit.',
    registers: [this.registry],
  });
  readonly messageServiceLatency = new Histogram({
    name: 'parley_gateway_message_service_seconds',
    help: 'Latency of calls to the message service, by route and outcome.',
    labelNames: ['route', 'outcome'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly sendBatchSize = new Histogram({
    name: 'parley_gateway_send_batch_size',
    help: 'Sends per call to the message service: 1 at low load, more as sends queue behind the calls in flight.',
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [this.registry],
  });
  readonly redisLatency = new Histogram({
    name: 'parley_gateway_redis_seconds',
    help: 'Latency of Redis operations (publish, presence), by operation.',
    labelNames: ['operation'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly busResyncs = new Counter({
    name: 'parley_gateway_bus_resyncs_total',
    help: 'Times the bus reconnected and every socket was told to resync.',
    registers: [this.registry],
  });
  readonly redisErrors = new Counter({
    name: 'parley_gateway_redis_errors_total',
    help: 'Redis operations (publish, presence) that failed, by operation.',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });
  readonly sendAck = new Histogram({
    name: 'parley_gateway_send_ack_seconds',
    help: 'From a send frame read to its reply written (ack once stored, or error), by outcome.',
    labelNames: ['outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly fanout = new Histogram({
    name: 'parley_gateway_fanout_seconds',
    help: "From a new message's createdAt (PostgreSQL's clock, in the storing transaction) to this node writing it to its sockets.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly ready = new Gauge({
    name: 'parley_gateway_ready',
    help: 'Readiness as of this scrape (or the latest /readyz): 1 ready, 0 not (draining or a dependency down).',
    registers: [this.registry],
  });
  readonly draining = new Gauge({
    name: 'parley_gateway_draining',
    help: '1 once SIGTERM started the drain (sockets are being closed with 1012), else 0.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'parley_gateway_' });
  }

  /** Observes fan-out latency of a message stamped `createdAt` (ISO time); clock skew never goes below 0. */
  fanoutFrom(createdAt: string | undefined): void {
    if (createdAt === undefined) return;
    const stamped = Date.parse(createdAt);
    if (Number.isFinite(stamped)) this.fanout.observe(Math.max(0, Date.now() - stamped) / 1000);
  }

  /** Times an async Redis operation. */
  async timeRedis<T>(operation: string, work: () => Promise<T>): Promise<T> {
    const end = this.redisLatency.startTimer({ operation });
    try {
      return await work();
    } catch (error) {
      this.redisErrors.inc({ operation });
      throw error;
    } finally {
      end();
    }
  }
}
