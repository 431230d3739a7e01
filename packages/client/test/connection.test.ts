import { ParleyClient, type ConnectionStateChange, type Message, type ParleyClientEvents } from '@parley/client';
import type { ClientFrame } from '@parley/protocol';
import { WebSocket } from 'ws';
import { startMessageHarness, uniqueName, type MessageHarness } from '../../../tests/support/message-harness';
import { injectFetch } from './inject-fetch';
import { ScriptedGateway } from './scripted-gateway';

// The SDK's live connection over real WebSockets: a scripted gateway (real `ws` server)
// that forwards to the real message service, so acks, refreshes and syncs are real.
// Nothing waits on a clock to synchronize: tests wait for events (with a failure deadline).

let h: MessageHarness;
let gateway: ScriptedGateway;
const clients: ParleyClient[] = [];

beforeAll(async () => {
  h = await startMessageHarness();
});
afterAll(async () => h.close());
beforeEach(async () => {
  gateway = await ScriptedGateway.start(h.app);
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await gateway.close();
});

const PASSWORD = 'correct horse battery staple';

/** Resolves with the arguments of the next `event` that matches (fails the test after `ms`). */
function next<K extends keyof ParleyClientEvents>(
  client: ParleyClient,
  event: K,
  matches: (...args: ParleyClientEvents[K]) => boolean = () => true,
  ms = 5000,
): Promise<ParleyClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching '${String(event)}' event within ${ms} ms`));
    }, ms);
    const off = client.on(event, (...args) => {
      if (!matches(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

async function user(options: { authTransport?: 'header' | 'subprotocol'; heartbeatMs?: number; app?: MessageHarness } = {}) {
  const harness = options.app ?? h;
  const fetch = injectFetch(harness.app);
  const client = new ParleyClient({
    baseUrl: 'http://message.test',
    wsUrl: gateway.url,
    fetch,
    WebSocket,
    backoff: { initialMs: 10, maxMs: 40 },
    gapGraceMs: 50,
    ...(options.authTransport ? { authTransport: options.authTransport } : {}),
    ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
  });
  clients.push(client);
  const auth = await client.register({ username: uniqueName(), password: PASSWORD });
  const log = { messages: [] as Array<[number, string]>, states: [] as ConnectionStateChange[], errors: [] as string[] };
  client.on('message', (message, info) => log.messages.push([message.seq, info.source]));
  client.on('connectionState', (change) => log.states.push(change));
  client.on('error', (error) => log.errors.push(error.code));
  return { client, fetch, id: auth.user.id, log };
}

const messageFrame = (message: Message) => ({ type: 'message' as const, conversationId: message.conversationId, message });

describe('connecting', () => {
  test('authenticates with a header (ws in Node), gets hello, and pulls on connect', async () => {
    const alice = await user();
    const synced = next(alice.client, 'synced');
    await alice.client.connect();
    expect(alice.client.connectionState).toBe('open');
    const socket = await gateway.socket(0);
    expect(socket.via).toBe('header');
    expect(socket.userId).toBe(alice.id);
    await synced;
    expect(alice.log.states.map((s) => s.state)).toEqual(['connecting', 'open']);
  });

  test('authenticates with the parley.auth subprotocol (browsers), and the server selects parley.v1', async () => {
    const alice = await user({ authTransport: 'subprotocol' });
    await alice.client.connect();
    const socket = await gateway.socket(0);
    expect(socket.via).toBe('subprotocol');
    expect(socket.ws.protocol).toBe('parley.v1');
  });

  test('reads and typing go over the socket', async () => {
    const alice = await user();
    const bob = await user();
    const direct = await bob.client.rest.openDirect(alice.id);
    await bob.client.send(direct.id, 'hello'); // over REST: bob never connects
    await alice.client.connect();
    expect(await alice.client.markRead(direct.id, 1)).toMatchObject({ lastReadSeq: 1, unreadCount: 0 });
    expect(await alice.client.typing(direct.id)).toBe(true);
    expect(await alice.client.typing(direct.id)).toBe(true); // throttled: not sent again
    const frames = (await gateway.socket(0)).frames.map((f) => f.type);
    expect(frames.filter((type) => type === 'read')).toHaveLength(1);
    expect(frames.filter((type) => type === 'typing')).toHaveLength(1);
    expect(alice.client.conversationState(direct.id)?.lastReadSeq).toBe(1);
  });
});

describe('sending', () => {
  test('a send lost with its socket is retried after the reconnect with the same client message id, and stored once', async () => {
    const alice = await user();
    const bob = await user();
    const direct = await alice.client.rest.openDirect(bob.id);
    let dropped = false;
    gateway.intercept = (socket, frame) => {
      if (frame.type !== 'send' || dropped) return false;
      dropped = true;
      socket.ws.terminate(); // the frame is lost: no ack, no error
      return true;
    };
    const synced = next(alice.client, 'synced');
    await alice.client.connect();
    await synced;
    const delivered = next(alice.client, 'message');
    const message = await alice.client.send(direct.id, 'through the storm');
    expect(message).toMatchObject({ seq: 1, body: 'through the storm' });

    const sends = (await Promise.all([gateway.socket(0), gateway.socket(1)]))
      .flatMap((socket) => socket.frames)
      .filter((frame): frame is Extract<ClientFrame, { type: 'send' }> => frame.type === 'send');
    expect(sends).toHaveLength(2);
    expect(sends[0]?.clientMessageId).toBe(message.clientMessageId);
    expect(sends[1]?.clientMessageId).toBe(message.clientMessageId);
    expect((await bob.client.rest.history(direct.id)).messages.map((m) => m.body)).toEqual(['through the storm']);
    expect((await delivered)[0]).toMatchObject({ seq: 1 });
    expect(alice.client.pendingSends).toBe(0);
  });

  test('close() rejects a send still waiting, with its client message id; the server sees 1000', async () => {
    const alice = await user();
    const bob = await user();
    const direct = await alice.client.rest.openDirect(bob.id);
    const received = new Promise<void>((resolve) => {
      gateway.intercept = (_socket, frame) => {
        if (frame.type !== 'send') return false;
        resolve();
        return true; // never answered
      };
    });
    await alice.client.connect();
    const socket = await gateway.socket(0);
    const sending = alice.client.send(direct.id, 'never acked');
    await received;
    await alice.client.close();
    await expect(sending).rejects.toMatchObject({ code: 'CLIENT_CLOSED', clientMessageId: expect.any(String) });
    expect(await socket.closed).toMatchObject({ code: 1000 });
    expect(alice.client.connectionState).toBe('closed');
  });
});

describe('ordered delivery over the socket', () => {
  test('a gap in seq triggers a sync; every message is emitted once, in order; late copies are dropped', async () => {
    const alice = await user();
    const bob = await user();
    const direct = await bob.client.rest.openDirect(alice.id);
    const synced = next(alice.client, 'synced');
    await alice.client.connect();
    await synced;
    const socket = await gateway.socket(0);
    const sent: Message[] = [];
    for (const body of ['one', 'two', 'three']) sent.push(await bob.client.send(direct.id, body));

    const third = next(alice.client, 'message', (message) => message.seq === 3);
    socket.send(messageFrame(sent[0]!));
    socket.send(messageFrame(sent[2]!)); // seq 2 was "lost" by the bus
    await third;
    expect(alice.log.messages).toEqual([
      [1, 'socket'],
      [2, 'sync'],
      [3, 'socket'],
    ]);

    // Late copies of 2 and 3, then a marker frame: once the marker is seen, the copies were handled.
    const marker = next(alice.client, 'typing');
    socket.send(messageFrame(sent[1]!));
    socket.send(messageFrame(sent[2]!));
    socket.send({ type: 'typing', conversationId: direct.id, userId: bob.id });
    await marker;
    expect(alice.log.messages).toHaveLength(3);
    expect(alice.client.conversationState(direct.id)).toMatchObject({ deliveredSeq: 3 });
  });

  test('an edit pushed live is emitted as an update; resync and joined frames pull', async () => {
    const alice = await user();
    const bob = await user();
    const direct = await bob.client.rest.openDirect(alice.id);
    const first = await bob.client.send(direct.id, 'draft');
    const synced = next(alice.client, 'synced');
    await alice.client.connect();
    await synced;
    expect(alice.log.messages).toEqual([[1, 'sync']]);
    const socket = await gateway.socket(0);

    const edited = await bob.client.rest.editMessage(direct.id, first.seq, 'final');
    const update = next(alice.client, 'messageUpdated');
    socket.send({ type: 'message.updated', conversationId: direct.id, message: edited });
    expect((await update)[0]).toMatchObject({ seq: 1, body: 'final' });

    const group = await bob.client.rest.createGroup({ title: 'new', memberIds: [alice.id] });
    await bob.client.send(group.id, 'welcome');
    const joinedSync = next(alice.client, 'message', (message) => message.conversationId === group.id);
    socket.send({ type: 'membership', conversationId: group.id, change: 'joined' });
    expect((await joinedSync)[0]).toMatchObject({ seq: 1, body: 'welcome' });

    await alice.client.syncNow(); // settles: no pull is running after this
    const syncs = alice.fetch.calls.filter((call) => call.path === '/v1/sync').length;
    const resynced = next(alice.client, 'synced');
    socket.send({ type: 'resync', reason: 'bus reconnected' });
    await resynced;
    expect(alice.fetch.calls.filter((call) => call.path === '/v1/sync').length).toBeGreaterThan(syncs);
  });
});

describe('close codes', () => {
  test('1012 reconnects at once, 4001 refreshes then reconnects, 4008 backs off, 4003 asks for a login', async () => {
    const alice = await user();
    await alice.client.connect();
    const s0 = await gateway.socket(0);

    s0.ws.close(1012, 'draining');
    const s1 = await gateway.socket(1);
    const drained = alice.log.states.find((s) => s.closeCode === 1012);
    expect(drained).toMatchObject({ state: 'reconnecting' });
    expect(drained?.retryInMs).toBeLessThan(1000);

    s1.ws.close(4001, 'AUTH_EXPIRED');
    const s2 = await gateway.socket(2);
    // (The new access token may equal the old one byte for byte when both were issued in the
    // same second: EdDSA is deterministic. The refresh itself is what matters.)
    expect(alice.fetch.calls.filter((call) => call.path === '/v1/auth/refresh')).toHaveLength(1);
    expect(s2.token).toBe(alice.client.tokens.current?.accessToken);

    s2.ws.close(4008, 'RATE_LIMITED');
    await gateway.socket(3);
    const backedOff = alice.log.states.find((s) => s.closeCode === 4008);
    expect(backedOff).toMatchObject({ state: 'reconnecting' });
    expect(backedOff?.retryInMs).toBeGreaterThanOrEqual(5);
    expect(backedOff?.retryInMs).toBeLessThanOrEqual(40);

    const s3 = await gateway.socket(3);
    const needsLogin = next(alice.client, 'connectionState', (change) => change.state === 'needs-login');
    s3.ws.close(4003, 'SESSION_REVOKED');
    expect((await needsLogin)[0]).toMatchObject({ closeCode: 4003 });
    expect(alice.log.errors).toContain('SESSION_REVOKED');
    expect(alice.client.tokens.current).toBeNull();
    expect(alice.client.connectionState).toBe('needs-login');
    await expect(alice.client.connect()).rejects.toMatchObject({ code: 'NOT_LOGGED_IN' });
  });

  test('refused upgrades (1006, as a browser sees them) are retried, and a dead session found over REST stops them', async () => {
    const alice = await user();
    gateway.refuseUpgradesWith = 401;
    await alice.client.rest.logout(); // the session dies; the client still holds its tokens
    expect(alice.client.tokens.current).not.toBeNull();
    await expect(alice.client.connect()).rejects.toMatchObject({ code: 'NOT_LOGGED_IN' });
    expect(gateway.refused).toBeGreaterThanOrEqual(3); // it probes the session after repeated failures
    expect(alice.client.connectionState).toBe('needs-login');
    expect(alice.log.states.filter((s) => s.state === 'reconnecting').every((s) => s.closeCode === 1006)).toBe(true);
    expect(alice.client.tokens.current).toBeNull();
  });

  test('1000 from the server ends the connection without a reconnect', async () => {
    const alice = await user();
    await alice.client.connect();
    const closed = next(alice.client, 'connectionState', (change) => change.state === 'closed');
    (await gateway.socket(0)).ws.close(1000, 'bye');
    expect((await closed)[0]).toMatchObject({ closeCode: 1000 });
    expect(gateway.sockets).toHaveLength(1);
  });

  test('a silent socket (no pong) is abandoned and replaced', async () => {
    const alice = await user({ heartbeatMs: 100 });
    gateway.intercept = (_socket, frame) => frame.type === 'ping'; // swallowed
    await alice.client.connect();
    const first = await gateway.socket(0);
    await gateway.socket(1);
    expect(alice.log.states.find((s) => s.closeCode === 4010)).toMatchObject({ state: 'reconnecting' });
    expect(await first.closed).toMatchObject({ code: 1000, reason: 'no reply to ping' });
  });
});

describe('token refresh on an open socket', () => {
  test('before expiry the client refreshes once and sends the new token in an auth frame; the socket stays', async () => {
    const shortLived = await startMessageHarness({ accessTokenTtlSeconds: 2 });
    try {
      gateway.close().catch(() => {});
      gateway = await ScriptedGateway.start(shortLived.app);
      const alice = await user({ app: shortLived });
      const authFrame = new Promise<string>((resolve) => {
        gateway.intercept = (_socket, frame) => {
          if (frame.type === 'auth') resolve(frame.token);
          return false;
        };
      });
      await alice.client.connect();
      const upgradeToken = (await gateway.socket(0)).token;
      const pushed = await authFrame;
      expect(pushed).not.toBe(upgradeToken);
      expect(pushed).toBe(alice.client.tokens.current?.accessToken);
      expect(alice.fetch.calls.filter((call) => call.path === '/v1/auth/refresh')).toHaveLength(1);
      expect(gateway.sockets).toHaveLength(1);
      expect(alice.client.connectionState).toBe('open');
    } finally {
      await Promise.all(clients.splice(0).map((client) => client.close()));
      await shortLived.close();
    }
  });
});
