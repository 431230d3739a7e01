import type { AddressInfo } from 'node:net';
import { AccessTokenVerifier, type SigningKey } from '@parley/auth';
import { Gateway, GatewayMetrics, type GatewayOptions } from '@parley/gateway';
import { buildApp, type AppConfig } from '@parley/message-service';
import type { FastifyPluginAsync } from 'fastify';
import pino, { type Logger } from 'pino';
import { openBackend } from './backend';
import type { StandaloneConfig } from './config';
import { loadOrCreateSigningKey } from './signing-key';
import { HIDDEN, webClientBuilt, webClientRoutes } from './web-client';

export interface StandaloneOptions {
  config: StandaloneConfig;
  /** Default: pino at the configured level. */
  logger?: Logger;
}

export interface RunningStandalone {
  /** Where people open it. */
  url: string;
  port: number;
  mode: 'embedded' | 'servers';
  /** Embedded: the database directory. Otherwise the PostgreSQL URL, without its password. */
  database: string;
  /** The Redis URL without its password, when events travel through Redis. */
  redisUrl?: string;
  webRoot: string;
  webClientBuilt: boolean;
  /** Drains the sockets (1012), then stops serving and closes the database. Idempotent. */
  stop(): Promise<void>;
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);
/** The gateway's calls to the message service never leave this process's port. */
const LOOPBACK_TIMEOUT_MS = 5000;

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** The gateway's way back to the message service: this very server, over loopback. */
function loopbackUrl(address: AddressInfo): string {
  if (address.address === '0.0.0.0') return `http://127.0.0.1:${address.port}`;
  if (address.address === '::') return `http://[::1]:${address.port}`;
  return `http://${urlHost(address.address)}:${address.port}`;
}

/** Origins a browser shows for this server's own pages: they may open the socket. */
function ownOrigins(host: string, port: number): string[] {
  const origins = [`http://localhost:${port}`, `http://127.0.0.1:${port}`, `http://[::1]:${port}`];
  if (!WILDCARD_HOSTS.has(host)) origins.push(`http://${urlHost(host)}:${port}`);
  return [...new Set(origins)];
}

function messageAppConfig(config: StandaloneConfig, signingKey: SigningKey): AppConfig {
  return {
    signingKey,
    jwks: { keys: [signingKey.publicJwk, ...config.previousKeys] },
    issuer: config.issuer,
    audience: config.audience,
    accessTokenTtlSeconds: config.accessTokenTtlSeconds,
    refreshTokenTtlSeconds: config.refreshTokenTtlSeconds,
    refreshReuseGraceSeconds: config.refreshReuseGraceSeconds,
    loginRateLimit: config.loginRateLimit,
    loginRateLimitPerIp: config.loginRateLimitPerIp,
    registerRateLimit: config.registerRateLimit,
    trustProxy: config.trustProxy,
    // The web client is same-origin; other origins are the configured extras only.
    corsOrigins: config.extraOrigins,
    bodyLimitBytes: config.bodyLimitBytes,
    busPrefix: config.busPrefix,
  };
}

function gatewayOptions(config: StandaloneConfig, address: AddressInfo): GatewayOptions {
  return {
    nodeId: config.nodeId,
    messageServiceUrl: loopbackUrl(address),
    allowedOrigins: [...ownOrigins(config.host, address.port), ...config.extraOrigins],
    maxFrameBytes: config.maxFrameBytes,
    rateLimitFramesPerSecond: config.rateLimitFramesPerSecond,
    sendBufferMaxBytes: config.sendBufferMaxBytes,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    drainWindowMs: config.drainWindowMs,
    messageServiceTimeoutMs: LOOPBACK_TIMEOUT_MS,
    maxConnections: config.maxConnections,
    maxConnectionsPerUser: config.maxConnectionsPerUser,
  };
}

/** The gateway's metrics (the API serves its own at /metrics) and the web client. */
function routesBesideTheApi(webRoot: string, metrics: GatewayMetrics): FastifyPluginAsync {
  return async (app) => {
    app.get('/metrics/gateway', { schema: HIDDEN }, async (_request, reply) =>
      reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
    );
    await app.register(webClientRoutes, { root: webRoot });
  };
}

/**
 * Parley in one process: the message service and a gateway on one port, over the same
 * code as the fleet. Embedded (PGlite in the data directory, an in-process bus) unless
 * the configuration names real servers. The web client is served beside the API.
 */
export async function startStandalone(options: StandaloneOptions): Promise<RunningStandalone> {
  const { config } = options;
  const logger =
    options.logger ??
    pino({
      level: config.logLevel,
      base: { service: 'standalone' },
      redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["sec-websocket-protocol"]'],
    });
  const backend = await openBackend(config, logger);
  try {
    // The embedded database is open (and its directory locked) before a key is made.
    const signingKey = config.signingKey ?? (await loadOrCreateSigningKey(config.dataDir));
    const appConfig = messageAppConfig(config, signingKey);
    const metrics = new GatewayMetrics();
    let stopping: Promise<void> | undefined;
    const app = await buildApp({
      config: appConfig,
      db: backend.db.kysely,
      redis: backend.redis,
      bus: backend.bus,
      logger,
      isDraining: () => stopping !== undefined,
      extraRoutes: routesBesideTheApi(config.webRoot, metrics),
      ...(backend.mode === 'embedded' ? { sendBatchesInFlight: 1 } : {}),
    });
    let gateway: Gateway;
    try {
      await app.listen({ host: config.host, port: config.port });
      gateway = new Gateway({
        options: gatewayOptions(config, app.server.address() as AddressInfo),
        bus: backend.bus,
        presence: backend.presence(metrics),
        // The keys are right here: no JWKS fetch over the network.
        verifier: new AccessTokenVerifier(appConfig.jwks, { issuer: config.issuer, audience: config.audience }),
        logger,
        metrics,
      });
      await gateway.attach(app.server);
    } catch (error) {
      await app.close();
      throw error;
    }

    const port = (app.server.address() as AddressInfo).port;
    const stop = async () => {
      logger.info('draining: closing sockets, then finishing in-flight requests');
      // Sockets first: they hold the server open, and their last sends still need the API.
      await gateway.drain();
      await gateway.close();
      await app.close();
      await backend.close();
      logger.info('stopped');
    };
    return {
      url: `http://${WILDCARD_HOSTS.has(config.host) ? 'localhost' : urlHost(config.host)}:${port}`,
      port,
      mode: backend.mode,
      database: backend.database,
      ...(backend.redisUrl ? { redisUrl: backend.redisUrl } : {}),
      webRoot: config.webRoot,
      webClientBuilt: webClientBuilt(config.webRoot),
      stop: () => (stopping ??= stop()),
    };
  } catch (error) {
    await backend.close();
    throw error;
  }
}
