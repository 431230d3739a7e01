import { sql, type MessageRow } from '@parley/db';
import type { Executor } from './executor';

// The statements of a send batch (domain/store-batch.ts) after its conversation locks:
// one that reads everything the decisions need, one that writes everything decided. A
// round trip to PostgreSQL costs more CPU on both sides than the small statements it
// carries, so a batch takes four (BEGIN, lock, read, write, COMMIT is five) however many
// sends and conversations it holds.

export interface SendChecks {
  /** (conversation, user) pairs that are memberships: keys `conversationId/userId`. */
  memberPairs: ReadonlyArray<{ conversationId: string; userId: string }>;
  /** Client message ids to look up as retries. */
  retryKeys: ReadonlyArray<{ conversationId: string; senderId: string; clientMessageId: string }>;
  /** Direct conversations' (sender, peer) pairs: blocked if either blocked the other. */
  blockPairs: ReadonlyArray<{ a: string; b: string }>;
}

export interface SendCheckAnswers {
  /** `conversationId/userId` of the pairs that are memberships. */
  members: Set<string>;
  /** The retry keys found, as `conversationId/senderId/clientMessageId`. */
  retries: Set<string>;
  /** `a/b` of the pairs with a block either way. */
  blocked: Set<string>;
}

/** Answers every check of a batch in one statement. */
export async function readSendChecks(db: Executor, checks: SendChecks): Promise<SendCheckAnswers> {
  const parts = [];
  if (checks.memberPairs.length > 0) {
    const pairs = sql.join(checks.memberPairs.map((p) => sql`(${p.conversationId}::uuid, ${p.userId}::uuid)`));
    parts.push(sql`
      select 'member' as kind, m.conversation_id::text as x, m.user_id::text as y, null::text as z
      from (values ${pairs}) as v(conversation_id, user_id)
      join conversation_members m on m.conversation_id = v.conversation_id and m.user_id = v.user_id`);
  }
  if (checks.retryKeys.length > 0) {
    const keys = sql.join(checks.retryKeys.map((k) => sql`(${k.conversationId}::uuid, ${k.senderId}::uuid, ${k.clientMessageId}::text)`));
    parts.push(sql`
      select 'retry' as kind, s.conversation_id::text as x, s.sender_id::text as y, s.client_message_id as z
      from (values ${keys}) as v(conversation_id, sender_id, client_message_id)
      join messages s on s.conversation_id = v.conversation_id and s.sender_id = v.sender_id and s.client_message_id = v.client_message_id`);
  }
  if (checks.blockPairs.length > 0) {
    const pairs = sql.join(checks.blockPairs.flatMap((p) => [sql`(${p.a}::uuid, ${p.b}::uuid)`, sql`(${p.b}::uuid, ${p.a}::uuid)`]));
    parts.push(sql`
      select 'block' as kind, b.blocker_id::text as x, b.blocked_id::text as y, null::text as z
      from (values ${pairs}) as v(blocker_id, blocked_id)
      join blocks b on b.blocker_id = v.blocker_id and b.blocked_id = v.blocked_id`);
  }
  const answers: SendCheckAnswers = { members: new Set(), retries: new Set(), blocked: new Set() };
  if (parts.length === 0) return answers;
  const { rows } = await sql<{ kind: 'member' | 'retry' | 'block'; x: string; y: string; z: string | null }>`${sql.join(parts, sql` union all `)}`.execute(db);
  const blockedEitherWay = new Set<string>();
  for (const row of rows) {
    if (row.kind === 'member') answers.members.add(`${row.x}/${row.y}`);
    else if (row.kind === 'retry') answers.retries.add(`${row.x}/${row.y}/${row.z}`);
    else blockedEitherWay.add([row.x, row.y].sort().join('/'));
  }
  for (const pair of checks.blockPairs) if (blockedEitherWay.has([pair.a, pair.b].sort().join('/'))) answers.blocked.add(`${pair.a}/${pair.b}`);
  return answers;
}

export interface SendWrites {
  /** Conversations' new `last_seq` and `last_rev`, allocated under the batch's row locks. */
  allocations: ReadonlyArray<{ conversationId: string; lastSeq: number; lastRev: number }>;
  messages: ReadonlyArray<{ conversationId: string; seq: number; rev: number; senderId: string; clientMessageId: string; body: string }>;
  /** Senders' read markers, moved forward only. */
  readMarkers: ReadonlyArray<{ conversationId: string; userId: string; seq: number }>;
}

/**
 * Writes a batch's decisions in one statement (data-modifying CTEs run whether or not the
 * query reads them) and returns the inserted messages, in no particular order.
 */
export async function writeSends(db: Executor, writes: SendWrites): Promise<MessageRow[]> {
  if (writes.messages.length === 0) return [];
  const allocations = sql.join(writes.allocations.map((a) => sql`(${a.conversationId}::uuid, ${a.lastSeq}::bigint, ${a.lastRev}::bigint)`));
  const markers = sql.join(writes.readMarkers.map((m) => sql`(${m.conversationId}::uuid, ${m.userId}::uuid, ${m.seq}::bigint)`));
  const rows = sql.join(
    writes.messages.map(
      (m) => sql`(${m.conversationId}::uuid, ${m.seq}::bigint, ${m.rev}::bigint, ${m.senderId}::uuid, ${m.clientMessageId}::text, ${m.body}::text)`,
    ),
  );
  const { rows: inserted } = await sql<MessageRow>`
    with allocated as (
      update conversations as c set last_seq = v.last_seq, last_rev = v.last_rev, last_activity_at = now()
      from (values ${allocations}) as v(id, last_seq, last_rev)
      where c.id = v.id
    ), marked as (
      update conversation_members as m set last_read_seq = v.seq
      from (values ${markers}) as v(conversation_id, user_id, seq)
      where m.conversation_id = v.conversation_id and m.user_id = v.user_id and m.last_read_seq < v.seq
    )
    insert into messages (conversation_id, seq, rev, sender_id, client_message_id, body)
    values ${rows}
    returning *
  `.execute(db);
  return inserted;
}
