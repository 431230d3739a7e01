// The gateway end to end: real gateways (in-process, on ephemeral ports) in front of the
// real message service, on the real PostgreSQL and Redis. Every wait is for a frame, a
// close or a server-side event; timeouts only bound how long a failing test takes.
import { randomUUID } from 'node:crypto';
import type { ConversationSummary, HistoryPage } from '@parley/protocol';
import {
  startGatewayHarness,
  within,
  type GatewayHarness,
  type GatewayNode,
  type TestClient,
} from '../../../tests/support/gateway-harness';
import { call, createGroupAs, registerUsers, type TestUser } from '../../../tests/support/message-harness';

let h: GatewayHarness;
let node1: GatewayNode;
let node2: GatewayNode;

beforeAll(async () => {
  h = await startGatewayHarness();
  [node1, node2] = await Promise.all([h.startNode(), h.startNode()]);
});
afterAll(async () => h.close());

// ---------------------------------------------------------------------------------------
// Helpers

async function users(count: number): Promise<TestUser[]> {
  return registerUsers(h.message.app, count);
}

async function direct(a: TestUser, b: TestUser): Promise<string> {
  const response = await call(h.message.app, a, 'POST', '/v1/conversations/direct', { userId: b.id });
  expect(response.statusCode).toBe(201);
  return response.json<ConversationSummary>().id;
}

async function group(owner: TestUser, members: TestUser[]): Promise<string> {
  return (await createGroupAs(h.message.app, owner, members, 'gateway test')).id;
}

async function summary(user: TestUser, conversationId: string): Promise<ConversationSummary> {
  const response = await call(h.message.app, user, 'GET', `/v1/conversations/${conversationId}`);
  expect(response.statusCode).toBe(200);
  return response.json<ConversationSummary>();
}

async function history(user: TestUser, conversationId: string): Promise<HistoryPage['messages']> {
  const response = await call(h.message.app, user, 'GET', `/v1/conversations/${conversationId}/messages`);
  expect(response.statusCode).toBe(200);
  return response.json<HistoryPage>().messages;
}

function sendFrame(conversationId: string, body: string, clientMessageId: string = randomUUID()) {
  return { type: 'send', conversationId, clientMessageId, body };
}

/** Sends over the socket and returns the acknowledged message's seq. */
async function sendOver(client: TestClient, conversationId: string, body: string): Promise<number> {
  const ack = await client.ack(sendFrame(conversationId, body));
  expect(ack.message?.conversationId).toBe(conversationId);
  return ack.message?.seq ?? -1;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, index) => from + index);
}

function errorCodeOf(body: string): string | undefined {
  return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
}

// ---------------------------------------------------------------------------------------

