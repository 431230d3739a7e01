// The full topology (message service, gateway processes, nginx with TLS) at LOG_LEVEL=debug:
// cross-site WebSocket hijacking is refused on every upgrade path, a token signed by a
// retired key listed in AUTH_PREVIOUS_KEYS still works, passwords are stored as argon2id
// with at least OWASP's parameters, and no password, token or signing key reaches any
// log file of the run.
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { generateSigningJwk, importSigningJwk } from '@parley/auth';
import { createDb } from '@parley/db';
import type { AuthResponse } from '@parley/protocol';
import WebSocket from 'ws';
import { Fleet, testUrls, type RawSocket } from '../e2e/support/fleet';
import { signAs } from './support/authz-tokens';

jest.setTimeout(60_000);

let fleet: Fleet;
let stopped = false;
let retiredJwk: Awaited<ReturnType<typeof generateSigningJwk>>;
let currentJwk: Awaited<ReturnType<typeof generateSigningJwk>>;
/** Every secret the run handled: none may appear in a log line. */
const secrets = new Map<string, string>();

function remember(name: string, value: string): void {
  secrets.set(name, value);
  // A JWT could be logged in pieces: its signature alone identifies it too.
  const parts = value.split('.');
  if (parts.length === 3 && parts[2]) secrets.set(`${name} (signature)`, parts[2]);
}

