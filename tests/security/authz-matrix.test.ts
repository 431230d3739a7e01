// The authorization matrix (DESIGN.md invariant 5): every REST route the running app
// serves and every client frame type, against every identity that must be refused.
//
// Routes are read from the app itself (Fastify's route table), so a new route without a
// row here fails the suite. Each authenticated route is tried with no token, malformed
// Authorization headers, a revoked session, and every forged token of
// support/authz-tokens.ts (all for the owner of the resources, so an accepted forgery
// would succeed), then with the identities that apply to it (wrong user, non-member,
// removed member, blocked contact), then once with the rightful token as the control
// (which proves the refusals are refusals, not a bad request).
//
// Covered elsewhere, not repeated: refresh-token rotation and reuse revoking the family,
// the login rate limit, the argon2id parameters on both backends and login rehashing
// (services/message/test/auth.test.ts); another user's token only ever showing that
// user (same file).
import { randomUUID } from 'node:crypto';
import { ClientFrame, type ConversationSummary, type Message, type RoutingInfo } from '@parley/protocol';
import { startGatewayHarness, type GatewayHarness, type GatewayNode, type TestClient } from '../support/gateway-harness';
import { call, createGroupAs, errorOf, registerUsers, type CallResponse, type TestUser } from '../support/message-harness';
import { forgedTokens, type ForgedToken } from './support/authz-tokens';

jest.setTimeout(60_000);

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

interface Fixture {
  alice: TestUser; // owner of group G and H, blocker of erin
  bob: TestUser; // plain member of G (and H)
  carol: TestUser; // member of nothing: the non-member
  dave: TestUser; // was a member of G, removed by alice
  erin: TestUser; // blocked by alice; shares direct conversation D with her
  greg: TestUser; // member of H (removed by the control)
  hal: TestUser; // member of H (leaves in the control)
  p: TestUser[]; // contact-route counterparts of alice
  groupG: string;
  groupH: string;
  directD: string;
  /** alice's message in G (seq) and in H. */
  aliceSeqG: number;
  aliceSeqH: number;
  bobSeqG: number;
}

type Identity = 'wrong user' | 'non-member' | 'removed member' | 'blocked contact';

interface Attempt {
  identity: Identity;
  as: (f: Fixture) => TestUser;
  url?: (f: Fixture) => string;
  payload?: (f: Fixture) => unknown;
  /** The documented refusal, or a check of a 200 that must reveal nothing. */
  expect: { status: number; code: string } | ((response: CallResponse, f: Fixture) => void);
}

interface RouteRow {
  url: (f: Fixture) => string;
  payload?: (f: Fixture) => unknown;
  attempts: Attempt[];
  /** Why the identity attempts do not apply (self-scoped or public data). */
  noIdentityAttempts?: string;
  /** The rightful call; must succeed. */
  control: { as: (f: Fixture) => TestUser | Promise<TestUser>; url?: (f: Fixture) => string; payload?: (f: Fixture) => unknown };
}

/** Routes anyone may call without a token, and why. */
const PUBLIC_ROUTES: Record<string, string> = {
  'POST /v1/auth/register': 'creates an account',
  'POST /v1/auth/login': 'password login (rate limited)',
  'POST /v1/auth/refresh': 'authenticated by the refresh token in the body',
  'GET /.well-known/jwks.json': 'public verification keys',
  'GET /openapi.json': 'API description',
  'GET /healthz': 'liveness probe',
  'GET /readyz': 'readiness probe',
  'GET /metrics': 'Prometheus scrape (nginx does not route it)',
  'POST /internal/v1/send-batch':
    'the gateways\' call (nginx does not route it); no bearer: each send carries its own token and is authorized alone (services/message/test/send-batch.test.ts)',
};

