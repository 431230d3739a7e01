import type { MessageRow, UserRow } from '@parley/db';
import type { ConversationSummary, Me, Message, PublicUser } from '@parley/protocol';
import type { SummaryRow } from '../repositories/conversations-repository';
import type { PublicUserRow } from '../repositories/users-repository';

export function toPublicUser(row: PublicUserRow): PublicUser {
  return { id: row.id, username: row.username, displayName: row.display_name };
}

export function toMe(user: UserRow): Me {
  return {
    id: user.id,
    username: user.username,
    displayName: user.display_name,
    createdAt: user.created_at.toISOString(),
  };
}

export function toMessage(row: MessageRow): Message {
  return {
    conversationId: row.conversation_id,
    seq: row.seq,
    rev: row.rev,
    senderId: row.sender_id,
    clientMessageId: row.client_message_id,
    body: row.body,
    createdAt: row.created_at.toISOString(),
    editedAt: row.edited_at?.toISOString() ?? null,
    deletedAt: row.deleted_at?.toISOString() ?? null,
  };
}

export function toConversationSummary(row: SummaryRow): ConversationSummary {
  const lastMessage =
    row.lm_seq !== null && row.lm_rev !== null && row.lm_sender_id !== null && row.lm_created_at !== null
      ? toMessage({
          conversation_id: row.id,
          seq: row.lm_seq,
          rev: row.lm_rev,
          sender_id: row.lm_sender_id,
          client_message_id: row.lm_client_message_id ?? '',
          body: row.lm_body,
          created_at: row.lm_created_at,
          edited_at: row.lm_edited_at,
          deleted_at: row.lm_deleted_at,
        })
      : null;
  const peer =
    row.peer_id !== null && row.peer_username !== null && row.peer_display_name !== null
      ? { id: row.peer_id, username: row.peer_username, displayName: row.peer_display_name }
      : null;
  return {
    id: row.id,
    kind: row.kind,
    title: row.title,
    role: row.role,
    memberCount: row.member_count,
    peer,
    lastSeq: row.last_seq,
    lastRev: row.last_rev,
    lastReadSeq: row.last_read_seq,
    joinedSeq: row.joined_seq,
    unreadCount: Math.max(0, row.last_seq - row.last_read_seq),
    lastMessage,
    lastActivityAt: row.last_activity_at.toISOString(),
    createdAt: row.created_at.toISOString(),
  };
}
