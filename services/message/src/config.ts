import { importSigningJwk, toPublicJwk, type JsonWebKeySet, type SigningKey } from '@parley/auth';
import { Type, type Static } from '@sinclair/typebox';
import envSchema from 'env-schema';
import type { JWK } from 'jose';

/**
 * Every environment variable the message service reads. The README's table is written
 * from this schema; keep the descriptions short and true.
 */
export const EnvSchema = Type.Object({
  HOST: Type.String({ default: '0.0.0.0', description: 'Interface to listen on.' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'HTTP port.' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info', description: 'pino log level.' },
  ),
  DATABASE_URL: Type.String({ pattern: '^postgres(ql)?://', description: 'PostgreSQL connection URL.' }),
  DATABASE_POOL_MAX: Type.Integer({ minimum: 1, maximum: 500, default: 20, description: 'Pool size.' }),
  REDIS_URL: Type.String({ pattern: '^rediss?://', description: 'Redis URL for the bus and rate limits.' }),
  BUS_PREFIX: Type.String({
    default: 'parley:',
    pattern: '^[A-Za-z0-9_.:-]*$',
    description: 'Prefix of every bus channel and Redis key.',
  }),
  AUTH_SIGNING_KEY: Type.String({
    minLength: 2,
    description: 'Private Ed25519 JWK (JSON) with a `kid`; `npm run keygen` makes one.',
  }),
  AUTH_PREVIOUS_KEYS: Type.String({
    default: '[]',
    description: 'JSON array of retired public JWKs still accepted during a key rotation.',
  }),
  AUTH_ISSUER: Type.String({ minLength: 1, default: 'parley', description: 'JWT `iss`.' }),
  AUTH_AUDIENCE: Type.String({ minLength: 1, default: 'parley', description: 'JWT `aud`.' }),
  ACCESS_TOKEN_TTL_SECONDS: Type.Integer({
    minimum: 30,
    maximum: 86400,
    default: 900,
    description: 'Lifetime of an access JWT.',
  }),
  REFRESH_TOKEN_TTL_SECONDS: Type.Integer({
    minimum: 300,
    maximum: 31536000,
    default: 2592000,
    description: 'Lifetime of a refresh token (each refresh issues a new one).',
  }),
  REFRESH_REUSE_GRACE_SECONDS: Type.Integer({
    minimum: 0,
    maximum: 300,
    default: 30,
    description: 'A rotated refresh token may be retried this long while its successor is unused (lost replies).',
  }),
  LOGIN_RATE_LIMIT_MAX: Type.Integer({
    minimum: 1,
    default: 10,
    description: 'Login attempts per IP and username per window.',
  }),
  LOGIN_RATE_LIMIT_WINDOW_SECONDS: Type.Integer({ minimum: 1, default: 300, description: 'Login limit window.' }),
  LOGIN_RATE_LIMIT_PER_IP_MAX: Type.Integer({
    minimum: 1,
    default: 100,
    description: 'Login attempts per IP, all usernames together, per login window.',
  }),
  REGISTER_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 20, description: 'Registrations per IP per window.' }),
  REGISTER_RATE_LIMIT_WINDOW_SECONDS: Type.Integer({
    minimum: 1,
    default: 3600,
    description: 'Registration limit window.',
  }),
  TRUST_PROXY: Type.String({
    default: 'false',
    description: '`false`, `true`, or comma-separated proxy addresses/CIDRs (nginx) whose X-Forwarded-For is trusted.',
  }),
  CORS_ORIGINS: Type.String({ default: '', description: 'Comma-separated browser origins allowed to call the API.' }),
  BODY_LIMIT_BYTES: Type.Integer({
    minimum: 1024,
    maximum: 10485760,
    default: 65536,
    description: 'Largest request body (POST /v1/sync allows 2 MiB).',
  }),
  FAULT_EXIT_AFTER_COMMIT: Type.Boolean({
    default: false,
    description:
      'Test-only fault: exit right after a send commits, before the reply. Refused unless NODE_ENV=test.',
  }),
});

