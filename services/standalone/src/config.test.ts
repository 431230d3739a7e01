import { join } from 'node:path';
import { generateSigningJwk } from '@parley/auth';
import { DEFAULT_WEB_ROOT, loadStandaloneConfig, StandaloneConfigError } from './config';

describe('loadStandaloneConfig', () => {
  test('defaults: embedded, loopback on 3000, data under the working directory, the checkout’s web build', async () => {
    const config = await loadStandaloneConfig({}, '/srv/parley');
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 3000,
      logLevel: 'warn',
      dataDir: '/srv/parley/.parley/data',
      webRoot: DEFAULT_WEB_ROOT,
      servers: null,
      signingKey: undefined,
      extraOrigins: [],
      drainWindowMs: 0,
    });
    expect(DEFAULT_WEB_ROOT).toBe(join(__dirname, '..', '..', '..', 'packages', 'web', 'dist'));
  });

  test('relative paths are taken from the working directory, absolute ones as they are', async () => {
    const config = await loadStandaloneConfig({ DATA_DIR: 'state', WEB_ROOT: '/opt/web' }, '/srv/parley');
    expect({ dataDir: config.dataDir, webRoot: config.webRoot }).toEqual({ dataDir: '/srv/parley/state', webRoot: '/opt/web' });
  });

  test('DATABASE_URL and REDIS_URL come together, with a signing key', async () => {
    const key = JSON.stringify(await generateSigningJwk('k1'));
    const both = { DATABASE_URL: 'postgres://u@db/parley', REDIS_URL: 'redis://cache:6379' };
    const config = await loadStandaloneConfig({ ...both, AUTH_SIGNING_KEY: key });
    expect(config.servers).toEqual({ databaseUrl: 'postgres://u@db/parley', redisUrl: 'redis://cache:6379' });
    expect(config.signingKey?.kid).toBe('k1');

    await expect(loadStandaloneConfig({ DATABASE_URL: both.DATABASE_URL, AUTH_SIGNING_KEY: key })).rejects.toThrow(
      /both DATABASE_URL and REDIS_URL/,
    );
    await expect(loadStandaloneConfig({ REDIS_URL: both.REDIS_URL })).rejects.toThrow(StandaloneConfigError);
    await expect(loadStandaloneConfig(both)).rejects.toThrow(/AUTH_SIGNING_KEY is required/);
  });

  test('bad values are refused with the variable named', async () => {
    await expect(loadStandaloneConfig({ PORT: '70000' })).rejects.toThrow(/PORT/);
    await expect(loadStandaloneConfig({ DATABASE_URL: 'mysql://x', REDIS_URL: 'redis://x' })).rejects.toThrow(/DATABASE_URL/);
    await expect(loadStandaloneConfig({ AUTH_SIGNING_KEY: '{"kty":"RSA"}' })).rejects.toThrow(/AUTH_SIGNING_KEY/);
    await expect(loadStandaloneConfig({ AUTH_PREVIOUS_KEYS: '{}' })).rejects.toThrow(/AUTH_PREVIOUS_KEYS/);
  });

  test('extra origins are a list; they add to the server’s own', async () => {
    const config = await loadStandaloneConfig({ ALLOWED_ORIGINS: 'https://chat.example.com, http://10.0.0.5:3000 ' });
    expect(config.extraOrigins).toEqual(['https://chat.example.com', 'http://10.0.0.5:3000']);
  });
});
