#!/usr/bin/env node
// The message service's composition root: reads config, connects, listens, drains.
import { RedisBus } from '@parley/bus';
import { createDb } from '@parley/db';
import { Redis } from 'ioredis';
import pino from 'pino';
import { buildApp } from './app';
import { ConfigError, loadConfig } from './config';

async function main(): Promise<void> {
  const config = await loadConfig(process.env);
  const logger = pino({
    level: config.logLevel,
    base: { service: 'message' },
    redact: ['req.headers.authorization', 'req.headers.cookie'],
  });

  const db = createDb({
    connectionString: config.databaseUrl,
    maxConnections: config.databasePoolMax,
    applicationName: 'parley-message',
    onConnectionError: (error) => logger.warn({ err: error }, 'database connection failed'),
  });
  // Fail fast rather than queue: a command during an outage errors at once (publishes
  // are then dropped and counted; clients recover by sync). The publishes of one loop
  // turn (a stored batch's messages) share one write.
  const redisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 1, enableAutoPipelining: true } as const;
  const redis = new Redis(config.redisUrl, { ...redisOptions, connectionName: 'parley-message' });
  const subscriber = new Redis(config.redisUrl, { connectionName: 'parley-message-sub' });
  for (const [name, client] of [
    ['redis', redis],
    ['redis-subscriber', subscriber],
  ] as const) {
    client.on('error', (error) => logger.warn({ err: error, client: name }, 'redis error'));
  }
  const bus = new RedisBus({ publisher: redis, subscriber, prefix: config.busPrefix });

  let draining = false;
  const app = await buildApp({
    config,
    db: db.kysely,
    redis,
    bus,
    logger,
    isDraining: () => draining,
    // Half the pool at most: reads, sync and auth need connections while sends commit.
    sendBatchesInFlight: Math.max(1, Math.min(4, Math.floor(config.databasePoolMax / 2))),
  });
  await app.listen({ host: config.host, port: config.port });

  const shutdown = async (signal: string) => {
    if (draining) return;
    draining = true;
    logger.info({ signal }, 'draining: finishing in-flight requests');
    // Fastify stops accepting, waits for in-flight requests, then runs onClose hooks.
    await app.close();
    await Promise.allSettled([bus.close(), redis.quit(), db.close()]);
    logger.info('stopped');
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`parley message service: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`parley message service failed to start: ${String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
