#!/usr/bin/env node
// The gateway's composition root: reads config, connects to Redis, listens, drains on SIGTERM.
import { AccessTokenVerifier } from '@parley/auth';
import { RedisBus } from '@parley/bus';
import { Redis } from 'ioredis';
import pino from 'pino';
import { GatewayConfigError, loadGatewayConfig } from './config';
import { Gateway } from './gateway';
import { GatewayMetrics } from './metrics';
import { RedisPresence } from './redis-presence';

/** A URL without its credentials, fit for a log line. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '<unparseable url>';
  }
}

async function main(): Promise<void> {
  const config = loadGatewayConfig(process.env);
  const logger = pino({ level: config.logLevel, base: { service: 'gateway', nodeId: config.nodeId } });

  // Commands fail fast during an outage instead of queueing without bound. The commands
  // of one loop turn (presence claims of sockets connecting together) share one write.
  const redis = new Redis(config.redisUrl, {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    connectionName: `parley-gw-${config.nodeId}`,
  });
  const subscriber = new Redis(config.redisUrl, { connectionName: `parley-gw-sub-${config.nodeId}` });
  for (const [name, client] of [
    ['redis', redis],
    ['redis-subscriber', subscriber],
  ] as const) {
    client.on('error', (error) => logger.warn({ err: error, client: name }, 'redis error'));
  }
  // Start only once Redis answers, so the first sockets get working subscriptions; a
  // supervisor restarts us if it never does.
  await Promise.all(
    [redis, subscriber].map(
      (client) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`Redis not ready after 15 s at ${redactUrl(config.redisUrl)}`)), 15_000);
          client.once('ready', () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    ),
  );

  const bus = new RedisBus({
    publisher: redis,
    subscriber,
    prefix: config.busPrefix,
    onHandlerError: (error) => logger.error({ err: error }, 'bus handler failed'),
  });
  const metrics = new GatewayMetrics();
  const presence = new RedisPresence(
    redis,
    bus,
    { prefix: config.busPrefix, nodeId: config.nodeId, ttlMs: config.presenceTtlMs },
    logger,
    metrics,
  );
  const gateway = new Gateway({
    options: config,
    bus,
    presence,
    metrics,
    verifier: new AccessTokenVerifier(new URL(config.jwksUrl), { issuer: config.issuer, audience: config.audience }),
    logger,
    readinessChecks: { redis: () => redis.ping() },
  });
  const { port } = await gateway.listen(config.port, config.host);
  logger.info({ port }, 'gateway listening');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    await gateway.drain();
    await gateway.close();
    await Promise.allSettled([bus.close(), redis.quit()]);
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof GatewayConfigError) {
    process.stderr.write(`parley gateway: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`parley gateway failed to start: ${String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
