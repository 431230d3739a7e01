import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { getFreePort, httpRequest, REPO_ROOT } from '@parley/deploy';
import { ParleyClient, type Message } from '@parley/client';
import pg from 'pg';
import WebSocket from 'ws';
import { isRunning, PASSWORD, testUrls } from './support/fleet';
import { httpsFetch } from './support/https-fetch';
import { Signal } from './support/wait';

// `npm run stack` as a newcomer runs it: the CLI process itself, on real PostgreSQL,
// Redis and nginx. It must say what is missing, and Ctrl-C must leave nothing behind.

jest.setTimeout(90000);

const CLI = path.join(REPO_ROOT, 'deploy/dist/cli.js');

interface RunningCli {
  child: ChildProcess;
  output(): string;
  /** Resolves once the output matches, rejects if the CLI exits first or the deadline passes. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited = false;
  const changed = new Signal();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    changed.notify();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  void exit.then(() => {
    exited = true;
    changed.notify();
  });
  return {
    child,
    output: () => output,
    exited: exit,
    async waitFor(pattern, timeoutMs) {
      await changed.until(() => pattern.test(output) || exited, timeoutMs, () => `${pattern} in:\n${output}`);
      const match = pattern.exec(output);
      if (!match) throw new Error(`the CLI exited before printing ${pattern}:\n${output}`);
      return match;
    },
  };
}

/** Every live process below `root` (children, nginx workers, grandchildren), read from /proc. */
function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while listing
    }
    // The command name may hold spaces and parentheses: the fields after the last ')' are fixed.
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** Two users chat through nginx (https for REST, wss for the socket), as a newcomer's browser would. */
async function chatThroughNginx(baseUrl: string, ca: string, tag: string): Promise<Message> {
  const client = () =>
    new ParleyClient({
      baseUrl,
      fetch: httpsFetch(ca),
      WebSocket: WebSocket as never,
      webSocketOptions: { ca, perMessageDeflate: false },
    });
  const [alice, bob] = [client(), client()];
  try {
    const aliceUser = await alice.register({ username: `alice_${tag}`, password: PASSWORD });
    const bobUser = await bob.register({ username: `bob_${tag}`, password: PASSWORD });
    const heard = new Promise<Message>((resolve) => bob.on('message', (message) => resolve(message)));
    await bob.connect();
    const direct = await alice.rest.openDirect(bobUser.user.id);
    await alice.connect();
    const sent = await alice.send(direct.id, 'hello through nginx');
    const received = await heard;
    expect(received).toMatchObject({ seq: sent.seq, senderId: aliceUser.user.id, body: 'hello through nginx' });
    return received;
  } finally {
    await Promise.all([alice.close(), bob.close()]);
  }
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

describe('npm run stack', () => {
  it('lists every missing part with how to get it, and starts nothing', async () => {
    const [closedPg, closedRedis] = [await getFreePort(), await getFreePort()];
    const cli = runCli(['--nginx', '/nonexistent/sbin/nginx'], {
      ...process.env,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPg}/parley`,
      REDIS_URL: `redis://127.0.0.1:${closedRedis}`,
    });
    const [code] = await cli.exited;
    expect(code).toBe(1);
    const output = cli.output();
    expect(output).toContain(`PostgreSQL is not reachable at 127.0.0.1:${closedPg}`);
    expect(output).toContain('apt-get install -y postgresql');
    expect(output).toContain(`Redis is not reachable at 127.0.0.1:${closedRedis}`);
    expect(output).toContain('apt-get install -y redis-server');
    expect(output).toContain('nginx not found at /nonexistent/sbin/nginx');
    expect(output).not.toContain('Parley is up');
  });

  it('creates and migrates the database, serves the web client and a chat through nginx, and Ctrl-C stops every process', async () => {
    const { databaseUrl, redisUrl } = testUrls();
    const databaseName = `parley_stack_${process.pid}_${Date.now().toString(36)}`;
    const port = await getFreePort();
    const cli = runCli(['--gateways', '2', '--port', String(port), '--log-level', 'warn', '--bus-prefix', `${databaseName}:`], {
      ...process.env,
      DATABASE_URL: withDatabase(databaseUrl, databaseName),
      REDIS_URL: redisUrl,
    });
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    try {
      // The last line of the banner: every pid line is printed by then.
      await cli.waitFor(/Ctrl-C stops everything\./, 60000);
      const output = cli.output();
      expect(output).toContain(`created database ${databaseName}`);
      expect(output).toContain('migrations applied: 0001-initial');
      const pids = [...output.matchAll(/pid (\d+)/g)].map((match) => Number(match[1]));
      expect(pids).toHaveLength(4); // message service, nginx, two gateways
      expect(pids.every(isRunning)).toBe(true);
      const workDir = /logs in (\S+)\)/.exec(output)![1]!;
      const ca = readFileSync(path.join(workDir, 'cert.pem'), 'utf8');

      const ready = await httpRequest(`https://127.0.0.1:${port}/readyz`, { ca });
      expect(ready.status).toBe(200);
      const page = await httpRequest(`https://127.0.0.1:${port}/`, { ca });
      expect(page.status).toBe(200);
      expect(page.body).toContain('<div id="app">');
      await chatThroughNginx(`https://127.0.0.1:${port}`, ca, Date.now().toString(36));

      // Every process it started, nginx's workers included, whatever the CLI printed.
      const started = descendantsOf(cli.child.pid!);
      expect(started.length).toBeGreaterThan(pids.length);
      expect(started).toEqual(expect.arrayContaining(pids));
      cli.child.kill('SIGINT');
      const [code] = await cli.exited;
      expect({ code, output: cli.output() }).toEqual({ code: 0, output: expect.stringContaining('stopped') });
      expect(started.filter(isRunning)).toEqual([]);
      expect(existsSync(workDir)).toBe(false);
    } finally {
      if (cli.child.exitCode === null) {
        cli.child.kill('SIGINT');
        await cli.exited;
      }
      await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
      await admin.end();
    }
  });
});