/** Exit code of the FAULT_EXIT_AFTER_COMMIT fault, so a test tells it from a crash. */
export const FAULT_EXIT_CODE = 70;
export type Env = Static<typeof EnvSchema>;

export interface Config {
  host: string;
  port: number;
  logLevel: string;
  databaseUrl: string;
  databasePoolMax: number;
  redisUrl: string;
  busPrefix: string;
  signingKey: SigningKey;
  jwks: JsonWebKeySet;
  issuer: string;
  audience: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  refreshReuseGraceSeconds: number;
  loginRateLimit: { max: number; windowSeconds: number };
  loginRateLimitPerIp: { max: number; windowSeconds: number };
  registerRateLimit: { max: number; windowSeconds: number };
  trustProxy: boolean | string[];
  corsOrigins: string[];
  bodyLimitBytes: number;
  /** Test-only: exit with FAULT_EXIT_CODE between a send's COMMIT and its reply. */
  faultExitAfterCommit: boolean;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function parseJson(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ConfigError(`${name} is not valid JSON`);
  }
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/** Validates the environment once, at start. Throws a ConfigError naming every bad variable. */
export async function loadConfig(source: NodeJS.ProcessEnv): Promise<Config> {
  let env: Env;
  try {
    env = envSchema<Env>({ schema: EnvSchema, data: source, env: false, dotenv: false });
  } catch (error) {
    throw new ConfigError(`invalid configuration: ${(error as Error).message}`);
  }

  let signingKey: SigningKey;
  try {
    signingKey = await importSigningJwk(parseJson('AUTH_SIGNING_KEY', env.AUTH_SIGNING_KEY) as JWK);
  } catch (error) {
    throw new ConfigError(`AUTH_SIGNING_KEY: ${(error as Error).message}`);
  }
  const previous = parseJson('AUTH_PREVIOUS_KEYS', env.AUTH_PREVIOUS_KEYS);
  if (!Array.isArray(previous)) throw new ConfigError('AUTH_PREVIOUS_KEYS must be a JSON array of JWKs');
  let previousKeys: JWK[];
  try {
    previousKeys = previous.map((jwk: JWK) => toPublicJwk(jwk));
  } catch (error) {
    throw new ConfigError(`AUTH_PREVIOUS_KEYS: ${(error as Error).message}`);
  }

  // The fault hook must never be live in a real deployment: only a test run may set it.
  if (env.FAULT_EXIT_AFTER_COMMIT && source['NODE_ENV'] !== 'test') {
    throw new ConfigError('FAULT_EXIT_AFTER_COMMIT is a test-only fault and is refused unless NODE_ENV=test');
  }

  const trustProxy =
    env.TRUST_PROXY === 'true' ? true : env.TRUST_PROXY === 'false' ? false : list(env.TRUST_PROXY);

  return {
    host: env.HOST,
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    databaseUrl: env.DATABASE_URL,
    databasePoolMax: env.DATABASE_POOL_MAX,
    redisUrl: env.REDIS_URL,
    busPrefix: env.BUS_PREFIX,
    signingKey,
    jwks: { keys: [signingKey.publicJwk, ...previousKeys] },
    issuer: env.AUTH_ISSUER,
    audience: env.AUTH_AUDIENCE,
    accessTokenTtlSeconds: env.ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTtlSeconds: env.REFRESH_TOKEN_TTL_SECONDS,
    refreshReuseGraceSeconds: env.REFRESH_REUSE_GRACE_SECONDS,
    loginRateLimit: { max: env.LOGIN_RATE_LIMIT_MAX, windowSeconds: env.LOGIN_RATE_LIMIT_WINDOW_SECONDS },
    loginRateLimitPerIp: { max: env.LOGIN_RATE_LIMIT_PER_IP_MAX, windowSeconds: env.LOGIN_RATE_LIMIT_WINDOW_SECONDS },
    registerRateLimit: { max: env.REGISTER_RATE_LIMIT_MAX, windowSeconds: env.REGISTER_RATE_LIMIT_WINDOW_SECONDS },
    trustProxy,
    corsOrigins: list(env.CORS_ORIGINS),
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    faultExitAfterCommit: env.FAULT_EXIT_AFTER_COMMIT,
  };
}
