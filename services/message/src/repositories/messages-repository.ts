import type { MessageRow } from '@parley/db';
import type { Executor } from './executor';

/**
 * Takes the next rev, for an edit or delete. Must run in the transaction that writes the
 * change and after the conversation row lock, so revs, like seqs, never skip or repeat.
 */
export async function allocateRev(db: Executor, conversationId: string): Promise<number> {
  const row = await db
    .updateTable('conversations')
    .set((eb) => ({ last_rev: eb('last_rev', '+', 1) }))
    .where('id', '=', conversationId)
    .returning('last_rev')
    .executeTakeFirstOrThrow();
  return row.last_rev;
}

export async function findMessage(db: Executor, conversationId: string, seq: number): Promise<MessageRow | undefined> {
  return db
    .selectFrom('messages')
    .selectAll()
    .where('conversation_id', '=', conversationId)
    .where('seq', '=', seq)
    .executeTakeFirst();
}

export async function updateMessage(
  db: Executor,
  conversationId: string,
  seq: number,
  change: { rev: number } & ({ body: string; editedAt: Date } | { body: null; deletedAt: Date }),
): Promise<MessageRow> {
  const set =
    change.body === null
      ? { rev: change.rev, body: null, deleted_at: change.deletedAt }
      : { rev: change.rev, body: change.body, edited_at: change.editedAt };
  return db
    .updateTable('messages')
    .set(set)
    .where('conversation_id', '=', conversationId)
    .where('seq', '=', seq)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * A page of history, always returned in ascending seq order. `minSeqExclusive` hides
 * what was sent before the reader joined. Fetches one extra row to know whether more exist.
 */
export async function findHistory(
  db: Executor,
  conversationId: string,
  page: { direction: 'before' | 'after'; seq: number; minSeqExclusive: number; limit: number },
): Promise<{ rows: MessageRow[]; hasMore: boolean }> {
  let query = db
    .selectFrom('messages')
    .selectAll()
    .where('conversation_id', '=', conversationId)
    .where('seq', '>', page.minSeqExclusive);
  query =
    page.direction === 'before'
      ? query.where('seq', '<', page.seq).orderBy('seq', 'desc')
      : query.where('seq', '>', page.seq).orderBy('seq', 'asc');
  const rows = await query.limit(page.limit + 1).execute();
  const hasMore = rows.length > page.limit;
  const pageRows = rows.slice(0, page.limit);
  if (page.direction === 'before') pageRows.reverse();
  return { rows: pageRows, hasMore };
}

/** Messages changed (sent, edited, deleted) after `afterRev`, in rev order. */
export async function findChangedSince(
  db: Executor,
  conversationId: string,
  afterRev: number,
  minSeqExclusive: number,
  limit: number,
): Promise<MessageRow[]> {
  return db
    .selectFrom('messages')
    .selectAll()
    .where('conversation_id', '=', conversationId)
    .where('rev', '>', afterRev)
    .where('seq', '>', minSeqExclusive)
    .orderBy('rev', 'asc')
    .limit(limit)
    .execute();
}
