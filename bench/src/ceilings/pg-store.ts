/**
 * Ceiling: the message service's storing transaction replayed straight against
 * PostgreSQL with node-postgres, in a scratch database created, migrated and dropped by
 * the run, synchronous_commit on (the server's setting is checked, and each connection
 * sets it). Measured over 1,000 direct conversations (writers rarely meet on a row) and
 * over one hot group conversation (every writer queues on its row lock), each as:
 *
 *   service           the statements MessageService.send runs, one round trip each,
 *                     unnamed (parsed and planned each time), as Kysely sends them
 *   four-statement    begin, seq-allocating update, insert, commit (prepared)
 *   single-statement  all of the service's work in one prepared statement (pg-store-sql.ts)
 *
 * Client connections are spread over a few processes so node-postgres is not the limit.
 */
import { join } from 'node:path';
import { createDb, migrateToLatest } from '@parley/db';
import { migrations } from '@parley/migrations';
import pg from 'pg';
import { Child, stopAll } from './children';
import { Histogram } from '../load/histogram';
import { latencySummary, type LatencySummary } from './histogram';
import type { PgDoneReply, PgStoreVariant, WorkConversation } from './pg-store-worker';
import { sumCpuSeconds } from './procfs';

export type { PgStoreVariant } from './pg-store-worker';
export type PgStoreLayout = 'spread' | 'hot';

export interface PgStoreOptions {
  /** A role that may CREATE DATABASE, e.g. postgres://postgres@127.0.0.1:5432/postgres. */
  adminUrl: string;
  /** Concurrent connections (the message service's pool is 20). Default 20. */
  connections?: number;
  /** Client processes the connections are split over. Default 2. */
  processes?: number;
  /** Measured time per run. Default 5,000 ms. */
  durationMs?: number;
  /**
   * Unmeasured sending before each run: a new backend's first statements load its
   * catalog caches and plans, which on two cores is seconds of CPU. Default 1,000 ms.
   */
  warmupMs?: number;
  /** Conversations of the spread layout. Default 1,000 direct conversations. */
  conversations?: number;
  /** Members (senders) of the hot group. Default 50. */
  hotSenders?: number;
  /** Default 100 bytes. */
  bodyBytes?: number;
  /** Default all three. */
  variants?: PgStoreVariant[];
  /** Default both. */
  layouts?: PgStoreLayout[];
  /** Keep the scratch database (for a look afterwards). Default false. */
  keepDatabase?: boolean;
}

export interface PgStoreRun {
  variant: PgStoreVariant;
  layout: PgStoreLayout;
  conversations: number;
  connections: number;
  processes: number;
  /** Round trips per stored message, BEGIN and COMMIT included. */
  roundTripsPerMessage: number;
  transactions: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  transactionsPerSecond: number;
  /** Per transaction, BEGIN to COMMIT acknowledged, at the client. */
  latency: LatencySummary;
  /** Every conversation's seqs are exactly 1..last_seq after the run. */
  gapless: boolean;
  /** The PostgreSQL backends serving the run, and the client processes, % of one core; null where /proc cannot see them. */
  serverCpuPercent: number | null;
  clientCpuPercent: number;
}

export interface PgStoreResult {
  ceiling: 'pg-store';
  server: { version: string; synchronousCommit: string; fsync: string; walSyncMethod: string; sharedBuffers: string; maxConnections: number };
  runs: PgStoreRun[];
  /** transactions/s by layout and variant, for the report. */
  table: Record<PgStoreLayout, Partial<Record<PgStoreVariant, number>>>;
}

