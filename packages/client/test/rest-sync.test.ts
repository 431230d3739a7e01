import { MemorySyncStateStore, ParleyClient, type Message } from '@parley/client';
import { startMessageHarness, uniqueName, type MessageHarness } from '../../../tests/support/message-harness';
import { injectFetch } from './inject-fetch';

// The SDK's REST, auth and offline-sync paths against the real message service (real
// PostgreSQL and Redis), through a fetch that calls app.inject().

let h: MessageHarness;
beforeAll(async () => {
  h = await startMessageHarness();
});
afterAll(async () => h.close());

const PASSWORD = 'correct horse battery staple';

function newClient(options: { store?: MemorySyncStateStore; syncPageLimit?: number } = {}) {
  const fetch = injectFetch(h.app);
  const client = new ParleyClient({ baseUrl: 'http://message.test', fetch, ...options });
  const log = { messages: [] as Message[], updates: [] as Message[], removed: [] as string[], errors: [] as string[] };
  client.on('message', (message) => log.messages.push(message));
  client.on('messageUpdated', (message) => log.updates.push(message));
  client.on('conversationRemoved', ({ conversationId }) => log.removed.push(conversationId));
  client.on('error', (error) => log.errors.push(`${error.code}: ${error.message}`));
  return { client, fetch, log };
}

async function registered(options: Parameters<typeof newClient>[0] = {}) {
  const made = newClient(options);
  const username = uniqueName();
  const auth = await made.client.register({ username, password: PASSWORD });
  return { ...made, user: auth.user, username };
}

const bodies = (messages: Message[]) => messages.map((m) => `${m.seq}:${m.body}`);

