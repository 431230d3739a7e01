import type { Executor } from './executor';

export async function createSession(db: Executor, userId: string, deviceName: string | null): Promise<string> {
  const row = await db
    .insertInto('sessions')
    .values({ user_id: userId, device_name: deviceName })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/** Several sessions by id, in one statement; missing ones are absent from the map. */
export async function findSessions(
  db: Executor,
  sessionIds: readonly string[],
): Promise<Map<string, { user_id: string; revoked_at: Date | null }>> {
  if (sessionIds.length === 0) return new Map();
  const rows = await db.selectFrom('sessions').select(['id', 'user_id', 'revoked_at']).where('id', 'in', sessionIds).execute();
  return new Map(rows.map((row) => [row.id, { user_id: row.user_id, revoked_at: row.revoked_at }]));
}

/** Revokes a live session; returns false when it was already revoked or does not exist. */
export async function revokeSession(db: Executor, sessionId: string, reason: string): Promise<boolean> {
  const result = await db
    .updateTable('sessions')
    .set({ revoked_at: new Date(), revoked_reason: reason })
    .where('id', '=', sessionId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function insertRefreshToken(
  db: Executor,
  token: { hash: Buffer; sessionId: string; expiresAt: Date },
): Promise<void> {
  await db
    .insertInto('refresh_tokens')
    .values({ token_hash: token.hash, session_id: token.sessionId, expires_at: token.expiresAt })
    .execute();
}

/** Locks the token row so two refreshes with one token are serialized: the second sees it rotated. */
export async function lockRefreshToken(db: Executor, hash: Buffer) {
  return db
    .selectFrom('refresh_tokens as t')
    .innerJoin('sessions as s', 's.id', 't.session_id')
    .select(['t.session_id', 't.expires_at', 't.rotated_at', 't.replaced_by', 's.user_id', 's.revoked_at'])
    .where('t.token_hash', '=', hash)
    .forUpdate('t')
    .executeTakeFirst();
}

/** Records that `hash` was exchanged for `successor` (the first time, or again within the grace). */
export async function markRefreshTokenRotated(db: Executor, hash: Buffer, successor: Buffer, firstTime: boolean): Promise<void> {
  await db
    .updateTable('refresh_tokens')
    .set(firstTime ? { rotated_at: new Date(), replaced_by: successor } : { replaced_by: successor })
    .where('token_hash', '=', hash)
    .execute();
}

/** Deletes a successor that was never used, returning whether it existed unused. */
export async function deleteUnusedRefreshToken(db: Executor, hash: Buffer): Promise<boolean> {
  const result = await db
    .deleteFrom('refresh_tokens')
    .where('token_hash', '=', hash)
    .where('rotated_at', 'is', null)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}
