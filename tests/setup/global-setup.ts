import { createDb, migrateToLatest } from '@parley/db';
import { migrations } from '@parley/migrations';
import pg from 'pg';
import { resolveTestServices, type TestServices } from './services';

declare global {
  // Shared between jest's global setup and teardown (same process).
  var parleyTestServices: (TestServices & { adminUrl: string; databaseName: string }) | undefined;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * Creates a database of this run's own (so concurrent runs never collide), migrates it
 * once, and hands its URL to the test workers through the environment.
 */
export default async function globalSetup(): Promise<void> {
  const services = await resolveTestServices();
  const databaseName = `parley_test_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: services.databaseUrl });
  await admin.connect();
  try {
    // From template0: nobody connects to it, so concurrent runs never wait on each other.
    await admin.query(`CREATE DATABASE ${databaseName} TEMPLATE template0 ENCODING 'UTF8'`);
  } finally {
    await admin.end();
  }
  const databaseUrl = withDatabase(services.databaseUrl, databaseName);
  const db = createDb({ connectionString: databaseUrl, maxConnections: 1 });
  try {
    await migrateToLatest(db.kysely, migrations);
  } finally {
    await db.close();
  }
  process.env['PARLEY_TEST_DATABASE_URL'] = databaseUrl;
  process.env['PARLEY_TEST_REDIS_URL'] = services.redisUrl;
  globalThis.parleyTestServices = { ...services, adminUrl: services.databaseUrl, databaseName };
}
