#!/usr/bin/env node
// `npm run migrate`: applies pending migrations to DATABASE_URL. Idempotent.
import { createDb, migrateToLatest } from '@parley/db';
import { migrations } from './index';

async function main(): Promise<void> {
  const connectionString = process.env['DATABASE_URL'];
  if (!connectionString) {
    process.stderr.write('DATABASE_URL is not set (e.g. postgres://user@127.0.0.1:5432/parley)\n');
    process.exit(2);
  }
  const db = createDb({ connectionString, maxConnections: 1, applicationName: 'parley-migrate' });
  try {
    const { applied } = await migrateToLatest(db.kysely, migrations);
    process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'already up to date\n');
  } finally {
    await db.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
