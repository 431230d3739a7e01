import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ContactState } from './api/contacts';
import { Role } from './api/conversations';
import { Message, ReadState } from './api/messages';
import './formats';
import { ClientMessageId, Id, MessageBody, Seq } from './primitives';

/**
 * The realtime protocol spoken over the gateway's WebSocket (path `/ws`). Text frames
 * of JSON; see docs/protocol.md for the prose. A request carries a client-chosen `id`
 * and gets exactly one reply with the same `id`: `ack` or `error`.
 */
const RequestId = Type.String({ minLength: 1, maxLength: 64, description: 'Client-chosen; echoed in the reply.' });

const request = <T extends string, P extends Parameters<typeof Type.Object>[0]>(type: T, props: P) =>
  Type.Object({ type: Type.Literal(type), id: RequestId, ...props }, { additionalProperties: false });

export const SendFrame = request('send', { conversationId: Id, clientMessageId: ClientMessageId, body: MessageBody });
export const ReadFrame = request('read', { conversationId: Id, seq: Seq });
export const TypingFrame = request('typing', { conversationId: Id });
export const PingFrame = request('ping', {});
export const AuthFrame = request('auth', { token: Type.String({ minLength: 1, maxLength: 4096 }) });

export const ClientFrame = Type.Union([SendFrame, ReadFrame, TypingFrame, PingFrame, AuthFrame]);
export type ClientFrame = Static<typeof ClientFrame>;
export type ClientFrameType = ClientFrame['type'];

const event = <T extends string, P extends Parameters<typeof Type.Object>[0]>(type: T, props: P) =>
  Type.Object({ type: Type.Literal(type), ...props }, { additionalProperties: false });

export const HelloFrame = event('hello', {
  userId: Id,
  sessionId: Id,
  nodeId: Type.String(),
  heartbeatMs: Type.Integer(),
  tokenExpiresAt: Type.Integer({ description: 'Seconds since the epoch; refresh with an `auth` frame before it.' }),
});
export const AckFrame = event('ack', {
  id: RequestId,
  message: Type.Optional(Message),
  duplicate: Type.Optional(Type.Boolean()),
  readState: Type.Optional(ReadState),
  tokenExpiresAt: Type.Optional(Type.Integer()),
});
export const ErrorFrame = event('error', {
  id: Type.Optional(RequestId),
  code: Type.String({ description: 'A code from the error catalogue (docs/errors.md).' }),
  message: Type.String(),
  retryable: Type.Boolean({ description: 'True when the same request may be sent again (sends stay idempotent).' }),
});
export const MessageFrame = event('message', { conversationId: Id, message: Message });
export const MessageUpdatedFrame = event('message.updated', { conversationId: Id, message: Message });
export const ReadReceiptFrame = event('read', { conversationId: Id, userId: Id, lastReadSeq: Seq });
export const TypingEventFrame = event('typing', { conversationId: Id, userId: Id });
export const PresenceFrame = event('presence', { userId: Id, online: Type.Boolean() });
export const MembershipFrame = event('membership', {
  conversationId: Id,
  change: Type.Union([
    Type.Literal('joined'),
    Type.Literal('left'),
    Type.Literal('member.added'),
    Type.Literal('member.removed'),
    Type.Literal('member.role_changed'),
  ]),
  userIds: Type.Optional(Type.Array(Id)),
  role: Type.Optional(Role),
  byUserId: Type.Optional(Id),
});
export const ContactFrame = event('contact', { userId: Id, state: Type.Union([ContactState, Type.Literal('removed')]) });
export const ResyncFrame = event('resync', {
  reason: Type.String({ description: 'Why events may have been missed; the client should call POST /v1/sync.' }),
});
export const PongFrame = event('pong', { id: RequestId });

export const ServerFrame = Type.Union([
  HelloFrame,
  AckFrame,
  ErrorFrame,
  PongFrame,
  MessageFrame,
  MessageUpdatedFrame,
  ReadReceiptFrame,
  TypingEventFrame,
  PresenceFrame,
  MembershipFrame,
  ContactFrame,
  ResyncFrame,
]);
export type ServerFrame = Static<typeof ServerFrame>;


// Compiled on first use, not at import: compiling evaluates generated code, which a
// page with a strict Content-Security-Policy forbids, and clients that import these
// schemas for their types never need the checker.
// One checker per frame type, so an error names the field that is wrong rather than
// "expected union value".
const FRAME_SCHEMAS = { send: SendFrame, read: ReadFrame, typing: TypingFrame, ping: PingFrame, auth: AuthFrame };
type FrameChecker = { Check(value: unknown): boolean; Errors(value: unknown): { First(): { path: string; message: string } | undefined } };
let compiledCheckers: Record<ClientFrameType, FrameChecker> | undefined;
const clientFrameCheckers = (): Record<ClientFrameType, FrameChecker> =>
  (compiledCheckers ??= {
    send: TypeCompiler.Compile(SendFrame),
    read: TypeCompiler.Compile(ReadFrame),
    typing: TypeCompiler.Compile(TypingFrame),
    ping: TypeCompiler.Compile(PingFrame),
    auth: TypeCompiler.Compile(AuthFrame),
  });

export type ParsedClientFrame =
  | { ok: true; frame: ClientFrame }
  | { ok: false; code: 'MALFORMED_JSON' | 'UNKNOWN_TYPE' | 'VALIDATION_FAILED'; id?: string; message: string };

const KNOWN_TYPES = new Set(Object.keys(FRAME_SCHEMAS));

/** Parses and validates one client frame, saying precisely what is wrong with a bad one. */
export function parseClientFrame(text: string): ParsedClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'MALFORMED_JSON', message: 'The frame is not valid JSON.' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'VALIDATION_FAILED', message: 'A frame is a JSON object.' };
  }
  const candidate = value as { type?: unknown; id?: unknown };
  const id = typeof candidate.id === 'string' && candidate.id.length <= 64 ? candidate.id : undefined;
  const base = id === undefined ? {} : { id };
  if (typeof candidate.type !== 'string' || !KNOWN_TYPES.has(candidate.type)) {
    // Never String() an attacker's value: an object with a bogus toString would throw.
    const shown = typeof candidate.type === 'string' ? candidate.type.slice(0, 40) : typeof candidate.type;
    return { ok: false, code: 'UNKNOWN_TYPE', ...base, message: `Unknown frame type: ${shown}.` };
  }
  const checker = clientFrameCheckers()[candidate.type as ClientFrameType];
  if (!checker.Check(value)) {
    const first = checker.Errors(value).First();
    const where = first ? `${first.path || '/'}: ${first.message}` : 'invalid frame';
    return { ok: false, code: 'VALIDATION_FAILED', ...base, message: `Invalid ${candidate.type} frame (${where}).` };
  }
  return { ok: true, frame: value as ClientFrame };
}
