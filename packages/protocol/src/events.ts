import './formats';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ContactState } from './api/contacts';
import { Role } from './api/conversations';
import { Message } from './api/messages';
import { Id, Seq } from './primitives';

/**
 * Events the message service publishes on the bus after each commit. They are
 * doorbells: a subscriber may miss any of them and must then recover through
 * `POST /v1/sync`. Every event carries `v` (the envelope version).
 */
const event = <T extends string, P extends Parameters<typeof Type.Object>[0]>(type: T, props: P) =>
  Type.Object({ v: Type.Literal(1), type: Type.Literal(type), ...props }, { additionalProperties: false });

export const MessageCreatedEvent = event('message.created', { conversationId: Id, message: Message });
export const MessageUpdatedEvent = event('message.updated', { conversationId: Id, message: Message });
export const ReadEvent = event('read', { conversationId: Id, userId: Id, lastReadSeq: Seq });
export const MembersAddedEvent = event('member.added', {
  conversationId: Id,
  userIds: Type.Array(Id),
  role: Role,
  byUserId: Id,
});
export const MemberRemovedEvent = event('member.removed', { conversationId: Id, userId: Id, byUserId: Id });
export const MemberRoleChangedEvent = event('member.role_changed', { conversationId: Id, userId: Id, role: Role });
export const MembershipAddedEvent = event('membership.added', {
  conversationId: Id,
  /** For a direct conversation, the other member (gateways start relaying their presence). */
  directPeerId: Type.Optional(Id),
  /** The member sees messages after this seq only (0 or absent: the whole history). */
  joinedSeq: Type.Optional(Seq),
});
export const MembershipRemovedEvent = event('membership.removed', { conversationId: Id });
export const ContactChangedEvent = event('contact.changed', {
  userId: Id,
  state: Type.Union([ContactState, Type.Literal('removed')]),
});
export const SessionRevokedEvent = event('session.revoked', { sessionId: Id });
/** Published by gateways, never stored: typing on `conv:{id}`, presence on `presence:{userId}`. */
export const TypingEvent = event('typing', { conversationId: Id, userId: Id });
export const PresenceEvent = event('presence', { userId: Id, online: Type.Boolean() });
/** On `system`: a publisher lost events (Redis was unreachable); every client should resync. */
export const ResyncEvent = event('resync', { reason: Type.String({ maxLength: 200 }) });

export const BusEvent = Type.Union([
  MessageCreatedEvent,
  MessageUpdatedEvent,
  ReadEvent,
  MembersAddedEvent,
  MemberRemovedEvent,
  MemberRoleChangedEvent,
  MembershipAddedEvent,
  MembershipRemovedEvent,
  ContactChangedEvent,
  SessionRevokedEvent,
  TypingEvent,
  PresenceEvent,
  ResyncEvent,
]);
export type BusEvent = Static<typeof BusEvent>;
export type BusEventType = BusEvent['type'];

// Compiled on first use, not at import: compiling evaluates generated code, which a
// page with a strict Content-Security-Policy forbids, and clients that import these
// schemas for their types never need the checker.
let compiledBusEvent: ReturnType<typeof TypeCompiler.Compile<typeof BusEvent>> | undefined;
const busEventChecker = () => (compiledBusEvent ??= TypeCompiler.Compile(BusEvent));

export function encodeBusEvent(event: BusEvent): string {
  return JSON.stringify(event);
}

/** Parses and validates a bus payload; returns `null` for anything malformed. */
export function decodeBusEvent(payload: string): BusEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return null;
  }
  return busEventChecker().Check(value) ? value : null;
}
