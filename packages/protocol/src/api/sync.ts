import { Type, type Static } from '@sinclair/typebox';
import { Limits } from '../limits';
import { Id, MAX_SEQ, Seq } from '../primitives';
import { ConversationSummary } from './conversations';
import { Message } from './messages';

export const SyncCursor = Type.Object(
  {
    conversationId: Id,
    rev: Type.Integer({ minimum: 0, maximum: MAX_SEQ, description: 'The highest `rev` the client has applied.' }),
    lastReadSeq: Type.Optional(Seq),
  },
  { additionalProperties: false },
);
export type SyncCursor = Static<typeof SyncCursor>;

export const SyncBody = Type.Object(
  {
    cursors: Type.Array(SyncCursor, { maxItems: Limits.syncCursorsMax }),
    limit: Type.Integer({ minimum: 1, maximum: Limits.syncMessagesMax, default: Limits.syncMessagesDefault }),
  },
  { additionalProperties: false },
);
export type SyncBody = Static<typeof SyncBody>;

export const SyncResponse = Type.Object(
  {
    conversations: Type.Array(ConversationSummary, {
      description: 'Conversations new to the client, changed since its cursor, or whose read state differs.',
    }),
    removed: Type.Array(Id, { description: 'Cursored conversations the user is no longer a member of.' }),
    messages: Type.Array(Message, { description: 'Changed messages, per conversation in `rev` order.' }),
    cursors: Type.Array(Type.Object({ conversationId: Id, rev: Seq }, { additionalProperties: false }), {
      description: 'Cursors to send next time, for every conversation this page touched.',
    }),
    hasMore: Type.Boolean({ description: 'Call again with the new cursors: more changes are waiting.' }),
  },
  { additionalProperties: false },
);
export type SyncResponse = Static<typeof SyncResponse>;