describe('upgrade', () => {
  test('a token in the Authorization header opens a socket; the hello frame names the user, session and node', async () => {
    const [user] = await users(1);
    const client = await h.connect(node1, user!);
    expect(client.hello).toEqual({
      type: 'hello',
      userId: user!.id,
      sessionId: user!.sessionId,
      nodeId: node1.nodeId,
      heartbeatMs: node1.options.heartbeatIntervalMs,
      tokenExpiresAt: expect.any(Number),
    });
    expect(client.hello.tokenExpiresAt * 1000).toBeGreaterThan(Date.now());
    expect(client.ws.protocol).toBe('');
    await client.ping();
  });

  test('a token in the parley.auth subprotocol works; the server selects parley.v1, never the token', async () => {
    const [user] = await users(1);
    const client = await h.connect(node2, user!, { via: 'subprotocol' });
    expect(client.ws.protocol).toBe('parley.v1');
    expect(client.hello.userId).toBe(user!.id);
    await client.ping();
  });

  test('no token, a garbage token or a token signed by another key: 401, no socket', async () => {
    const before = await node1.metricValue('parley_gateway_upgrades_rejected_total', { status: '401' });
    const [user] = await users(1);
    const forged = user!.accessToken.split('.').slice(0, 2).join('.') + '.' + 'A'.repeat(86);
    const attempts = [
      await h.attemptUpgrade(node1, {}),
      await h.attemptUpgrade(node1, { token: 'not-a-jwt' }),
      await h.attemptUpgrade(node1, { authorization: 'Basic dXNlcjpwYXNz' }),
      await h.attemptUpgrade(node1, { token: 'garbage.garbage.garbage', via: 'subprotocol' }),
      await h.attemptUpgrade(node1, { token: forged }),
    ];
    for (const attempt of attempts) {
      expect(attempt.status).toBe(401);
      expect(errorCodeOf(attempt.body)).toBe('UNAUTHENTICATED');
    }
    expect(await node1.metricValue('parley_gateway_upgrades_rejected_total', { status: '401' })).toBe(before + 5);
    expect(await node1.metricValue('parley_gateway_upgrades_rejected_total', { status: '401', reason: 'token' })).toBe(before + 5);
  });

  test('an expired token: 401 TOKEN_EXPIRED', async () => {
    const [user] = await users(1);
    const expired = await h.signToken({
      userId: user!.id,
      sessionId: user!.sessionId,
      exp: Math.floor(Date.now() / 1000) - 120,
    });
    const attempt = await h.attemptUpgrade(node1, { token: expired });
    expect(attempt.status).toBe(401);
    expect(errorCodeOf(attempt.body)).toBe('TOKEN_EXPIRED');
    // The same user with a live token of the same session gets in: it was the expiry.
    const client = await h.connect(node1, user!);
    expect(client.hello.userId).toBe(user!.id);
  });

  test('the token of a logged-out session: 401, though its signature and expiry are fine', async () => {
    const [user] = await users(1);
    expect((await h.attemptUpgrade(node2, { token: user!.accessToken })).status).toBe(101);
    const logout = await call(h.message.app, user!, 'POST', '/v1/auth/logout');
    expect(logout.statusCode).toBe(204);
    const attempt = await h.attemptUpgrade(node2, { token: user!.accessToken });
    expect(attempt.status).toBe(401);
    expect(errorCodeOf(attempt.body)).toBe('SESSION_REVOKED');
  });

  test('with ALLOWED_ORIGINS set, a foreign Origin gets 403; a listed Origin and no Origin pass', async () => {
    const guarded = await h.startNode({ allowedOrigins: ['https://app.parley.test'] });
    const [user] = await users(1);
    const refused = await h.attemptUpgrade(guarded, { token: user!.accessToken, origin: 'https://evil.example' });
    expect(refused.status).toBe(403);
    expect(errorCodeOf(refused.body)).toBe('FORBIDDEN_ORIGIN');
    const viaSubprotocol = await h.attemptUpgrade(guarded, {
      token: user!.accessToken,
      via: 'subprotocol',
      origin: 'https://app.parley.test.evil.example',
    });
    expect(viaSubprotocol.status).toBe(403);

    const browser = await h.connect(guarded, user!, { via: 'subprotocol', origin: 'https://app.parley.test' });
    expect(browser.hello.userId).toBe(user!.id);
    const native = await h.connect(guarded, user!);
    expect(native.hello.userId).toBe(user!.id);
    expect(guarded.gateway.connectionCount).toBe(2);
  });

  test('a token in the URL is not accepted (it would land in access logs): 401', async () => {
    const [user] = await users(1);
    const attempt = await h.attemptUpgrade(node1, { path: `/ws?access_token=${user!.accessToken}&token=${user!.accessToken}` });
    expect(attempt.status).toBe(401);
  });

  test('a node at maxConnections refuses further upgrades with 503', async () => {
    const small = await h.startNode({ maxConnections: 1 });
    const [first, second] = await users(2);
    await h.connect(small, first!);
    const refused = await h.attemptUpgrade(small, { token: second!.accessToken });
    expect(refused.status).toBe(503);
    expect(errorCodeOf(refused.body)).toBe('UNAVAILABLE');
    expect(small.gateway.connectionCount).toBe(1);
    // The metric tells a full node from a draining one or an unreachable message service.
    expect(await small.metricValue('parley_gateway_upgrades_rejected_total', { status: '503', reason: 'full' })).toBe(1);
  });

  test('an upgrade anywhere but /ws: 404', async () => {
    const [user] = await users(1);
    const attempt = await h.attemptUpgrade(node1, { token: user!.accessToken, path: '/socket' });
    expect(attempt.status).toBe(404);
    expect(errorCodeOf(attempt.body)).toBe('NOT_FOUND');
    expect((await h.attemptUpgrade(node1, { token: user!.accessToken, path: '/ws?x=1' })).status).toBe(101);
  });
});

