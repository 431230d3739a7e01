import { randomBytes, randomUUID } from 'node:crypto';
import { ErrorBody, ErrorCatalogue, Limits, type ErrorCode } from '@parley/protocol';
import { Value } from '@sinclair/typebox/value';
import type { Response as InjectResponse } from 'light-my-request';
import {
  call,
  registerUser,
  startMessageHarness,
  uniqueName,
  type MessageHarness,
  type TestUser,
} from '../../../tests/support/message-harness';

/**
 * Invariant 6: bad input gets a clear, catalogued error and harms nothing. Every case
 * below checks the error body and status against the catalogue, and that the database
 * holds exactly what it held before the request.
 *
 * Other test files write to the same database at the same time, so "nothing was
 * written" is checked on everything that belongs to this file's users (all named with
 * PREFIX): their users rows, sessions, conversations, memberships, messages, contacts.
 */

const PREFIX = `bi${randomBytes(3).toString('hex')}`;
const PASSWORD = 'correct horse battery staple';
const MISSING_ID = '00000000-0000-4000-8000-000000000000';

let h: MessageHarness;
let alice: TestUser;
let bob: TestUser;
/** The direct conversation of alice and bob; alice's message 1 is in it. */
let directId: string;
/** A group alice owns, with bob in it. */
let groupId: string;

beforeAll(async () => {
  h = await startMessageHarness();
  alice = await registerUser(h.app, uniqueName(PREFIX));
  bob = await registerUser(h.app, uniqueName(PREFIX));
  const direct = await call(h.app, alice, 'POST', '/v1/conversations/direct', { userId: bob.id });
  expect(direct.statusCode).toBe(201);
  directId = direct.json().id;
  const sent = await call(h.app, alice, 'POST', `/v1/conversations/${directId}/messages`, {
    clientMessageId: 'setup-1',
    body: 'first',
  });
  expect(sent.statusCode).toBe(201);
  const group = await call(h.app, alice, 'POST', '/v1/conversations/groups', { title: 'setup', memberIds: [bob.id] });
  expect(group.statusCode).toBe(201);
  groupId = group.json().id;
});

afterAll(async () => {
  await h?.close();
});

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/** Everything this file's users own, in a stable order. */
async function snapshot() {
  const db = h.db.kysely;
  const users = await db
    .selectFrom('users')
    .select(['id', 'username', 'display_name', 'password_hash'])
    .where('username', 'like', `${PREFIX}%`)
    .orderBy('id')
    .execute();
  const ids = users.map((user) => user.id);
  if (ids.length === 0) throw new Error('snapshot found none of the test users');
  const conversations = await db
    .selectFrom('conversations')
    .select(['id', 'kind', 'title', 'last_seq', 'last_rev', 'member_count', 'last_activity_at'])
    .where('created_by', 'in', ids)
    .orderBy('id')
    .execute();
  const members = await db
    .selectFrom('conversation_members')
    .select(['conversation_id', 'user_id', 'role', 'last_read_seq'])
    .where('user_id', 'in', ids)
    .orderBy('conversation_id')
    .orderBy('user_id')
    .execute();
  const conversationIds = conversations.map((conversation) => conversation.id);
  const messages = await db
    .selectFrom('messages')
    .select(['conversation_id', 'seq', 'rev', 'sender_id', 'client_message_id', 'body', 'edited_at', 'deleted_at'])
    .where((eb) =>
      eb.or([
        eb('sender_id', 'in', ids),
        ...(conversationIds.length > 0 ? [eb('conversation_id', 'in', conversationIds)] : []),
      ]),
    )
    .orderBy('conversation_id')
    .orderBy('seq')
    .execute();
  const contacts = await db
    .selectFrom('contacts')
    .select(['owner_id', 'peer_id', 'state'])
    .where((eb) => eb.or([eb('owner_id', 'in', ids), eb('peer_id', 'in', ids)]))
    .orderBy('owner_id')
    .orderBy('peer_id')
    .execute();
  const blocks = await db
    .selectFrom('blocks')
    .select(['blocker_id', 'blocked_id'])
    .where((eb) => eb.or([eb('blocker_id', 'in', ids), eb('blocked_id', 'in', ids)]))
    .execute();
  const sessions = await db
    .selectFrom('sessions')
    .select(['id', 'device_name', 'revoked_at'])
    .where('user_id', 'in', ids)
    .orderBy('id')
    .execute();
  return {
    counts: { users: users.length, conversations: conversations.length, messages: messages.length },
    users,
    conversations,
    members,
    messages,
    contacts,
    blocks,
    sessions,
  };
}

/** Runs `request` and checks that it left the database as it found it. */
async function unchanged(request: () => Promise<InjectResponse>): Promise<InjectResponse> {
  const before = await snapshot();
  const response = await request();
  expect(await snapshot()).toEqual(before);
  return response;
}