const WORKER = join(__dirname, 'pg-store-worker.js');
const ROUND_TRIPS: Record<PgStoreVariant, { direct: number; group: number }> = {
  service: { direct: 9, group: 8 },
  'four-statement': { direct: 4, group: 4 },
  'single-statement': { direct: 1, group: 1 },
};

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Users, 1,000 direct conversations of two members each, and one group of `hotSenders`. */
async function seed(client: pg.Client, conversations: number, hotSenders: number): Promise<{ direct: WorkConversation[]; hot: WorkConversation }> {
  const users = await client.query<{ id: string }>(
    `insert into users (username, display_name, password_hash)
     select 'ceiling_' || g, 'Ceiling ' || g, 'not-a-hash' from generate_series(1, $1::int) g
     returning id`,
    [conversations * 2],
  );
  const ids = users.rows.map((row) => row.id);
  const pairs = Array.from({ length: conversations }, (_, index) => [ids[2 * index]!, ids[2 * index + 1]!].sort() as [string, string]);
  const direct = await client.query<{ id: string; direct_key: string }>(
    `insert into conversations (kind, direct_key, created_by, member_count)
     select 'direct', k, split_part(k, ':', 1)::uuid, 2 from unnest($1::text[]) k
     returning id, direct_key`,
    [pairs.map(([a, b]) => `${a}:${b}`)],
  );
  const directConversations: WorkConversation[] = direct.rows.map((row) => ({ id: row.id, kind: 'direct', members: row.direct_key.split(':') }));
  await client.query(
    `insert into conversation_members (conversation_id, user_id, role, joined_seq, last_read_seq)
     select c.id, split_part(c.direct_key, ':', s)::uuid, 'member', 0, 0 from conversations c, generate_series(1, 2) s where c.kind = 'direct'`,
  );
  const hotMembers = ids.slice(0, hotSenders);
  const group = await client.query<{ id: string }>(
    `insert into conversations (kind, title, created_by, member_count) values ('group', 'hot', $1, $2) returning id`,
    [hotMembers[0], hotMembers.length],
  );
  await client.query(
    `insert into conversation_members (conversation_id, user_id, role, joined_seq, last_read_seq)
     select $1, u, case when u = $2::uuid then 'owner' else 'member' end, 0, 0 from unnest($3::uuid[]) u`,
    [group.rows[0]!.id, hotMembers[0], hotMembers],
  );
  return { direct: directConversations, hot: { id: group.rows[0]!.id, kind: 'group', members: hotMembers } };
}

/** Empties the messages and seqs, so each run starts from the same state and gaplessness is checkable. */
async function reset(client: pg.Client): Promise<void> {
  await client.query('truncate messages');
  await client.query('update conversations set last_seq = 0, last_rev = 0');
  await client.query('update conversation_members set last_read_seq = 0, joined_seq = 0');
  await client.query('vacuum analyze conversations, conversation_members, messages');
  // Each run then starts just after a checkpoint: the same full-page writes for all. Needs pg_checkpoint or superuser.
  await client.query('checkpoint').catch(() => undefined);
}

async function gapless(client: pg.Client): Promise<boolean> {
  const result = await client.query<{ bad: string }>(
    `select count(*) as bad from conversations c
     where c.last_seq <> (select count(*) from messages m where m.conversation_id = c.id)
        or c.last_seq <> coalesce((select max(seq) from messages m where m.conversation_id = c.id), 0)`,
  );
  return Number(result.rows[0]!.bad) === 0;
}