describe('delivery', () => {
  test('A sends on node 1: ack with seq; B on node 2 gets exactly one message frame; A’s second device on node 2 too', async () => {
    const [a, b] = await users(2);
    const conversationId = await direct(a!, b!);
    const a1 = await h.connect(node1, a!, { label: 'a1' });
    const bClient = await h.connect(node2, b!, { label: 'b' });
    const a2 = await h.connect(node2, a!, { label: 'a2' });

    const first = sendFrame(conversationId, 'hello over the socket');
    const ack = await a1.ack(first);
    expect(ack.duplicate).toBe(false);
    expect(ack.message).toMatchObject({ conversationId, seq: 1, senderId: a!.id, body: 'hello over the socket' });

    const atB = await bClient.next('message', (frame) => frame.conversationId === conversationId);
    expect(atB.message).toEqual(ack.message);
    const atA2 = await a2.next('message', (frame) => frame.conversationId === conversationId);
    expect(atA2.message).toEqual(ack.message);

    // A retry of the same send is answered with the original, and nobody hears it twice.
    const retry = await a1.ack({ ...first });
    expect(retry.duplicate).toBe(true);
    expect(retry.message).toEqual(ack.message);

    // A later message from the same publisher is the barrier: anything about seq 1 came before it.
    expect(await sendOver(a1, conversationId, 'second')).toBe(2);
    await bClient.next('message', (frame) => frame.message.seq === 2);
    await a2.next('message', (frame) => frame.message.seq === 2);
    expect(bClient.frames('message').map((frame) => frame.message.seq)).toEqual([1, 2]);
    expect(a2.frames('message').map((frame) => frame.message.seq)).toEqual([1, 2]);
    expect(bClient.unparseable).toEqual([]);
  });

  test('a group of 5 over 2 nodes: every member gets every message of a burst of 20, once, in seq order', async () => {
    const members = await users(5);
    const [owner, ...rest] = members;
    const conversationId = await group(owner!, rest);
    const clients = await Promise.all(
      members.map((member, index) => h.connect(index < 3 ? node1 : node2, member, { label: `m${index}` })),
    );
    const sender = clients[0]!;

    const ids = range(1, 20).map((n) => `burst-${n}`);
    ids.forEach((id, index) => sender.send({ id, ...sendFrame(conversationId, `burst message ${index}`, `burst-cm-${index}`) }));
    const acks = await Promise.all(ids.map((id) => sender.next('ack', (frame) => frame.id === id)));
    const bySeq = new Map(acks.map((frame) => [frame.message!.seq, frame.message!.body]));
    expect([...bySeq.keys()].sort((x, y) => x - y)).toEqual(range(1, 20));

    // One more, after the burst: a member's stream must be exactly 1..21.
    expect(await sendOver(sender, conversationId, 'after the burst')).toBe(21);
    for (const client of clients) {
      const frames = await client.collect('message', 21, (frame) => frame.conversationId === conversationId);
      expect(frames.map((frame) => frame.message.seq)).toEqual(range(1, 21));
      for (const frame of frames.slice(0, 20)) expect(frame.message.body).toBe(bySeq.get(frame.message.seq));
    }
  });

  test('typing reaches the other members on both nodes, not the typist’s own devices, and is never stored', async () => {
    const [typist, u1, u2] = await users(3);
    const conversationId = await group(typist!, [u1!, u2!]);
    const t1 = await h.connect(node1, typist!, { label: 't1' });
    const t2 = await h.connect(node2, typist!, { label: 't2' });
    const c1 = await h.connect(node1, u1!, { label: 'u1' });
    const c2 = await h.connect(node2, u2!, { label: 'u2' });

    const ack = await t1.request({ type: 'typing', conversationId });
    expect(ack.type).toBe('ack');
    expect(await c1.next('typing')).toEqual({ type: 'typing', conversationId, userId: typist!.id });
    expect(await c2.next('typing')).toEqual({ type: 'typing', conversationId, userId: typist!.id });

    // u1 types next: once the typist's devices hear that, they would have heard their own before it.
    await c1.ack({ type: 'typing', conversationId });
    await t1.next('typing', (frame) => frame.userId === u1!.id);
    await t2.next('typing', (frame) => frame.userId === u1!.id);
    await c2.next('typing', (frame) => frame.userId === u1!.id);
    expect(t1.frames('typing', (frame) => frame.userId === typist!.id)).toEqual([]);
    expect(t2.frames('typing', (frame) => frame.userId === typist!.id)).toEqual([]);
    expect(c1.frames('typing', (frame) => frame.userId === u1!.id)).toEqual([]);

    expect((await summary(typist!, conversationId)).lastSeq).toBe(0);
    expect(await history(u1!, conversationId)).toEqual([]);
    for (const client of [t1, t2, c1, c2]) expect(client.frames('message')).toEqual([]);
  });

  test('typing is relayed at most once per interval per socket and conversation; the extra ones are still acked', async () => {
    const [typist, watcher] = await users(2);
    const conversationId = await direct(typist!, watcher!);
    const t = await h.connect(node1, typist!, { label: 'typist' });
    const w = await h.connect(node2, watcher!, { label: 'watcher' });
    for (let n = 0; n < 5; n++) expect((await t.request({ type: 'typing', conversationId })).type).toBe('ack');
    await w.next('typing', (frame) => frame.userId === typist!.id);
    // Barrier: a message published after every typing ack; any extra typing came before it.
    await sendOver(t, conversationId, 'barrier');
    await w.next('message');
    expect(w.frames('typing', (frame) => frame.userId === typist!.id)).toHaveLength(1);
  });

  test('read over the socket: ack with the read state; the other member receives a read receipt', async () => {
    const [a, b] = await users(2);
    const conversationId = await direct(a!, b!);
    const aClient = await h.connect(node1, a!, { label: 'a' });
    const bClient = await h.connect(node2, b!, { label: 'b' });
    await sendOver(aClient, conversationId, 'one');
    await sendOver(aClient, conversationId, 'two');
    await bClient.collect('message', 2);

    const ack = await bClient.ack({ type: 'read', conversationId, seq: 2 });
    expect(ack.readState).toEqual({ conversationId, lastReadSeq: 2, lastSeq: 2, unreadCount: 0 });
    expect(await aClient.next('read')).toEqual({ type: 'read', conversationId, userId: b!.id, lastReadSeq: 2 });
    const stored = await summary(b!, conversationId);
    expect({ lastReadSeq: stored.lastReadSeq, unreadCount: stored.unreadCount }).toEqual({ lastReadSeq: 2, unreadCount: 0 });
  });
});

