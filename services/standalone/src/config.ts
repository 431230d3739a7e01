import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { importSigningJwk, toPublicJwk, type SigningKey } from '@parley/auth';
import { GatewayEnvSchema } from '@parley/gateway';
import { EnvSchema as MessageEnvSchema } from '@parley/message-service';
import { Type, type Static } from '@sinclair/typebox';
import envSchema from 'env-schema';

const message = MessageEnvSchema.properties;
const gateway = GatewayEnvSchema.properties;

/**
 * Every environment variable the single-process server reads (docs/running.md lists
 * them). Knobs it shares with the message service or the gateway reuse their schema, so
 * they mean and default the same.
 */
export const StandaloneEnvSchema = Type.Object({
  HOST: Type.String({
    default: '127.0.0.1',
    description: 'Interface to listen on; `0.0.0.0` lets other machines connect.',
  }),
  PORT: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 3000,
    description: 'The one port: web client, REST API and WebSockets (`/ws`).',
  }),
  DATA_DIR: Type.String({
    minLength: 1,
    default: '.parley/data',
    description: 'Embedded mode: where the database and the signing key live (relative to the working directory).',
  }),
  WEB_ROOT: Type.String({
    default: '',
    description: 'Directory of the built web client; default `packages/web/dist` of this checkout.',
  }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'warn', description: 'pino log level (`info` logs every request).' },
  ),
  DATABASE_URL: Type.Optional(
    Type.String({
      pattern: message.DATABASE_URL.pattern,
      description: 'PostgreSQL URL: use this server instead of the embedded database (with `REDIS_URL`).',
    }),
  ),
  REDIS_URL: Type.Optional(
    Type.String({
      pattern: message.REDIS_URL.pattern,
      description: 'Redis URL: use it for events, presence and rate limits (with `DATABASE_URL`).',
    }),
  ),
  DATABASE_POOL_MAX: message.DATABASE_POOL_MAX,
  BUS_PREFIX: message.BUS_PREFIX,
  AUTH_SIGNING_KEY: Type.Optional(
    Type.String({
      minLength: 2,
      description: 'Private Ed25519 JWK; required with `DATABASE_URL`. Embedded: default a key made once and kept in `DATA_DIR`.',
    }),
  ),
  AUTH_PREVIOUS_KEYS: message.AUTH_PREVIOUS_KEYS,
  AUTH_ISSUER: message.AUTH_ISSUER,
  AUTH_AUDIENCE: message.AUTH_AUDIENCE,
  ACCESS_TOKEN_TTL_SECONDS: message.ACCESS_TOKEN_TTL_SECONDS,
  REFRESH_TOKEN_TTL_SECONDS: message.REFRESH_TOKEN_TTL_SECONDS,
  REFRESH_REUSE_GRACE_SECONDS: message.REFRESH_REUSE_GRACE_SECONDS,
  LOGIN_RATE_LIMIT_MAX: message.LOGIN_RATE_LIMIT_MAX,
  LOGIN_RATE_LIMIT_WINDOW_SECONDS: message.LOGIN_RATE_LIMIT_WINDOW_SECONDS,
  LOGIN_RATE_LIMIT_PER_IP_MAX: message.LOGIN_RATE_LIMIT_PER_IP_MAX,
  REGISTER_RATE_LIMIT_MAX: message.REGISTER_RATE_LIMIT_MAX,
  REGISTER_RATE_LIMIT_WINDOW_SECONDS: message.REGISTER_RATE_LIMIT_WINDOW_SECONDS,
  TRUST_PROXY: message.TRUST_PROXY,
  BODY_LIMIT_BYTES: message.BODY_LIMIT_BYTES,
  ALLOWED_ORIGINS: Type.String({
    default: '',
    description:
      'Browser origins (comma-separated) that may use the API and the socket besides this server’s own.',
  }),
  NODE_ID: gateway.NODE_ID,
  MAX_FRAME_BYTES: gateway.MAX_FRAME_BYTES,
  RATE_LIMIT_FRAMES_PER_SECOND: gateway.RATE_LIMIT_FRAMES_PER_SECOND,
  SEND_BUFFER_MAX_BYTES: gateway.SEND_BUFFER_MAX_BYTES,
  HEARTBEAT_INTERVAL_MS: gateway.HEARTBEAT_INTERVAL_MS,
  DRAIN_WINDOW_MS: Type.Integer({
    minimum: 0,
    default: 0,
    description: 'On SIGINT/SIGTERM, sockets are closed (1012) spread over this window; 0 closes them at once.',
  }),
  PRESENCE_TTL_MS: gateway.PRESENCE_TTL_MS,
  MAX_CONNECTIONS: gateway.MAX_CONNECTIONS,
  MAX_CONNECTIONS_PER_USER: gateway.MAX_CONNECTIONS_PER_USER,
});
export type StandaloneEnv = Static<typeof StandaloneEnvSchema>;

/** The real servers to run against; absent, everything is embedded. */
export interface ServerUrls {
  databaseUrl: string;
  redisUrl: string;
}

export interface StandaloneConfig {
  host: string;
  /** 0 picks a free port. */
  port: number;
  logLevel: string;
  /** Absolute. Holds the embedded database and, unless one is given, the signing key. */
  dataDir: string;
  /** Absolute. */
  webRoot: string;
  servers: ServerUrls | null;
  databasePoolMax: number;
  busPrefix: string;
  /** Undefined: the key kept in `dataDir` (made on first start). */
  signingKey: SigningKey | undefined;
  previousKeys: SigningKey['publicJwk'][];
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  refreshReuseGraceSeconds: number;
  loginRateLimit: { max: number; windowSeconds: number };
  loginRateLimitPerIp: { max: number; windowSeconds: number };
  registerRateLimit: { max: number; windowSeconds: number };
  trustProxy: boolean | string[];
  bodyLimitBytes: number;
  /** Browser origins allowed besides the server's own. */
  extraOrigins: string[];
  nodeId: string;
  maxFrameBytes: number;
  rateLimitFramesPerSecond: number;
  sendBufferMaxBytes: number;
  heartbeatIntervalMs: number;
  drainWindowMs: number;
  presenceTtlMs: number;
  maxConnections: number;
  maxConnectionsPerUser: number;
}

