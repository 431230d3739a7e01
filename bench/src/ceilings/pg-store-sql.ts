/**
 * The naive message-storing transaction: one message per transaction, as the message
 * service stored a send before group commit (services/message/src/domain/store-batch.ts
 * now stores concurrent sends together), in the SQL its Kysely queries compiled to; and
 * two leaner forms of the same seq-allocating insert. These are the per-message ceilings
 * the group commit is measured against.
 */

/** One send per transaction, every statement one round trip (the `service` variant). */
export const SERVICE = {
  begin: 'begin',
  // findMembership(lock: true): the conversation row lock serializes seq allocation and the duplicate check.
  lockConversation:
    'select "id", "kind", "direct_key", "last_seq", "last_rev", "member_count" from "conversations" where "id" = $1 for update',
  findMember: 'select "role", "joined_seq", "last_read_seq" from "conversation_members" where "conversation_id" = $1 and "user_id" = $2',
  // findMessageByClientId: a retry with the same client message id returns the original.
  findByClientId: 'select * from "messages" where "conversation_id" = $1 and "sender_id" = $2 and "client_message_id" = $3',
  // isBlockedEitherWay, direct conversations only.
  findBlock:
    'select "blocker_id" from "blocks" where (("blocker_id" = $1 and "blocked_id" in ($2)) or ("blocked_id" = $3 and "blocker_id" in ($4))) limit $5',
  // allocateSeq
  allocateSeq:
    'update "conversations" set "last_seq" = "last_seq" + $1, "last_rev" = "last_rev" + $2, "last_activity_at" = now() where "id" = $3 returning "last_seq", "last_rev"',
  // insertMessage
  insertMessage:
    'insert into "messages" ("conversation_id", "seq", "rev", "sender_id", "client_message_id", "body") values ($1, $2, $3, $4, $5, $6) returning *',
  // setReadMarker: the sender has read up to their own message.
  setReadMarker:
    'update "conversation_members" set "last_read_seq" = $1 where "conversation_id" = $2 and "user_id" = $3 and "last_read_seq" < $4',
  commit: 'commit',
} as const;

/**
 * The naive seq-allocating insert in four round trips: the UPDATE takes the row lock and
 * the next seq, the insert stores the message (a duplicate client id inserts nothing and
 * the transaction is rolled back, so no seq is spent). No membership, block or
 * read-marker statements: the floor of any per-message transaction.
 */
export const FOUR_STATEMENTS = {
  begin: 'begin',
  allocateSeq:
    'update "conversations" set "last_seq" = "last_seq" + 1, "last_rev" = "last_rev" + 1, "last_activity_at" = now() where "id" = $1 returning "last_seq", "last_rev"',
  insertMessage:
    'insert into "messages" ("conversation_id", "seq", "rev", "sender_id", "client_message_id", "body") values ($1, $2, $3, $4, $5, $6) ' +
    'on conflict ("conversation_id", "sender_id", "client_message_id") do nothing returning *',
  commit: 'commit',
  rollback: 'rollback',
} as const;

/**
 * Everything the service's transaction does, in one statement and one round trip
 * (autocommit): membership, duplicate and block checks, the seq bump, the insert and
 * the read marker. The row lock is held only for the statement and its commit, which is
 * what makes it the better ceiling. No row back means a duplicate, a non-member or a
 * block (the caller then looks up which). A concurrent duplicate that passed the check
 * before the lock fails on the unique constraint, and its retry finds the original.
 *
 * $1 conversation, $2 sender, $3 client message id, $4 body, $5 peer of a direct conversation or null.
 */
export const SINGLE_STATEMENT = `
with allowed as (
  select 1
  from "conversation_members"
  where "conversation_id" = $1 and "user_id" = $2
    and not exists (select 1 from "messages" where "conversation_id" = $1 and "sender_id" = $2 and "client_message_id" = $3)
    and not exists (
      select 1 from "blocks"
      where $5::uuid is not null
        and (("blocker_id" = $2 and "blocked_id" = $5::uuid) or ("blocked_id" = $2 and "blocker_id" = $5::uuid))
    )
), seq as (
  update "conversations"
  set "last_seq" = "last_seq" + 1, "last_rev" = "last_rev" + 1, "last_activity_at" = now()
  where "id" = $1 and exists (select 1 from allowed)
  returning "id", "last_seq", "last_rev"
), stored as (
  insert into "messages" ("conversation_id", "seq", "rev", "sender_id", "client_message_id", "body")
  select "id", "last_seq", "last_rev", $2, $3, $4 from seq
  returning *
), marker as (
  update "conversation_members" m
  set "last_read_seq" = seq."last_seq"
  from seq
  where m."conversation_id" = $1 and m."user_id" = $2 and m."last_read_seq" < seq."last_seq"
)
select * from stored`;
