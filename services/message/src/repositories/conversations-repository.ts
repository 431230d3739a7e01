import { sql, type ConversationKindColumn, type RoleColumn } from '@parley/db';
import type { Executor } from './executor';

export interface Membership {
  conversationId: string;
  kind: ConversationKindColumn;
  directKey: string | null;
  lastSeq: number;
  lastRev: number;
  memberCount: number;
  /** Null when the user is not a member. */
  member: { role: RoleColumn; joinedSeq: number; lastReadSeq: number } | null;
}

/**
 * Reads a conversation and the user's membership in it; `lock` first takes the
 * conversation row lock (FOR UPDATE), which serializes every write that allocates a seq
 * or rev or changes membership. The membership is read by a second statement, after the
 * lock is held: a statement that waited for the lock would see the member row as it was
 * before the wait (READ COMMITTED re-checks only the locked row).
 */
export async function findMembership(
  db: Executor,
  conversationId: string,
  userId: string,
  options: { lock: boolean },
): Promise<Membership | undefined> {
  let conversationQuery = db
    .selectFrom('conversations')
    .select(['id', 'kind', 'direct_key', 'last_seq', 'last_rev', 'member_count'])
    .where('id', '=', conversationId);
  if (options.lock) conversationQuery = conversationQuery.forUpdate();
  const conversation = await conversationQuery.executeTakeFirst();
  if (!conversation) return undefined;
  const member = await db
    .selectFrom('conversation_members')
    .select(['role', 'joined_seq', 'last_read_seq'])
    .where('conversation_id', '=', conversationId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return {
    conversationId: conversation.id,
    kind: conversation.kind,
    directKey: conversation.direct_key,
    lastSeq: conversation.last_seq,
    lastRev: conversation.last_rev,
    memberCount: conversation.member_count,
    member: member ? { role: member.role, joinedSeq: member.joined_seq, lastReadSeq: member.last_read_seq } : null,
  };
}

export async function insertConversation(
  db: Executor,
  conversation: { kind: ConversationKindColumn; title: string | null; directKey: string | null; createdBy: string },
): Promise<string | undefined> {
  const row = await db
    .insertInto('conversations')
    .values({
      kind: conversation.kind,
      title: conversation.title,
      direct_key: conversation.directKey,
      created_by: conversation.createdBy,
    })
    .onConflict((oc) => oc.column('direct_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  return row?.id;
}

export async function findConversationIdByDirectKey(db: Executor, directKey: string): Promise<string | undefined> {
  const row = await db.selectFrom('conversations').select('id').where('direct_key', '=', directKey).executeTakeFirst();
  return row?.id;
}

/**
 * Adds members who joined at `joinedSeq` (they see later messages only, and start with
 * nothing unread). Existing members are left as they are. Returns who was added.
 */
export async function insertMembers(
  db: Executor,
  conversationId: string,
  members: ReadonlyArray<{ userId: string; role: RoleColumn }>,
  joinedSeq: number,
): Promise<string[]> {
  if (members.length === 0) return [];
  const rows = await db
    .insertInto('conversation_members')
    .values(
      members.map((member) => ({
        conversation_id: conversationId,
        user_id: member.userId,
        role: member.role,
        joined_seq: joinedSeq,
        last_read_seq: joinedSeq,
      })),
    )
    .onConflict((oc) => oc.columns(['conversation_id', 'user_id']).doNothing())
    .returning('user_id')
    .execute();
  const added = rows.map((row) => row.user_id);
  if (added.length > 0) {
    await db
      .updateTable('conversations')
      .set((eb) => ({ member_count: eb('member_count', '+', added.length) }))
      .where('id', '=', conversationId)
      .execute();
  }
  return added;
}

export async function deleteMember(db: Executor, conversationId: string, userId: string): Promise<boolean> {
  const result = await db
    .deleteFrom('conversation_members')
    .where('conversation_id', '=', conversationId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  if (result.numDeletedRows === 0n) return false;
  await db
    .updateTable('conversations')
    .set((eb) => ({ member_count: eb('member_count', '-', 1) }))
    .where('id', '=', conversationId)
    .execute();
  return true;
}

export async function updateMemberRole(
  db: Executor,
  conversationId: string,
  userId: string,
  role: RoleColumn,
): Promise<boolean> {
  const result = await db
    .updateTable('conversation_members')
    .set({ role })
    .where('conversation_id', '=', conversationId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function findMemberRole(
  db: Executor,
  conversationId: string,
  userId: string,
): Promise<RoleColumn | undefined> {
  const row = await db
    .selectFrom('conversation_members')
    .select('role')
    .where('conversation_id', '=', conversationId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return row?.role;
}

/** The member to promote when the owner leaves: the longest-standing admin, else member. */
export async function findSuccessorOwner(db: Executor, conversationId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('conversation_members')
    .select('user_id')
    .where('conversation_id', '=', conversationId)
    .where('role', '<>', 'owner')
    .orderBy(sql`role = 'admin'`, 'desc')
    .orderBy('joined_at')
    .orderBy('user_id')
    .limit(1)
    .executeTakeFirst();
  return row?.user_id;
}

export async function listMembers(db: Executor, conversationId: string) {
  return db
    .selectFrom('conversation_members as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select(['u.id', 'u.username', 'u.display_name', 'm.role', 'm.joined_at', 'm.last_read_seq'])
    .where('m.conversation_id', '=', conversationId)
    .orderBy('m.joined_at')
    .orderBy('u.id')
    .execute();
}

/**
 * Moves the read marker forward, never back, and never past `last_seq`. Returns the new
 * state when it moved, undefined when it did not (already there, or not a member).
 */
export async function advanceReadMarker(
  db: Executor,
  conversationId: string,
  userId: string,
  seq: number,
): Promise<{ lastReadSeq: number; lastSeq: number } | undefined> {
  const target = sql<number>`least(${seq}::bigint, c.last_seq)`;
  const row = await db
    .updateTable('conversation_members as m')
    .from('conversations as c')
    .set({ last_read_seq: target })
    .whereRef('c.id', '=', 'm.conversation_id')
    .where('m.conversation_id', '=', conversationId)
    .where('m.user_id', '=', userId)
    .where('m.last_read_seq', '<', target)
    .returning(['m.last_read_seq', 'c.last_seq'])
    .executeTakeFirst();
  return row ? { lastReadSeq: row.last_read_seq, lastSeq: row.last_seq } : undefined;
}

export interface SummaryFilter {
  conversationIds?: readonly string[];
  /** Keyset position: rows strictly after it in (activity desc, id desc) order. */
  after?: { activityMicros: number; id: string };
  limit?: number;
}

/**
 * The user's conversations with everything a conversation list shows: role, read
 * state, member count, the peer of a direct conversation and the last visible message.
 */
export async function findSummaries(db: Executor, userId: string, filter: SummaryFilter = {}) {
  const activityMicros = sql<number>`(extract(epoch from c.last_activity_at) * 1000000)::bigint`;
  let query = db
    .selectFrom('conversation_members as m')
    .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
    .leftJoin('messages as lm', (join) =>
      join
        .onRef('lm.conversation_id', '=', 'c.id')
        .onRef('lm.seq', '=', 'c.last_seq')
        .on(sql<boolean>`c.last_seq > m.joined_seq`),
    )
    .leftJoinLateral(
      (eb) =>
        eb
          .selectFrom('conversation_members as pm')
          .innerJoin('users as pu', 'pu.id', 'pm.user_id')
          .select(['pu.id as peer_id', 'pu.username as peer_username', 'pu.display_name as peer_display_name'])
          .whereRef('pm.conversation_id', '=', 'c.id')
          .where('pm.user_id', '<>', userId)
          .where(sql<boolean>`c.kind = 'direct'`)
          .limit(1)
          .as('peer'),
      (join) => join.onTrue(),
    )
    .select([
      'c.id',
      'c.kind',
      'c.title',
      'c.last_seq',
      'c.last_rev',
      'c.member_count',
      'c.created_at',
      'c.last_activity_at',
      activityMicros.as('activity_micros'),
      'm.role',
      'm.joined_seq',
      'm.last_read_seq',
      'peer.peer_id',
      'peer.peer_username',
      'peer.peer_display_name',
      'lm.seq as lm_seq',
      'lm.rev as lm_rev',
      'lm.sender_id as lm_sender_id',
      'lm.client_message_id as lm_client_message_id',
      'lm.body as lm_body',
      'lm.created_at as lm_created_at',
      'lm.edited_at as lm_edited_at',
      'lm.deleted_at as lm_deleted_at',
    ])
    .where('m.user_id', '=', userId);
  if (filter.conversationIds) {
    if (filter.conversationIds.length === 0) return [];
    query = query.where('c.id', 'in', filter.conversationIds);
  }
  if (filter.after) {
    const { activityMicros: micros, id } = filter.after;
    query = query.where(sql<boolean>`(${activityMicros}, c.id) < (${micros}::bigint, ${id}::uuid)`);
  }
  query = query.orderBy(activityMicros, 'desc').orderBy('c.id', 'desc');
  if (filter.limit !== undefined) query = query.limit(filter.limit);
  return query.execute();
}

export type SummaryRow = Awaited<ReturnType<typeof findSummaries>>[number];

/** Every conversation the user belongs to, with the numbers sync compares against cursors. */
export async function findMembershipStates(db: Executor, userId: string) {
  return db
    .selectFrom('conversation_members as m')
    .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
    .select(['c.id', 'c.last_rev', 'c.last_activity_at', 'm.joined_seq', 'm.last_read_seq'])
    .where('m.user_id', '=', userId)
    .orderBy('c.last_activity_at', 'desc')
    .orderBy('c.id', 'desc')
    .execute();
}

/** The user's conversation ids, and for direct ones the peer (parsed from the pair key). */
export async function findRouting(db: Executor, userId: string) {
  return db
    .selectFrom('conversation_members as m')
    .innerJoin('conversations as c', 'c.id', 'm.conversation_id')
    .select(['c.id', 'c.direct_key', 'm.joined_seq'])
    .where('m.user_id', '=', userId)
    .execute();
}