export class StandaloneConfigError extends Error {
  override name = 'StandaloneConfigError';
}

/** `packages/web/dist` of the checkout this file belongs to (from `src/` and `dist/` alike). */
export const DEFAULT_WEB_ROOT = resolve(__dirname, '..', '..', '..', 'packages', 'web', 'dist');

function list(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

function parseJson(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new StandaloneConfigError(`${name} is not valid JSON`);
  }
}

/**
 * Validates the environment once, at start; relative paths are taken from `cwd`.
 * Throws a StandaloneConfigError naming what is wrong.
 */
export async function loadStandaloneConfig(
  source: NodeJS.ProcessEnv,
  cwd: string = process.cwd(),
): Promise<StandaloneConfig> {
  let env: StandaloneEnv;
  try {
    env = envSchema<StandaloneEnv>({ schema: StandaloneEnvSchema, data: source, env: false, dotenv: false });
  } catch (error) {
    throw new StandaloneConfigError(`invalid configuration: ${(error as Error).message}`);
  }

  const databaseUrl = env.DATABASE_URL || undefined;
  const redisUrl = env.REDIS_URL || undefined;
  if ((databaseUrl === undefined) !== (redisUrl === undefined)) {
    throw new StandaloneConfigError(
      'set both DATABASE_URL and REDIS_URL to run against real servers, or neither for the embedded database and bus',
    );
  }
  const servers = databaseUrl && redisUrl ? { databaseUrl, redisUrl } : null;

  let signingKey: SigningKey | undefined;
  if (env.AUTH_SIGNING_KEY) {
    try {
      signingKey = await importSigningJwk(parseJson('AUTH_SIGNING_KEY', env.AUTH_SIGNING_KEY) as Parameters<typeof importSigningJwk>[0]);
    } catch (error) {
      if (error instanceof StandaloneConfigError) throw error;
      throw new StandaloneConfigError(`AUTH_SIGNING_KEY: ${(error as Error).message}`);
    }
  } else if (servers) {
    // Every process on one database must sign with one key, so a key of its own won't do.
    throw new StandaloneConfigError('AUTH_SIGNING_KEY is required with DATABASE_URL (`npm run keygen` makes one)');
  }
  const previous = parseJson('AUTH_PREVIOUS_KEYS', env.AUTH_PREVIOUS_KEYS);
  if (!Array.isArray(previous)) throw new StandaloneConfigError('AUTH_PREVIOUS_KEYS must be a JSON array of JWKs');
  let previousKeys: SigningKey['publicJwk'][];
  try {
    previousKeys = previous.map((jwk: Parameters<typeof toPublicJwk>[0]) => toPublicJwk(jwk));
  } catch (error) {
    throw new StandaloneConfigError(`AUTH_PREVIOUS_KEYS: ${(error as Error).message}`);
  }

  const absolute = (path: string) => (isAbsolute(path) ? path : join(cwd, path));
  return {
    host: env.HOST,
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    dataDir: absolute(env.DATA_DIR),
    webRoot: env.WEB_ROOT ? absolute(env.WEB_ROOT) : DEFAULT_WEB_ROOT,
    servers,
    databasePoolMax: env.DATABASE_POOL_MAX,
    busPrefix: env.BUS_PREFIX,
    signingKey,
    previousKeys,
    issuer: env.AUTH_ISSUER,
    audience: env.AUTH_AUDIENCE,
    accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTtlSeconds: env.REFRESH_TOKEN_TTL_SECONDS,
    refreshReuseGraceSeconds: env.REFRESH_REUSE_GRACE_SECONDS,
    loginRateLimit: { max: env.LOGIN_RATE_LIMIT_MAX, windowSeconds: env.LOGIN_RATE_LIMIT_WINDOW_SECONDS },
    loginRateLimitPerIp: { max: env.LOGIN_RATE_LIMIT_PER_IP_MAX, windowSeconds: env.LOGIN_RATE_LIMIT_WINDOW_SECONDS },
    registerRateLimit: { max: env.REGISTER_RATE_LIMIT_MAX, windowSeconds: env.REGISTER_RATE_LIMIT_WINDOW_SECONDS },
    trustProxy: env.TRUST_PROXY === 'true' ? true : env.TRUST_PROXY === 'false' ? false : list(env.TRUST_PROXY),
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    extraOrigins: list(env.ALLOWED_ORIGINS),
    nodeId: env.NODE_ID || `standalone-${hostname()}-${randomBytes(3).toString('hex')}`,
    maxFrameBytes: env.MAX_FRAME_BYTES,
    rateLimitFramesPerSecond: env.RATE_LIMIT_FRAMES_PER_SECOND,
    sendBufferMaxBytes: env.SEND_BUFFER_MAX_BYTES,
    heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
    drainWindowMs: env.DRAIN_WINDOW_MS,
    presenceTtlMs: env.PRESENCE_TTL_MS,
    maxConnections: env.MAX_CONNECTIONS,
    maxConnectionsPerUser: env.MAX_CONNECTIONS_PER_USER,
  };
}
