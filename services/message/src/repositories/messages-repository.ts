import { sql, type MessageRow } from '@parley/db';
import type { Executor } from './executor';

/**
 * Takes the next seq and rev of a conversation. Must run in the transaction that
 * inserts the message and after the conversation row lock: the increment and the
 * insert commit together or not at all, which keeps seqs gapless.
 */
export async function allocateSeq(db: Executor, conversationId: string): Promise<{ seq: number; rev: number }> {
  const row = await db
    .updateTable('conversations')
    .set((eb) => ({
      last_seq: eb('last_seq', '+', 1),
      last_rev: eb('last_rev', '+', 1),
      // The database's clock, like every other timestamp it is ordered against: a
      // replica whose clock runs behind must not file a new message as old activity.
      last_activity_at: sql<Date>`now()`,
    }))
    .where('id', '=', conversationId)
    .returning(['last_seq', 'last_rev'])
    .executeTakeFirstOrThrow();
  return { seq: row.last_seq, rev: row.last_rev };
}

/** Takes the next rev, for an edit or delete. Same transaction rules as allocateSeq. */
export async function allocateRev(db: Executor, conversationId: string): Promise<number> {
  const row = await db
    .updateTable('conversations')
    .set((eb) => ({ last_rev: eb('last_rev', '+', 1) }))
    .where('id', '=', conversationId)
    .returning('last_rev')
    .executeTakeFirstOrThrow();
  return row.last_rev;
}

export async function insertMessage(
  db: Executor,
  message: {
    conversationId: string;
    seq: number;
    rev: number;
    senderId: string;
    clientMessageId: string;
    body: string;
  },
): Promise<MessageRow> {
  return db
    .insertInto('messages')
    .values({
      conversation_id: message.conversationId,
      seq: message.seq,
      rev: message.rev,
      sender_id: message.senderId,
      client_message_id: message.clientMessageId,
      body: message.body,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findMessageByClientId(
  db: Executor,
  conversationId: string,
  senderId: string,
  clientMessageId: string,
): Promise<MessageRow | undefined> {
  return db
    .selectFrom('messages')
    .selectAll()
    .where('conversation_id', '=', conversationId)
    .where('sender_id', '=', senderId)
    .where('client_message_id', '=', clientMessageId)
    .executeTakeFirst();
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