async function api(method: string, url: string, body?: unknown, token?: string): Promise<{ status: number; json: unknown }> {
  const response = await fleet.fetch(`${fleet.topology.httpsUrl}${url}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as unknown) : null };
}

async function stopFleet(removeWorkDir: boolean): Promise<void> {
  if (stopped) return;
  stopped = true;
  for (const socket of fleet.rawSockets) socket.terminate();
  fleet.fetch.close();
  await fleet.topology.stop({ removeWorkDir });
}

beforeAll(async () => {
  retiredJwk = await generateSigningJwk(`retired-${randomBytes(3).toString('hex')}`);
  currentJwk = await generateSigningJwk(`current-${randomBytes(3).toString('hex')}`);
  const { d: _private, ...retiredPublic } = retiredJwk;
  fleet = await Fleet.start({
    name: 'authz-edge',
    gateways: 2,
    logLevel: 'debug',
    signingJwk: currentJwk,
    messageEnv: { AUTH_PREVIOUS_KEYS: JSON.stringify([retiredPublic]) },
  });
  remember('current signing key', String(currentJwk.d));
  remember('retired signing key', String(retiredJwk.d));
}, 60_000);

afterAll(async () => {
  if (!fleet) return;
  const workDir = fleet.topology.workDir;
  await stopFleet(false);
  if (process.env['PARLEY_E2E_KEEP_LOGS'] !== '1') await rm(workDir, { recursive: true, force: true });
});

const username = `sec_${randomBytes(4).toString('hex')}`;
const password = `pw-${randomBytes(12).toString('hex')}`;
const wrongPassword = `wrong-${randomBytes(12).toString('hex')}`;
let session: AuthResponse;

describe('through nginx', () => {
  test('register, login, a wrong password, refresh, REST calls', async () => {
    remember('password', password);
    remember('wrong password', wrongPassword);
    const registered = await api('POST', '/v1/auth/register', { username, password });
    expect(registered.status).toBe(201);
    const first = registered.json as AuthResponse;
    remember('register access token', first.tokens.accessToken);
    remember('register refresh token', first.tokens.refreshToken);
    expect((await api('POST', '/v1/auth/login', { username, password: wrongPassword })).status).toBe(401);
    const login = await api('POST', '/v1/auth/login', { username, password });
    expect(login.status).toBe(200);
    const second = login.json as AuthResponse;
    remember('login access token', second.tokens.accessToken);
    remember('login refresh token', second.tokens.refreshToken);
    const refreshed = await api('POST', '/v1/auth/refresh', { refreshToken: second.tokens.refreshToken });
    expect(refreshed.status).toBe(200);
    // A refresh answers with the new token pair only.
    session = { user: second.user, tokens: refreshed.json as AuthResponse['tokens'] };
    remember('refreshed access token', session.tokens.accessToken);
    remember('refreshed refresh token', session.tokens.refreshToken);
    // A refused refresh token and a refused bearer token are secrets too.
    const bogusRefresh = randomBytes(32).toString('base64url');
    remember('unknown refresh token', bogusRefresh);
    expect((await api('POST', '/v1/auth/refresh', { refreshToken: bogusRefresh })).status).toBe(401);
    expect((await api('GET', '/v1/me', undefined, first.tokens.accessToken)).status).toBe(200);
    expect((await api('GET', '/v1/me', undefined, `${first.tokens.accessToken}x`)).status).toBe(401);
  });

  test('nginx has no route to the gateways\' send-batch call; the message service answers it on its own port', async () => {
    const sends = [{ accessToken: session.tokens.accessToken, conversationId: randomUUID(), clientMessageId: 'internal', body: 'hi' }];
    const request = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sends }) };
    const viaNginx = await fleet.fetch(`${fleet.topology.httpsUrl}/internal/v1/send-batch`, request);
    expect(await viaNginx.text()).not.toContain('CONVERSATION_NOT_FOUND');
    const direct = await fleet.fetch(`${fleet.topology.messageUrl}/internal/v1/send-batch`, request);
    expect(direct.status).toBe(200);
    expect(JSON.parse(await direct.text())).toEqual({ results: [{ status: 404, error: { code: 'CONVERSATION_NOT_FOUND', message: expect.any(String) } }] });
  });

  test('argon2id with at least OWASP\'s baseline (m=19456 KiB, t=2, p=1) is what the database holds', async () => {
    const db = createDb({ connectionString: testUrls().databaseUrl, maxConnections: 1 });
    try {
      const row = await db.kysely.selectFrom('users').select('password_hash').where('username', '=', username).executeTakeFirstOrThrow();
      const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.exec(row.password_hash);
      expect(match).not.toBeNull();
      const [m, t, p] = [Number(match![1]), Number(match![2]), Number(match![3])];
      // OWASP: m=19456,t=2 is the floor; a larger memory may trade for fewer passes only as the cheat sheet lists.
      expect(m).toBeGreaterThanOrEqual(19456);
      expect(t).toBeGreaterThanOrEqual(2);
      expect(p).toBeGreaterThanOrEqual(1);
      expect(row.password_hash.includes(password)).toBe(false);
    } finally {
      await db.close();
    }
  });

  test('a token signed by the retired key in AUTH_PREVIOUS_KEYS still works; one by an unlisted key does not', async () => {
    const context = { issuer: 'parley', audience: 'parley' };
    const subject = { userId: session.user.id, sessionId: session.tokens.sessionId };
    const retired = await signAs({ ...context, signingKey: await importSigningJwk(retiredJwk) }, subject);
    const stranger = await signAs({ ...context, signingKey: await importSigningJwk(await generateSigningJwk('never-listed')) }, subject);
    remember('retired-key access token', retired);
    remember('stranger-key access token', stranger);
    expect((await api('GET', '/v1/me', undefined, retired)).status).toBe(200);
    expect(await api('GET', '/v1/me', undefined, stranger)).toMatchObject({ status: 401, json: { error: { code: 'UNAUTHENTICATED' } } });
    // The gateways learn the key set from the service and accept it on the upgrade too.
    const socket = fleet.openRaw({ token: retired });
    expect((await socket.opened()).userId).toBe(session.user.id);
    const refused = await fleet.openRaw({ token: stranger }).refusal();
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    socket.close();
  });
});

describe('cross-site WebSocket hijacking', () => {
  const allowed = () => fleet.topology.httpsUrl; // the topology's ALLOWED_ORIGINS: its own https origins
  const foreign = () => {
    const own = new URL(fleet.topology.httpsUrl);
    return [
      'https://evil.example',
      'null',
      `http://${own.host}`, // same host, another scheme
      `https://${own.hostname}:${Number(own.port) + 1}`, // same host, another port
      `${fleet.topology.httpsUrl}.evil.example`, // the allowed origin as a prefix
      `https://evil.example/${own.host}`,
    ];
  };

  /** A raw upgrade straight at a gateway (no nginx). */
  function direct(url: string, token: string, origin: string | undefined, viaSubprotocol: boolean): Promise<{ status: number; body: string }> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, viaSubprotocol ? ['parley.v1', `parley.auth.${token}`] : ['parley.v1'], {
      headers: viaSubprotocol ? {} : { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      ...(origin === undefined ? {} : { origin }),
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to the upgrade at ${url}`)), 10_000);
      ws.on('error', () => undefined);
      ws.once('unexpected-response', (_request, response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          clearTimeout(timer);
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      ws.once('message', () => {
        clearTimeout(timer);
        ws.terminate();
        resolve({ status: 101, body: '' });
      });
    });
  }

  test('a foreign Origin gets 403 FORBIDDEN_ORIGIN through nginx, by header and by subprotocol', async () => {
    const token = session.tokens.accessToken;
    for (const origin of foreign()) {
      for (const viaSubprotocol of [false, true]) {
        const socket: RawSocket = fleet.openRaw({ token, origin, viaSubprotocol });
        const refused = await socket.refusal();
        expect({ origin, viaSubprotocol, status: refused.status, body: JSON.parse(refused.body) as unknown }).toMatchObject({
          origin,
          viaSubprotocol,
          status: 403,
          body: { error: { code: 'FORBIDDEN_ORIGIN' } },
        });
      }
    }
    // Control: the allowed origin connects.
    const ok = fleet.openRaw({ token, origin: allowed(), viaSubprotocol: true });
    expect((await ok.opened()).userId).toBe(session.user.id);
    ok.close();
  });

  test('a foreign Origin gets 403 FORBIDDEN_ORIGIN directly at every gateway; the allowed one and none pass', async () => {
    const token = session.tokens.accessToken;
    for (const gateway of fleet.topology.gateways) {
      for (const origin of foreign()) {
        for (const viaSubprotocol of [false, true]) {
          const answer = await direct(gateway.url, token, origin, viaSubprotocol);
          expect({ node: gateway.nodeId, origin, viaSubprotocol, status: answer.status }).toEqual({
            node: gateway.nodeId,
            origin,
            viaSubprotocol,
            status: 403,
          });
          expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'FORBIDDEN_ORIGIN' } });
        }
      }
      // Without a token, the origin is still what is refused first.
      expect((await direct(gateway.url, '', 'https://evil.example', false)).status).toBe(403);
      expect((await direct(gateway.url, token, allowed(), true)).status).toBe(101);
      // Non-browser clients send no Origin and are not restricted by it.
      expect((await direct(gateway.url, token, undefined, false)).status).toBe(101);
    }
  });

  test('an `auth` frame with a fresh token works through nginx (socket authentication in the logged run)', async () => {
    const socket = fleet.openRaw({ token: session.tokens.accessToken, origin: allowed() });
    await socket.opened();
    const again = await api('POST', '/v1/auth/refresh', { refreshToken: session.tokens.refreshToken });
    expect(again.status).toBe(200);
    const fresh = again.json as AuthResponse['tokens'];
    remember('second refreshed access token', fresh.accessToken);
    remember('second refreshed refresh token', fresh.refreshToken);
    expect(await socket.request({ type: 'auth', token: fresh.accessToken })).toMatchObject({ type: 'ack' });
    expect(await socket.request({ type: 'auth', token: 'a.b.c' })).toMatchObject({ type: 'error', code: 'UNAUTHENTICATED' });
    socket.close();
  });
});

describe('logs', () => {
  async function logFiles(dir: string): Promise<string[]> {
    const found: string[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) found.push(...(await logFiles(full)));
      else if (entry.isFile() && entry.name.endsWith('.log')) found.push(full);
    }
    return found;
  }

  test('no password, token, refresh token or signing key appears in any log file of the run', async () => {
    expect(secrets.size).toBeGreaterThan(15);
    const workDir = fleet.topology.workDir;
    await stopFleet(false); // every process flushed and exited
    const files = await logFiles(workDir);
    const names = files.map((file) => path.relative(workDir, file)).sort();
    // The run wrote what it should: the service, each gateway, nginx's access and error logs.
    expect(names).toEqual(expect.arrayContaining(['message.log', 'gateway-1.log', 'gateway-2.log']));
    expect(names.some((name) => name.endsWith('access.log'))).toBe(true);
    expect(names.some((name) => name.endsWith('error.log'))).toBe(true);
    const contents = new Map<string, string>();
    for (const file of files) contents.set(path.relative(workDir, file), await readFile(file, 'utf8'));
    // Not vacuous: the run ran at LOG_LEVEL=debug and the requests were logged.
    const message = contents.get('message.log') ?? '';
    // Every request is logged (the services log nothing below info on these paths).
    expect(message).toContain('/v1/auth/refresh');
    expect(names.filter((name) => name.endsWith('access.log')).map((name) => contents.get(name)).join('')).toContain('/v1/auth/login');
    expect((await stat(path.join(workDir, 'gateway-1.log'))).size).toBeGreaterThan(0);
    const leaks: string[] = [];
    for (const [file, text] of contents) {
      for (const [name, secret] of secrets) if (text.includes(secret)) leaks.push(`${name} in ${file}`);
    }
    expect(leaks).toEqual([]);
  });
});