const notMember = { status: 403, code: 'NOT_A_MEMBER' };
const G = (f: Fixture) => `/v1/conversations/${f.groupG}`;
const nonMemberAndRemoved = (url?: (f: Fixture) => string, payload?: (f: Fixture) => unknown): Attempt[] => [
  { identity: 'non-member', as: (f) => f.carol, ...(url ? { url } : {}), ...(payload ? { payload } : {}), expect: notMember },
  { identity: 'removed member', as: (f) => f.dave, ...(url ? { url } : {}), ...(payload ? { payload } : {}), expect: notMember },
];
const sees = (conversationId: (f: Fixture) => string, present: boolean) => (response: CallResponse, f: Fixture) => {
  expect(response.statusCode).toBe(200);
  expect(response.body.includes(conversationId(f))).toBe(present);
};

const ROUTES: Record<string, RouteRow> = {
  'POST /v1/auth/logout': {
    url: () => '/v1/auth/logout',
    attempts: [],
    noIdentityAttempts: 'revokes the session of the token presented; nothing else is named',
    control: { as: async (f) => loginAgain(f.alice) },
  },
  'GET /v1/me': {
    url: () => '/v1/me',
    attempts: [],
    noIdentityAttempts: 'self-scoped: the token is the identity',
    control: { as: (f) => f.alice },
  },
  'PATCH /v1/me': {
    url: () => '/v1/me',
    payload: () => ({ displayName: 'Alice A.' }),
    attempts: [],
    noIdentityAttempts: 'self-scoped: the token is the identity',
    control: { as: (f) => f.alice },
  },
  'GET /v1/me/routing': {
    url: () => '/v1/me/routing',
    attempts: [
      {
        identity: 'non-member',
        as: (f) => f.carol,
        expect: (response, f) => {
          expect(response.statusCode).toBe(200);
          expect(response.json<RoutingInfo>().conversationIds).not.toContain(f.groupG);
        },
      },
      {
        identity: 'removed member',
        as: (f) => f.dave,
        expect: (response, f) => {
          expect(response.statusCode).toBe(200);
          expect(response.json<RoutingInfo>().conversationIds).not.toContain(f.groupG);
        },
      },
    ],
    control: { as: (f) => f.alice },
  },
  'GET /v1/users/by-username/{username}': {
    url: (f) => `/v1/users/by-username/${f.bob.username}`,
    attempts: [],
    noIdentityAttempts: 'public profile, visible to every signed-in user',
    control: { as: (f) => f.alice },
  },
  'GET /v1/users/{userId}': {
    url: (f) => `/v1/users/${f.bob.id}`,
    attempts: [],
    noIdentityAttempts: 'public profile, visible to every signed-in user',
    control: { as: (f) => f.alice },
  },
  'GET /v1/contacts': {
    url: () => '/v1/contacts',
    attempts: [
      { identity: 'wrong user', as: (f) => f.carol, expect: (response, f) => sees(() => f.p[3]!.id, false)(response, f) },
    ],
    control: { as: (f) => f.alice },
  },
  'POST /v1/contacts': {
    url: () => '/v1/contacts',
    payload: (f) => ({ userId: f.p[0]!.id }),
    attempts: [
      { identity: 'blocked contact', as: (f) => f.erin, payload: (f) => ({ userId: f.alice.id }), expect: { status: 403, code: 'USER_BLOCKED' } },
    ],
    control: { as: (f) => f.alice },
  },
  'POST /v1/contacts/{userId}/accept': {
    url: (f) => `/v1/contacts/${f.p[1]!.id}/accept`,
    attempts: [
      // p1 asked alice, not carol: carol cannot accept on alice's behalf.
      { identity: 'wrong user', as: (f) => f.carol, expect: { status: 404, code: 'CONTACT_NOT_FOUND' } },
      {
        identity: 'blocked contact',
        as: (f) => f.erin,
        url: (f) => `/v1/contacts/${f.alice.id}/accept`,
        expect: { status: 404, code: 'CONTACT_NOT_FOUND' },
      },
    ],
    control: { as: (f) => f.alice },
  },
  'POST /v1/contacts/{userId}/decline': {
    url: (f) => `/v1/contacts/${f.p[2]!.id}/decline`,
    attempts: [{ identity: 'wrong user', as: (f) => f.carol, expect: { status: 404, code: 'CONTACT_NOT_FOUND' } }],
    control: { as: (f) => f.alice },
  },
  'DELETE /v1/contacts/{userId}': {
    url: (f) => `/v1/contacts/${f.p[3]!.id}`,
    attempts: [{ identity: 'wrong user', as: (f) => f.carol, expect: { status: 404, code: 'CONTACT_NOT_FOUND' } }],
    control: { as: (f) => f.alice },
  },
  'GET /v1/blocks': {
    url: () => '/v1/blocks',
    attempts: [
      // alice's block list is hers: erin (the blocked one) does not see it.
      { identity: 'blocked contact', as: (f) => f.erin, expect: (response, f) => sees(() => f.alice.id, false)(response, f) },
    ],
    control: { as: (f) => f.alice },
  },
  'PUT /v1/blocks/{userId}': {
    url: (f) => `/v1/blocks/${f.p[4]!.id}`,
    attempts: [],
    noIdentityAttempts: 'self-scoped: blocks someone for the caller only',
    control: { as: (f) => f.alice },
  },
  'DELETE /v1/blocks/{userId}': {
    url: (f) => `/v1/blocks/${f.p[5]!.id}`,
    attempts: [
      // The blocked one cannot lift alice's block.
      {
        identity: 'blocked contact',
        as: (f) => f.erin,
        url: (f) => `/v1/blocks/${f.alice.id}`,
        expect: { status: 404, code: 'USER_NOT_FOUND' },
      },
    ],
    control: { as: (f) => f.alice },
  },
  'POST /v1/conversations/direct': {
    url: () => '/v1/conversations/direct',
    payload: (f) => ({ userId: f.p[0]!.id }),
    attempts: [
      { identity: 'blocked contact', as: (f) => f.erin, payload: (f) => ({ userId: f.alice.id }), expect: { status: 403, code: 'USER_BLOCKED' } },
    ],
    control: { as: (f) => f.alice },
  },
  'POST /v1/conversations/groups': {
    url: () => '/v1/conversations/groups',
    payload: (f) => ({ title: 'control', memberIds: [f.bob.id] }),
    attempts: [],
    noIdentityAttempts: 'anyone may create a group (blocks do not apply inside groups)',
    control: { as: (f) => f.alice },
  },
  'GET /v1/conversations': {
    url: () => '/v1/conversations',
    attempts: [
      { identity: 'non-member', as: (f) => f.carol, expect: sees((f) => f.groupG, false) },
      { identity: 'removed member', as: (f) => f.dave, expect: sees((f) => f.groupG, false) },
    ],
    control: { as: (f) => f.alice },
  },
  'GET /v1/conversations/{conversationId}': {
    url: G,
    attempts: nonMemberAndRemoved(),
    control: { as: (f) => f.alice },
  },
  'GET /v1/conversations/{conversationId}/members': {
    url: (f) => `${G(f)}/members`,
    attempts: nonMemberAndRemoved(),
    control: { as: (f) => f.alice },
  },
  'POST /v1/conversations/{conversationId}/members': {
    url: (f) => `${G(f)}/members`,
    payload: (f) => ({ userIds: [f.carol.id] }),
    attempts: [
      { identity: 'wrong user', as: (f) => f.bob, expect: { status: 403, code: 'INSUFFICIENT_ROLE' } },
      ...nonMemberAndRemoved(),
    ],
    control: { as: (f) => f.alice, url: (f) => `/v1/conversations/${f.groupH}/members`, payload: (f) => ({ userIds: [f.p[0]!.id] }) },
  },
  'PATCH /v1/conversations/{conversationId}/members/{userId}': {
    url: (f) => `${G(f)}/members/${f.alice.id}`,
    payload: () => ({ role: 'member' }),
    attempts: [
      { identity: 'wrong user', as: (f) => f.bob, expect: { status: 403, code: 'INSUFFICIENT_ROLE' } },
      ...nonMemberAndRemoved(),
    ],
    control: {
      as: (f) => f.alice,
      url: (f) => `/v1/conversations/${f.groupH}/members/${f.bob.id}`,
      payload: () => ({ role: 'admin' }),
    },
  },
  'DELETE /v1/conversations/{conversationId}/members/{userId}': {
    url: (f) => `${G(f)}/members/${f.alice.id}`,
    attempts: [{ identity: 'wrong user', as: (f) => f.bob, expect: { status: 403, code: 'INSUFFICIENT_ROLE' } }, ...nonMemberAndRemoved()],
    control: { as: (f) => f.alice, url: (f) => `/v1/conversations/${f.groupH}/members/${f.greg.id}` },
  },
  'POST /v1/conversations/{conversationId}/leave': {
    url: (f) => `${G(f)}/leave`,
    attempts: nonMemberAndRemoved(),
    control: { as: (f) => f.hal, url: (f) => `/v1/conversations/${f.groupH}/leave` },
  },
  'POST /v1/conversations/{conversationId}/messages': {
    url: (f) => `${G(f)}/messages`,
    payload: () => ({ clientMessageId: randomUUID(), body: 'let me in' }),
    attempts: [
      ...nonMemberAndRemoved(),
      {
        identity: 'blocked contact',
        as: (f) => f.erin,
        url: (f) => `/v1/conversations/${f.directD}/messages`,
        expect: { status: 403, code: 'USER_BLOCKED' },
      },
    ],
    control: { as: (f) => f.alice },
  },
  'GET /v1/conversations/{conversationId}/messages': {
    url: (f) => `${G(f)}/messages`,
    attempts: nonMemberAndRemoved(),
    control: { as: (f) => f.alice },
  },
  'PATCH /v1/conversations/{conversationId}/messages/{seq}': {
    url: (f) => `${G(f)}/messages/${f.aliceSeqG}`,
    payload: () => ({ body: 'rewritten' }),
    attempts: [{ identity: 'wrong user', as: (f) => f.bob, expect: { status: 403, code: 'NOT_MESSAGE_AUTHOR' } }, ...nonMemberAndRemoved()],
    control: { as: (f) => f.alice },
  },
  'DELETE /v1/conversations/{conversationId}/messages/{seq}': {
    url: (f) => `${G(f)}/messages/${f.aliceSeqG}`,
    attempts: [{ identity: 'wrong user', as: (f) => f.bob, expect: { status: 403, code: 'NOT_MESSAGE_AUTHOR' } }, ...nonMemberAndRemoved()],
    control: { as: (f) => f.alice, url: (f) => `/v1/conversations/${f.groupH}/messages/${f.aliceSeqH}` },
  },
  'POST /v1/conversations/{conversationId}/read': {
    url: (f) => `${G(f)}/read`,
    payload: (f) => ({ seq: f.bobSeqG }),
    attempts: nonMemberAndRemoved(),
    control: { as: (f) => f.alice },
  },
  'POST /v1/sync': {
    url: () => '/v1/sync',
    payload: (f) => ({ cursors: [{ conversationId: f.groupG, rev: 0 }] }),
    attempts: (['non-member', 'removed member'] as const).map((identity) => ({
      identity,
      as: (f: Fixture) => (identity === 'non-member' ? f.carol : f.dave),
      expect: (response: CallResponse, f: Fixture) => {
        expect(response.statusCode).toBe(200);
        const body = response.json<{ conversations: ConversationSummary[]; messages: Message[]; removed: string[] }>();
        expect(body.removed).toEqual([f.groupG]);
        expect(body.conversations.map((c) => c.id)).not.toContain(f.groupG);
        expect(body.messages.filter((m) => m.conversationId === f.groupG)).toEqual([]);
      },
    })),
    control: { as: (f) => f.alice },
  },
};