describe('membership', () => {
  test('a member who joined late never hears edits or deletes of messages sent before they joined', async () => {
    const [owner, early, late, later] = await users(4);
    const conversationId = await group(owner!, [early!]);
    const ownerClient = await h.connect(node1, owner!, { label: 'owner' });
    const earlyClient = await h.connect(node2, early!, { label: 'early' });
    const lateClient = await h.connect(node2, late!, { label: 'late' });
    const before = await sendOver(ownerClient, conversationId, 'before anyone else joined');

    // `late` joins while connected (the joinedSeq comes with the membership event) and
    // `later` connects after joining (it comes with the routing fetched on connect).
    for (const user of [late!, later!]) {
      const added = await call(h.message.app, owner!, 'POST', `/v1/conversations/${conversationId}/members`, {
        userIds: [user.id],
      });
      expect(added.statusCode).toBe(200);
    }
    await lateClient.next('membership', (frame) => frame.change === 'joined');
    const laterClient = await h.connect(node2, later!, { label: 'later' });

    const edited = await call(h.message.app, owner!, 'PATCH', `/v1/conversations/${conversationId}/messages/${before}`, {
      body: 'a secret edit',
    });
    expect(edited.statusCode).toBe(200);
    await earlyClient.next('message.updated', (frame) => frame.message.seq === before);
    // Barrier: a message after the edit reaches everyone; the edit must not have reached the late ones.
    const after = await sendOver(ownerClient, conversationId, 'for everyone');
    for (const client of [lateClient, laterClient]) {
      await client.next('message', (frame) => frame.message.seq === after);
      expect(client.frames('message.updated', () => true)).toEqual([]);
    }
  });

  test('a user added to a group while connected hears it at once, and stops hearing it when removed', async () => {
    const [owner, stayer, joiner] = await users(3);
    const conversationId = await group(owner!, [stayer!]);
    const ownerClient = await h.connect(node2, owner!, { label: 'owner' });
    const stayerClient = await h.connect(node1, stayer!, { label: 'stayer' });
    const joinerClient = await h.connect(node1, joiner!, { label: 'joiner' });

    const added = await call(h.message.app, owner!, 'POST', `/v1/conversations/${conversationId}/members`, {
      userIds: [joiner!.id],
    });
    expect(added.statusCode).toBe(200);
    const joined = await joinerClient.next('membership', (frame) => frame.change === 'joined');
    expect(joined).toEqual({ type: 'membership', change: 'joined', conversationId });

    const seq1 = await sendOver(ownerClient, conversationId, 'welcome');
    const heard = await joinerClient.next('message', (frame) => frame.conversationId === conversationId);
    expect(heard.message.seq).toBe(seq1);
    expect(joinerClient.received.indexOf(joined)).toBeLessThan(joinerClient.received.indexOf(heard));

    const removed = await call(h.message.app, owner!, 'DELETE', `/v1/conversations/${conversationId}/members/${joiner!.id}`);
    expect(removed.statusCode).toBe(204);
    expect(await joinerClient.next('membership', (frame) => frame.change === 'left')).toEqual({
      type: 'membership',
      change: 'left',
      conversationId,
    });

    // The stayer shares the joiner's node, so the node still listens to the group.
    const seq2 = await sendOver(ownerClient, conversationId, 'after the removal');
    await stayerClient.next('message', (frame) => frame.message.seq === seq2);
    // Barrier: adding the joiner back publishes on their channel after the message.
    const readded = await call(h.message.app, owner!, 'POST', `/v1/conversations/${conversationId}/members`, {
      userIds: [joiner!.id],
    });
    expect(readded.statusCode).toBe(200);
    await joinerClient.next('membership', (frame) => frame.change === 'joined');
    expect(joinerClient.frames('message', (frame) => frame.message.seq === seq2)).toEqual([]);

    const seq3 = await sendOver(ownerClient, conversationId, 'back again');
    expect((await joinerClient.next('message', (frame) => frame.conversationId === conversationId)).message.seq).toBe(seq3);
  });
});

describe('authorization over the socket', () => {
  test('send, read and typing to a conversation the user is not in: NOT_A_MEMBER, not retryable, nothing stored', async () => {
    const [a, b, outsider] = await users(3);
    const conversationId = await direct(a!, b!);
    const aClient = await h.connect(node1, a!, { label: 'a' });
    const bClient = await h.connect(node1, b!, { label: 'b' });
    const intruder = await h.connect(node2, outsider!, { label: 'outsider' });

    const frames = [
      { id: 'x-send', ...sendFrame(conversationId, 'let me in') },
      { id: 'x-read', type: 'read', conversationId, seq: 0 },
      { id: 'x-typing', type: 'typing', conversationId },
    ];
    for (const frame of frames) {
      expect(await intruder.request(frame)).toEqual({
        type: 'error',
        id: frame.id,
        code: 'NOT_A_MEMBER',
        message: expect.any(String),
        retryable: false,
      });
    }
    await intruder.ping(); // refused, not disconnected

    expect((await summary(a!, conversationId)).lastSeq).toBe(0);
    expect(await history(b!, conversationId)).toEqual([]);
    // Barrier: b's typing reaches a after anything the outsider could have caused.
    await bClient.ack({ type: 'typing', conversationId });
    await aClient.next('typing', (frame) => frame.userId === b!.id);
    expect(aClient.frames('message')).toEqual([]);
    expect(aClient.frames('read')).toEqual([]);
    expect(aClient.frames('typing', (frame) => frame.userId === outsider!.id)).toEqual([]);
  });
});

