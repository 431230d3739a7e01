// The embedded backend (PGlite) against the real one: the same statements give the same
// JS values, migrations (multi-statement scripts) apply, transactions behave, and a data
// directory keeps its data and refuses a second owner.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrations } from '@parley/migrations';
import { createDb, createEmbeddedDb, migrateToLatest, sql, type Db } from './index';

const OPEN_TIMEOUT_MS = 60_000; // a fresh PGlite runs initdb: seconds, not milliseconds

const databaseUrl = process.env['PARLEY_TEST_DATABASE_URL'];
if (!databaseUrl) throw new Error('PARLEY_TEST_DATABASE_URL is not set: did jest globalSetup run?');

let real: Db;
let embedded: Db;
const tempDirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-embedded-db-'));
  tempDirs.push(dir);
  return dir;
}

beforeAll(async () => {
  real = createDb({ connectionString: databaseUrl, maxConnections: 2 });
  embedded = await createEmbeddedDb();
}, OPEN_TIMEOUT_MS);

afterAll(async () => {
  await Promise.allSettled([real?.close(), embedded?.close()]);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('values come back as pg returns them', () => {
  test('literals of every type the repositories read', async () => {
    const query = sql`
      select 42::bigint as int8, 7::int as int4, 3::smallint as int2, true as bool, null::text as nothing,
             'text'::text as text, 'c0ffee00-0000-4000-8000-000000000001'::uuid as uuid,
             '2024-05-01 10:00:00.123456+02'::timestamptz as timestamptz, '\\x00ff10'::bytea as bytea,
             '{"a":[1,2]}'::jsonb as jsonb, 1.25::numeric as numeric, 0.5::float8 as float8,
             count(*) as counted, (extract(epoch from '2024-05-01 00:00:00+00'::timestamptz) * 1000000)::bigint as micros
    `;
    const [fromReal, fromEmbedded] = await Promise.all([query.execute(real.kysely), query.execute(embedded.kysely)]);
    expect(fromEmbedded.rows).toEqual(fromReal.rows);
    const row = fromEmbedded.rows[0] as Record<string, unknown>;
    expect(row['int8']).toBe(42);
    expect(row['counted']).toBe(1);
    expect(row['timestamptz']).toEqual(new Date('2024-05-01T08:00:00.123Z'));
    expect(Buffer.isBuffer(row['bytea'])).toBe(true);
    expect(row['bytea']).toEqual(Buffer.from([0x00, 0xff, 0x10]));
  });

  test('parameters of each type round-trip the same way', async () => {
    const at = new Date('2024-05-01T08:00:00.123Z');
    const bytes = Buffer.from('refresh-token-hash');
    const query = sql`
      select ${41}::bigint + 1 as int8, ${at}::timestamptz as at, ${bytes}::bytea as bytes,
             ${'c0ffee00-0000-4000-8000-000000000002'}::uuid as uuid, ${true}::boolean as flag, ${'x'} as text
    `;
    const [fromReal, fromEmbedded] = await Promise.all([query.execute(real.kysely), query.execute(embedded.kysely)]);
    expect(fromEmbedded.rows).toEqual(fromReal.rows);
    expect(fromEmbedded.rows[0]).toEqual({
      int8: 42,
      at,
      bytes,
      uuid: 'c0ffee00-0000-4000-8000-000000000002',
      flag: true,
      text: 'x',
    });
  });

  test('a bigint beyond Number.MAX_SAFE_INTEGER is an error on both, never a rounded number', async () => {
    const query = sql`select 9007199254740993::bigint as big`;
    await expect(query.execute(real.kysely)).rejects.toThrow(/MAX_SAFE_INTEGER/);
    await expect(query.execute(embedded.kysely)).rejects.toThrow(/MAX_SAFE_INTEGER/);
    expect((await sql<{ big: number }>`select 9007199254740991::bigint as big`.execute(embedded.kysely)).rows[0]?.big).toBe(
      Number.MAX_SAFE_INTEGER,
    );
  });

  test('constraint violations carry the SQLSTATE and constraint name the repositories test for', async () => {
    await sql`create temporary table uniq (id int constraint uniq_pkey primary key)`.execute(embedded.kysely);
    await sql`insert into uniq values (1)`.execute(embedded.kysely);
    await expect(sql`insert into uniq values (${1})`.execute(embedded.kysely)).rejects.toMatchObject({
      code: '23505',
      constraint: 'uniq_pkey',
    });
  });
});

describe('statements and transactions', () => {
  test('the migrations (multi-statement scripts) apply, once', async () => {
    const db = await createEmbeddedDb();
    try {
      expect((await migrateToLatest(db.kysely, migrations)).applied).toEqual(Object.keys(migrations));
      expect((await migrateToLatest(db.kysely, migrations)).applied).toEqual([]);
      const { rows } = await sql<{ table_name: string }>`
        select table_name from information_schema.tables where table_schema = 'public' order by table_name
      `.execute(db.kysely);
      expect(rows.map((row) => row.table_name)).toEqual(
        expect.arrayContaining(['conversation_members', 'conversations', 'messages', 'refresh_tokens', 'sessions', 'users']),
      );
    } finally {
      await db.close();
    }
  }, OPEN_TIMEOUT_MS);

  test('a script without parameters yields the rows of its last statement', async () => {
    const { rows } = await sql`select 1 as first; select 2 as second`.execute(embedded.kysely);
    expect(rows).toEqual([{ second: 2 }]);
  });

  test('affected row counts match, zero included', async () => {
    await sql`create temporary table counted (id int)`.execute(embedded.kysely);
    await sql`insert into counted values (1), (2)`.execute(embedded.kysely);
    const none = await sql`update counted set id = id where id > ${10}`.execute(embedded.kysely);
    const two = await sql`update counted set id = id + 10`.execute(embedded.kysely);
    expect(none.numAffectedRows ?? 0n).toBe(0n);
    expect(two.numAffectedRows).toBe(2n);
  });

  test('a failed transaction rolls back and the connection stays usable', async () => {
    await sql`create temporary table ledger (id int primary key)`.execute(embedded.kysely);
    await expect(
      embedded.kysely.transaction().execute(async (trx) => {
        await sql`insert into ledger values (1)`.execute(trx);
        await sql`insert into ledger values (1)`.execute(trx);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect((await sql`select * from ledger`.execute(embedded.kysely)).rows).toEqual([]);
  });

  test('concurrent read-modify-write transactions never lose an update', async () => {
    await sql`create temporary table tally (n bigint not null)`.execute(embedded.kysely);
    await sql`insert into tally values (0)`.execute(embedded.kysely);
    await Promise.all(
      Array.from({ length: 20 }, () =>
        embedded.kysely.transaction().execute(async (trx) => {
          const { rows } = await sql<{ n: number }>`select n from tally for update`.execute(trx);
          await sql`update tally set n = ${(rows[0]?.n ?? 0) + 1}`.execute(trx);
        }),
      ),
    );
    expect((await sql<{ n: number }>`select n from tally`.execute(embedded.kysely)).rows).toEqual([{ n: 20 }]);
  });
});

describe('a data directory', () => {
  test('keeps its data across close and reopen, and has one owner at a time', async () => {
    const dir = tempDir();
    const first = await createEmbeddedDb({ dataDir: dir });
    try {
      await sql`create table kept (note text)`.execute(first.kysely);
      await sql`insert into kept values (${'survives a restart'})`.execute(first.kysely);
      await expect(createEmbeddedDb({ dataDir: dir })).rejects.toThrow(/in use by this process/);
    } finally {
      await first.close();
    }
    const second = await createEmbeddedDb({ dataDir: dir });
    try {
      expect((await sql`select note from kept`.execute(second.kysely)).rows).toEqual([{ note: 'survives a restart' }]);
    } finally {
      await second.close();
    }
  }, OPEN_TIMEOUT_MS * 2);

  test('is refused while another live process holds it, taken over once that process is gone', async () => {
    const dir = tempDir();
    const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await once(holder, 'spawn');
    writeFileSync(join(dir, 'parley.lock'), `${holder.pid}\n`);
    await expect(createEmbeddedDb({ dataDir: dir })).rejects.toThrow(new RegExp(`in use by process ${holder.pid}`));
    holder.kill('SIGKILL');
    await once(holder, 'exit');
    const db = await createEmbeddedDb({ dataDir: dir });
    await db.close();
  }, OPEN_TIMEOUT_MS);
});
