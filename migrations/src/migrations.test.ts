import { randomBytes } from 'node:crypto';
import { createDb, migrateToLatest, sql, type Db } from '@parley/db';
import pg from 'pg';
import { migrations } from './index';

/**
 * Migrations on a database of their own, created empty here: the shared test database
 * is already migrated by the global setup, so it cannot show a first run.
 */
const adminUrl = process.env['PARLEY_TEST_DATABASE_URL'];
if (!adminUrl) throw new Error('PARLEY_TEST_DATABASE_URL is not set: did jest globalSetup run?');

const databaseName = `parley_migrations_${process.pid}_${randomBytes(4).toString('hex')}`;
let admin: pg.Client;
let db: Db | undefined;

function urlFor(database: string): string {
  const url = new URL(adminUrl as string);
  url.pathname = `/${database}`;
  return url.toString();
}

beforeAll(async () => {
  admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${databaseName} TEMPLATE template0 ENCODING 'UTF8'`);
  db = createDb({
    connectionString: urlFor(databaseName),
    maxConnections: 2,
    applicationName: 'parley-migrations-test',
  });
});

afterAll(async () => {
  await db?.close();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
});

async function publicTables(): Promise<string[]> {
  const { rows } = await sql<{ table_name: string }>`
    select table_name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE'
    order by table_name
  `.execute(db!.kysely);
  return rows.map((row) => row.table_name);
}

const expectedTables = [
  'blocks',
  'contacts',
  'conversation_members',
  'conversations',
  'messages',
  'refresh_tokens',
  'sessions',
  'users',
];

test('the migration list is non-empty and in name order', () => {
  const names = Object.keys(migrations);
  expect(names.length).toBeGreaterThan(0);
  expect(names).toEqual([...names].sort());
});

test('a fresh database starts without the schema', async () => {
  expect(await publicTables()).toEqual([]);
});

test('the first run applies every migration, the second applies nothing', async () => {
  const first = await migrateToLatest(db!.kysely, migrations);
  expect(first.applied).toEqual(Object.keys(migrations));

  const second = await migrateToLatest(db!.kysely, migrations);
  expect(second.applied).toEqual([]);

  const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db!.kysely);
  expect(rows.map((row) => row.name)).toEqual(Object.keys(migrations));
});

test('the tables exist, with the keys the design relies on', async () => {
  const tables = await publicTables();
  for (const table of expectedTables) expect(tables).toContain(table);

  const { rows: pk } = await sql<{ column_name: string }>`
    select a.attname as column_name
    from pg_index i
    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
    where i.indrelid = 'messages'::regclass and i.indisprimary
    order by array_position(i.indkey, a.attnum)
  `.execute(db!.kysely);
  expect(pk.map((row) => row.column_name)).toEqual(['conversation_id', 'seq']);

  const { rows: columns } = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns
    where table_schema = 'public'
      and (table_name, column_name) in (
        ('conversations', 'last_seq'), ('conversations', 'last_rev'),
        ('conversation_members', 'last_read_seq'), ('messages', 'client_message_id')
      )
  `.execute(db!.kysely);
  expect(columns).toHaveLength(4);
});

test('usernames are unique regardless of case', async () => {
  await sql`insert into users (username, display_name, password_hash) values ('Alice', 'a', 'x')`.execute(db!.kysely);
  await expect(
    sql`insert into users (username, display_name, password_hash) values ('aLICE', 'b', 'x')`.execute(db!.kysely),
  ).rejects.toThrow(/unique/i);
});