describe('bad input', () => {
  let strict: GatewayNode;
  let bystander: TestClient;
  let conversationId: string;
  let abuser: TestUser;

  beforeAll(async () => {
    strict = await h.startNode({ rateLimitFramesPerSecond: 20, maxFrameBytes: 4096 });
    const [a, b] = await users(2);
    abuser = a!;
    conversationId = await direct(a!, b!);
    bystander = await h.connect(strict, b!, { label: 'bystander' });
  });

  afterEach(async () => {
    await bystander.ping(); // whatever one client did, the node still serves the others
    expect(bystander.isOpen).toBe(true);
  });

  test('malformed JSON: MALFORMED_JSON, and the socket stays usable', async () => {
    const client = await h.connect(strict, abuser);
    client.sendRaw('{"type":"ping","id":');
    const error = await client.next('error');
    expect(error).toEqual({ type: 'error', code: 'MALFORMED_JSON', message: expect.any(String), retryable: false });
    await client.ping();
  });

  test('an unknown type: UNKNOWN_TYPE with the request id echoed', async () => {
    const client = await h.connect(strict, abuser);
    expect(await client.request({ type: 'subscribe', id: 'u-1', conversationId })).toMatchObject({
      type: 'error',
      id: 'u-1',
      code: 'UNKNOWN_TYPE',
      retryable: false,
    });
    client.send({ id: 'u-2' });
    expect(await client.next('error', (frame) => frame.id === 'u-2')).toMatchObject({ code: 'UNKNOWN_TYPE' });
  });

  test('a type that is not a string, even an object with a bogus toString: UNKNOWN_TYPE, the node survives', async () => {
    const client = await h.connect(strict, abuser);
    for (const [index, type] of [{ toString: 1 }, [{ toString: 1 }], 42, null].entries()) {
      client.send({ type, id: `t-${index}` });
      expect(await client.next('error', (frame) => frame.id === `t-${index}`)).toMatchObject({ code: 'UNKNOWN_TYPE' });
    }
    await client.ping();
  });

  test('missing or invalid fields: VALIDATION_FAILED with the id echoed', async () => {
    const client = await h.connect(strict, abuser);
    const invalid = [
      { type: 'send', id: 'v-1', conversationId },
      { type: 'send', id: 'v-2', conversationId: 'not-a-uuid', clientMessageId: 'c', body: 'x' },
      { type: 'send', id: 'v-3', conversationId, clientMessageId: 'c', body: '' },
      { type: 'read', id: 'v-4', conversationId, seq: -1 },
      { type: 'typing', id: 'v-5' },
      { type: 'ping', id: 'v-6', extra: true },
    ];
    for (const frame of invalid) {
      expect(await client.request(frame)).toMatchObject({ type: 'error', id: frame.id, code: 'VALIDATION_FAILED', retryable: false });
    }
    client.sendRaw('[1,2,3]');
    expect(await client.next('error')).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(await history(abuser, conversationId)).toEqual([]);
  });

  test('a binary frame: VALIDATION_FAILED', async () => {
    const client = await h.connect(strict, abuser);
    client.sendRaw(Buffer.from(JSON.stringify({ type: 'ping', id: 'bin-1' })), true);
    expect(await client.next('error')).toEqual({
      type: 'error',
      code: 'VALIDATION_FAILED',
      message: expect.any(String),
      retryable: false,
    });
    expect(client.frames('pong')).toEqual([]);
    await client.ping();
  });

  test('a frame larger than maxFrameBytes: close 1009', async () => {
    const client = await h.connect(strict, abuser);
    const before = strict.gateway.connectionCount;
    client.send({ id: 'big', ...sendFrame(conversationId, 'x'.repeat(strict.options.maxFrameBytes)) });
    expect((await client.closedWithin()).code).toBe(1009);
    await strict.waitForConnectionCount(before - 1);
    expect(await history(abuser, conversationId)).toEqual([]);
  });

  test('a flood of 500 pings at 20 frames/s: refused frames get RATE_LIMITED with their id, then close 4008', async () => {
    const client = await h.connect(strict, abuser);
    const rate = strict.options.rateLimitFramesPerSecond;
    for (let n = 0; n < 500; n++) client.send({ type: 'ping', id: `f-${n}` });
    const error = await client.next('error', (frame) => frame.code === 'RATE_LIMITED');
    expect(error).toEqual({
      type: 'error',
      id: expect.stringMatching(/^f-\d+$/),
      code: 'RATE_LIMITED',
      message: expect.any(String),
      retryable: true,
    });
    expect((await client.closedWithin()).code).toBe(4008);
    expect(await strict.metricValue('parley_gateway_closes_total', { code: '4008' })).toBe(1);

    // The allowance was served, each refusal answered once, and the flood drew a bounded reply.
    const idNumber = (id: string | undefined) => Number(id?.slice(2));
    const pongs = client.frames('pong').map((frame) => idNumber(frame.id));
    const refused = client.frames('error', (frame) => frame.code === 'RATE_LIMITED').map((frame) => idNumber(frame.id));
    expect(pongs.length).toBeGreaterThan(0);
    expect(pongs.length).toBeLessThanOrEqual(rate);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.length).toBeLessThanOrEqual(rate);
    expect(pongs).toEqual(range(0, pongs.length - 1));
    expect(refused).toEqual(range(pongs.length, pongs.length + refused.length - 1));
    expect(client.frames('error', (frame) => frame.code !== 'RATE_LIMITED')).toEqual([]);
  });
});

