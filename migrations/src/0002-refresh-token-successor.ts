import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one instead.
// replaced_by: the token a refresh issued in this one's place, so a retry of a refresh
// whose reply was lost can be told apart from a stolen token (see AuthService.refresh).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE refresh_tokens ADD COLUMN replaced_by bytea`.execute(db);
}
