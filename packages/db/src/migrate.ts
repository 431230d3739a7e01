import { Migrator, type Kysely, type Migration, type MigrationResultSet } from 'kysely';

export interface MigrationOutcome {
  applied: string[];
}

/**
 * Applies every pending migration, in name order, in one transaction (Kysely's default
 * on PostgreSQL): all of them or none. Running it again is a no-op; Kysely's lock table
 * keeps two concurrent runs from racing.
 * Throws with the failing migration's name when one fails.
 */
export async function migrateToLatest(
  // Migrations are frozen in time and must not depend on today's `Database` type.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  db: Kysely<any>,
  migrations: Record<string, Migration>,
): Promise<MigrationOutcome> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
  });
  const { error, results }: MigrationResultSet = await migrator.migrateToLatest();
  const failed = results?.find((result) => result.status === 'Error');
  if (error !== undefined) {
    const where = failed ? ` in migration ${failed.migrationName}` : '';
    throw new Error(`migration failed${where}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
