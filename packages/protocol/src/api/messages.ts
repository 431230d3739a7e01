import { Type, type Static } from '@sinclair/typebox';
import { Limits } from '../limits';
import { ClientMessageId, ErrorBody, Id, MAX_SEQ, MessageBody, PageLimit, Seq, SeqPathParam, Timestamp } from '../primitives';

export const Message = Type.Object(
  {
    conversationId: Id,
    seq: Type.Integer({ minimum: 1 }),
    rev: Type.Integer({
      minimum: 1,
      description: 'Conversation revision of the last change to this message (send, edit or delete).',
    }),
    senderId: Id,
    clientMessageId: Type.String(),
    body: Type.Union([Type.String(), Type.Null()], { description: 'Null once deleted (a tombstone).' }),
    createdAt: Timestamp,
    editedAt: Type.Union([Timestamp, Type.Null()]),
    deletedAt: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);
export type Message = Static<typeof Message>;

export const SendMessageBody = Type.Object(
  { clientMessageId: ClientMessageId, body: MessageBody },
  { additionalProperties: false },
);
export type SendMessageBody = Static<typeof SendMessageBody>;

export const SendMessageResponse = Type.Object(
  {
    message: Message,
    duplicate: Type.Boolean({ description: 'True when this send was a retry and the original is returned.' }),
  },
  { additionalProperties: false },
);
export type SendMessageResponse = Static<typeof SendMessageResponse>;

/**
 * Gateway → message service: the sends of many sockets in one call. Each carries the
 * access token of the user it is sent for and is authorized and answered alone, exactly
 * as `POST /v1/conversations/:conversationId/messages` would; the call only shares the
 * HTTP round trip. Internal: nginx does not route `/internal/`.
 */
export const SendBatchItem = Type.Object(
  {
    accessToken: Type.String({ minLength: 1, maxLength: 4096 }),
    conversationId: Id,
    clientMessageId: ClientMessageId,
    body: MessageBody,
  },
  { additionalProperties: false },
);
export type SendBatchItem = Static<typeof SendBatchItem>;

export const SendBatchBody = Type.Object(
  { sends: Type.Array(SendBatchItem, { minItems: 1, maxItems: Limits.sendBatchMaxItems }) },
  { additionalProperties: false },
);
export type SendBatchBody = Static<typeof SendBatchBody>;

/** One send's answer: the status and body the single-send route would have given. */
export const SendBatchResult = Type.Object(
  {
    status: Type.Integer({ description: '201 stored, 200 a retry of a stored send, else the error status.' }),
    response: Type.Optional(SendMessageResponse),
    error: Type.Optional(ErrorBody.properties.error),
  },
  { additionalProperties: false },
);
export type SendBatchResult = Static<typeof SendBatchResult>;

export const SendBatchResponse = Type.Object(
  { results: Type.Array(SendBatchResult, { description: 'In the order of `sends`.' }) },
  { additionalProperties: false },
);
export type SendBatchResponse = Static<typeof SendBatchResponse>;

export const EditMessageBody = Type.Object({ body: MessageBody }, { additionalProperties: false });
export type EditMessageBody = Static<typeof EditMessageBody>;

export const MessageParams = Type.Object(
  { conversationId: Id, seq: SeqPathParam },
  { additionalProperties: false },
);
export type MessageParams = Static<typeof MessageParams>;

export const HistoryQuery = Type.Object(
  {
    before: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_SEQ, description: 'Messages with seq < before, newest page.' }),
    ),
    after: Type.Optional(Seq),
    limit: PageLimit,
  },
  { additionalProperties: false },
);
export type HistoryQuery = Static<typeof HistoryQuery>;

export const HistoryPage = Type.Object(
  {
    messages: Type.Array(Message, { description: 'Always in ascending seq order.' }),
    hasMore: Type.Boolean({ description: 'More messages exist in the paging direction.' }),
  },
  { additionalProperties: false },
);
export type HistoryPage = Static<typeof HistoryPage>;

export const ReadBody = Type.Object({ seq: Seq }, { additionalProperties: false });
export type ReadBody = Static<typeof ReadBody>;

export const ReadState = Type.Object(
  { conversationId: Id, lastReadSeq: Seq, lastSeq: Seq, unreadCount: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);
export type ReadState = Static<typeof ReadState>;