describe('slow consumer', () => {
  test('a socket that never reads is closed once its send buffer passes the limit; the others keep receiving', async () => {
    const slowNode = await h.startNode({ sendBufferMaxBytes: 64 * 1024 });
    const [owner, slow, watcher] = await users(3);
    const conversationId = await group(owner!, [slow!, watcher!]);
    const watcherClient = await h.connect(slowNode, watcher!, { label: 'watcher' });
    const stalled = await h.connectStalled(slowNode, slow!.accessToken);
    await slowNode.waitForConnectionCount(2);
    const serverSide = slowNode.serverSocketOf(stalled.localPort);
    expect(serverSide).toBeDefined();

    // Large bodies (3 bytes per character in UTF-8) fill the kernel buffers quickly.
    const body = '€'.repeat(4000);
    let sent = 0;
    while ((await slowNode.metricValue('parley_gateway_slow_consumer_closes_total')) === 0) {
      if (sent >= 2000) throw new Error('2000 messages of 12 KB did not fill a 64 KiB send buffer');
      const response = await call(h.message.app, owner!, 'POST', `/v1/conversations/${conversationId}/messages`, {
        clientMessageId: `slow-${sent}`,
        body,
      });
      expect(response.statusCode).toBe(201);
      sent += 1;
    }
    // (About 4 MB on Linux loopback: the kernel's socket buffers fill before the gateway's does.)
    expect(await slowNode.metricValue('parley_gateway_slow_consumer_closes_total')).toBe(1);
    expect(await slowNode.metricValue('parley_gateway_closes_total', { code: '4009' })).toBe(1);

    // The node lets go of it (and of its backlog): cut, not waiting on the reader.
    await slowNode.waitForConnectionCount(1);
    expect(serverSide!.destroyed).toBe(true);
    expect(serverSide!.writableLength).toBe(0);

    // The watcher, on the same node, got every message in order and is still served.
    const last = await sendOver(watcherClient, conversationId, 'still here');
    expect(last).toBe(sent + 1);
    const frames = await watcherClient.collect('message', last, (frame) => frame.conversationId === conversationId, 15000);
    expect(frames.map((frame) => frame.message.seq)).toEqual(range(1, last));
    expect(watcherClient.isOpen).toBe(true);
    stalled.destroy();
  }, 90000);
});

describe('session revoked', () => {
  test('logout closes that session’s sockets on every node with 4003; the user’s other session stays', async () => {
    const [user] = await users(1);
    const other = await h.login(user!);
    expect(other.sessionId).not.toBe(user!.sessionId);
    const s1 = await h.connect(node1, user!, { label: 's1' });
    const s1b = await h.connect(node2, user!, { label: 's1b' });
    const s2 = await h.connect(node1, other, { label: 's2' });

    const logout = await call(h.message.app, user!, 'POST', '/v1/auth/logout');
    expect(logout.statusCode).toBe(204);
    expect((await s1.closedWithin()).code).toBe(4003);
    expect((await s1b.closedWithin()).code).toBe(4003);
    // s2's node handled the same event when it closed s1, and left s2 alone.
    expect(s2.isOpen).toBe(true);
    await s2.ping();
    expect(s2.closeInfo).toBeUndefined();
  });
});

describe('token expiry', () => {
  test('a socket closes with 4001 when its token expires, unless an auth frame brought a fresh one', async () => {
    const [user, stranger] = await users(2);
    const now = Math.floor(Date.now() / 1000);
    const refreshedExp = now + 3;
    const expiringExp = now + 5; // later than the refreshed socket's old expiry
    const refreshed = await h.connect(
      node1,
      await h.signToken({ userId: user!.id, sessionId: user!.sessionId, exp: refreshedExp }),
      { label: 'refreshed' },
    );
    const expiring = await h.connect(
      node2,
      await h.signToken({ userId: user!.id, sessionId: user!.sessionId, exp: expiringExp }),
      { label: 'expiring' },
    );
    expect(refreshed.hello.tokenExpiresAt).toBe(refreshedExp);
    expect(expiring.hello.tokenExpiresAt).toBe(expiringExp);

    // A token of another user is refused and changes nothing.
    expect(await refreshed.request({ type: 'auth', token: stranger!.accessToken })).toMatchObject({
      type: 'error',
      code: 'UNAUTHENTICATED',
    });
    const ack = await refreshed.ack({ type: 'auth', token: user!.accessToken });
    expect(ack.tokenExpiresAt).toBeGreaterThan(expiringExp);

    const closed = await expiring.closedWithin(10000);
    expect(closed.code).toBe(4001);
    expect(Date.now()).toBeGreaterThanOrEqual(expiringExp * 1000 - 50);
    // Past both old expiries, the refreshed socket is open and served.
    expect(refreshed.isOpen).toBe(true);
    await refreshed.ping();
  });
});

