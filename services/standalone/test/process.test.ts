// `npm start` as a process: node services/standalone/dist/server.js (built by `npm run
// build`, which `npm test` runs first). It prints where to open it, stops cleanly on
// SIGINT and SIGTERM, refuses a bad configuration with exit code 2, and what it
// acknowledged survives being killed outright.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuthResponse, HistoryPage, SendMessageResponse } from '@parley/protocol';

jest.setTimeout(120_000);

const SERVER = join(__dirname, '..', 'dist', 'server.js');
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
const PASSWORD = 'correct horse battery staple';

const temps: string[] = [];
const children = new Set<ChildProcessWithoutNullStreams>();

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `parley-standalone-process-${prefix}-`));
  temps.push(dir);
  return dir;
}

beforeAll(() => {
  if (!existsSync(SERVER)) throw new Error(`${SERVER} is missing: run \`npm run build\` first (npm test does)`);
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

interface Started {
  child: ChildProcessWithoutNullStreams;
  url: string;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns the server and resolves once it printed its URL; fails with its output otherwise. */
async function spawnServer(env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, [SERVER], {
    env: { PATH: process.env['PATH'] ?? '', PORT: '0', ...env },
    stdio: 'pipe',
  });
  children.add(child);
  let output = '';
  const exited = once(child, 'exit').then(([code, signal]) => {
    children.delete(child);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null };
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL within ${START_TIMEOUT_MS} ms; output:\n${output}`)), START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /running at (http:\/\/\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code ?? signal}) before serving; output:\n${output}`));
    });
  });
  return { child, url, output: () => output, exited };
}

/** Resolves with how the process ended; fails if it is still running after STOP_TIMEOUT_MS. */
async function ended(started: Started): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      started.exited,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(
          () => reject(new Error(`still running ${STOP_TIMEOUT_MS} ms after the signal; output:\n${started.output()}`)),
          STOP_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for the exit and checks how it ended; a mismatch fails with the process's output. */
async function expectExit(started: Started, expected: { code: number | null; signal: NodeJS.Signals | null }) {
  const actual = await ended(started);
  if (actual.code !== expected.code || actual.signal !== expected.signal) {
    throw new Error(`expected exit ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}; output:\n${started.output()}`);
  }
}

async function post<T>(url: string, body: unknown, token?: string): Promise<{ status: number; body: T }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
}

function webRoot(): string {
  const dir = tempDir('web');
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Parley</title>\n');
  return dir;
}

test('prints the URL and where the data lives, serves, and exits 0 on SIGINT', async () => {
  const dataDir = tempDir('data');
  const started = await spawnServer({ DATA_DIR: dataDir, WEB_ROOT: webRoot() });
  expect(started.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(started.output()).toContain(`embedded PostgreSQL in ${join(dataDir, 'postgres')}`);
  const ready = await fetch(`${started.url}/readyz`);
  expect({ status: ready.status, body: await ready.json() }).toEqual({
    status: 200,
    body: { status: 'ready', checks: { postgres: 'ok' } },
  });
  expect((await fetch(`${started.url}/`)).status).toBe(200);

  started.child.kill('SIGINT');
  await expectExit(started, { code: 0, signal: null });
  expect(started.output()).toContain('Stopped.');
  // A clean stop releases the data directory.
  expect(existsSync(join(dataDir, 'postgres', 'parley.lock'))).toBe(false);
});

test('what it acknowledged survives SIGKILL; the next start takes the directory over and serves it', async () => {
  const dataDir = tempDir('data');
  const web = webRoot();
  const first = await spawnServer({ DATA_DIR: dataDir, WEB_ROOT: web });
  const registered = await post<AuthResponse>(`${first.url}/v1/auth/register`, { username: 'dora', password: PASSWORD });
  const peer = await post<AuthResponse>(`${first.url}/v1/auth/register`, { username: 'eve', password: PASSWORD });
  expect([registered.status, peer.status]).toEqual([201, 201]);
  const token = registered.body.tokens.accessToken;
  const direct = await post<{ id: string }>(`${first.url}/v1/conversations/direct`, { userId: peer.body.user.id }, token);
  const sent = await post<SendMessageResponse>(
    `${first.url}/v1/conversations/${direct.body.id}/messages`,
    { clientMessageId: 'before-the-crash', body: 'acknowledged, so kept' },
    token,
  );
  expect(sent.status).toBe(201);

  first.child.kill('SIGKILL');
  await expectExit(first, { code: null, signal: 'SIGKILL' });
  // The dead process's lock is still there; the next start must take it over.
  expect(existsSync(join(dataDir, 'postgres', 'parley.lock'))).toBe(true);

  const second = await spawnServer({ DATA_DIR: dataDir, WEB_ROOT: web });
  const login = await post<AuthResponse>(`${second.url}/v1/auth/login`, { username: 'dora', password: PASSWORD });
  expect(login.status).toBe(200);
  const history = await fetch(`${second.url}/v1/conversations/${direct.body.id}/messages`, {
    headers: { authorization: `Bearer ${login.body.tokens.accessToken}` },
  });
  expect(await history.json()).toEqual<HistoryPage>({ messages: [sent.body.message], hasMore: false });

  second.child.kill('SIGTERM');
  await expectExit(second, { code: 0, signal: null });
});

/** Runs the server with only this environment (and PATH) until it exits by itself. */
async function runToExit(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [SERVER], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: 'pipe' });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const [code] = (await once(child, 'exit')) as [number | null];
  children.delete(child);
  return { code, stderr };
}

test('a bad configuration is refused with exit code 2 and a message naming it', async () => {
  const outcome = await runToExit({ DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
  expect(outcome).toEqual({ code: 2, stderr: expect.stringContaining('REDIS_URL') });
});

test('a data directory that is not writable is a clear failure, not a hang', async () => {
  const parent = tempDir('readonly');
  const blocked = join(parent, 'file-not-dir');
  writeFileSync(blocked, 'not a directory');
  mkdirSync(join(parent, 'ok'));
  const outcome = await runToExit({ PORT: '0', DATA_DIR: join(blocked, 'data'), WEB_ROOT: join(parent, 'ok') });
  expect(outcome).toEqual({ code: 1, stderr: expect.stringContaining('file-not-dir') });
});
