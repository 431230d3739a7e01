import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import envSchema from 'env-schema';

/** Every environment variable the gateway reads (the README's table mirrors it). */
export const GatewayEnvSchema = Type.Object({
  HOST: Type.String({ default: '0.0.0.0', description: 'Interface to listen on.' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 4000, description: 'HTTP and WebSocket port.' }),
  NODE_ID: Type.String({
    default: '',
    pattern: '^[A-Za-z0-9_.:-]{0,64}$',
    description: 'Name of this node in presence keys and logs; default host-port-random.',
  }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info', description: 'pino log level.' },
  ),
  REDIS_URL: Type.String({ pattern: '^rediss?://', description: 'Redis URL for the bus and presence.' }),
  BUS_PREFIX: Type.String({ default: 'parley:', pattern: '^[A-Za-z0-9_.:-]*$', description: 'As the message service.' }),
  MESSAGE_SERVICE_URL: Type.String({
    pattern: '^https?://',
    description: 'Base URL of the message service (sends, reads, routing, JWKS).',
  }),
  AUTH_JWKS_URL: Type.String({ default: '', description: 'JWKS URL; default `<MESSAGE_SERVICE_URL>/.well-known/jwks.json`.' }),
  AUTH_ISSUER: Type.String({ minLength: 1, default: 'parley', description: 'Expected JWT `iss`.' }),
  AUTH_AUDIENCE: Type.String({ minLength: 1, default: 'parley', description: 'Expected JWT `aud`.' }),
  ALLOWED_ORIGINS: Type.String({
    default: '',
    description: 'Comma-separated browser Origins allowed to connect (`*` for any). Requests without Origin pass.',
  }),
  MAX_FRAME_BYTES: Type.Integer({ minimum: 1024, maximum: 1048576, default: 32768, description: 'Largest client frame.' }),
  RATE_LIMIT_FRAMES_PER_SECOND: Type.Integer({ minimum: 1, default: 20, description: 'Client frames per second per socket.' }),
  SEND_BUFFER_MAX_BYTES: Type.Integer({
    minimum: 16384,
    default: 1048576,
    description: 'Outbound bytes buffered for one socket before it is closed as a slow consumer.',
  }),
  HEARTBEAT_INTERVAL_MS: Type.Integer({ minimum: 1000, default: 25000, description: 'Ping interval; a peer missing one pong is dropped.' }),
  DRAIN_WINDOW_MS: Type.Integer({ minimum: 0, default: 10000, description: 'SIGTERM closes sockets spread over this window.' }),
  PRESENCE_TTL_MS: Type.Integer({
    minimum: 3000,
    default: 15000,
    description: 'A node silent this long is presumed dead and its users offline.',
  }),
  MESSAGE_SERVICE_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 5000, description: 'Per-request timeout.' }),
  MAX_CONNECTIONS: Type.Integer({ minimum: 1, default: 15000, description: 'Sockets per node before upgrades get 503.' }),
  MAX_CONNECTIONS_PER_USER: Type.Integer({
    minimum: 1,
    default: 20,
    description: "One user's sockets per node before their upgrades get 429 RATE_LIMITED.",
  }),
});
export type GatewayEnv = Static<typeof GatewayEnvSchema>;

export interface GatewayConfig {
  host: string;
  port: number;
  nodeId: string;
  logLevel: string;
  redisUrl: string;
  busPrefix: string;
  messageServiceUrl: string;
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** `'*'` allows any Origin. */
  allowedOrigins: string[] | '*';
  maxFrameBytes: number;
  rateLimitFramesPerSecond: number;
  sendBufferMaxBytes: number;
  heartbeatIntervalMs: number;
  drainWindowMs: number;
  presenceTtlMs: number;
  messageServiceTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerUser: number;
}

export class GatewayConfigError extends Error {
  override name = 'GatewayConfigError';
}

export function loadGatewayConfig(source: NodeJS.ProcessEnv): GatewayConfig {
  let env: GatewayEnv;
  try {
    env = envSchema<GatewayEnv>({ schema: GatewayEnvSchema, data: source, env: false, dotenv: false });
  } catch (error) {
    throw new GatewayConfigError(`invalid configuration: ${(error as Error).message}`);
  }
  const messageServiceUrl = env.MESSAGE_SERVICE_URL.replace(/\/+$/, '');
  const origins = env.ALLOWED_ORIGINS.split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  return {
    host: env.HOST,
    port: env.PORT,
    nodeId: env.NODE_ID || `${hostname()}-${env.PORT}-${randomBytes(3).toString('hex')}`,
    logLevel: env.LOG_LEVEL,
    redisUrl: env.REDIS_URL,
    busPrefix: env.BUS_PREFIX,
    messageServiceUrl,
    jwksUrl: env.AUTH_JWKS_URL || `${messageServiceUrl}/.well-known/jwks.json`,
    issuer: env.AUTH_ISSUER,
    audience: env.AUTH_AUDIENCE,
    allowedOrigins: origins.includes('*') ? '*' : origins,
    maxFrameBytes: env.MAX_FRAME_BYTES,
    rateLimitFramesPerSecond: env.RATE_LIMIT_FRAMES_PER_SECOND,
    sendBufferMaxBytes: env.SEND_BUFFER_MAX_BYTES,
    heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
    drainWindowMs: env.DRAIN_WINDOW_MS,
    presenceTtlMs: env.PRESENCE_TTL_MS,
    messageServiceTimeoutMs: env.MESSAGE_SERVICE_TIMEOUT_MS,
    maxConnections: env.MAX_CONNECTIONS,
    maxConnectionsPerUser: env.MAX_CONNECTIONS_PER_USER,
  };
}