describe('heartbeat', () => {
  let beating: GatewayNode;
  beforeAll(async () => {
    beating = await h.startNode({ heartbeatIntervalMs: 200 });
  });

  test('a peer that stops answering pings is closed with 4010; one that answers stays', async () => {
    const [deadUser, liveUser] = await users(2);
    const silent = await h.connect(beating, deadUser!, { autoPong: false, label: 'silent' });
    const live = await h.connect(beating, liveUser!, { label: 'live' });

    const closed = await silent.closedWithin(3000);
    expect(closed.code).toBe(4010);
    expect(silent.pings).toBeGreaterThanOrEqual(1);
    await beating.waitForConnectionCount(1);
    expect(await beating.metricValue('parley_gateway_closes_total', { code: '4010' })).toBe(1);

    // Several more rounds: the live peer answers each and stays.
    await live.waitForPings(live.pings + 3, 3000);
    expect(live.isOpen).toBe(true);
    await live.ping();
    expect(beating.gateway.connectionCount).toBe(1);
    live.close();
    await beating.waitForConnectionCount(0);
  });

  test('a dead peer (its TCP reads nothing, answers nothing) is cut; the node lets go of it', async () => {
    const [deadUser] = await users(1);
    const dead = await h.connectStalled(beating, deadUser!.accessToken);
    await beating.waitForConnectionCount(1);
    const serverSide = beating.serverSocketOf(dead.localPort);
    expect(serverSide).toBeDefined();
    // Missed pong, close frame it never reads, then the grace runs out.
    await beating.waitForConnectionCount(0, 6000);
    expect(serverSide!.destroyed).toBe(true);
    dead.destroy();
  });
});

describe('drain', () => {
  test('drain closes every socket with 1012 over the window; readiness is 503 and new upgrades get 503', async () => {
    const draining = await h.startNode({ drainWindowMs: 500 });
    const people = await users(4);
    const clients = await Promise.all(people.slice(0, 3).map((person) => h.connect(draining, person)));
    const closedAt: number[] = [];
    for (const client of clients) void client.closed.then(() => closedAt.push(Date.now()));
    expect((await fetch(`${draining.httpUrl}/readyz`)).status).toBe(200);

    const done = draining.gateway.drain();
    const readiness = await fetch(`${draining.httpUrl}/readyz`);
    expect(readiness.status).toBe(503);
    expect(((await readiness.json()) as { status: string }).status).toBe('draining');
    const refused = await h.attemptUpgrade(draining, { token: people[3]!.accessToken });
    expect(refused.status).toBe(503);
    expect(errorCodeOf(refused.body)).toBe('UNAVAILABLE');
    expect(await draining.metricValue('parley_gateway_upgrades_rejected_total', { reason: 'draining' })).toBe(1);

    for (const client of clients) expect((await client.closedWithin(5000)).code).toBe(1012);
    await within(done, 7000, 'drain() to resolve');
    expect(draining.gateway.connectionCount).toBe(0);
    expect((await fetch(`${draining.httpUrl}/healthz`)).status).toBe(200);
    // Spread over the window, not all at once (3 sockets: at 0, 250 and 500 ms).
    expect(Math.max(...closedAt) - Math.min(...closedAt)).toBeGreaterThanOrEqual(250);
  });

  test('a scrape reports readiness as of now, without any /readyz call: 1, then 0 once draining', async () => {
    const node = await h.startNode({ drainWindowMs: 0 });
    const readyGauge = async () => /^parley_gateway_ready (\d)$/m.exec(await (await fetch(`${node.httpUrl}/metrics`)).text())?.[1];
    expect(await readyGauge()).toBe('1');
    await node.gateway.drain();
    expect(await readyGauge()).toBe('0');
  });
});

describe('resync', () => {
  test('after its subscriber connection is killed, every socket on the node gets resync, and delivery resumes', async () => {
    const victim = await h.startNode();
    const [a, b, c] = await users(3);
    const conversationId = await group(a!, [b!, c!]);
    const aClient = await h.connect(victim, a!, { label: 'a' });
    const bClient = await h.connect(victim, b!, { label: 'b' });
    const elsewhere = await h.connect(node1, c!, { label: 'c' });

    const list = (await h.admin.call('CLIENT', 'LIST')) as string;
    const line = list.split('\n').find((entry) => entry.includes(` name=${victim.subscriberName} `));
    const id = line ? /(?:^|\s)id=(\d+)/.exec(line)?.[1] : undefined;
    expect(id).toBeDefined();
    expect(Number(await h.admin.call('CLIENT', 'KILL', 'ID', id!))).toBe(1);

    expect(await aClient.next('resync')).toEqual({ type: 'resync', reason: expect.any(String) });
    await bClient.next('resync');
    expect(await victim.metricValue('parley_gateway_bus_resyncs_total')).toBe(1);

    const seq = await sendOver(aClient, conversationId, 'after the outage');
    expect((await bClient.next('message')).message.seq).toBe(seq);
    expect((await aClient.next('message')).message.seq).toBe(seq);
    expect((await elsewhere.next('message')).message.seq).toBe(seq);
    expect(elsewhere.frames('resync')).toEqual([]);
  });
});

