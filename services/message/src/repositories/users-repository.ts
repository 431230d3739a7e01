import { sql, type UserRow } from '@parley/db';
import { isUniqueViolation, type Executor } from './executor';

export type PublicUserRow = Pick<UserRow, 'id' | 'username' | 'display_name'>;

/** Inserts a user; returns null when the username is taken (case-insensitively). */
export async function insertUser(
  db: Executor,
  user: { username: string; displayName: string; passwordHash: string },
): Promise<UserRow | null> {
  try {
    return await db
      .insertInto('users')
      .values({ username: user.username, display_name: user.displayName, password_hash: user.passwordHash })
      .returningAll()
      .executeTakeFirstOrThrow();
  } catch (error) {
    if (isUniqueViolation(error, 'users_username_lower_key')) return null;
    throw error;
  }
}

export async function findUserByUsername(db: Executor, username: string): Promise<UserRow | undefined> {
  return db
    .selectFrom('users')
    .selectAll()
    .where(sql`lower(username)`, '=', username.toLowerCase())
    .executeTakeFirst();
}

export async function findUserById(db: Executor, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findPublicUsers(db: Executor, ids: readonly string[]): Promise<PublicUserRow[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('users').select(['id', 'username', 'display_name']).where('id', 'in', ids).execute();
}

export async function updateDisplayName(db: Executor, id: string, displayName: string): Promise<UserRow> {
  return db
    .updateTable('users')
    .set({ display_name: displayName })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function updatePasswordHash(db: Executor, id: string, passwordHash: string): Promise<void> {
  await db.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', id).execute();
}
