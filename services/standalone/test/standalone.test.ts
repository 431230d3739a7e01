// The single-process server, in-process, on a free port: accounts, messages over real
// WebSockets (the SDK), a restart on the same data directory, the web client beside the
// API, the socket's Origin check, and the same server against real PostgreSQL and Redis.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningJwk } from '@parley/auth';
import { ParleyClient, type ParleyClientEvents } from '@parley/client';
import type { AuthResponse, HistoryPage, Message } from '@parley/protocol';
import { WebSocket } from 'ws';
import { loadStandaloneConfig, startStandalone, type RunningStandalone } from '../src';

jest.setTimeout(90_000);

const PASSWORD = 'correct horse battery staple';
const WAIT_MS = 10_000;
const INDEX_HTML = '<!doctype html><title>Parley web client (test build)</title><script type="module" src="app.js"></script>\n';

const temps: string[] = [];
const running: RunningStandalone[] = [];
const clients: ParleyClient[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `parley-standalone-${prefix}-`));
  temps.push(dir);
  return dir;
}

const SECRET = 'a file beside the web root, never to be served';

/**
 * A stand-in for packages/web/dist, so these tests do not depend on the web build, with
 * a file next to it that no request may reach.
 */
function webRoot(): string {
  const parent = tempDir('web');
  const dir = join(parent, 'dist');
  mkdirSync(dir);
  writeFileSync(join(dir, 'index.html'), INDEX_HTML);
  writeFileSync(join(dir, 'app.js'), 'export {};\n');
  writeFileSync(join(parent, 'secret.txt'), SECRET);
  return dir;
}

/** A GET with the path exactly as given (fetch would normalize away the `..`). */
function rawGet(server: RunningStandalone, path: string): Promise<{ status: number; body: string }> {
  return within(
    new Promise((resolve, reject) => {
      const request = httpGet({ host: '127.0.0.1', port: server.port, path }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      request.on('error', reject);
    }),
    `GET ${path}`,
  );
}

async function start(env: Record<string, string>): Promise<RunningStandalone> {
  const config = await loadStandaloneConfig({ PORT: '0', LOG_LEVEL: process.env['TEST_LOG_LEVEL'] ?? 'silent', ...env });
  const server = await startStandalone({ config });
  running.push(server);
  return server;
}

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((client) => client.close()));
});

