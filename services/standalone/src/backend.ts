import { join } from 'node:path';
import { MemoryBus, RedisBus, type Bus } from '@parley/bus';
import { createDb, createEmbeddedDb, migrateToLatest, type Db } from '@parley/db';
import { MemoryPresence, RedisPresence, type GatewayMetrics, type Presence } from '@parley/gateway';
import { migrations } from '@parley/migrations';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ServerUrls, StandaloneConfig } from './config';

/** Where the data lives and how events travel: everything in this process, or real servers. */
export interface Backend {
  mode: 'embedded' | 'servers';
  db: Db;
  bus: Bus;
  /** Rate limits and readiness use it when there is one. */
  redis: Redis | null;
  /** Embedded: the database directory. Otherwise the PostgreSQL URL, without its password. */
  database: string;
  /** The Redis URL without its password, when events travel through Redis. */
  redisUrl?: string;
  presence(metrics: GatewayMetrics): Presence;
  close(): Promise<void>;
}

const REDIS_READY_TIMEOUT_MS = 15_000;

/** The directory of the embedded database, inside the data directory. */
export function embeddedDatabaseDir(dataDir: string): string {
  return join(dataDir, 'postgres');
}

/** A URL without its password, fit for a log line or a banner. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '<unparseable url>';
  }
}

/** Opens the backend the configuration names and brings its schema up to date. */
export async function openBackend(config: StandaloneConfig, logger: Logger): Promise<Backend> {
  const backend = config.servers ? await openServers(config, config.servers, logger) : await openEmbedded(config, logger);
  try {
    const { applied } = await migrateToLatest(backend.db.kysely, migrations);
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');
  } catch (error) {
    await backend.close();
    throw error;
  }
  return backend;
}

async function openEmbedded(config: StandaloneConfig, logger: Logger): Promise<Backend> {
  const directory = embeddedDatabaseDir(config.dataDir);
  const db = await createEmbeddedDb({ dataDir: directory });
  const bus = new MemoryBus((error) => logger.error({ err: error }, 'bus handler failed'));
  return {
    mode: 'embedded',
    db,
    bus,
    redis: null,
    database: directory,
    presence: () => new MemoryPresence(bus, logger),
    close: async () => {
      await bus.close();
      await db.close();
    },
  };
}

async function openServers(config: StandaloneConfig, servers: ServerUrls, logger: Logger): Promise<Backend> {
  // Commands fail fast during an outage instead of queueing without bound (as the services do).
  const redis = new Redis(servers.redisUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectionName: `parley-standalone-${config.nodeId}`,
  });
  const subscriber = new Redis(servers.redisUrl, { connectionName: `parley-standalone-sub-${config.nodeId}` });
  for (const [name, client] of [
    ['redis', redis],
    ['redis-subscriber', subscriber],
  ] as const) {
    client.on('error', (error) => logger.warn({ err: error, client: name }, 'redis error'));
  }
  const db = createDb({
    connectionString: servers.databaseUrl,
    maxConnections: config.databasePoolMax,
    applicationName: 'parley-standalone',
  });
  const close = async () => {
    await Promise.allSettled([subscriber.quit(), redis.quit(), db.close()]);
  };
  try {
    // Start once Redis answers, so the first sockets get working subscriptions.
    await Promise.all([redis, subscriber].map((client) => ready(client, servers.redisUrl)));
  } catch (error) {
    redis.disconnect();
    subscriber.disconnect();
    await db.close();
    throw error;
  }
  const bus = new RedisBus({
    publisher: redis,
    subscriber,
    prefix: config.busPrefix,
    onHandlerError: (error) => logger.error({ err: error }, 'bus handler failed'),
  });
  return {
    mode: 'servers',
    db,
    bus,
    redis,
    database: redactUrl(servers.databaseUrl),
    redisUrl: redactUrl(servers.redisUrl),
    presence: (metrics) =>
      new RedisPresence(
        redis,
        bus,
        { prefix: config.busPrefix, nodeId: config.nodeId, ttlMs: config.presenceTtlMs },
        logger,
        metrics,
      ),
    close,
  };
}

function ready(client: Redis, url: string): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`Redis not ready after ${REDIS_READY_TIMEOUT_MS / 1000} s at ${redactUrl(url)}`)),
      REDIS_READY_TIMEOUT_MS,
    );
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