/** The one error shape, with the catalogue's status for `code`. */
function expectError(response: InjectResponse, code: ErrorCode): void {
  let body: unknown;
  try {
    body = response.json();
  } catch {
    throw new Error(`expected a JSON error body, got ${response.statusCode} ${response.body}`);
  }
  expect({ status: response.statusCode, code: (body as ErrorBody).error?.code }).toEqual({
    status: ErrorCatalogue[code].status,
    code,
  });
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  expect(Value.Check(ErrorBody, body)).toBe(true);
  const { error } = body as ErrorBody;
  expect(Object.keys(error).sort()).toEqual(
    error.details ? ['code', 'details', 'message', 'requestId'] : ['code', 'message', 'requestId'],
  );
  expect(error.message.length).toBeGreaterThan(0);
  expect(error.requestId).toBe(response.headers['x-request-id']);
  expect(error.requestId?.length).toBeGreaterThan(0);
}

type Method = 'POST' | 'PATCH' | 'PUT' | 'DELETE' | 'GET';

/** A request with a raw body, sent exactly as given. */
function raw(
  user: TestUser | null,
  method: Method,
  url: string,
  payload: string | Buffer,
  contentType: string | null = 'application/json',
) {
  return h.app.inject({
    method,
    url,
    headers: { ...(user ? user.headers : {}), ...(contentType === null ? {} : { 'content-type': contentType }) },
    payload,
  });
}

// ---------------------------------------------------------------------------------
// The write endpoints and a valid body for each. The last test of this file sends
// each valid body, so every "broken" case below differs from an accepted request by
// exactly the one thing it breaks.
// ---------------------------------------------------------------------------------

interface Endpoint {
  name: string;
  method: 'POST' | 'PATCH';
  url: () => string;
  user: () => TestUser | null;
  valid: () => Record<string, unknown>;
  /** Required fields. */
  required: string[];
  /** Free-text fields: NUL and lone surrogates must be refused in each. */
  text: string[];
  /** Values of the wrong type or out of range, per field. */
  wrong: () => Array<[string, unknown]>;
  /** The status of the valid body (for the control test). */
  okStatus: number;
}

