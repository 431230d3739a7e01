import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** `bigint` columns: pg returns them as strings; we parse them to numbers (see create-db). */
type BigIntColumn = ColumnType<number, number | undefined, number>;
type CreatedAt = ColumnType<Date, Date | undefined, never>;
type Timestamptz = ColumnType<Date, Date | undefined, Date>;

export interface UsersTable {
  id: Generated<string>;
  username: string;
  display_name: string;
  password_hash: string;
  created_at: CreatedAt;
}

export interface SessionsTable {
  id: Generated<string>;
  user_id: string;
  device_name: string | null;
  created_at: CreatedAt;
  revoked_at: Date | null;
  revoked_reason: string | null;
}

export interface RefreshTokensTable {
  token_hash: Buffer;
  session_id: string;
  issued_at: CreatedAt;
  expires_at: Date;
  rotated_at: Date | null;
  replaced_by: Buffer | null;
}

export type ContactStateColumn = 'outgoing' | 'incoming' | 'accepted';

export interface ContactsTable {
  owner_id: string;
  peer_id: string;
  state: ContactStateColumn;
  updated_at: Timestamptz;
}

export interface BlocksTable {
  blocker_id: string;
  blocked_id: string;
  created_at: CreatedAt;
}

export type ConversationKindColumn = 'direct' | 'group';
export type RoleColumn = 'owner' | 'admin' | 'member';

export interface ConversationsTable {
  id: Generated<string>;
  kind: ConversationKindColumn;
  title: string | null;
  direct_key: string | null;
  created_by: string | null;
  last_seq: BigIntColumn;
  last_rev: BigIntColumn;
  member_count: ColumnType<number, number | undefined, number>;
  created_at: CreatedAt;
  last_activity_at: Timestamptz;
}

export interface ConversationMembersTable {
  conversation_id: string;
  user_id: string;
  role: RoleColumn;
  joined_seq: BigIntColumn;
  last_read_seq: BigIntColumn;
  joined_at: CreatedAt;
}

export interface MessagesTable {
  conversation_id: string;
  seq: BigIntColumn;
  rev: BigIntColumn;
  sender_id: string;
  client_message_id: string;
  body: string | null;
  created_at: CreatedAt;
  edited_at: Date | null;
  deleted_at: Date | null;
}

/** The schema as Kysely sees it. Mirrors migrations/; a migration that changes a table changes this too. */
export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
  contacts: ContactsTable;
  blocks: BlocksTable;
  conversations: ConversationsTable;
  conversation_members: ConversationMembersTable;
  messages: MessagesTable;
}

export type UserRow = Selectable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;
export type ConversationRow = Selectable<ConversationsTable>;
export type MemberRow = Selectable<ConversationMembersTable>;
export type MessageRow = Selectable<MessagesTable>;
export type NewMessage = Insertable<MessagesTable>;
export type ConversationUpdate = Updateable<ConversationsTable>;
