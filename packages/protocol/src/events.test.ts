import { decodeBusEvent, encodeBusEvent, type BusEvent } from './events';

const conversationId = '0b7f6c2e-3a41-4d8e-9f10-2c3d4e5f6a7b';
const userId = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';

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

const created: BusEvent = { v: 1, type: 'message.created', conversationId, message };
const read: BusEvent = { v: 1, type: 'read', conversationId, userId, lastReadSeq: 3 };

/** A deep copy as a plain object, so a test can break one field of a valid event. */
function copy(event: BusEvent): Record<string, unknown> {
  return JSON.parse(JSON.stringify(event)) as Record<string, unknown>;
}

describe('decodeBusEvent', () => {
  test.each([
    ['message.created', created],
    ['read', read],
    [
      'member.added',
      { v: 1, type: 'member.added', conversationId, userIds: [userId], role: 'member', byUserId: userId },
    ],
    ['contact.changed', { v: 1, type: 'contact.changed', userId, state: 'removed' }],
    ['session.revoked', { v: 1, type: 'session.revoked', sessionId: userId }],
  ] as Array<[string, BusEvent]>)('accepts a valid %s event and returns it unchanged', (_name, event) => {
    expect(decodeBusEvent(encodeBusEvent(event))).toEqual(event);
  });

  test('accepts a deleted message (body null) with its tombstone time', () => {
    const event = copy(created);
    event['message'] = { ...message, body: null, deletedAt: '2024-05-01T10:05:00Z' };
    expect(decodeBusEvent(JSON.stringify(event))).toEqual(event);
  });

  test.each(['', '{', 'not json', '{"v":1,"type":"read",}', "{'v':1}", 'undefined'])(
    'returns null for malformed JSON %j',
    (payload) => {
      expect(decodeBusEvent(payload)).toBeNull();
    },
  );

  test.each(['null', '1', '"read"', '[]', 'true'])('returns null for JSON that is not an object: %s', (payload) => {
    expect(decodeBusEvent(payload)).toBeNull();
  });

  test('returns null for an unknown type', () => {
    expect(decodeBusEvent(JSON.stringify({ ...copy(read), type: 'read.everything' }))).toBeNull();
    expect(decodeBusEvent(JSON.stringify({ ...copy(read), type: undefined }))).toBeNull();
  });

  test('returns null for an unknown envelope version', () => {
    expect(decodeBusEvent(JSON.stringify({ ...copy(read), v: 2 }))).toBeNull();
  });

  test.each(['conversationId', 'userId', 'lastReadSeq', 'v'])('returns null when %s is missing', (field) => {
    const event = copy(read);
    delete event[field];
    expect(decodeBusEvent(JSON.stringify(event))).toBeNull();
  });

  test('returns null when a nested message misses a field', () => {
    const event = copy(created);
    const { body: _body, ...withoutBody } = message;
    event['message'] = withoutBody;
    expect(decodeBusEvent(JSON.stringify(event))).toBeNull();
  });

  test('returns null for an extra field, at the top and inside the message', () => {
    expect(decodeBusEvent(JSON.stringify({ ...copy(read), extra: true }))).toBeNull();
    const event = copy(created);
    event['message'] = { ...message, extra: 'x' };
    expect(decodeBusEvent(JSON.stringify(event))).toBeNull();
  });

  test.each([
    'not-a-uuid',
    '',
    '0b7f6c2e3a414d8e9f102c3d4e5f6a7b',
    '0b7f6c2e-3a41-4d8e-9f10-2c3d4e5f6a7',
    '0b7f6c2e-3a41-4d8e-9f10-2c3d4e5f6a7bz',
    "' OR 1=1 --",
  ])('returns null for a bad uuid %j', (bad) => {
    expect(decodeBusEvent(JSON.stringify({ ...copy(read), conversationId: bad }))).toBeNull();
    expect(decodeBusEvent(JSON.stringify({ ...copy(read), userId: bad }))).toBeNull();
    const event = copy(created);
    event['message'] = { ...message, senderId: bad };
    expect(decodeBusEvent(JSON.stringify(event))).toBeNull();
  });

  test('returns null for wrong types and out-of-range values', () => {
    expect(decodeBusEvent(JSON.stringify({ ...copy(read), lastReadSeq: '3' }))).toBeNull();
    expect(decodeBusEvent(JSON.stringify({ ...copy(read), lastReadSeq: -1 }))).toBeNull();
    expect(decodeBusEvent(JSON.stringify({ ...copy(read), lastReadSeq: 1.5 }))).toBeNull();
    const event = copy(created);
    event['message'] = { ...message, createdAt: 'yesterday' };
    expect(decodeBusEvent(JSON.stringify(event))).toBeNull();
    expect(
      decodeBusEvent(
        JSON.stringify({ v: 1, type: 'member.added', conversationId, userIds: [userId], role: 'god', byUserId: userId }),
      ),
    ).toBeNull();
  });
});
