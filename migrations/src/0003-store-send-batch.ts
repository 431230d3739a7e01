import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one instead.
//
// store_send_batch: a batch of sends stored in one call, so one round trip to PostgreSQL
// (autocommit) instead of five (BEGIN, lock, read, write, COMMIT). On a 2-core VM a round
// trip cost the message service about 100 µs of CPU in writev alone, which was a third of
// its CPU at 1,000 sends/s (docs/performance.md). The rules are those of one send on its
// own (services/message/src/domain/store-batch.ts):
//
//   - the conversations are locked in id order first, as every writer of their counters
//     does; the statement after the lock reads a snapshot taken once it is held, so a
//     concurrent retry or membership change that committed meanwhile is seen;
//   - per item, first rule that applies: CONVERSATION_NOT_FOUND; 'duplicate' (a message
//     with this client id is stored: it is returned); NOT_A_MEMBER; USER_BLOCKED (a
//     direct conversation's peer blocked the sender or the other way round); 'same' (an
//     earlier item of the batch is the same message: its row is returned); 'new';
//   - new messages take the next seqs and revs of their conversation in item order, and
//     each sender's read marker moves to their last new message (never back).
//
// Returns one row per item, in item order, with the stored row's columns (null for a
// refusal).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION store_send_batch(
      p_conversation_ids uuid[], p_sender_ids uuid[], p_client_message_ids text[], p_bodies text[]
    ) RETURNS TABLE (
      item integer, outcome text,
      conversation_id uuid, seq bigint, rev bigint, sender_id uuid, client_message_id text, body text,
      created_at timestamptz, edited_at timestamptz, deleted_at timestamptz
    )
    LANGUAGE plpgsql AS $$
    #variable_conflict use_column
    BEGIN
      PERFORM 1 FROM conversations WHERE id = ANY (p_conversation_ids) ORDER BY id FOR UPDATE;

      RETURN QUERY
      WITH items AS (
        SELECT i.item::integer AS item, i.conversation_id, i.sender_id, i.client_message_id, i.body
        FROM unnest(p_conversation_ids, p_sender_ids, p_client_message_ids, p_bodies)
          WITH ORDINALITY AS i (conversation_id, sender_id, client_message_id, body, item)
      ), judged AS (
        SELECT items.*, c.id IS NOT NULL AS found, c.last_seq, c.last_rev,
          EXISTS (
            SELECT 1 FROM messages s
            WHERE s.conversation_id = items.conversation_id AND s.sender_id = items.sender_id
              AND s.client_message_id = items.client_message_id
          ) AS stored,
          EXISTS (
            SELECT 1 FROM conversation_members m
            WHERE m.conversation_id = items.conversation_id AND m.user_id = items.sender_id
          ) AS member,
          c.direct_key IS NOT NULL AND EXISTS (
            SELECT 1 FROM blocks b, LATERAL (
              SELECT (CASE WHEN split_part(c.direct_key, ':', 1) = items.sender_id::text
                           THEN split_part(c.direct_key, ':', 2) ELSE split_part(c.direct_key, ':', 1) END)::uuid AS peer
            ) p
            WHERE (b.blocker_id = items.sender_id AND b.blocked_id = p.peer)
               OR (b.blocker_id = p.peer AND b.blocked_id = items.sender_id)
          ) AS blocked,
          min(items.item) OVER (PARTITION BY items.conversation_id, items.sender_id, items.client_message_id) AS first_item
        FROM items LEFT JOIN conversations c ON c.id = items.conversation_id
      ), decided AS (
        SELECT judged.*, CASE
          WHEN NOT found THEN 'CONVERSATION_NOT_FOUND'
          WHEN stored THEN 'duplicate'
          WHEN NOT member THEN 'NOT_A_MEMBER'
          WHEN blocked THEN 'USER_BLOCKED'
          WHEN first_item <> item THEN 'same'
          ELSE 'new'
        END AS outcome
        FROM judged
      ), numbered AS (
        SELECT decided.*, row_number() OVER (PARTITION BY decided.conversation_id ORDER BY decided.item) AS n
        FROM decided WHERE outcome = 'new'
      ), inserted AS (
        INSERT INTO messages (conversation_id, seq, rev, sender_id, client_message_id, body)
        SELECT numbered.conversation_id, numbered.last_seq + numbered.n, numbered.last_rev + numbered.n,
          numbered.sender_id, numbered.client_message_id, numbered.body
        FROM numbered
        RETURNING *
      ), allocated AS (
        UPDATE conversations c SET last_seq = c.last_seq + a.count, last_rev = c.last_rev + a.count, last_activity_at = now()
        FROM (SELECT numbered.conversation_id, count(*) AS count FROM numbered GROUP BY numbered.conversation_id) a
        WHERE c.id = a.conversation_id
      ), marked AS (
        UPDATE conversation_members m SET last_read_seq = r.seq
        FROM (
          SELECT numbered.conversation_id, numbered.sender_id, max(numbered.last_seq + numbered.n) AS seq
          FROM numbered GROUP BY numbered.conversation_id, numbered.sender_id
        ) r
        WHERE m.conversation_id = r.conversation_id AND m.user_id = r.sender_id AND m.last_read_seq < r.seq
      )
      SELECT d.item, d.outcome, found_row.conversation_id, found_row.seq, found_row.rev, found_row.sender_id,
        found_row.client_message_id, found_row.body, found_row.created_at, found_row.edited_at, found_row.deleted_at
      FROM decided d
      LEFT JOIN LATERAL (
        SELECT i.* FROM inserted i
        WHERE d.outcome IN ('new', 'same') AND i.conversation_id = d.conversation_id
          AND i.sender_id = d.sender_id AND i.client_message_id = d.client_message_id
        UNION ALL
        SELECT s.* FROM messages s
        WHERE d.outcome = 'duplicate' AND s.conversation_id = d.conversation_id
          AND s.sender_id = d.sender_id AND s.client_message_id = d.client_message_id
      ) found_row ON true
      ORDER BY d.item;
    END
    $$
  `.execute(db);
}
