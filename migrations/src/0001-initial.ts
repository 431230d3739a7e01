import { sql, type Kysely } from 'kysely';

// Frozen: never edit a migration that has shipped; add a new one instead.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE users (
      id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      username      text NOT NULL,
      display_name  text NOT NULL,
      password_hash text NOT NULL,
      created_at    timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

    -- A session is one login on one device. Its refresh tokens form one rotation family:
    -- reusing a rotated token revokes the session, and with it every token in the family.
    CREATE TABLE sessions (
      id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      device_name    text,
      created_at     timestamptz NOT NULL DEFAULT now(),
      revoked_at     timestamptz,
      revoked_reason text
    );
    CREATE INDEX sessions_user_id_idx ON sessions (user_id);

    CREATE TABLE refresh_tokens (
      token_hash  bytea PRIMARY KEY,
      session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
      issued_at   timestamptz NOT NULL DEFAULT now(),
      expires_at  timestamptz NOT NULL,
      rotated_at  timestamptz
    );
    CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

    -- One row per side of a contact relation: (owner, peer) says how owner sees peer.
    CREATE TABLE contacts (
      owner_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      peer_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      state      text NOT NULL CHECK (state IN ('outgoing', 'incoming', 'accepted')),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (owner_id, peer_id),
      CHECK (owner_id <> peer_id)
    );

    CREATE TABLE blocks (
      blocker_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      blocked_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (blocker_id, blocked_id),
      CHECK (blocker_id <> blocked_id)
    );
    CREATE INDEX blocks_blocked_id_idx ON blocks (blocked_id);

    -- last_seq: seq of the newest message (gapless, assigned under this row's lock).
    -- last_rev: bumped by every message change (send, edit, delete); sync cursors use it.
    -- member_count: kept by the membership writes, so listing never counts rows.
    -- direct_key: "<smaller uuid>:<larger uuid>" for direct conversations, so creating
    -- one is idempotent per pair.
    CREATE TABLE conversations (
      id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      kind             text NOT NULL CHECK (kind IN ('direct', 'group')),
      title            text,
      direct_key       text UNIQUE,
      created_by       uuid REFERENCES users (id) ON DELETE SET NULL,
      last_seq         bigint NOT NULL DEFAULT 0,
      last_rev         bigint NOT NULL DEFAULT 0,
      member_count     integer NOT NULL DEFAULT 0,
      created_at       timestamptz NOT NULL DEFAULT now(),
      last_activity_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((kind = 'direct') = (direct_key IS NOT NULL))
    );

    -- joined_seq: last_seq when the member joined; they see messages after it only, and
    -- start with last_read_seq = joined_seq so their unread count starts at zero.
    CREATE TABLE conversation_members (
      conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
      user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      role            text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
      joined_seq      bigint NOT NULL,
      last_read_seq   bigint NOT NULL,
      joined_at       timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (conversation_id, user_id),
      CHECK (last_read_seq >= joined_seq)
    );
    CREATE INDEX conversation_members_user_id_idx ON conversation_members (user_id);

    -- Every key starts with conversation_id so the table can later be hash-partitioned
    -- by conversation without changing a constraint.
    CREATE TABLE messages (
      conversation_id   uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
      seq               bigint NOT NULL,
      rev               bigint NOT NULL,
      sender_id         uuid NOT NULL REFERENCES users (id),
      client_message_id text NOT NULL,
      body              text,
      created_at        timestamptz NOT NULL DEFAULT now(),
      edited_at         timestamptz,
      deleted_at        timestamptz,
      PRIMARY KEY (conversation_id, seq),
      UNIQUE (conversation_id, sender_id, client_message_id),
      CHECK ((deleted_at IS NULL) = (body IS NOT NULL))
    );
    CREATE INDEX messages_conversation_rev_idx ON messages (conversation_id, rev);
  `.execute(db);
}
