// toFrame: every bus event type maps to the client frame the protocol documents (or to
// nothing, for events clients never see as such). Pure: no Redis, no sockets.
import { BusEvent, ServerFrame, type BusEventType } from '@parley/protocol';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { toFrame } from './event-router';

const conversationId = '0b7f6c2e-3a41-4d8e-9f10-2c3d4e5f6a7b';
const userId = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
const otherId = '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f';
const message = {
  conversationId,
  seq: 3,
  rev: 4,
  senderId: userId,
  clientMessageId: 'm-1',
  body: 'hello',
  createdAt: '2024-05-01T10:00:00.000Z',
  editedAt: null,
  deletedAt: null,
};

const cases: { [T in BusEventType]: [Extract<BusEvent, { type: T }>, ServerFrame | null] } = {
  'message.created': [
    { v: 1, type: 'message.created', conversationId, message },
    { type: 'message', conversationId, message },
  ],
  'message.updated': [
    { v: 1, type: 'message.updated', conversationId, message: { ...message, rev: 5, body: null, deletedAt: '2024-05-01T11:00:00.000Z' } },
    { type: 'message.updated', conversationId, message: { ...message, rev: 5, body: null, deletedAt: '2024-05-01T11:00:00.000Z' } },
  ],
  read: [
    { v: 1, type: 'read', conversationId, userId, lastReadSeq: 3 },
    { type: 'read', conversationId, userId, lastReadSeq: 3 },
  ],
  'member.added': [
    { v: 1, type: 'member.added', conversationId, userIds: [userId, otherId], role: 'admin', byUserId: otherId },
    { type: 'membership', change: 'member.added', conversationId, userIds: [userId, otherId], role: 'admin', byUserId: otherId },
  ],
  'member.removed': [
    { v: 1, type: 'member.removed', conversationId, userId, byUserId: otherId },
    { type: 'membership', change: 'member.removed', conversationId, userIds: [userId], byUserId: otherId },
  ],
  'member.role_changed': [
    { v: 1, type: 'member.role_changed', conversationId, userId, role: 'owner' },
    { type: 'membership', change: 'member.role_changed', conversationId, userIds: [userId], role: 'owner' },
  ],
  'membership.added': [
    { v: 1, type: 'membership.added', conversationId },
    { type: 'membership', change: 'joined', conversationId },
  ],
  'membership.removed': [
    { v: 1, type: 'membership.removed', conversationId },
    { type: 'membership', change: 'left', conversationId },
  ],
  'contact.changed': [
    { v: 1, type: 'contact.changed', userId, state: 'removed' },
    { type: 'contact', userId, state: 'removed' },
  ],
  // The gateway acts on it (closes the session's sockets); clients see the close code.
  'session.revoked': [{ v: 1, type: 'session.revoked', sessionId: otherId }, null],
  resync: [{ v: 1, type: 'resync', reason: 'lost events' }, null],
  typing: [
    { v: 1, type: 'typing', conversationId, userId },
    { type: 'typing', conversationId, userId },
  ],
  presence: [
    { v: 1, type: 'presence', userId, online: true },
    { type: 'presence', userId, online: true },
  ],
};

const serverFrame = TypeCompiler.Compile(ServerFrame);
const busEvent = TypeCompiler.Compile(BusEvent);

test('the table covers every bus event type in the protocol', () => {
  const declared = BusEvent.anyOf.map((schema) => schema.properties.type.const as string).sort();
  expect(Object.keys(cases).sort()).toEqual(declared);
});

describe('toFrame', () => {
  test.each(Object.entries(cases))('maps %s', (_type, [event, expected]) => {
    expect(busEvent.Check(event)).toBe(true);
    const frame = toFrame(event);
    expect(frame).toEqual(expected);
    if (frame !== null) {
      const errors = [...serverFrame.Errors(frame)].map((error) => `${error.path}: ${error.message}`);
      expect(errors).toEqual([]);
    }
  });

  test('never carries the bus envelope version into a client frame', () => {
    for (const [event] of Object.values(cases)) {
      const frame = toFrame(event);
      if (frame) expect(frame).not.toHaveProperty('v');
    }
  });

  test('a new direct conversation is a plain joined frame (the peer id only steers the gateway)', () => {
    expect(toFrame({ v: 1, type: 'membership.added', conversationId, directPeerId: otherId })).toEqual({
      type: 'membership',
      change: 'joined',
      conversationId,
    });
  });

  test('a contact that became accepted keeps its state', () => {
    expect(toFrame({ v: 1, type: 'contact.changed', userId, state: 'accepted' })).toEqual({
      type: 'contact',
      userId,
      state: 'accepted',
    });
  });
});