const endpoints: Endpoint[] = [
  {
    name: 'register',
    method: 'POST',
    url: () => '/v1/auth/register',
    user: () => null,
    valid: () => ({ username: uniqueName(PREFIX), password: PASSWORD, displayName: 'New User' }),
    required: ['username', 'password'],
    text: ['password', 'displayName'],
    wrong: () => [
      ['username', 12345],
      ['username', ['abc']],
      ['username', 'has space'],
      ['username', "Robert'); DROP TABLE users;--"],
      ['username', 'ab'],
      ['username', 'x'.repeat(Limits.usernameMaxLength + 1)],
      ['password', 12345678],
      ['password', 'short'],
      ['password', 'p'.repeat(Limits.passwordMaxLength + 1)],
      ['displayName', null],
      ['displayName', ''],
      ['displayName', 'd'.repeat(Limits.displayNameMaxLength + 1)],
    ],
    okStatus: 201,
  },
  {
    name: 'login',
    method: 'POST',
    url: () => '/v1/auth/login',
    user: () => null,
    valid: () => ({ username: alice.username, password: PASSWORD, deviceName: 'phone' }),
    required: ['username', 'password'],
    text: ['password', 'deviceName'],
    wrong: () => [
      ['username', 1],
      ['password', true],
      ['deviceName', 5],
      ['deviceName', ''],
      ['deviceName', 'd'.repeat(65)],
    ],
    okStatus: 200,
  },
  {
    name: 'send message',
    method: 'POST',
    url: () => `/v1/conversations/${directId}/messages`,
    user: () => alice,
    valid: () => ({ clientMessageId: `ok-${randomUUID()}`, body: 'hello' }),
    required: ['clientMessageId', 'body'],
    text: ['body'],
    wrong: () => [
      ['clientMessageId', 5],
      ['clientMessageId', ''],
      ['clientMessageId', 'has space'],
      ['clientMessageId', 'c'.repeat(Limits.clientMessageIdMaxLength + 1)],
      ['body', 5],
      ['body', null],
      ['body', ['hi']],
      ['body', { text: 'hi' }],
      ['body', true],
      ['body', ''],
      ['body', 'b'.repeat(Limits.messageBodyMaxLength + 1)],
    ],
    okStatus: 201,
  },
  {
    name: 'edit message',
    method: 'PATCH',
    url: () => `/v1/conversations/${directId}/messages/1`,
    user: () => alice,
    valid: () => ({ body: 'edited' }),
    required: ['body'],
    text: ['body'],
    wrong: () => [
      ['body', 5],
      ['body', null],
      ['body', ''],
      ['body', ['x']],
      ['body', 'b'.repeat(Limits.messageBodyMaxLength + 1)],
    ],
    okStatus: 200,
  },
  {
    name: 'create group',
    method: 'POST',
    url: () => '/v1/conversations/groups',
    user: () => alice,
    valid: () => ({ title: 'A group', memberIds: [bob.id] }),
    required: ['title', 'memberIds'],
    text: ['title'],
    wrong: () => [
      ['title', 5],
      ['title', null],
      ['title', ''],
      ['title', 't'.repeat(Limits.titleMaxLength + 1)],
      ['memberIds', bob.id],
      ['memberIds', [5]],
      ['memberIds', null],
      ['memberIds', ['not-a-uuid']],
      ['memberIds', [bob.id, bob.id]],
      ['memberIds', [`urn:uuid:${bob.id}`]],
    ],
    okStatus: 201,
  },
  {
    name: 'update me',
    method: 'PATCH',
    url: () => '/v1/me',
    user: () => alice,
    valid: () => ({ displayName: 'Alice' }),
    required: ['displayName'],
    text: ['displayName'],
    wrong: () => [
      ['displayName', 5],
      ['displayName', null],
      ['displayName', ''],
      ['displayName', { first: 'A' }],
      ['displayName', 'd'.repeat(Limits.displayNameMaxLength + 1)],
    ],
    okStatus: 200,
  },
  {
    name: 'read',
    method: 'POST',
    url: () => `/v1/conversations/${directId}/read`,
    user: () => bob,
    valid: () => ({ seq: 1 }),
    required: ['seq'],
    text: [],
    wrong: () => [
      ['seq', '5'],
      ['seq', '1'],
      ['seq', -1],
      ['seq', 1.5],
      ['seq', null],
      ['seq', true],
      ['seq', [1]],
    ],
    okStatus: 200,
  },
  {
    name: 'sync',
    method: 'POST',
    url: () => '/v1/sync',
    user: () => alice,
    valid: () => ({ cursors: [{ conversationId: directId, rev: 0 }], limit: 10 }),
    required: ['cursors'],
    text: [],
    wrong: () => [
      ['cursors', {}],
      ['cursors', 'all'],
      ['cursors', [{ conversationId: 'not-a-uuid', rev: 0 }]],
      ['cursors', [{ conversationId: directId, rev: '0' }]],
      ['cursors', [{ conversationId: directId, rev: -1 }]],
      ['cursors', [{ conversationId: directId }]],
      ['cursors', [{ conversationId: directId, rev: 0, extra: 1 }]],
      ['cursors', [{ conversationId: directId, rev: 0, lastReadSeq: '1' }]],
      ['limit', '10'],
      ['limit', 0],
      ['limit', Limits.syncMessagesMax + 1],
      ['cursors', [{ conversationId: `urn:uuid:${directId}`, rev: 0 }]],
    ],
    okStatus: 200,
  },
  {
    name: 'contact request',
    method: 'POST',
    url: () => '/v1/contacts',
    user: () => alice,
    valid: () => ({ userId: bob.id }),
    required: ['userId'],
    text: [],
    wrong: () => [
      ['userId', 5],
      ['userId', null],
      ['userId', 'not-a-uuid'],
      ['userId', [bob.id]],
      ['userId', `${bob.id} `],
      ['userId', `urn:uuid:${bob.id}`],
    ],
    okStatus: 200,
  },
  {
    name: 'open direct',
    method: 'POST',
    url: () => '/v1/conversations/direct',
    user: () => alice,
    valid: () => ({ userId: bob.id }),
    required: ['userId'],
    text: [],
    wrong: () => [
      ['userId', 5],
      ['userId', 'not-a-uuid'],
      ['userId', `urn:uuid:${bob.id}`],
    ],
    okStatus: 200,
  },
];

function send(endpoint: Endpoint, payload: unknown) {
  return raw(endpoint.user(), endpoint.method, endpoint.url(), JSON.stringify(payload));
}

