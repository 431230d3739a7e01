import { generateSigningJwk } from '@parley/auth';
import type { JWK } from 'jose';
import { ConfigError, loadConfig } from './config';

let signingJwk: JWK;
let goodEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  signingJwk = await generateSigningJwk('config-test-key');
  goodEnv = {
    DATABASE_URL: 'postgres://parley@127.0.0.1:5432/parley',
    REDIS_URL: 'redis://127.0.0.1:6379',
    AUTH_SIGNING_KEY: JSON.stringify(signingJwk),
  };
});

/** Runs loadConfig and returns the ConfigError it throws (fails the test when it does not throw one). */
async function configError(env: NodeJS.ProcessEnv): Promise<ConfigError> {
  let thrown: unknown;
  try {
    await loadConfig(env);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ConfigError);
  return thrown as ConfigError;
}

test('a good environment loads, with every default filled in', async () => {
  const config = await loadConfig(goodEnv);
  expect(config).toMatchObject({
    host: '0.0.0.0',
    port: 3000,
    logLevel: 'info',
    databaseUrl: goodEnv['DATABASE_URL'],
    databasePoolMax: 20,
    redisUrl: goodEnv['REDIS_URL'],
    busPrefix: 'parley:',
    issuer: 'parley',
    audience: 'parley',
    accessTokenTtlSeconds: 900,
    refreshTokenTtlSeconds: 2592000,
    refreshReuseGraceSeconds: 30,
    loginRateLimit: { max: 10, windowSeconds: 300 },
    loginRateLimitPerIp: { max: 100, windowSeconds: 300 },
    registerRateLimit: { max: 20, windowSeconds: 3600 },
    trustProxy: false,
    corsOrigins: [],
    bodyLimitBytes: 65536,
  });
  expect(config.signingKey.kid).toBe('config-test-key');
  // The published key set holds the public half only.
  expect(config.jwks.keys).toHaveLength(1);
  expect(config.jwks.keys[0]).toEqual({
    kty: 'OKP',
    crv: 'Ed25519',
    x: signingJwk.x,
    kid: 'config-test-key',
    alg: 'EdDSA',
    use: 'sig',
  });
  expect(JSON.stringify(config.jwks)).not.toContain(signingJwk.d as string);
});

test('explicit values override the defaults and are converted', async () => {
  const previous = await generateSigningJwk('old-key');
  const config = await loadConfig({
    ...goodEnv,
    PORT: '8080',
    TRUST_PROXY: '10.0.0.1, 10.0.0.0/8',
    CORS_ORIGINS: 'https://a.example, https://b.example',
    AUTH_PREVIOUS_KEYS: JSON.stringify([previous]),
  });
  expect(config.port).toBe(8080);
  expect(config.trustProxy).toEqual(['10.0.0.1', '10.0.0.0/8']);
  expect(config.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
  expect(config.jwks.keys.map((key) => key.kid)).toEqual(['config-test-key', 'old-key']);
  expect(config.jwks.keys[1]).not.toHaveProperty('d');
});

test('a missing DATABASE_URL is a ConfigError naming it', async () => {
  const { DATABASE_URL: _omitted, ...env } = goodEnv;
  const error = await configError(env);
  expect(error.message).toContain('DATABASE_URL');
});

test('a DATABASE_URL that is not a postgres URL is a ConfigError naming it', async () => {
  const error = await configError({ ...goodEnv, DATABASE_URL: 'mysql://localhost/parley' });
  expect(error.message).toContain('DATABASE_URL');
});

test.each(['http', '-1', '65536', '80.5', ''])('a bad PORT (%j) is a ConfigError naming it', async (port) => {
  const error = await configError({ ...goodEnv, PORT: port });
  expect(error.message).toContain('PORT');
});

test('a non-JSON AUTH_SIGNING_KEY is a ConfigError naming it', async () => {
  const error = await configError({ ...goodEnv, AUTH_SIGNING_KEY: 'not json at all' });
  expect(error.message).toContain('AUTH_SIGNING_KEY');
});

test('a public-only AUTH_SIGNING_KEY is a ConfigError naming it', async () => {
  const { d: _private, ...publicOnly } = signingJwk;
  const error = await configError({ ...goodEnv, AUTH_SIGNING_KEY: JSON.stringify(publicOnly) });
  expect(error.message).toContain('AUTH_SIGNING_KEY');
  expect(error.message).toMatch(/private/i);
});

test('an AUTH_SIGNING_KEY without kid is a ConfigError naming it', async () => {
  const { kid: _kid, ...withoutKid } = signingJwk;
  const error = await configError({ ...goodEnv, AUTH_SIGNING_KEY: JSON.stringify(withoutKid) });
  expect(error.message).toContain('AUTH_SIGNING_KEY');
  expect(error.message).toMatch(/kid/);
});

test('an AUTH_PREVIOUS_KEYS that is not an array of public keys is a ConfigError naming it', async () => {
  expect((await configError({ ...goodEnv, AUTH_PREVIOUS_KEYS: '{' })).message).toContain('AUTH_PREVIOUS_KEYS');
  expect((await configError({ ...goodEnv, AUTH_PREVIOUS_KEYS: '{}' })).message).toContain('AUTH_PREVIOUS_KEYS');
  expect((await configError({ ...goodEnv, AUTH_PREVIOUS_KEYS: '[{"kty":"RSA"}]' })).message).toContain(
    'AUTH_PREVIOUS_KEYS',
  );
});

test('FAULT_EXIT_AFTER_COMMIT is off by default and honoured only with NODE_ENV=test', async () => {
  expect((await loadConfig(goodEnv)).faultExitAfterCommit).toBe(false);
  expect((await loadConfig({ ...goodEnv, FAULT_EXIT_AFTER_COMMIT: 'true', NODE_ENV: 'test' })).faultExitAfterCommit).toBe(true);
  for (const nodeEnv of [undefined, 'production', 'development', 'TEST']) {
    const env = { ...goodEnv, FAULT_EXIT_AFTER_COMMIT: 'true', ...(nodeEnv === undefined ? {} : { NODE_ENV: nodeEnv }) };
    expect((await configError(env)).message).toContain('FAULT_EXIT_AFTER_COMMIT');
  }
  expect((await loadConfig({ ...goodEnv, FAULT_EXIT_AFTER_COMMIT: 'false', NODE_ENV: 'production' })).faultExitAfterCommit).toBe(false);
});