describe('auth', () => {
  test('register, login and me; the user id is read from the token', async () => {
    const { client, user, username } = await registered();
    expect(client.userId).toBe(user.id);
    expect(await client.rest.me()).toMatchObject({ id: user.id, username });

    const second = newClient().client;
    const tokens: unknown[] = [];
    second.on('tokens', (t) => tokens.push(t));
    const login = await second.login({ username, password: PASSWORD, deviceName: 'laptop' });
    expect(login.user.id).toBe(user.id);
    expect(tokens).toHaveLength(1);
    await expect(newClient().client.login({ username, password: 'wrong password!' })).rejects.toMatchObject({
      code: 'INVALID_CREDENTIALS',
      status: 401,
      retryable: false,
    });
  });

  test('single-flight refresh: ten concurrent refreshes rotate the token once and the session survives', async () => {
    const { client, fetch } = await registered();
    const before = client.tokens.current!;
    const results = await Promise.all(Array.from({ length: 10 }, () => client.tokens.refresh()));
    const refreshCalls = fetch.calls.filter((call) => call.path === '/v1/auth/refresh');
    expect(refreshCalls).toHaveLength(1);
    expect(new Set(results.map((t) => t.refreshToken)).size).toBe(1);
    expect(results[0]?.refreshToken).not.toBe(before.refreshToken);
    // Still logged in: the server saw no reuse.
    await expect(client.rest.me()).resolves.toMatchObject({ id: client.userId });
    // And a second, sequential refresh uses the new token.
    await client.tokens.refresh();
    await expect(client.rest.me()).resolves.toBeDefined();
  });

  test('why it matters: two refreshes with the same token revoke the session on the server', async () => {
    const { client } = await registered();
    const { refreshToken } = client.tokens.current!;
    const outcomes = await Promise.allSettled([client.rest.refreshTokens(refreshToken), client.rest.refreshTokens(refreshToken)]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(rejected?.reason).toMatchObject({ code: 'REFRESH_TOKEN_REUSED', loginRequired: true });
  });

  test('a call answered 401 refreshes once and is retried; a revoked session clears the tokens', async () => {
    const { client } = await registered();
    const tokens = client.tokens.current!;
    // An access token the server refuses (as after a key rotation), with a valid refresh token.
    client.tokens.set({ ...tokens, accessToken: `${tokens.accessToken.split('.').slice(0, 2).join('.')}.invalidsignature` });
    await expect(client.rest.me()).resolves.toMatchObject({ id: client.userId });
    expect(client.tokens.current?.refreshToken).not.toBe(tokens.refreshToken);

    await client.rest.logout();
    const seen: unknown[] = [];
    client.on('tokens', (t) => seen.push(t));
    // The access token is still unexpired but its session is gone.
    await expect(client.rest.me()).rejects.toMatchObject({ loginRequired: true });
    expect(client.tokens.current).toBeNull();
    expect(seen).toEqual([null]);
  });

  test('calls without a session fail with NOT_LOGGED_IN and never reach the server', async () => {
    const { client, fetch } = newClient();
    await expect(client.rest.me()).rejects.toMatchObject({ code: 'NOT_LOGGED_IN' });
    expect(fetch.calls).toHaveLength(0);
  });
});

describe('REST helpers', () => {
  test('contacts, conversations, sends with idempotent retries, history, edit, delete, read state', async () => {
    const alice = await registered();
    const bob = await registered();
    expect(await alice.client.rest.findUser(bob.username.toUpperCase())).toMatchObject({ id: bob.user.id });
    await alice.client.rest.requestContact(bob.user.id);
    expect(await bob.client.rest.acceptContact(alice.user.id)).toMatchObject({ state: 'accepted' });
    expect((await alice.client.rest.listContacts()).map((c) => c.user.id)).toEqual([bob.user.id]);

    const direct = await alice.client.rest.openDirect(bob.user.id);
    expect(direct).toMatchObject({ kind: 'direct', peer: { id: bob.user.id } });
    // No connect(): sends go straight over REST, still with a client message id.
    const first = await alice.client.send(direct.id, 'hi bob');
    const retried = await alice.client.send(direct.id, 'a retry', { clientMessageId: first.clientMessageId });
    const second = await alice.client.send(direct.id, 'second');
    expect(first.clientMessageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(retried).toEqual(first); // the original, not a second message
    expect(second.seq).toBe(2);

    await expect(bob.client.rest.editMessage(direct.id, 1, 'nope')).rejects.toMatchObject({
      code: 'NOT_MESSAGE_AUTHOR',
      status: 403,
    });
    expect(await alice.client.rest.editMessage(direct.id, 1, 'hi bob!')).toMatchObject({ seq: 1, body: 'hi bob!' });
    expect(await alice.client.rest.deleteMessage(direct.id, 2)).toMatchObject({ seq: 2, body: null });
    const history = await bob.client.rest.history(direct.id, { limit: 10 });
    expect(history.messages.map((m) => [m.seq, m.body])).toEqual([
      [1, 'hi bob!'],
      [2, null],
    ]);
    expect(await bob.client.markRead(direct.id, 2)).toMatchObject({ lastReadSeq: 2, unreadCount: 0 });

    const group = await alice.client.rest.createGroup({ title: 'team', memberIds: [bob.user.id] });
    expect((await alice.client.rest.listMembers(group.id)).map((m) => m.role).sort()).toEqual(['member', 'owner']);
    const page = await bob.client.rest.listConversations({ limit: 1 });
    expect(page.conversations).toHaveLength(1);
    expect(page.nextCursor).not.toBeNull();
    await expect(alice.client.rest.getConversation('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({
      status: 404,
    });
    await expect(alice.client.send(group.id, '')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});

describe('offline sync', () => {
  test('pulls every message once, in seq order, with edits and deletes as updates, across small pages', async () => {
    const alice = await registered({ syncPageLimit: 2 });
    const bob = await registered();
    const direct = await bob.client.rest.openDirect(alice.user.id);
    for (let index = 1; index <= 7; index += 1) await bob.client.send(direct.id, `m${index}`);
    // Edit the first messages after later ones, so rev order differs from seq order.
    await bob.client.rest.editMessage(direct.id, 1, 'm1 edited');
    await bob.client.rest.deleteMessage(direct.id, 2);

    await alice.client.syncNow();
    expect(bodies(alice.log.messages)).toEqual(['1:m1 edited', '2:null', '3:m3', '4:m4', '5:m5', '6:m6', '7:m7']);
    expect(alice.log.updates).toEqual([]);
    expect(alice.client.conversationState(direct.id)).toMatchObject({ deliveredSeq: 7, lastReadSeq: 0 });

    // Nothing new: nothing emitted.
    await alice.client.syncNow();
    expect(alice.log.messages).toHaveLength(7);

    await bob.client.rest.editMessage(direct.id, 3, 'm3 edited');
    await bob.client.send(direct.id, 'm8');
    await alice.client.syncNow();
    expect(bodies(alice.log.messages).slice(7)).toEqual(['8:m8']);
    expect(bodies(alice.log.updates)).toEqual(['3:m3 edited']);
    expect(alice.log.errors).toEqual([]);
  });

  test('a member added later starts at the first message after joining; leaving removes the conversation', async () => {
    const owner = await registered();
    const carol = await registered();
    const group = await owner.client.rest.createGroup({ title: 'g', memberIds: [] });
    for (const body of ['before 1', 'before 2', 'before 3']) await owner.client.send(group.id, body);
    await owner.client.rest.addMembers(group.id, { userIds: [carol.user.id] });

    await carol.client.syncNow();
    expect(carol.log.messages).toEqual([]);
    expect(carol.client.conversationState(group.id)).toMatchObject({ deliveredSeq: 3 });

    await owner.client.send(group.id, 'after 1');
    await owner.client.send(group.id, 'after 2');
    await carol.client.syncNow();
    expect(bodies(carol.log.messages)).toEqual(['4:after 1', '5:after 2']);

    await carol.client.rest.leave(group.id);
    await carol.client.syncNow();
    expect(carol.log.removed).toEqual([group.id]);
    expect(carol.client.conversationState(group.id)).toBeUndefined();
  });

  test('a persistent store resumes where the last client stopped: nothing is emitted twice', async () => {
    const store = new MemorySyncStateStore();
    const first = await registered({ store });
    const bob = await registered();
    const direct = await bob.client.rest.openDirect(first.user.id);
    await bob.client.send(direct.id, 'one');
    await bob.client.send(direct.id, 'two');
    await first.client.syncNow();
    expect(bodies(first.log.messages)).toEqual(['1:one', '2:two']);
    await first.client.close();
    expect(store.load()[direct.id]).toMatchObject({ deliveredSeq: 2 });

    await bob.client.send(direct.id, 'three');
    const again = newClient({ store });
    await again.client.login({ username: first.username, password: PASSWORD });
    await again.client.syncNow();
    expect(bodies(again.log.messages)).toEqual(['3:three']);
  });

  test('my read marker set on another device arrives through sync', async () => {
    const phone = await registered();
    const laptop = newClient();
    await laptop.client.login({ username: phone.username, password: PASSWORD });
    const bob = await registered();
    const direct = await bob.client.rest.openDirect(phone.user.id);
    await bob.client.send(direct.id, 'one');
    await bob.client.send(direct.id, 'two');
    const reads: Array<[string, number]> = [];
    laptop.client.on('read', (receipt) => reads.push([receipt.userId, receipt.lastReadSeq]));
    await laptop.client.syncNow();
    await phone.client.markRead(direct.id, 2);
    await laptop.client.syncNow();
    expect(reads).toEqual([
      [phone.user.id, 0],
      [phone.user.id, 2],
    ]);
  });

  test('removed and re-added to a group: later messages arrive, and the cursor advances with no gap left', async () => {
    const owner = await registered();
    const carol = await registered();
    const group = await owner.client.rest.createGroup({ title: 'g', memberIds: [carol.user.id] });
    await owner.client.send(group.id, 'one');
    await carol.client.syncNow();
    expect(bodies(carol.log.messages)).toEqual(['1:one']);

    await owner.client.rest.removeMember(group.id, carol.user.id);
    await owner.client.send(group.id, 'while away');
    await owner.client.rest.addMembers(group.id, { userIds: [carol.user.id] });
    await owner.client.send(group.id, 'welcome back');
    await carol.client.syncNow();
    expect(bodies(carol.log.messages)).toEqual(['1:one', '3:welcome back']);
    const state = carol.client.conversationState(group.id);
    expect(state).toMatchObject({ deliveredSeq: 3 });

    await owner.client.send(group.id, 'and more');
    await carol.client.syncNow();
    expect(bodies(carol.log.messages)).toEqual(['1:one', '3:welcome back', '4:and more']);
    expect(carol.client.conversationState(group.id)!.rev).toBeGreaterThan(state!.rev);
    expect(carol.log.errors).toEqual([]);
  });
});

describe('logout and another login', () => {
  test('logout clears the sync state and the store, even when the server cannot be reached, and reports that on error', async () => {
    const store = new MemorySyncStateStore();
    const alice = await registered({ store });
    const bob = await registered();
    const direct = await bob.client.rest.openDirect(alice.user.id);
    await bob.client.send(direct.id, 'hi');
    await alice.client.syncNow();
    expect(Object.keys(store.load())).toEqual([direct.id]);

    const realFetch = alice.fetch;
    // The network is gone for the logout call.
    (alice.client as unknown as { http: { options: { fetch: unknown } } }).http.options.fetch = async () => {
      throw new TypeError('fetch failed');
    };
    await expect(alice.client.logout()).resolves.toBeUndefined();
    expect(alice.log.errors.some((e) => e.startsWith('NETWORK_ERROR'))).toBe(true);
    expect(alice.client.tokens.current).toBeNull();
    expect(alice.client.conversationState(direct.id)).toBeUndefined();
    expect(store.load()).toEqual({});
    (alice.client as unknown as { http: { options: { fetch: unknown } } }).http.options.fetch = realFetch;

    // Logging in again as the same user pulls everything afresh.
    await alice.client.login({ username: alice.username, password: PASSWORD });
    await alice.client.syncNow();
    expect(bodies(alice.log.messages)).toEqual(['1:hi', '1:hi']);
  });

  test('a login as another user on the same client starts from nothing', async () => {
    const store = new MemorySyncStateStore();
    const alice = await registered({ store });
    const bob = await registered();
    const direct = await bob.client.rest.openDirect(alice.user.id);
    await bob.client.send(direct.id, 'for alice');
    await alice.client.syncNow();
    expect(alice.client.conversationState(direct.id)).toBeDefined();

    const carol = await registered();
    const other = await carol.client.rest.openDirect(bob.user.id);
    await carol.client.send(other.id, 'for bob');
    // Bob's session on Alice's client (no logout in between).
    await alice.client.login({ username: bob.username, password: PASSWORD });
    expect(alice.client.conversationState(direct.id)).toBeUndefined();
    expect(store.load()).toEqual({});
    await alice.client.syncNow();
    const seen = alice.log.messages.map((m) => `${m.conversationId === direct.id ? 'direct' : 'other'} ${m.seq}:${m.body}`);
    // Bob sees both of his conversations from the start, Alice's earlier delivery state no longer hides anything.
    expect(seen.slice(1).sort()).toEqual(['direct 1:for alice', 'other 1:for bob']);
  });
});
