import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ParleyClient, type ParleyClientOptions } from '@parley/client';
import { startTopology } from '@parley/deploy';
import { loadStandaloneConfig, startStandalone } from '@parley/standalone';
import { testUrls } from '../../e2e/support/fleet';
import { httpsFetch } from '../../e2e/support/https-fetch';
import { PASSWORD, uniqueName } from './names';

/** The built web client that the servers serve at `/`. */
export const WEB_DIST = path.resolve(__dirname, '../../../packages/web/dist');

/** A user made over the API (not through the app), to seed data: history, a third member. */
export interface SeedUser {
  id: string;
  username: string;
  displayName: string;
  client: ParleyClient;
}

/**
 * A running Parley that serves the web client, its REST API and its socket on one origin.
 * The browser scenarios take one of these, so they run against any way of serving Parley.
 */
export interface Backend {
  readonly label: string;
  /** Where the browser goes: the app at `/`, the API at `/v1`, the socket at `/ws`. */
  readonly baseUrl: string;
  /** The origin's certificate is self-signed (browser contexts must accept it). */
  readonly ignoreHTTPSErrors: boolean;
  /** Registers a user through the SDK (REST only: not connected). */
  registerSeedUser(label: string, displayName: string): Promise<SeedUser>;
  /** Open sockets on each gateway, read from their /metrics (a fleet only). */
  socketsPerGateway?(): Promise<number[]>;
  stop(): Promise<void>;
}

export function requireWebBuild(): void {
  if (!existsSync(path.join(WEB_DIST, 'index.html')) || !existsSync(path.join(WEB_DIST, 'app.js'))) {
    throw new Error(`${WEB_DIST} has no built web client: run \`npm run build\` first`);
  }
}

/** The full topology: message service, gateways and nginx (TLS), nginx serving packages/web/dist. */
export async function topologyBackend(name: string): Promise<Backend> {
  requireWebBuild();
  const { databaseUrl, redisUrl } = testUrls();
  const topology = await startTopology({
    databaseUrl,
    redisUrl,
    gateways: 2,
    busPrefix: `parley-browser-${name}:${randomBytes(4).toString('hex')}:`,
    logLevel: 'warn',
    drainWindowMs: 500,
    webRoot: WEB_DIST,
    // Every browser registers from 127.0.0.1: lift the per-IP limits.
    messageEnv: { REGISTER_RATE_LIMIT_MAX: '100000', LOGIN_RATE_LIMIT_MAX: '100000' },
  });
  const seedFetch = httpsFetch(topology.caCertPem);
  const seeds = seedRegistrar(topology.httpsUrl, seedFetch);
  return {
    label: 'topology (nginx, 2 gateways, message service)',
    baseUrl: topology.httpsUrl,
    ignoreHTTPSErrors: true,
    registerSeedUser: seeds.register,
    socketsPerGateway: () => Promise.all(topology.gateways.map((gateway) => openSockets(gateway.url))),
    async stop() {
      await seeds.close();
      seedFetch.close();
      await topology.stop({ removeWorkDir: process.env['PARLEY_E2E_KEEP_LOGS'] !== '1' });
    },
  };
}

async function openSockets(gatewayUrl: string): Promise<number> {
  const response = await fetch(`${gatewayUrl}/metrics`);
  const line = /^parley_gateway_connections(?:\{[^}]*\})? (\d+)$/m.exec(await response.text());
  if (!line) throw new Error(`no parley_gateway_connections on ${gatewayUrl}/metrics`);
  return Number(line[1]);
}

/** Registers seed users through the SDK against a base URL (over `fetch` when given, for a private CA). */
function seedRegistrar(baseUrl: string, fetch?: ParleyClientOptions['fetch']) {
  const seeds: ParleyClient[] = [];
  return {
    async register(label: string, displayName: string): Promise<SeedUser> {
      const client = new ParleyClient({ baseUrl, ...(fetch ? { fetch } : {}) });
      seeds.push(client);
      const response = await client.register({ username: uniqueName(label), password: PASSWORD, displayName });
      return { id: response.user.id, username: response.user.username, displayName, client };
    },
    close: () => Promise.allSettled(seeds.map((client) => client.close())),
  };
}

/**
 * `npm start`'s server, in-process: the message service and a gateway on one port over
 * the embedded PostgreSQL (a fresh data directory) and the in-process bus, serving
 * packages/web/dist itself.
 */
export async function standaloneBackend(): Promise<Backend> {
  requireWebBuild();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'parley-browser-standalone-'));
  const config = await loadStandaloneConfig({
    PORT: '0',
    DATA_DIR: dataDir,
    WEB_ROOT: WEB_DIST,
    LOG_LEVEL: 'silent',
    // Every browser registers from 127.0.0.1: lift the per-IP limits.
    REGISTER_RATE_LIMIT_MAX: '100000',
    LOGIN_RATE_LIMIT_MAX: '100000',
  });
  const server = await startStandalone({ config });
  const seeds = seedRegistrar(server.url);
  return {
    label: 'single process (embedded PostgreSQL, in-process bus)',
    baseUrl: server.url,
    ignoreHTTPSErrors: false,
    registerSeedUser: seeds.register,
    async stop() {
      await seeds.close();
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
