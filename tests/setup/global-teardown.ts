import pg from 'pg';

export default async function globalTeardown(): Promise<void> {
  const services = globalThis.parleyTestServices;
  if (!services) return;
  const admin = new pg.Client({ connectionString: services.adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${services.databaseName} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  await services.stop();
}