describe.each(endpoints)('$name: bad bodies are refused and write nothing', (endpoint) => {
  test.each([
    ['truncated JSON', '{"a":'],
    ['a trailing comma', '{"a":1,}'],
    ['single quotes', "{'a':1}"],
    ['a bare word', 'hello'],
    ['a raw control character in a string', '{"body":"a\u0001b"}'],
    ['two documents', '{}{}'],
  ])('malformed JSON (%s) is MALFORMED_JSON', async (_what, payload) => {
    const response = await unchanged(() => raw(endpoint.user(), endpoint.method, endpoint.url(), payload));
    expectError(response, 'MALFORMED_JSON');
  });

  test('an empty body with a JSON content type is MALFORMED_JSON', async () => {
    const response = await unchanged(() => raw(endpoint.user(), endpoint.method, endpoint.url(), ''));
    expectError(response, 'MALFORMED_JSON');
  });

  test.each(['null', '[]', '"text"', '42', 'true'])('a JSON %s instead of an object is VALIDATION_FAILED', async (json) => {
    const response = await unchanged(() => raw(endpoint.user(), endpoint.method, endpoint.url(), json));
    expectError(response, 'VALIDATION_FAILED');
  });

  test('each missing required field is VALIDATION_FAILED', async () => {
    for (const field of endpoint.required) {
      const body = endpoint.valid();
      delete body[field];
      const response = await unchanged(() => send(endpoint, body));
      expectError(response, 'VALIDATION_FAILED');
      expect(response.json().error.details?.[0]?.message ?? response.json().error.message).toContain(field);
    }
  });

  test('an unknown extra field is VALIDATION_FAILED, not silently dropped', async () => {
    const response = await unchanged(() => send(endpoint, { ...endpoint.valid(), isAdmin: true }));
    expectError(response, 'VALIDATION_FAILED');
  });

  test('a __proto__ key is refused', async () => {
    const payload = JSON.stringify(endpoint.valid()).replace(/^\{/, '{"__proto__":{"isAdmin":true},');
    const response = await unchanged(() => raw(endpoint.user(), endpoint.method, endpoint.url(), payload));
    expect(response.statusCode).toBe(400);
    expectError(response, response.json().error.code);
  });

  test('wrong types and out-of-range values are VALIDATION_FAILED (bodies are not coerced)', async () => {
    for (const [field, value] of endpoint.wrong()) {
      const response = await unchanged(() => send(endpoint, { ...endpoint.valid(), [field]: value }));
      try {
        expectError(response, 'VALIDATION_FAILED');
      } catch (error) {
        throw new Error(`${field} = ${JSON.stringify(value)?.slice(0, 40)}: ${(error as Error).message}`);
      }
    }
  });

  test('a NUL character or a lone surrogate in a text field is VALIDATION_FAILED', async () => {
    for (const field of endpoint.text) {
      for (const bad of ['a\u0000b', '\u0000', 'x\uD800y', '\uDC00', 'emoji then lone \uD83D', '\uDE00 before']) {
        // JSON.stringify writes these as \u escapes, so the JSON itself is well formed.
        const response = await unchanged(() => send(endpoint, { ...endpoint.valid(), [field]: bad }));
        try {
          expectError(response, 'VALIDATION_FAILED');
        } catch (error) {
          throw new Error(`${field} = ${JSON.stringify(bad)}: ${(error as Error).message}`);
        }
      }
    }
  });

  test.each([
    ['text/plain', 'text/plain'],
    ['text/plain with a charset', 'text/plain; charset=utf-8'],
    ['form encoded', 'application/x-www-form-urlencoded'],
    ['multipart', 'multipart/form-data; boundary=x'],
    ['xml', 'application/xml'],
  ])('a %s body is UNSUPPORTED_MEDIA_TYPE, even when it holds valid JSON', async (_what, contentType) => {
    const response = await unchanged(() =>
      raw(endpoint.user(), endpoint.method, endpoint.url(), JSON.stringify(endpoint.valid()), contentType),
    );
    expectError(response, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('a body over the size limit is PAYLOAD_TOO_LARGE', async () => {
    // Sync allows a larger body (cursors for many conversations); everything else 64 KiB.
    const limit = endpoint.name === 'sync' ? 2 * 1024 * 1024 : h.config.bodyLimitBytes;
    const padding = 'a'.repeat(limit + 1);
    const response = await unchanged(() => send(endpoint, { ...endpoint.valid(), padding }));
    expectError(response, 'PAYLOAD_TOO_LARGE');
  });
});

// ---------------------------------------------------------------------------------
// Specific limits and edge cases
// ---------------------------------------------------------------------------------

describe('limits', () => {
  test('a 64 KiB body limit applies even to a single huge string in a valid field', async () => {
    const response = await unchanged(() =>
      call(h.app, alice, 'POST', `/v1/conversations/${directId}/messages`, {
        clientMessageId: 'huge',
        body: 'x'.repeat(70_000),
      }),
    );
    expectError(response, 'PAYLOAD_TOO_LARGE');
  });

  test('a message body over 4000 characters (but under the byte limit) is VALIDATION_FAILED', async () => {
    const response = await unchanged(() =>
      call(h.app, alice, 'POST', `/v1/conversations/${directId}/messages`, {
        clientMessageId: 'long',
        body: 'x'.repeat(Limits.messageBodyMaxLength + 1),
      }),
    );
    expectError(response, 'VALIDATION_FAILED');
    expect(response.json().error.details[0].path).toBe('body/body');
  });

  test('the body limit counts UTF-16 code units, as documented: 2001 astral characters are too long', async () => {
    const body = '😀'.repeat(Limits.messageBodyMaxLength / 2 + 1);
    expect(body.length).toBe(Limits.messageBodyMaxLength + 2);
    const response = await unchanged(() =>
      call(h.app, alice, 'POST', `/v1/conversations/${directId}/messages`, { clientMessageId: 'astral-long', body }),
    );
    expectError(response, 'VALIDATION_FAILED');
  });

  test('a sync body over 64 KiB but under its own limit is accepted', async () => {
    const cursors = Array.from({ length: 1200 }, () => ({ conversationId: randomUUID(), rev: 0 }));
    expect(JSON.stringify({ cursors }).length).toBeGreaterThan(h.config.bodyLimitBytes);
    const response = await unchanged(() => call(h.app, alice, 'POST', '/v1/sync', { cursors, limit: 10 }));
    expect(response.statusCode).toBe(200);
    expect(response.json().removed).toHaveLength(cursors.length);
  });

  test('more sync cursors than the protocol allows is VALIDATION_FAILED', async () => {
    const cursors = Array.from({ length: Limits.syncCursorsMax + 1 }, () => ({ conversationId: MISSING_ID, rev: 0 }));
    const response = await unchanged(() => call(h.app, alice, 'POST', '/v1/sync', { cursors }));
    expectError(response, 'VALIDATION_FAILED');
  });

  test('a JSON number too large for any seq is refused, not a server error', async () => {
    // Bob reads everything first, so a huge seq (clamped to lastSeq) has nothing left to move.
    const readAll = await call(h.app, bob, 'POST', `/v1/conversations/${directId}/read`, { seq: 1_000_000 });
    expect(readAll.statusCode).toBe(200);
    // 2^53 + 1 (not exactly representable), 2^63 (past bigint), 1e20.
    for (const seq of ['9007199254740993', '9223372036854775808', '100000000000000000000', '1e20']) {
      const response = await unchanged(() => raw(bob, 'POST', `/v1/conversations/${directId}/read`, `{"seq":${seq}}`));
      expect({ seq, status: response.statusCode }).not.toEqual({ seq, status: 500 });
      if (response.statusCode >= 400) expectError(response, 'VALIDATION_FAILED');
    }
    const infinite = await unchanged(() => raw(bob, 'POST', `/v1/conversations/${directId}/read`, '{"seq":1e400}'));
    expectError(infinite, 'VALIDATION_FAILED');
  });

  test('a body with no content type is UNSUPPORTED_MEDIA_TYPE', async () => {
    const response = await unchanged(() =>
      raw(alice, 'PATCH', '/v1/me', JSON.stringify({ displayName: 'no type' }), null),
    );
    expectError(response, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('a JSON content type with a charset parameter is accepted', async () => {
    const url = `/v1/conversations/${directId}/read`;
    const response = await raw(bob, 'POST', url, '{"seq":0}', 'application/json; charset=utf-8');
    expect(response.statusCode).toBe(200);
  });
});

// ---------------------------------------------------------------------------------
// Ids in paths and bodies
// ---------------------------------------------------------------------------------

describe('ids', () => {
  const badIds = [
    'not-a-uuid',
    '123',
    '00000000-0000-4000-8000-00000000000',
    '00000000-0000-4000-8000-0000000000000',
    '00000000000040008000000000000000',
    '{00000000-0000-4000-8000-000000000000}',
    'urn:uuid:00000000-0000-4000-8000-000000000000',
    "' OR '1'='1",
    '%00',
    'g0000000-0000-4000-8000-000000000000',
  ];

  test.each(badIds)('an invalid conversation id %j in a path is VALIDATION_FAILED', async (bad) => {
    const id = bad === '%00' ? bad : encodeURIComponent(bad);
    for (const [method, url, payload] of [
      ['POST', `/v1/conversations/${id}/messages`, { clientMessageId: 'bad-id', body: 'x' }],
      ['PATCH', `/v1/conversations/${id}/messages/1`, { body: 'x' }],
      ['POST', `/v1/conversations/${id}/read`, { seq: 1 }],
      ['POST', `/v1/conversations/${id}/members`, { userIds: [bob.id] }],
      ['GET', `/v1/conversations/${id}`, undefined],
    ] as Array<[Method, string, unknown]>) {
      const response = await unchanged(() => call(h.app, alice, method, url, payload));
      try {
        expectError(response, 'VALIDATION_FAILED');
      } catch (error) {
        throw new Error(`${method} ${url}: ${(error as Error).message}`);
      }
    }
  });

  test.each(badIds)('an invalid user id %j in a path is VALIDATION_FAILED', async (bad) => {
    const id = bad === '%00' ? bad : encodeURIComponent(bad);
    for (const [method, url] of [
      ['POST', `/v1/contacts/${id}/accept`],
      ['POST', `/v1/contacts/${id}/decline`],
      ['DELETE', `/v1/contacts/${id}`],
      ['PUT', `/v1/blocks/${id}`],
      ['GET', `/v1/users/${id}`],
    ] as Array<[Method, string]>) {
      const response = await unchanged(() => call(h.app, alice, method, url));
      try {
        expectError(response, 'VALIDATION_FAILED');
      } catch (error) {
        throw new Error(`${method} ${url}: ${(error as Error).message}`);
      }
    }
  });

  const badSeqs = ['abc', '0', '-1', '1.5', '1e', '%20', '0x1'];
  test.each(badSeqs)('an invalid seq %j in a path is VALIDATION_FAILED', async (seq) => {
    const response = await unchanged(() =>
      call(h.app, alice, 'PATCH', `/v1/conversations/${directId}/messages/${seq}`, { body: 'x' }),
    );
    expectError(response, 'VALIDATION_FAILED');
  });

  test('a seq too large for the database is refused, not a server error', async () => {
    for (const seq of ['9007199254740993', '100000000000000000000', '9223372036854775808']) {
      const response = await unchanged(() =>
        call(h.app, alice, 'PATCH', `/v1/conversations/${directId}/messages/${seq}`, { body: 'x' }),
      );
      expect({ seq, status: response.statusCode }).not.toEqual({ seq, status: 500 });
      expectError(response, response.statusCode === 404 ? 'MESSAGE_NOT_FOUND' : 'VALIDATION_FAILED');
    }
  });

  test('ids that do not exist are 404 with the right code', async () => {
    const cases: Array<[Method, string, unknown, ErrorCode]> = [
      [
        'POST',
        `/v1/conversations/${MISSING_ID}/messages`,
        { clientMessageId: 'ghost', body: 'x' },
        'CONVERSATION_NOT_FOUND',
      ],
      ['PATCH', `/v1/conversations/${MISSING_ID}/messages/1`, { body: 'x' }, 'CONVERSATION_NOT_FOUND'],
      ['PATCH', `/v1/conversations/${directId}/messages/999`, { body: 'x' }, 'MESSAGE_NOT_FOUND'],
      ['DELETE', `/v1/conversations/${directId}/messages/999`, undefined, 'MESSAGE_NOT_FOUND'],
      ['POST', `/v1/conversations/${MISSING_ID}/read`, { seq: 1 }, 'CONVERSATION_NOT_FOUND'],
      ['GET', `/v1/conversations/${MISSING_ID}`, undefined, 'CONVERSATION_NOT_FOUND'],
      ['POST', `/v1/conversations/${MISSING_ID}/members`, { userIds: [bob.id] }, 'CONVERSATION_NOT_FOUND'],
      ['POST', `/v1/conversations/${groupId}/members`, { userIds: [MISSING_ID] }, 'USER_NOT_FOUND'],
      ['POST', '/v1/conversations/groups', { title: 'ghosts', memberIds: [bob.id, MISSING_ID] }, 'USER_NOT_FOUND'],
      ['POST', '/v1/conversations/direct', { userId: MISSING_ID }, 'USER_NOT_FOUND'],
      ['POST', '/v1/contacts', { userId: MISSING_ID }, 'USER_NOT_FOUND'],
      ['POST', `/v1/contacts/${MISSING_ID}/accept`, undefined, 'CONTACT_NOT_FOUND'],
      ['POST', `/v1/contacts/${MISSING_ID}/decline`, undefined, 'CONTACT_NOT_FOUND'],
      ['DELETE', `/v1/contacts/${MISSING_ID}`, undefined, 'CONTACT_NOT_FOUND'],
      ['PUT', `/v1/blocks/${MISSING_ID}`, undefined, 'USER_NOT_FOUND'],
      ['GET', `/v1/users/${MISSING_ID}`, undefined, 'USER_NOT_FOUND'],
      ['GET', `/v1/users/by-username/${PREFIX}_nobody`, undefined, 'USER_NOT_FOUND'],
    ];
    for (const [method, url, payload, code] of cases) {
      const response = await unchanged(() => call(h.app, alice, method, url, payload));
      try {
        expectError(response, code);
      } catch (error) {
        throw new Error(`${method} ${url}: ${(error as Error).message}`);
      }
    }
  });

  test('a conversation that exists but is not mine is 403 NOT_A_MEMBER, and writes nothing', async () => {
    const carol = await registerUser(h.app, uniqueName(PREFIX));
    const response = await unchanged(() =>
      call(h.app, carol, 'POST', `/v1/conversations/${directId}/messages`, { clientMessageId: 'intruder', body: 'hi' }),
    );
    expectError(response, 'NOT_A_MEMBER');
    const read = await unchanged(() => call(h.app, carol, 'POST', `/v1/conversations/${directId}/read`, { seq: 1 }));
    expectError(read, 'NOT_A_MEMBER');
  });
});

// ---------------------------------------------------------------------------------
// Routes and request ids
// ---------------------------------------------------------------------------------

describe('routes and request ids', () => {
  test.each([
    ['GET', '/v1/nope'],
    ['POST', '/v1/nope'],
    ['GET', '/'],
    ['GET', '/v2/me'],
    ['GET', `/v1/conversations/${MISSING_ID}/nope`],
    ['DELETE', '/v1/me'],
  ] as Array<[Method, string]>)('%s %s is 404 NOT_FOUND in the error shape', async (method, url) => {
    const response = await unchanged(() => call(h.app, alice, method, url, method === 'POST' ? {} : undefined));
    expectError(response, 'NOT_FOUND');
  });

  test.each(['req-123', 'a.b:c_d-E', '0f8fad5b-d9cb-469f-a165-70867728950e', 'x'.repeat(128)])(
    'a sane incoming x-request-id %j is echoed, in the header and the error body',
    async (id) => {
      const response = await h.app.inject({ method: 'GET', url: '/v1/nope', headers: { 'x-request-id': id } });
      expect(response.headers['x-request-id']).toBe(id);
      expectError(response, 'NOT_FOUND');
      expect(response.json().error.requestId).toBe(id);
      const ok = await h.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': id } });
      expect(ok.headers['x-request-id']).toBe(id);
    },
  );

  test.each([
    ['too long', 'x'.repeat(129)],
    ['a space', 'a b'],
    ['markup', '<script>alert(1)</script>'],
    ['SQL', "1'; DROP TABLE users;--"],
    ['a path', '../../etc/passwd'],
    ['a log-forging attempt', 'ok\tlevel=error'],
    ['non-ASCII', 'ïd-😀'],
    ['empty', ''],
  ])('a malicious incoming x-request-id (%s) is replaced by a fresh uuid', async (_what, id) => {
    const response = await h.app.inject({
      method: 'GET',
      url: '/v1/nope',
      headers: { 'x-request-id': Buffer.from(id, 'utf8').toString('latin1') },
    });
    const echoed = response.headers['x-request-id'];
    expect(echoed).not.toBe(id);
    expect(echoed).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expectError(response, 'NOT_FOUND');
  });

  test('every request without an id gets its own', async () => {
    const first = await h.app.inject({ method: 'GET', url: '/v1/nope' });
    const second = await h.app.inject({ method: 'GET', url: '/v1/nope' });
    expect(first.headers['x-request-id']).not.toBe(second.headers['x-request-id']);
  });
});

// ---------------------------------------------------------------------------------
// Hostile but valid text is stored and returned verbatim
// ---------------------------------------------------------------------------------

const HOSTILE: Array<[string, string]> = [
  ['SQL injection', "Robert'); DROP TABLE messages;--"],
  ['LIKE wildcards and a backslash', '%_\\'],
  ['more SQL', "' OR 1=1; -- /* */ $1 $$x$$ \\x00"],
  ['ZWJ emoji sequences', '👩‍👩‍👧‍👦 👨🏽‍💻 🏳️‍🌈 🧑🏿‍🤝‍🧑🏻'],
  ['RTL text', 'مرحبا بالعالم · שלום עולם'],
  ['bidi overrides', 'abc\u202Edcba\u202C \u2066isolate\u2069'],
  ['combining marks', 'e\u0301 a\u0308 Z\u0351\u0352\u0353\u0354 \u1100\u1161\u11A8'],
  ['astral characters', '𝕬𝖑𝖎𝖈𝖊 𠜎𠜱 😀 \u{10FFFD}'],
  ['line and paragraph separators', 'line\u2028sep\u2029para'],
  ['control characters and whitespace', '  \t tab\r\nCRLF \u0001\u001f\u007f \u00a0 \uFEFF  '],
  ['quotes and markup', `"double" 'single' \`back\` <b>&amp;</b> {{x}} \${x}`],
  ['noncharacters and specials', '\uFFFE\uFFFF\uFFFD\u200B'],
];

describe('hostile but valid text is stored and returned verbatim', () => {
  test.each(HOSTILE)('message body: %s', async (_what, text) => {
    const clientMessageId = `v-${randomUUID()}`;
    const sent = await call(h.app, alice, 'POST', `/v1/conversations/${directId}/messages`, {
      clientMessageId,
      body: text,
    });
    expect(sent.statusCode).toBe(201);
    const { seq } = sent.json().message;
    expect(sent.json().message.body).toBe(text);

    const row = await h.db.kysely
      .selectFrom('messages')
      .select(['body', 'client_message_id'])
      .where('conversation_id', '=', directId)
      .where('seq', '=', seq)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ body: text, client_message_id: clientMessageId });

    const history = await call(h.app, bob, 'GET', `/v1/conversations/${directId}/messages?after=${seq - 1}&limit=1`);
    expect(history.json().messages[0].body).toBe(text);

    const event = await h.events.waitFor(
      ({ event }) => event.type === 'message.created' && event.message.clientMessageId === clientMessageId,
    );
    expect(event.event.type === 'message.created' && event.event.message.body).toBe(text);
  });

  test.each(HOSTILE)('edited message body: %s', async (_what, text) => {
    const sent = await call(h.app, alice, 'POST', `/v1/conversations/${directId}/messages`, {
      clientMessageId: `e-${randomUUID()}`,
      body: 'to be edited',
    });
    const { seq } = sent.json().message;
    const edited = await call(h.app, alice, 'PATCH', `/v1/conversations/${directId}/messages/${seq}`, { body: text });
    expect(edited.statusCode).toBe(200);
    expect(edited.json().body).toBe(text);

    const row = await h.db.kysely
      .selectFrom('messages')
      .select('body')
      .where('conversation_id', '=', directId)
      .where('seq', '=', seq)
      .executeTakeFirstOrThrow();
    expect(row.body).toBe(text);
    const history = await call(h.app, bob, 'GET', `/v1/conversations/${directId}/messages?after=${seq - 1}&limit=1`);
    expect(history.json().messages[0].body).toBe(text);
  });

  test.each(HOSTILE)('group title: %s', async (_what, text) => {
    const created = await call(h.app, alice, 'POST', '/v1/conversations/groups', { title: text, memberIds: [bob.id] });
    expect(created.statusCode).toBe(201);
    const { id, title } = created.json();
    expect(title).toBe(text);
    const row = await h.db.kysely
      .selectFrom('conversations')
      .select('title')
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.title).toBe(text);
    const seenByBob = await call(h.app, bob, 'GET', `/v1/conversations/${id}`);
    expect(seenByBob.json().title).toBe(text);
  });

  test.each(HOSTILE)('display name (PATCH /v1/me): %s', async (_what, text) => {
    const updated = await call(h.app, alice, 'PATCH', '/v1/me', { displayName: text });
    expect(updated.statusCode).toBe(200);
    expect(updated.json().displayName).toBe(text);
    const row = await h.db.kysely
      .selectFrom('users')
      .select('display_name')
      .where('id', '=', alice.id)
      .executeTakeFirstOrThrow();
    expect(row.display_name).toBe(text);
    expect((await call(h.app, alice, 'GET', '/v1/me')).json().displayName).toBe(text);
    expect((await call(h.app, bob, 'GET', `/v1/users/${alice.id}`)).json().displayName).toBe(text);
  });

  test.each(HOSTILE)('display name at registration: %s', async (_what, text) => {
    const username = uniqueName(PREFIX);
    const registered = await h.app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: { username, password: PASSWORD, displayName: text },
    });
    expect(registered.statusCode).toBe(201);
    expect(registered.json().user.displayName).toBe(text);
    const row = await h.db.kysely
      .selectFrom('users')
      .select('display_name')
      .where('username', '=', username)
      .executeTakeFirstOrThrow();
    expect(row.display_name).toBe(text);
  });

  test.each(HOSTILE)('deviceName at login: %s', async (_what, text) => {
    const login = await h.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username: bob.username, password: PASSWORD, deviceName: text },
    });
    expect(login.statusCode).toBe(200);
    const row = await h.db.kysely
      .selectFrom('sessions')
      .select(['device_name', 'user_id'])
      .where('id', '=', login.json().tokens.sessionId)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ device_name: text, user_id: bob.id });
  });

  test('a password with hostile text works for login, byte for byte', async () => {
    const password = "Robert'); DROP TABLE users;-- 👩‍👩‍👧 e\u0301 \u2028";
    const username = uniqueName(PREFIX);
    const registered = await h.app.inject({
      method: 'POST',
      url: '/v1/auth/register',
      payload: { username, password },
    });
    expect(registered.statusCode).toBe(201);
    const login = await h.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username, password } });
    expect(login.statusCode).toBe(200);
    // The composed form is a different password.
    const composed = await h.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username, password: password.normalize('NFC') },
    });
    expectError(composed, 'INVALID_CREDENTIALS');
  });

  test('usernames with SQL or LIKE metacharacters are refused, and `_` is no wildcard', async () => {
    for (const username of ["bob'--", 'a%b', 'a b', 'ab\\c']) {
      const response = await unchanged(() =>
        h.app.inject({ method: 'POST', url: '/v1/auth/register', payload: { username, password: PASSWORD } }),
      );
      expectError(response, 'VALIDATION_FAILED');
    }
    // alice's name is `${PREFIX}_<hex>`: a `_` in its place must not match any other character.
    const lookalike = alice.username.replace(`${PREFIX}_`, `${PREFIX}x`);
    const lookup = await call(h.app, bob, 'GET', `/v1/users/by-username/${lookalike}`);
    expectError(lookup, 'USER_NOT_FOUND');
    const exact = await call(h.app, bob, 'GET', `/v1/users/by-username/${alice.username.toUpperCase()}`);
    expect(exact.json().id).toBe(alice.id);
  });
});

// ---------------------------------------------------------------------------------
// Control: each base body is accepted, so every refusal above was for what it broke.
// ---------------------------------------------------------------------------------

describe('control', () => {
  test.each(endpoints)('the valid $name body is accepted', async (endpoint) => {
    const response = await send(endpoint, endpoint.valid());
    expect(response.statusCode).toBe(endpoint.okStatus);
  });
});
