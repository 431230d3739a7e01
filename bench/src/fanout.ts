#!/usr/bin/env node
/**
 * Fan-out cost: Redis commands per message, for a 1:1 message across two gateway nodes
 * and for a 1,000-member group spread over three nodes (all members online).
 *
 *   npm run build && DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench:fanout
 *
 * Runs its own redis-server (port 6391) so INFO commandstats counts only this run, a
 * fresh database, and the full local topology of `npm run stack` (the message service,
 * three gateway processes, nginx), with 1,001 real WebSocket clients connected straight
 * to the gateways so the spread over nodes is exact. Prints a table and writes bench/results/.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AccessTokenSigner, generateSigningJwk, hashPassword, importSigningJwk } from '@parley/auth';
import { createDb, migrateToLatest } from '@parley/db';
import { PrivateRedis, startTopology } from '@parley/deploy';
import { migrations } from '@parley/migrations';
import { Redis } from 'ioredis';
import pg from 'pg';
import WebSocket from 'ws';

const GROUP_SIZE = 1000;
const NODES = 3;
const MESSAGES = 50;
const UNLIMITED = '100000';

interface Client {
  userId: string;
  node: number;
  socket: WebSocket;
  received: number;
}

async function main(): Promise<void> {
  const adminUrl = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const redisServer = await PrivateRedis.start(6391);
  const databaseName = `parley_bench_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${databaseName} TEMPLATE template0 ENCODING 'UTF8'`);
  const url = new URL(adminUrl);
  url.pathname = `/${databaseName}`;
  const db = createDb({ connectionString: url.toString(), maxConnections: 4 });
  await migrateToLatest(db.kysely, migrations);

  const signingJwk = await generateSigningJwk('bench');
  const prefix = 'parley:';
  const topology = await startTopology({
    databaseUrl: url.toString(),
    redisUrl: redisServer.url,
    gateways: NODES,
    busPrefix: prefix,
    signingJwk,
    logLevel: 'warn',
    // Long heartbeats and presence TTLs keep their Redis traffic out of the measured window.
    heartbeatMs: 600_000,
    drainWindowMs: 500,
    messageEnv: {
      LOGIN_RATE_LIMIT_MAX: UNLIMITED,
      LOGIN_RATE_LIMIT_PER_IP_MAX: UNLIMITED,
      REGISTER_RATE_LIMIT_MAX: UNLIMITED,
    },
    gatewayEnv: { PRESENCE_TTL_MS: '600000', RATE_LIMIT_FRAMES_PER_SECOND: '1000' },
  });
  const messageUrl = topology.messageUrl;
  const gateways = topology.gateways;

  // Users and sessions straight into the database: hashing 1,000 passwords measures argon2, not fan-out.
  const passwordHash = await hashPassword('bench-password');
  const users = await db.kysely
    .insertInto('users')
    .values(
      Array.from({ length: GROUP_SIZE + 1 }, (_, index) => ({
        username: `bench_${index}`,
        display_name: `Bench ${index}`,
        password_hash: passwordHash,
      })),
    )
    .returning('id')
    .execute();
  const signer = new AccessTokenSigner(await importSigningJwk(signingJwk), { issuer: 'parley', audience: 'parley' }, 3600);
  const tokens = new Map<string, string>();
  for (const { id } of users) {
    const session = await db.kysely.insertInto('sessions').values({ user_id: id, device_name: 'bench' }).returning('id').executeTakeFirstOrThrow();
    tokens.set(id, (await signer.sign(id, session.id)).token);
  }
  const ids = users.map((user) => user.id);
  const [owner, ...others] = ids.slice(0, GROUP_SIZE) as [string, ...string[]];
  const outsider = ids[GROUP_SIZE]!;

  const api = async (userId: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(messageUrl + path, {
      method,
      headers: { authorization: `Bearer ${tokens.get(userId)}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as { id: string };
  };
  const group = await api(owner, 'POST', '/v1/conversations/groups', { title: 'bench', memberIds: others });
  const direct = await api(owner, 'POST', '/v1/conversations/direct', { userId: outsider });

  // Every member online, spread round-robin over the three nodes.
  const clients: Client[] = [];
  await Promise.all(
    [...ids.slice(0, GROUP_SIZE), outsider].map(async (userId, index) => {
      const node = index % NODES;
      const socket = new WebSocket(`${gateways[node]!.url.replace('http', 'ws')}/ws`, { headers: { authorization: `Bearer ${tokens.get(userId)}` } });
      const client: Client = { userId, node, socket, received: 0 };
      socket.on('message', (data: Buffer) => {
        if (data.includes('"type":"message"')) client.received += 1;
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('message', () => resolve());
        socket.once('error', reject);
      });
      clients.push(client);
    }),
  );

  const measure = async (label: string, conversationId: string, recipients: Client[]) => {
    const stats = new Redis(redisServer.url);
    for (const client of recipients) client.received = 0;
    await stats.config('RESETSTAT');
    const started = performance.now();
    for (let index = 0; index < MESSAGES; index += 1) {
      await api(owner, 'POST', `/v1/conversations/${conversationId}/messages`, { clientMessageId: `${label.replace(/[^A-Za-z0-9]+/g, '-')}-${index}`, body: `message ${index}` });
    }
    const deadline = Date.now() + 60_000;
    while (recipients.some((client) => client.received < MESSAGES)) {
      if (Date.now() > deadline) throw new Error(`${label}: not every recipient got every message`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const elapsedMs = performance.now() - started;
    const info = (await stats.info('commandstats')) as string;
    const commands: Record<string, number> = {};
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commands[match[1]!] = Number(match[2]);
    for (const name of Object.keys(commands)) {
      if (name.startsWith('config') || name.startsWith('info')) delete commands[name]; // our own RESETSTAT and INFO
    }
    // How many connections Redis pushes each PUBLISH to: one per node holding a recipient.
    const numsub = (await stats.pubsub('NUMSUB', `${prefix}conv:{${conversationId}}`)) as [string, number];
    const total = Object.values(commands).reduce((sum, calls) => sum + calls, 0);
    const nodesWithRecipients = new Set(recipients.map((client) => client.node)).size;
    const result = {
      scenario: label,
      recipients: recipients.length,
      nodesWithRecipients,
      subscribedNodeConnections: Number(numsub[1]),
      messages: MESSAGES,
      redisCommands: commands,
      redisCommandsPerMessage: total / MESSAGES,
      deliveries: recipients.reduce((sum, client) => sum + client.received, 0),
      elapsedMs: Math.round(elapsedMs),
    };
    stats.disconnect();
    return result;
  };

  const inGroup = new Set(ids.slice(0, GROUP_SIZE));
  const results = [
    await measure('direct 1:1 (2 nodes)', direct.id, clients.filter((c) => c.userId === owner || c.userId === outsider)),
    await measure(`group of ${GROUP_SIZE} (${NODES} nodes)`, group.id, clients.filter((c) => inGroup.has(c.userId))),
  ];

  const lines = [
    '| scenario | recipients | nodes holding recipients | channel subscribers | Redis commands / message | commands (total) | deliveries | time |',
    '|---|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.scenario} | ${r.recipients} | ${r.nodesWithRecipients} | ${r.subscribedNodeConnections} | ${r.redisCommandsPerMessage.toFixed(2)} | ${Object.entries(r.redisCommands)
          .map(([name, calls]) => `${name}=${calls}`)
          .join(' ')} | ${r.deliveries} | ${r.elapsedMs} ms |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const resultsDir = join(__dirname, '..', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(resultsDir, `fanout-${stamp}.json`), `${JSON.stringify({ date: new Date().toISOString(), results }, null, 2)}\n`);
  writeFileSync(join(resultsDir, 'fanout-latest.md'), `# Fan-out (${new Date().toISOString()})\n\n${lines.join('\n')}\n`);

  for (const client of clients) client.socket.terminate();
  await topology.stop({ removeWorkDir: true });
  await db.close();
  await admin.query(`DROP DATABASE ${databaseName} WITH (FORCE)`);
  await admin.end();
  await redisServer.stop();
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