afterAll(async () => {
  await Promise.allSettled(running.map((server) => server.stop()));
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** Rejects (a test failure, never a wait) when `promise` has not settled in time. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${WAIT_MS} ms: ${what}`)), WAIT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The next SDK event of this kind that matches. */
function nextEvent<K extends keyof ParleyClientEvents>(
  client: ParleyClient,
  event: K,
  predicate: (...args: ParleyClientEvents[K]) => boolean,
): Promise<ParleyClientEvents[K]> {
  return within(
    new Promise<ParleyClientEvents[K]>((resolve) => {
      const off = client.on(event, (...args: ParleyClientEvents[K]) => {
        if (!predicate(...args)) return;
        off();
        resolve(args);
      });
    }),
    `a ${String(event)} event`,
  );
}

async function newClient(server: RunningStandalone, username: string): Promise<{ client: ParleyClient; auth: AuthResponse }> {
  const client = new ParleyClient({ baseUrl: server.url, WebSocket });
  clients.push(client);
  const auth = await client.register({ username, password: PASSWORD });
  return { client, auth };
}

async function rest<T>(server: RunningStandalone, method: string, path: string, token?: string, body?: unknown) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json().catch(() => null)) as T };
}

/** Two users who talk: the message one sends over the socket reaches the other's socket. */
async function converse(server: RunningStandalone, text: string) {
  const suffix = randomBytes(4).toString('hex');
  const alice = await newClient(server, `alice_${suffix}`);
  const bob = await newClient(server, `bob_${suffix}`);
  await Promise.all([alice.client.connect(), bob.client.connect()]);
  const direct = await alice.client.rest.openDirect(bob.auth.user.id);
  const heard = nextEvent(bob.client, 'message', (message) => message.conversationId === direct.id);
  const sent = await alice.client.send(direct.id, text);
  const [received] = await heard;
  expect(received).toEqual(sent);
  expect(received).toMatchObject({ body: text, senderId: alice.auth.user.id, seq: 1 });
  return { alice, bob, conversationId: direct.id, sent };
}

describe('embedded (PGlite and an in-process bus, no servers)', () => {
  let dataDir: string;
  let web: string;
  let server: RunningStandalone;
  let earlier: { alice: { auth: AuthResponse }; bob: { auth: AuthResponse }; conversationId: string; sent: Message };

  beforeAll(async () => {
    dataDir = join(tempDir('data'), 'nested', 'data');
    web = webRoot();
    server = await start({ DATA_DIR: dataDir, WEB_ROOT: web });
  });

  test('two users register over REST, connect over WebSockets on the same port, and talk', async () => {
    expect(server.mode).toBe('embedded');
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    earlier = await converse(server, 'hello over one port');
    const ready = await rest<{ checks: Record<string, string> }>(server, 'GET', '/readyz');
    expect(ready).toEqual({ status: 200, body: { status: 'ready', checks: { postgres: 'ok' } } });
  });

  test('the web client is served at / and for app pages; API paths and missing files stay 404', async () => {
    const index = await fetch(`${server.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(index.headers.get('content-security-policy')).toContain("connect-src 'self'");
    expect(await index.text()).toBe(INDEX_HTML);

    const page = await fetch(`${server.url}/chats/some-conversation`);
    expect({ status: page.status, body: await page.text() }).toEqual({ status: 200, body: INDEX_HTML });
    const script = await fetch(`${server.url}/app.js`);
    expect({ status: script.status, type: script.headers.get('content-type') }).toEqual({
      status: 200,
      type: expect.stringMatching(/javascript/),
    });

    for (const path of ['/missing.js', '/v1/no-such-route', '/ws']) {
      const response = await fetch(`${server.url}${path}`);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    }
  });

  test('no path leads out of the web root', async () => {
    expect(await rawGet(server, '/app.js')).toEqual({ status: 200, body: 'export {};\n' }); // control
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/.%2e/secret.txt', '/dist/../../secret.txt']) {
      const response = await rawGet(server, path);
      expect({ path, status: response.status, leaked: response.body.includes(SECRET) }).toEqual({
        path,
        status: 404,
        leaked: false,
      });
    }
  });

  test('the socket accepts this server’s own origins and refuses others', async () => {
    const token = earlier.alice.auth.tokens.accessToken;
    const attempt = (origin: string) =>
      within(
        new Promise<number>((resolve) => {
          const socket = new WebSocket(`${server.url.replace('http', 'ws')}/ws`, ['parley.v1'], {
            headers: { authorization: `Bearer ${token}` },
            origin,
          });
          socket.once('open', () => {
            socket.close();
            resolve(101);
          });
          socket.once('unexpected-response', (_request, response) => {
            resolve(response.statusCode ?? 0);
            socket.terminate();
          });
          socket.once('error', () => undefined);
        }),
        `an upgrade from ${origin}`,
      );
    expect(await attempt(`http://localhost:${server.port}`)).toBe(101);
    expect(await attempt(`http://127.0.0.1:${server.port}`)).toBe(101);
    expect(await attempt('http://evil.example')).toBe(403);
    expect(await attempt(`http://localhost:${server.port + 1}`)).toBe(403);
  });

  test('a second server on the same data directory is refused while this one runs', async () => {
    await expect(start({ DATA_DIR: dataDir, WEB_ROOT: web })).rejects.toThrow(/in use by this process/);
  });

  test('after a restart on the same data directory, accounts, history and issued tokens are intact', async () => {
    await server.stop();
    server = await start({ DATA_DIR: dataDir, WEB_ROOT: web });

    // The signing key was kept: a token issued before the restart still works.
    const me = await rest<{ id: string }>(server, 'GET', '/v1/me', earlier.bob.auth.tokens.accessToken);
    expect(me).toMatchObject({ status: 200, body: { id: earlier.bob.auth.user.id } });

    const login = await rest<AuthResponse>(server, 'POST', '/v1/auth/login', undefined, {
      username: earlier.bob.auth.user.username,
      password: PASSWORD,
    });
    expect(login.status).toBe(200);
    const history = await rest<HistoryPage>(
      server,
      'GET',
      `/v1/conversations/${earlier.conversationId}/messages`,
      login.body.tokens.accessToken,
    );
    expect(history).toEqual({ status: 200, body: { messages: [earlier.sent], hasMore: false } });

    // And it keeps serving: seqs continue where they were.
    const bob = new ParleyClient({ baseUrl: server.url, WebSocket, tokens: login.body.tokens });
    clients.push(bob);
    await bob.connect();
    expect((await bob.send(earlier.conversationId, 'after the restart')).seq).toBe(2);
  });
});

describe('without a built web client', () => {
  test('/ says how to build it, and the API works regardless', async () => {
    const server = await start({ DATA_DIR: tempDir('data'), WEB_ROOT: tempDir('empty-web') });
    expect(server.webClientBuilt).toBe(false);
    const index = await fetch(`${server.url}/`);
    expect(index.status).toBe(503);
    expect(await index.text()).toContain('npm run build');
    const registered = await rest(server, 'POST', '/v1/auth/register', undefined, {
      username: `carol_${randomBytes(4).toString('hex')}`,
      password: PASSWORD,
    });
    expect(registered.status).toBe(201);
    await server.stop();
  });
});

describe('with DATABASE_URL and REDIS_URL (real PostgreSQL and Redis)', () => {
  test('the same server runs on them, writing nothing to the data directory', async () => {
    const databaseUrl = process.env['PARLEY_TEST_DATABASE_URL'];
    const redisUrl = process.env['PARLEY_TEST_REDIS_URL'];
    if (!databaseUrl || !redisUrl) throw new Error('test services missing: did jest globalSetup run?');
    const dataDir = tempDir('unused-data');
    const server = await start({
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      AUTH_SIGNING_KEY: JSON.stringify(await generateSigningJwk('standalone-test')),
      BUS_PREFIX: `parley-standalone-test:${randomBytes(6).toString('hex')}:`,
      DATA_DIR: dataDir,
      WEB_ROOT: webRoot(),
    });
    expect(server.mode).toBe('servers');
    expect(server.database).toMatch(/^postgres:\/\//);
    expect(server.redisUrl).toMatch(/^redis:\/\//);
    await converse(server, 'hello through Redis');
    const ready = await rest(server, 'GET', '/readyz');
    expect(ready).toEqual({ status: 200, body: { status: 'ready', checks: { postgres: 'ok', redis: 'ok' } } });
    await server.stop();
    mkdirSync(dataDir, { recursive: true });
    expect(readdirSync(dataDir)).toEqual([]);
  });
});