describe('presence', () => {
  const TTL_MS = 3000;
  let p1: GatewayNode;
  let p2: GatewayNode;

  beforeAll(async () => {
    [p1, p2] = await Promise.all([h.startNode({ presenceTtlMs: TTL_MS }), h.startNode({ presenceTtlMs: TTL_MS })]);
  });

  test('a direct peer sees A come online, and go offline only when A’s last socket closes', async () => {
    const [a, b] = await users(2);
    await direct(a!, b!);
    const bClient = await h.connect(p2, b!, { label: 'b' });
    expect(await bClient.next('presence', (frame) => frame.userId === a!.id)).toEqual({
      type: 'presence',
      userId: a!.id,
      online: false,
    });

    const a1 = await h.connect(p1, a!, { label: 'a1' });
    expect(await bClient.next('presence', (frame) => frame.userId === a!.id)).toMatchObject({ online: true });
    const a2 = await h.connect(p1, a!, { label: 'a2' });
    // A's own snapshot says B is online.
    expect(await a1.next('presence', (frame) => frame.userId === b!.id)).toMatchObject({ online: true });

    a1.close();
    await a1.closedWithin();
    await p1.waitForConnectionCount(1);
    a2.close();
    await a2.closedWithin();
    expect(await bClient.next('presence', (frame) => frame.userId === a!.id)).toMatchObject({ online: false });

    // Barrier: A back on the same node; its online follows any offline that node published.
    const a3 = await h.connect(p1, a!, { label: 'a3' });
    await bClient.next('presence', (frame) => frame.userId === a!.id && frame.online);
    expect(bClient.frames('presence', (frame) => frame.userId === a!.id).map((frame) => frame.online)).toEqual([
      false,
      true,
      false,
      true,
    ]);
    a3.close();
  });

  test('a direct conversation opened while both are connected: each hears the other is online, then changes, without reconnecting', async () => {
    const [a, b] = await users(2);
    const aClient = await h.connect(p1, a!, { label: 'a' });
    const bClient = await h.connect(p2, b!, { label: 'b' });
    const conversationId = await direct(a!, b!);
    await aClient.next('membership', (frame) => frame.change === 'joined' && frame.conversationId === conversationId);
    await bClient.next('membership', (frame) => frame.change === 'joined' && frame.conversationId === conversationId);
    // The new peer's current state, at once (no change has happened to announce it).
    expect(await aClient.next('presence', (frame) => frame.userId === b!.id)).toEqual({ type: 'presence', userId: b!.id, online: true });
    expect(await bClient.next('presence', (frame) => frame.userId === a!.id)).toEqual({ type: 'presence', userId: a!.id, online: true });

    // B is now A's direct peer: when B's last socket closes, A must hear it.
    bClient.close();
    await bClient.closedWithin();
    expect(await aClient.next('presence', (frame) => frame.userId === b!.id && !frame.online)).toEqual({
      type: 'presence',
      userId: b!.id,
      online: false,
    });
  });

  test('when a node dies without a word, another node marks its users offline within ttl + ttl/3', async () => {
    const doomed = await h.startNode({ presenceTtlMs: TTL_MS });
    const [a, b] = await users(2);
    await direct(a!, b!);
    const bClient = await h.connect(p2, b!, { label: 'b' });
    await bClient.next('presence', (frame) => frame.userId === a!.id && !frame.online);
    const aClient = await h.connect(doomed, a!, { label: 'a' });
    await bClient.next('presence', (frame) => frame.userId === a!.id && frame.online);

    const killedAt = Date.now();
    await doomed.crash();
    expect((await aClient.closedWithin()).code).toBe(1006);
    // When the dead node's last heartbeat runs out (it can no longer renew it).
    const lapsesAt = Number(await h.admin.zscore(`${h.message.config.busPrefix}nodes`, doomed.nodeId));
    expect(lapsesAt).toBeGreaterThan(killedAt);

    const bound = TTL_MS + TTL_MS / 3 + 2000;
    const offline = await bClient.next('presence', (frame) => frame.userId === a!.id && !frame.online, bound);
    const heardAt = Date.now();
    expect(offline.online).toBe(false);
    // Not a clean disconnect: nobody said so until the heartbeat lapsed and a survivor
    // swept (every ttl/3); and that within ttl + ttl/3 of the death, plus a margin.
    const timeline = { lapseAfterKill: lapsesAt - killedAt, heardAfterLapse: heardAt - lapsesAt, heardAfterKill: heardAt - killedAt };
    expect({
      heardOnlyAfterTheLapse: timeline.heardAfterLapse >= 0,
      sweptWithinAnInterval: timeline.heardAfterLapse <= TTL_MS / 3 + 1500,
      withinTheBound: timeline.heardAfterKill <= bound,
      timeline,
    }).toEqual({ heardOnlyAfterTheLapse: true, sweptWithinAnInterval: true, withinTheBound: true, timeline });
  });
});