export async function measurePgStore(options: PgStoreOptions): Promise<PgStoreResult> {
  const connections = options.connections ?? 20;
  const processes = Math.max(1, Math.min(options.processes ?? 2, connections));
  const durationMs = options.durationMs ?? 5000;
  const databaseName = `parley_ceiling_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: options.adminUrl });
  await admin.connect();
  let control: pg.Client | undefined;
  const workers: Child[] = [];
  try {
    // From template0: nobody connects to it, so concurrent runs never wait on each other.
    await admin.query(`CREATE DATABASE ${databaseName} TEMPLATE template0 ENCODING 'UTF8'`);
    const url = new URL(withDatabase(options.adminUrl, databaseName));
    // Every connection of the run commits synchronously, whatever the server default.
    url.searchParams.set('options', '-c synchronous_commit=on');
    const databaseUrl = url.toString();
    const db = createDb({ connectionString: databaseUrl, maxConnections: 1 });
    try {
      await migrateToLatest(db.kysely, migrations);
    } finally {
      await db.close();
    }
    control = new pg.Client({ connectionString: databaseUrl });
    await control.connect();
    const setting = async (name: string) => (await control!.query<{ setting: string }>(`select current_setting($1) as setting`, [name])).rows[0]!.setting;
    const server = {
      version: await setting('server_version'),
      synchronousCommit: await setting('synchronous_commit'),
      fsync: await setting('fsync'),
      walSyncMethod: await setting('wal_sync_method'),
      sharedBuffers: await setting('shared_buffers'),
      maxConnections: Number(await setting('max_connections')),
    };
    const { direct, hot } = await seed(control, options.conversations ?? 1000, options.hotSenders ?? 50);

    for (let index = 0; index < processes; index += 1) {
      const share = Math.floor(((index + 1) * connections) / processes) - Math.floor((index * connections) / processes);
      const worker = Child.start(`pg client ${index + 1}/${processes}`, WORKER);
      workers.push(worker);
      await worker.request({ type: 'connect', databaseUrl, connections: share }, 'connected', 30_000);
    }
    const backendPids = (
      await control.query<{ pid: number }>(`select pid from pg_stat_activity where datname = current_database() and application_name = 'parley-ceiling'`)
    ).rows.map((row) => row.pid);
    const serverCpu = () => {
      try {
        return sumCpuSeconds(backendPids);
      } catch {
        return null; // PostgreSQL in a container or on another host: its PIDs are not ours to read
      }
    };

    const runs: PgStoreRun[] = [];
    const table: PgStoreResult['table'] = { spread: {}, hot: {} };
    for (const layout of options.layouts ?? ['spread', 'hot']) {
      const conversations = layout === 'spread' ? direct : [hot];
      for (const variant of options.variants ?? ['service', 'four-statement', 'single-statement']) {
        await reset(control);
        const tag = `${layout}-${variant}-${Date.now().toString(36)}`;
        const work = (step: string, ms: number) =>
          Promise.all(
            workers.map((worker, index) =>
              worker.request<PgDoneReply>(
                { type: 'run', variant, conversations, durationMs: ms, tag: `${tag}-${step}-w${index}`, bodyBytes: options.bodyBytes ?? 100 },
                'done',
                ms + 60_000,
              ),
            ),
          );
        if ((options.warmupMs ?? 1000) > 0) await work('warmup', options.warmupMs ?? 1000);
        const serverCpu0 = serverCpu();
        const clientCpu0 = sumCpuSeconds(workers.map((worker) => worker.pid));
        const replies = await work('run', durationMs);
        const serverCpu1 = serverCpu();
        const clientCpu = sumCpuSeconds(workers.map((worker) => worker.pid)) - clientCpu0;
        const transactions = replies.reduce((sum, reply) => sum + reply.transactions, 0);
        const elapsedMs = Math.max(...replies.map((reply) => reply.elapsedMs));
        const histogram = new Histogram();
        for (const reply of replies) histogram.merge(reply.histogram);
        const transactionsPerSecond = Math.round((transactions / elapsedMs) * 1000);
        runs.push({
          variant,
          layout,
          conversations: conversations.length,
          connections,
          processes,
          roundTripsPerMessage: ROUND_TRIPS[variant][layout === 'spread' ? 'direct' : 'group'],
          transactions,
          errors: replies.reduce((sum, reply) => sum + reply.errors, 0),
          firstError: replies.find((reply) => reply.firstError)?.firstError,
          elapsedMs: Math.round(elapsedMs),
          transactionsPerSecond,
          latency: latencySummary(histogram),
          gapless: await gapless(control),
          serverCpuPercent: serverCpu0 === null || serverCpu1 === null ? null : Math.round(((serverCpu1 - serverCpu0) / elapsedMs) * 100_000),
          clientCpuPercent: Math.round((clientCpu / elapsedMs) * 100_000),
        });
        table[layout][variant] = transactionsPerSecond;
      }
    }
    return { ceiling: 'pg-store', server, runs, table };
  } finally {
    await stopAll(workers);
    await control?.end().catch(() => undefined);
    if (!options.keepDatabase) await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
  }
}

