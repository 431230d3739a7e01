import { AccessTokenSigner, hashPassword, importSigningJwk } from '@parley/auth';
import type { SigningJwk } from '@parley/deploy';
import type pg from 'pg';

/**
 * Users, sessions and conversations written straight into the database in a few bulk
 * statements, and access tokens minted with the service's signing key: registering
 * thousands of users through the API would measure argon2 and the login rate limiter,
 * not the chat path, and would take minutes on two cores. The rows are the ones the
 * message service writes itself (see migrations/src/0001-initial.ts).
 */

const CHUNK = 5000;

export interface SeededUser {
  id: string;
  accessToken: string;
}

export async function seedUsers(pool: pg.Pool, signingJwk: SigningJwk, count: number, prefix: string): Promise<SeededUser[]> {
  // One hash for everyone: nobody logs in with it, the column is NOT NULL.
  const passwordHash = await hashPassword(`${prefix}-unused-password`);
  const signer = new AccessTokenSigner(await importSigningJwk(signingJwk), { issuer: 'parley', audience: 'parley' }, 6 * 3600);
  const users: SeededUser[] = [];
  for (let from = 0; from < count; from += CHUNK) {
    const names = Array.from({ length: Math.min(CHUNK, count - from) }, (_, index) => `${prefix}_${from + index}`);
    const inserted = await pool.query<{ id: string; username: string }>(
      'INSERT INTO users (username, display_name, password_hash) SELECT u, u, $2 FROM unnest($1::text[]) AS u RETURNING id, username',
      [names, passwordHash],
    );
    const idOf = new Map(inserted.rows.map((row) => [row.username, row.id]));
    const ids = names.map((name) => idOf.get(name)!);
    const sessions = await pool.query<{ id: string; user_id: string }>(
      "INSERT INTO sessions (user_id, device_name) SELECT u, 'load' FROM unnest($1::uuid[]) AS u RETURNING id, user_id",
      [ids],
    );
    const sessionOf = new Map(sessions.rows.map((row) => [row.user_id, row.id]));
    for (const id of ids) users.push({ id, accessToken: (await signer.sign(id, sessionOf.get(id)!)).token });
  }
  return users;
}

/** The direct conversation of each pair; returns their ids in the pairs' order. */
export async function seedDirects(pool: pg.Pool, pairs: ReadonlyArray<readonly [string, string]>): Promise<string[]> {
  const ids: string[] = [];
  for (let from = 0; from < pairs.length; from += CHUNK) {
    const chunk = pairs.slice(from, from + CHUNK);
    // The service's pair key: the two ids in JavaScript string order (not the database collation's).
    const keys = chunk.map(([a, b]) => (a < b ? `${a}:${b}` : `${b}:${a}`));
    const created = await pool.query<{ id: string; direct_key: string }>(
      `INSERT INTO conversations (kind, direct_key, created_by, member_count)
       SELECT 'direct', k, c, 2 FROM unnest($1::text[], $2::uuid[]) AS p(k, c) RETURNING id, direct_key`,
      [keys, chunk.map(([a]) => a)],
    );
    const idOf = new Map(created.rows.map((row) => [row.direct_key, row.id]));
    const conversationIds = keys.map((key) => idOf.get(key)!);
    await pool.query(
      `INSERT INTO conversation_members (conversation_id, user_id, role, joined_seq, last_read_seq)
       SELECT c, u, 'member', 0, 0 FROM unnest($1::uuid[], $2::uuid[]) AS m(c, u)`,
      [conversationIds.flatMap((id) => [id, id]), chunk.flatMap(([a, b]) => [a, b])],
    );
    ids.push(...conversationIds);
  }
  return ids;
}

/** A group owned by the first member. */
export async function seedGroup(pool: pg.Pool, memberIds: readonly string[], title: string): Promise<string> {
  const created = await pool.query<{ id: string }>(
    "INSERT INTO conversations (kind, title, created_by, member_count) VALUES ('group', $1, $2, $3) RETURNING id",
    [title, memberIds[0], memberIds.length],
  );
  const id = created.rows[0]!.id;
  for (let from = 0; from < memberIds.length; from += CHUNK) {
    const chunk = memberIds.slice(from, from + CHUNK);
    await pool.query(
      `INSERT INTO conversation_members (conversation_id, user_id, role, joined_seq, last_read_seq)
       SELECT $1, u, CASE WHEN u = $3::uuid THEN 'owner' ELSE 'member' END, 0, 0 FROM unnest($2::uuid[]) AS u`,
      [id, chunk, memberIds[0]],
    );
  }
  return id;
}

/** Stored messages and highest seq per conversation: a gap is a seq below the highest that is not stored. */
export async function storedSeqs(pool: pg.Pool, conversationIds: readonly string[]): Promise<{ stored: number; gaps: number }> {
  const result = await pool.query<{ stored: string; gaps: string }>(
    `SELECT coalesce(sum(n), 0) AS stored, coalesce(sum(top - n), 0) AS gaps
       FROM (SELECT count(*) AS n, max(seq) AS top FROM messages WHERE conversation_id = ANY($1::uuid[]) GROUP BY conversation_id) AS per`,
    [conversationIds],
  );
  return { stored: Number(result.rows[0]!.stored), gaps: Number(result.rows[0]!.gaps) };
}