/** The client frame types the protocol defines, read from its schema. */
function clientFrameTypes(): string[] {
  return (ClientFrame.anyOf as Array<{ properties: { type: { const: string } } }>).map((schema) => schema.properties.type.const);
}

/** Every route of the running app as `METHOD /path` (OpenAPI-style params), HEAD and CORS OPTIONS left out. */
function servedRoutes(tree: string): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line.trimEnd());
    if (!match) continue;
    const depth = (match[1] ?? '').length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    const path = stack.join('').replace(/:(\w+)/g, '{$1}');
    for (const method of (match[3] ?? '').split(',').map((m) => m.trim())) {
      if (method && method !== 'HEAD' && method !== 'OPTIONS') routes.push(`${method} ${path}`);
    }
  }
  return routes;
}

let h: GatewayHarness;
let node: GatewayNode;
let f: Fixture;
let forged: ForgedToken[];
let revoked: TestUser;

async function loginAgain(user: TestUser): Promise<TestUser> {
  return h.login(user);
}

function expectRefused(response: CallResponse, expected: { status: number; code: string }, what: string): void {
  expect({ what, ...errorOf(response) }).toEqual({ what, ...expected });
}

function send(user: TestUser | { headers: Record<string, string> } | null, method: Method, url: string, payload?: unknown) {
  return h.message.app.inject({
    method,
    url,
    headers: user ? user.headers : {},
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
}

beforeAll(async () => {
  h = await startGatewayHarness();
  node = await h.startNode();
  const app = h.message.app;
  const [alice, bob, carol, dave, erin, greg, hal, ...p] = await registerUsers(app, 13);
  const users = { alice: alice!, bob: bob!, carol: carol!, dave: dave!, erin: erin!, greg: greg!, hal: hal! };
  const groupG = (await createGroupAs(app, users.alice, [users.bob, users.dave], 'G')).id;
  const groupH = (await createGroupAs(app, users.alice, [users.bob, users.greg, users.hal], 'H')).id;
  const direct = await call(app, users.alice, 'POST', '/v1/conversations/direct', { userId: users.erin.id });
  expect(direct.statusCode).toBe(201);
  const directD = direct.json<ConversationSummary>().id;
  const sendAs = async (user: TestUser, conversationId: string) => {
    const response = await call(app, user, 'POST', `/v1/conversations/${conversationId}/messages`, {
      clientMessageId: randomUUID(),
      body: 'hello',
    });
    expect(response.statusCode).toBe(201);
    return response.json<{ message: Message }>().message.seq;
  };
  const aliceSeqG = await sendAs(users.alice, groupG);
  const bobSeqG = await sendAs(users.bob, groupG);
  const aliceSeqH = await sendAs(users.alice, groupH);
  expect((await call(app, users.alice, 'DELETE', `/v1/conversations/${groupG}/members/${users.dave.id}`)).statusCode).toBeLessThan(300);
  expect((await call(app, users.alice, 'PUT', `/v1/blocks/${users.erin.id}`)).statusCode).toBeLessThan(300);
  // Contact counterparts: p1 and p2 asked alice; alice asked p3; alice blocked p5.
  for (const asker of [p[1]!, p[2]!]) expect((await call(app, asker, 'POST', '/v1/contacts', { userId: users.alice.id })).statusCode).toBeLessThan(300);
  expect((await call(app, users.alice, 'POST', '/v1/contacts', { userId: p[3]!.id })).statusCode).toBeLessThan(300);
  expect((await call(app, users.alice, 'PUT', `/v1/blocks/${p[5]!.id}`)).statusCode).toBeLessThan(300);
  f = { ...users, p: p as TestUser[], groupG, groupH, directD, aliceSeqG, aliceSeqH, bobSeqG };
  const { signingKey, issuer, audience } = h.message.config;
  forged = await forgedTokens({ signingKey, issuer, audience }, { userId: f.alice.id, sessionId: f.alice.sessionId }, f.alice.accessToken);
  revoked = await loginAgain(f.alice);
  expect((await call(app, revoked, 'POST', '/v1/auth/logout')).statusCode).toBe(204);
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('REST', () => {
  test('every route the app serves has a matrix row (public, or authenticated with its attempts)', () => {
    const served = servedRoutes(h.message.app.printRoutes({ commonPrefix: false }));
    expect(served.length).toBeGreaterThan(30);
    const missing = served.filter((route) => !(route in ROUTES) && !(route in PUBLIC_ROUTES));
    expect(missing).toEqual([]);
    // And no stale row: every row names a served route.
    expect([...Object.keys(ROUTES), ...Object.keys(PUBLIC_ROUTES)].filter((route) => !served.includes(route))).toEqual([]);
  });

  test('the OpenAPI document marks exactly the matrix\'s authenticated routes as bearer-protected', async () => {
    const doc = (await send(null, 'GET', '/openapi.json')).json<{ paths: Record<string, Record<string, { security?: unknown[] }>> }>();
    const bearer: string[] = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) if (operation.security?.length) bearer.push(`${method.toUpperCase()} ${path}`);
    }
    expect(bearer.sort()).toEqual(Object.keys(ROUTES).sort());
  });

  describe.each(Object.entries(ROUTES))('%s', (route, row) => {
    const method = route.split(' ')[0] as Method;

    test('refused without a valid token: anonymous, malformed, revoked, forged', async () => {
      const url = row.url(f);
      const payload = row.payload?.(f);
      const plain = { status: 401, code: 'UNAUTHENTICATED' };
      expectRefused(await send(null, method, url, payload), plain, 'anonymous');
      expectRefused(await send({ headers: { authorization: 'Bearer' } }, method, url, payload), plain, 'empty bearer');
      expectRefused(await send({ headers: { authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` } }, method, url, payload), plain, 'basic');
      expectRefused(await send({ headers: { authorization: f.alice.accessToken } }, method, url, payload), plain, 'token without the Bearer scheme');
      const sep = url.includes('?') ? '&' : '?';
      // A token in the URL is never read; authentication runs before any validation.
      expectRefused(await send(null, method, `${url}${sep}access_token=${f.alice.accessToken}`, payload), plain, 'token in the query');
      expectRefused(await send(null, method, url, row.payload ? { bogus: 'x'.repeat(100) } : undefined), plain, 'anonymous with an invalid body');
      expectRefused(await send(revoked, method, url, payload), { status: 401, code: 'SESSION_REVOKED' }, 'revoked session');
      for (const token of forged) {
        expectRefused(await send({ headers: { authorization: `Bearer ${token.token}` } }, method, url, payload), { status: 401, code: token.code }, token.name);
      }
    });

    if (row.attempts.length > 0) {
      test.each(row.attempts.map((attempt) => [attempt.identity, attempt] as const))('refused for the %s', async (_identity, attempt) => {
        const response = await send(attempt.as(f), method, (attempt.url ?? row.url)(f), (attempt.payload ?? row.payload)?.(f));
        if (typeof attempt.expect === 'function') attempt.expect(response, f);
        else expectRefused(response, attempt.expect, attempt.identity);
      });
    } else {
      test(`identity attempts do not apply: ${row.noIdentityAttempts ?? ''}`, () => {
        expect(row.noIdentityAttempts).toBeDefined();
      });
    }

    test('control: the rightful caller succeeds', async () => {
      const response = await send(await row.control.as(f), method, (row.control.url ?? row.url)(f), (row.control.payload ?? row.payload)?.(f));
      expect(response.statusCode < 300 ? 'ok' : `${response.statusCode} ${response.body}`).toBe('ok');
    });
  });
});

describe('socket', () => {
  const sockets: Record<string, TestClient> = {};

  beforeAll(async () => {
    for (const name of ['alice', 'carol', 'dave', 'erin'] as const) sockets[name] = await h.connect(node, f[name]);
  });

  test('every client frame type has a matrix row', () => {
    expect(clientFrameTypes().sort()).toEqual(Object.keys(FRAME_ROWS).sort());
  });

  const frameError = async (client: TestClient, frame: Record<string, unknown>) => {
    const id = client.label + randomUUID().slice(0, 8);
    client.ws.send(JSON.stringify({ ...frame, id }));
    const reply = await client.next('error', (error) => error.id === id);
    return reply.code;
  };

  const FRAME_ROWS: Record<string, (() => Promise<void>) | string> = {
    send: async () => {
      const frame = (conversationId: string) => ({ type: 'send', conversationId, clientMessageId: randomUUID(), body: 'let me in' });
      expect(await frameError(sockets['carol']!, frame(f.groupG))).toBe('NOT_A_MEMBER');
      expect(await frameError(sockets['dave']!, frame(f.groupG))).toBe('NOT_A_MEMBER');
      expect(await frameError(sockets['erin']!, frame(f.directD))).toBe('USER_BLOCKED');
    },
    read: async () => {
      expect(await frameError(sockets['carol']!, { type: 'read', conversationId: f.groupG, seq: 1 })).toBe('NOT_A_MEMBER');
      expect(await frameError(sockets['dave']!, { type: 'read', conversationId: f.groupG, seq: 1 })).toBe('NOT_A_MEMBER');
    },
    typing: async () => {
      expect(await frameError(sockets['carol']!, { type: 'typing', conversationId: f.groupG })).toBe('NOT_A_MEMBER');
      expect(await frameError(sockets['dave']!, { type: 'typing', conversationId: f.groupG })).toBe('NOT_A_MEMBER');
    },
    auth: async () => {
      const alice = sockets['alice']!;
      for (const token of forged) {
        expect({ token: token.name, code: await frameError(alice, { type: 'auth', token: token.token }) }).toEqual({
          token: token.name,
          code: token.code,
        });
      }
      // Another user's valid token does not move this socket to them.
      expect(await frameError(alice, { type: 'auth', token: f.bob.accessToken })).toBe('UNAUTHENTICATED');
      // A validly signed token of a revoked session of the same user is refused too.
      expect(await frameError(alice, { type: 'auth', token: revoked.accessToken })).not.toBeUndefined();
      // None of it changed the socket: still open, still alice's, still the old expiry.
      alice.ws.send(JSON.stringify({ type: 'ping', id: 'still-alice' }));
      await alice.next('pong', (pong) => pong.id === 'still-alice');
      expect(alice.isOpen).toBe(true);
    },
    ping: 'carries no conversation and no claim: nothing to authorize',
  };

  test.each(Object.keys(FRAME_ROWS))('frame %s: refused for every identity that does not own it', async (type) => {
    const row = FRAME_ROWS[type]!;
    if (typeof row === 'string') expect(row.length).toBeGreaterThan(0);
    else await row();
  });

  test('the upgrade is refused for every forged token, by header and by subprotocol', async () => {
    for (const via of ['header', 'subprotocol'] as const) {
      const bare = await h.attemptUpgrade(node, { via });
      expect({ via, token: 'none', status: bare.status, body: JSON.parse(bare.body) as unknown }).toMatchObject({
        via,
        token: 'none',
        status: 401,
        body: { error: { code: 'UNAUTHENTICATED' } },
      });
      for (const token of [...forged, { name: 'revoked session', token: revoked.accessToken, code: 'SESSION_REVOKED' }]) {
        const refused = await h.attemptUpgrade(node, { via, token: token.token });
        expect({ via, token: token.name, status: refused.status, body: refused.status === 101 ? {} : (JSON.parse(refused.body) as unknown) }).toMatchObject({
          via,
          token: token.name,
          status: 401,
          body: { error: { code: token.code } },
        });
      }
    }
    // Control: alice's own token is accepted either way.
    for (const via of ['header', 'subprotocol'] as const) expect((await h.attemptUpgrade(node, { via, token: f.alice.accessToken })).status).toBe(101);
  });

  test('a logout closes the session\'s open sockets (4003) and its token no longer upgrades', async () => {
    const session = await loginAgain(f.carol);
    const client = await h.connect(node, session);
    expect((await call(h.message.app, session, 'POST', '/v1/auth/logout')).statusCode).toBe(204);
    // The socket learns of the revocation on its next call to the message service.
    client.ws.send(JSON.stringify({ type: 'read', id: 'after-logout', conversationId: f.groupG, seq: 1 }));
    expect((await client.closed).code).toBe(4003);
    const again = await h.attemptUpgrade(node, { token: session.accessToken });
    expect(again.status).toBe(401);
    expect(JSON.parse(again.body)).toMatchObject({ error: { code: 'SESSION_REVOKED' } });
  });
});
