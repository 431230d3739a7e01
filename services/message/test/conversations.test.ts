import { randomUUID } from 'node:crypto';
import {
  Channels,
  type BusEvent,
  type ConversationPage,
  type ConversationSummary,
  type HistoryPage,
  type Member,
  type Role,
  type SendMessageResponse,
} from '@parley/protocol';
import {
  call,
  errorOf,
  registerUser,
  HARNESS_START_TIMEOUT_MS,
  MESSAGE_BACKENDS,
  startMessageHarness,
  type CallResponse,
  type MessageHarness,
  type TestUser,
} from '../../../tests/support/message-harness';

let h: MessageHarness;

type Response = CallResponse;

type Users<N extends number, Acc extends TestUser[] = []> = Acc['length'] extends N ? Acc : Users<N, [...Acc, TestUser]>;

/** `count` fresh users, typed as a tuple so destructuring needs no checks. */
async function users<N extends number>(count: N): Promise<Users<N>> {
  const list: TestUser[] = [];
  for (let i = 0; i < count; i++) list.push(await registerUser(h.app));
  return list as Users<N>;
}

async function openDirect(from: TestUser, to: TestUser): Promise<Response> {
  return call(h.app, from, 'POST', '/v1/conversations/direct', { userId: to.id });
}

async function createGroup(owner: TestUser, members: TestUser[], title = 'a group'): Promise<ConversationSummary> {
  const response = await call(h.app, owner, 'POST', '/v1/conversations/groups', {
    title,
    memberIds: members.map((m) => m.id),
  });
  expect(response.statusCode).toBe(201);
  return response.json<ConversationSummary>();
}

async function send(from: TestUser, conversationId: string, body = 'hi'): Promise<Response> {
  return call(h.app, from, 'POST', `/v1/conversations/${conversationId}/messages`, {
    clientMessageId: randomUUID(),
    body,
  });
}

async function sendOk(from: TestUser, conversationId: string, body = 'hi'): Promise<SendMessageResponse> {
  const response = await send(from, conversationId, body);
  expect(response.statusCode).toBe(201);
  return response.json<SendMessageResponse>();
}

async function summary(user: TestUser, conversationId: string): Promise<ConversationSummary> {
  const response = await call(h.app, user, 'GET', `/v1/conversations/${conversationId}`);
  expect(response.statusCode).toBe(200);
  return response.json<ConversationSummary>();
}

async function listAll(user: TestUser): Promise<ConversationSummary[]> {
  const response = await call(h.app, user, 'GET', '/v1/conversations?limit=200');
  expect(response.statusCode).toBe(200);
  const page = response.json<ConversationPage>();
  expect(page.nextCursor).toBeNull();
  return page.conversations;
}

async function roles(user: TestUser, conversationId: string): Promise<Record<string, Role>> {
  const response = await call(h.app, user, 'GET', `/v1/conversations/${conversationId}/members`);
  expect(response.statusCode).toBe(200);
  return Object.fromEntries(response.json<{ members: Member[] }>().members.map((m) => [m.user.id, m.role]));
}

async function addMembers(actor: TestUser, conversationId: string, added: TestUser[], role?: 'admin' | 'member') {
  return call(h.app, actor, 'POST', `/v1/conversations/${conversationId}/members`, {
    userIds: added.map((u) => u.id),
    ...(role ? { role } : {}),
  });
}

async function removeMember(actor: TestUser, conversationId: string, target: TestUser) {
  return call(h.app, actor, 'DELETE', `/v1/conversations/${conversationId}/members/${target.id}`);
}

async function changeRole(actor: TestUser, conversationId: string, target: TestUser, role: 'admin' | 'member') {
  return call(h.app, actor, 'PATCH', `/v1/conversations/${conversationId}/members/${target.id}`, { role });
}

async function history(user: TestUser, conversationId: string, query = ''): Promise<HistoryPage> {
  const response = await call(h.app, user, 'GET', `/v1/conversations/${conversationId}/messages${query}`);
  expect(response.statusCode).toBe(200);
  return response.json<HistoryPage>();
}

function waitEvent(channel: string, match: (event: BusEvent) => boolean) {
  return h.events.waitFor((entry) => entry.channel === channel && match(entry.event));
}

function membershipAdded(user: TestUser, conversationId: string) {
  return waitEvent(
    Channels.user(user.id),
    (e) => e.type === 'membership.added' && e.conversationId === conversationId,
  );
}

describe.each(MESSAGE_BACKENDS)('on %s', (backend) => {
  beforeAll(async () => {
    h = await startMessageHarness({}, { backend });
  }, HARNESS_START_TIMEOUT_MS);
  afterAll(async () => h.close());

  describe('direct conversations', () => {
    test('opening is idempotent per pair: 201 first, then 200 with the same id from either side', async () => {
      const [alice, bob] = await users(2);
      const first = await openDirect(alice, bob);
      expect(first.statusCode).toBe(201);
      const created = first.json<ConversationSummary>();
      expect(created).toMatchObject({
        kind: 'direct',
        title: null,
        role: 'member',
        memberCount: 2,
        peer: { id: bob.id, username: bob.username },
        lastSeq: 0,
        lastReadSeq: 0,
        unreadCount: 0,
        lastMessage: null,
      });

      const again = await openDirect(alice, bob);
      expect(again.statusCode).toBe(200);
      expect(again.json<ConversationSummary>().id).toBe(created.id);

      const fromBob = await openDirect(bob, alice);
      expect(fromBob.statusCode).toBe(200);
      const bobView = fromBob.json<ConversationSummary>();
      expect(bobView.id).toBe(created.id);
      expect(bobView.peer).toMatchObject({ id: alice.id, username: alice.username });

      await membershipAdded(alice, created.id);
      await membershipAdded(bob, created.id);
      expect((await listAll(alice)).map((c) => c.id)).toEqual([created.id]);
      expect((await listAll(bob)).map((c) => c.id)).toEqual([created.id]);
    });

    test('ten concurrent opens from both sides give one conversation', async () => {
      const [alice, bob] = await users(2);
      const responses = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? openDirect(alice, bob) : openDirect(bob, alice))),
      );
      const statuses = responses.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.filter((s) => s === 200)).toHaveLength(9);
      const ids = new Set(responses.map((r) => r.json<ConversationSummary>().id));
      expect(ids.size).toBe(1);
      const [id] = [...ids];
      expect((await listAll(alice)).map((c) => c.id)).toEqual([id]);
      expect((await listAll(bob)).map((c) => c.id)).toEqual([id]);
      expect(Object.keys(await roles(alice, id ?? '')).sort()).toEqual([alice.id, bob.id].sort());
    });

    test('with myself is CANNOT_TARGET_SELF; with an unknown user is USER_NOT_FOUND', async () => {
      const [alice] = await users(1);
      expect(errorOf(await openDirect(alice, alice))).toEqual({ status: 422, code: 'CANNOT_TARGET_SELF' });
      const unknown = await call(h.app, alice, 'POST', '/v1/conversations/direct', { userId: randomUUID() });
      expect(errorOf(unknown)).toEqual({ status: 404, code: 'USER_NOT_FOUND' });
      expect(await listAll(alice)).toEqual([]);
    });

    test('cannot add members, leave, remove or change roles: NOT_A_GROUP', async () => {
      const [alice, bob, carol] = await users(3);
      const conversationId = (await openDirect(alice, bob)).json<ConversationSummary>().id;

      expect(errorOf(await addMembers(alice, conversationId, [carol]))).toEqual({ status: 409, code: 'NOT_A_GROUP' });
      expect(errorOf(await call(h.app, alice, 'POST', `/v1/conversations/${conversationId}/leave`))).toEqual({
        status: 409,
        code: 'NOT_A_GROUP',
      });
      expect(errorOf(await removeMember(alice, conversationId, alice))).toEqual({ status: 409, code: 'NOT_A_GROUP' });
      expect(errorOf(await removeMember(alice, conversationId, bob))).toEqual({ status: 409, code: 'NOT_A_GROUP' });
      expect(errorOf(await changeRole(alice, conversationId, bob, 'admin'))).toEqual({
        status: 409,
        code: 'NOT_A_GROUP',
      });

      expect(await roles(bob, conversationId)).toEqual({ [alice.id]: 'member', [bob.id]: 'member' });
      expect((await summary(alice, conversationId)).memberCount).toBe(2);
    });
  });

  describe('groups', () => {
    test('creation: 201, the creator is owner, memberCount counts everyone, each member hears it', async () => {
      const [alice, bob, carol] = await users(3);
      const response = await call(h.app, alice, 'POST', '/v1/conversations/groups', {
        title: 'Weekend plans',
        memberIds: [bob.id, carol.id],
      });
      expect(response.statusCode).toBe(201);
      const group = response.json<ConversationSummary>();
      expect(group).toMatchObject({
        kind: 'group',
        title: 'Weekend plans',
        role: 'owner',
        memberCount: 3,
        peer: null,
        lastSeq: 0,
        unreadCount: 0,
        lastMessage: null,
      });

      expect(await roles(bob, group.id)).toEqual({ [alice.id]: 'owner', [bob.id]: 'member', [carol.id]: 'member' });
      expect(await summary(bob, group.id)).toMatchObject({ role: 'member', memberCount: 3, title: 'Weekend plans' });

      await Promise.all([alice, bob, carol].map((user) => membershipAdded(user, group.id)));
    });

    test('listing myself among the members does not count me twice', async () => {
      const [alice, bob] = await users(2);
      const group = await createGroup(alice, [alice, bob]);
      expect(group.memberCount).toBe(2);
      expect(group.role).toBe('owner');
      expect(await roles(alice, group.id)).toEqual({ [alice.id]: 'owner', [bob.id]: 'member' });
    });

    test('a group with an unknown member is USER_NOT_FOUND and creates nothing', async () => {
      const [alice, bob] = await users(2);
      const response = await call(h.app, alice, 'POST', '/v1/conversations/groups', {
        title: 'nope',
        memberIds: [bob.id, randomUUID()],
      });
      expect(errorOf(response)).toEqual({ status: 404, code: 'USER_NOT_FOUND' });
      expect(await listAll(alice)).toEqual([]);
      expect(await listAll(bob)).toEqual([]);
    });
  });

  describe('listing conversations', () => {
    test('most recent activity first; a send moves a conversation to the top; summaries carry lastMessage, lastSeq, unreadCount', async () => {
      const [alice, bob, carol] = await users(3);
      const first = await createGroup(alice, [bob], 'first');
      const second = await createGroup(alice, [bob, carol], 'second');
      const direct = (await openDirect(alice, bob)).json<ConversationSummary>();

      expect((await listAll(alice)).map((c) => c.id)).toEqual([direct.id, second.id, first.id]);
      expect((await listAll(bob)).map((c) => c.id)).toEqual([direct.id, second.id, first.id]);
      expect((await listAll(carol)).map((c) => c.id)).toEqual([second.id]);

      // A send in the oldest conversation moves it to the top, for every member.
      const sent = await sendOk(bob, first.id, 'back to the first');
      expect((await listAll(alice)).map((c) => c.id)).toEqual([first.id, direct.id, second.id]);
      expect((await listAll(bob)).map((c) => c.id)).toEqual([first.id, direct.id, second.id]);

      await sendOk(alice, second.id, 'second one');
      await sendOk(carol, second.id, 'carol here');
      expect((await listAll(alice)).map((c) => c.id)).toEqual([second.id, first.id, direct.id]);

      const aliceList = await listAll(alice);
      const aliceFirst = aliceList.find((c) => c.id === first.id);
      expect(aliceFirst).toMatchObject({ lastSeq: 1, lastReadSeq: 0, unreadCount: 1 });
      expect(aliceFirst?.lastMessage).toEqual(sent.message);
      const aliceSecond = aliceList.find((c) => c.id === second.id);
      // Alice sent seq 1 (her own message counts as read), Carol sent seq 2.
      expect(aliceSecond).toMatchObject({ lastSeq: 2, lastReadSeq: 1, unreadCount: 1 });
      expect(aliceSecond?.lastMessage).toMatchObject({ seq: 2, body: 'carol here', senderId: carol.id });
      const aliceDirect = aliceList.find((c) => c.id === direct.id);
      expect(aliceDirect).toMatchObject({ lastSeq: 0, unreadCount: 0, lastMessage: null });

      const bobList = await listAll(bob);
      expect(bobList.find((c) => c.id === first.id)).toMatchObject({ lastSeq: 1, unreadCount: 0 });
      expect(bobList.find((c) => c.id === second.id)).toMatchObject({ lastSeq: 2, lastReadSeq: 0, unreadCount: 2 });

      // Reading clears the count.
      const read = await call(h.app, bob, 'POST', `/v1/conversations/${second.id}/read`, { seq: 2 });
      expect(read.statusCode).toBe(200);
      expect((await listAll(bob)).find((c) => c.id === second.id)).toMatchObject({ lastReadSeq: 2, unreadCount: 0 });
      // Reading does not count as activity.
      expect((await listAll(bob)).map((c) => c.id)).toEqual([second.id, first.id, direct.id]);
    });

    // Needs a database clock apart from the service's; the embedded one reads the process's own.
    (backend === 'postgres' ? test : test.skip)(
      'a send moves its conversation to the top even on a replica whose clock runs behind the database',
      async () => {
        // Replicas are stateless and interchangeable, so their clocks differ; the order of
        // the list must come from one clock (PostgreSQL's), as conversation creation does.
        const [alice, bob] = await users(2);
        const older = await createGroup(alice, [bob], 'older');
        const newer = await createGroup(alice, [bob], 'newer');
        expect((await listAll(alice)).map((c) => c.id)).toEqual([newer.id, older.id]);

        const RealDate = Date;
        const skewMs = 5000;
        class LaggingDate extends RealDate {
          constructor(...args: unknown[]) {
            if (args.length === 0) super(RealDate.now() - skewMs);
            else super(...(args as [string]));
          }
          static override now(): number {
            return RealDate.now() - skewMs;
          }
        }
        globalThis.Date = LaggingDate as DateConstructor;
        let sent: Response;
        try {
          sent = await send(bob, older.id, 'from a lagging replica');
        } finally {
          globalThis.Date = RealDate;
        }
        expect(sent.statusCode).toBe(201);
        const list = await listAll(alice);
        expect(list.map((c) => c.id)).toEqual([older.id, newer.id]);
        const top = list[0];
        expect(Date.parse(top?.lastActivityAt ?? '')).toBeGreaterThanOrEqual(Date.parse(newer.lastActivityAt));
      },
    );

    test('paging with limit and nextCursor returns every conversation exactly once, in list order', async () => {
      const [owner, ...peers] = await users(8);
      const created: string[] = [];
      for (const peer of peers.slice(0, 4)) created.push((await openDirect(owner, peer)).json<ConversationSummary>().id);
      for (let i = 0; i < 4; i++) created.push((await createGroup(owner, peers.slice(i, i + 3), `group ${i}`)).id);
      // Activity in a few older ones reshuffles the order.
      await sendOk(owner, created[0] ?? '');
      await sendOk(peers[1] ?? owner, created[1] ?? '');
      await sendOk(owner, created[5] ?? '');

      const expected = (await listAll(owner)).map((c) => c.id);
      expect(new Set(expected)).toEqual(new Set(created));
      expect(expected).toHaveLength(8);
      expect(expected.slice(0, 3)).toEqual([created[5], created[1], created[0]]);

      for (const limit of [1, 3, 5, 7]) {
        const seen: string[] = [];
        const pageSizes: number[] = [];
        let cursor: string | null = null;
        for (let pages = 0; pages < 20; pages++) {
          const url: string = `/v1/conversations?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
          const response = await call(h.app, owner, 'GET', url);
          expect(response.statusCode).toBe(200);
          const page = response.json<ConversationPage>();
          seen.push(...page.conversations.map((c) => c.id));
          pageSizes.push(page.conversations.length);
          cursor = page.nextCursor;
          if (cursor === null) break;
        }
        expect(cursor).toBeNull();
        expect(seen).toEqual(expected);
        expect(pageSizes.every((size) => size <= limit)).toBe(true);
        expect(pageSizes.slice(0, -1).every((size) => size === limit)).toBe(true);
      }

      // A page that holds everything has no next cursor.
      const whole = await call(h.app, owner, 'GET', '/v1/conversations?limit=8');
      expect(whole.json<ConversationPage>()).toMatchObject({ nextCursor: null });
      expect(whole.json<ConversationPage>().conversations).toHaveLength(8);
    });

    test('a garbage cursor or limit is VALIDATION_FAILED', async () => {
      const [alice, bob] = await users(2);
      await openDirect(alice, bob);
      const garbage = [
        'garbage',
        '!!!',
        Buffer.from('12345.not-a-uuid').toString('base64url'),
        Buffer.from(`abc.${randomUUID()}`).toString('base64url'),
        'x'.repeat(500),
      ];
      for (const cursor of garbage) {
        const response = await call(h.app, alice, 'GET', `/v1/conversations?cursor=${encodeURIComponent(cursor)}`);
        expect({ cursor, ...errorOf(response) }).toEqual({ cursor, status: 400, code: 'VALIDATION_FAILED' });
      }
      for (const limit of ['0', '-1', '201', 'ten']) {
        const response = await call(h.app, alice, 'GET', `/v1/conversations?limit=${limit}`);
        expect({ limit, ...errorOf(response) }).toEqual({ limit, status: 400, code: 'VALIDATION_FAILED' });
      }
    });
  });

  describe('members and roles', () => {
    test('the members list shows each member with their role and read marker', async () => {
      const [alice, bob, carol] = await users(3);
      const group = await createGroup(alice, [bob]);
      expect((await addMembers(alice, group.id, [carol], 'admin')).statusCode).toBe(200);

      const response = await call(h.app, bob, 'GET', `/v1/conversations/${group.id}/members`);
      expect(response.statusCode).toBe(200);
      const members = response.json<{ members: Member[] }>().members;
      expect(members).toHaveLength(3);
      const byId = new Map(members.map((m) => [m.user.id, m]));
      expect(byId.get(alice.id)).toMatchObject({ role: 'owner', user: { username: alice.username }, lastReadSeq: 0 });
      expect(byId.get(bob.id)).toMatchObject({ role: 'member', user: { username: bob.username } });
      expect(byId.get(carol.id)).toMatchObject({ role: 'admin', user: { username: carol.username } });
      for (const member of members) expect(Number.isNaN(Date.parse(member.joinedAt))).toBe(false);
    });

    test('the owner and admins add members; a member cannot; only the owner adds admins', async () => {
      const [owner, admin, member, dave, erin, frank, gina] = await users(7);
      const group = await createGroup(owner, [admin, member]);
      expect((await changeRole(owner, group.id, admin, 'admin')).statusCode).toBe(204);

      // Owner adds a member.
      const byOwner = await addMembers(owner, group.id, [dave]);
      expect(byOwner.statusCode).toBe(200);
      expect(byOwner.json<{ members: Member[] }>().members.find((m) => m.user.id === dave.id)?.role).toBe('member');
      await waitEvent(
        Channels.conversation(group.id),
        (e) =>
          e.type === 'member.added' &&
          e.userIds.length === 1 &&
          e.userIds[0] === dave.id &&
          e.role === 'member' &&
          e.byUserId === owner.id,
      );
      await membershipAdded(dave, group.id);

      // Admin adds a member.
      expect((await addMembers(admin, group.id, [erin])).statusCode).toBe(200);
      await waitEvent(
        Channels.conversation(group.id),
        (e) => e.type === 'member.added' && e.userIds.includes(erin.id) && e.byUserId === admin.id,
      );
      await membershipAdded(erin, group.id);

      // A member cannot add anyone.
      expect(errorOf(await addMembers(member, group.id, [frank]))).toEqual({ status: 403, code: 'INSUFFICIENT_ROLE' });
      // An admin cannot add admins.
      expect(errorOf(await addMembers(admin, group.id, [frank], 'admin'))).toEqual({
        status: 403,
        code: 'INSUFFICIENT_ROLE',
      });
      expect(errorOf(await call(h.app, frank, 'GET', `/v1/conversations/${group.id}`))).toEqual({
        status: 403,
        code: 'NOT_A_MEMBER',
      });

      // The owner can.
      expect((await addMembers(owner, group.id, [frank, gina], 'admin')).statusCode).toBe(200);
      await waitEvent(
        Channels.conversation(group.id),
        (e) =>
          e.type === 'member.added' &&
          [...e.userIds].sort().join() === [frank.id, gina.id].sort().join() &&
          e.role === 'admin' &&
          e.byUserId === owner.id,
      );
      await membershipAdded(frank, group.id);
      await membershipAdded(gina, group.id);

      expect(await roles(owner, group.id)).toEqual({
        [owner.id]: 'owner',
        [admin.id]: 'admin',
        [member.id]: 'member',
        [dave.id]: 'member',
        [erin.id]: 'member',
        [frank.id]: 'admin',
        [gina.id]: 'admin',
      });
      expect((await summary(owner, group.id)).memberCount).toBe(7);
      expect((await summary(frank, group.id)).role).toBe('admin');
    });

    test('adding someone who is already a member changes nothing; adding an unknown user is USER_NOT_FOUND', async () => {
      const [alice, bob, carol] = await users(3);
      const group = await createGroup(alice, [bob]);
      const again = await addMembers(alice, group.id, [bob]);
      expect(again.statusCode).toBe(200);
      expect((await summary(alice, group.id)).memberCount).toBe(2);
      // Re-adding as admin does not promote (roles change through PATCH).
      expect((await addMembers(alice, group.id, [bob], 'admin')).statusCode).toBe(200);
      expect(await roles(alice, group.id)).toEqual({ [alice.id]: 'owner', [bob.id]: 'member' });

      const unknown = await call(h.app, alice, 'POST', `/v1/conversations/${group.id}/members`, {
        userIds: [carol.id, randomUUID()],
      });
      expect(errorOf(unknown)).toEqual({ status: 404, code: 'USER_NOT_FOUND' });
      expect(Object.keys(await roles(alice, group.id))).toHaveLength(2);
      expect((await summary(alice, group.id)).memberCount).toBe(2);
    });

    test('concurrent adds of the same user add them once', async () => {
      const [alice, bob, carol] = await users(3);
      const group = await createGroup(alice, [bob]);
      const responses = await Promise.all(Array.from({ length: 6 }, () => addMembers(alice, group.id, [carol])));
      expect(responses.map((r) => r.statusCode)).toEqual(Array(6).fill(200));
      expect((await summary(alice, group.id)).memberCount).toBe(3);
      expect(await roles(carol, group.id)).toEqual({ [alice.id]: 'owner', [bob.id]: 'member', [carol.id]: 'member' });
    });

    test('a member added later sees only messages sent after joining, and starts with nothing unread', async () => {
      const [alice, bob, carol] = await users(3);
      const group = await createGroup(alice, [bob]);
      await sendOk(alice, group.id, 'one');
      await sendOk(bob, group.id, 'two');
      await sendOk(alice, group.id, 'three');

      expect((await addMembers(alice, group.id, [carol])).statusCode).toBe(200);
      const joined = await summary(carol, group.id);
      expect(joined).toMatchObject({ role: 'member', lastSeq: 3, lastReadSeq: 3, unreadCount: 0, lastMessage: null });
      expect((await listAll(carol)).find((c) => c.id === group.id)).toMatchObject({ unreadCount: 0, lastMessage: null });
      expect(await history(carol, group.id)).toEqual({ messages: [], hasMore: false });
      expect((await history(carol, group.id, '?after=0')).messages).toEqual([]);
      expect((await history(carol, group.id, '?before=4')).messages).toEqual([]);

      await sendOk(bob, group.id, 'four');
      const after = await summary(carol, group.id);
      expect(after).toMatchObject({ lastSeq: 4, unreadCount: 1, lastMessage: { seq: 4, body: 'four' } });
      const visible = await history(carol, group.id);
      expect(visible.messages.map((m) => [m.seq, m.body])).toEqual([[4, 'four']]);
      expect(visible.hasMore).toBe(false);
      expect((await history(carol, group.id, '?after=0')).messages.map((m) => m.seq)).toEqual([4]);
      // Earlier members still see everything.
      expect((await history(bob, group.id)).messages.map((m) => m.body)).toEqual(['one', 'two', 'three', 'four']);
    });

    test('removing: the owner removes anyone, an admin removes members only, a member no one', async () => {
      const [owner, admin1, admin2, m1, m2, m3, outsider] = await users(7);
      const group = await createGroup(owner, [m1, m2, m3]);
      expect((await addMembers(owner, group.id, [admin1, admin2], 'admin')).statusCode).toBe(200);

      // An admin cannot remove another admin or the owner.
      expect(errorOf(await removeMember(admin1, group.id, admin2))).toEqual({ status: 403, code: 'INSUFFICIENT_ROLE' });
      expect(errorOf(await removeMember(admin1, group.id, owner))).toEqual({ status: 403, code: 'INSUFFICIENT_ROLE' });
      // A member cannot remove anyone.
      expect(errorOf(await removeMember(m1, group.id, m2))).toEqual({ status: 403, code: 'INSUFFICIENT_ROLE' });
      expect(errorOf(await removeMember(m1, group.id, admin1))).toEqual({ status: 403, code: 'INSUFFICIENT_ROLE' });
      // Removing someone who is not a member.
      expect(errorOf(await removeMember(owner, group.id, outsider))).toEqual({ status: 404, code: 'MEMBER_NOT_FOUND' });
      expect((await summary(owner, group.id)).memberCount).toBe(6);

      // An admin removes a member.
      expect((await removeMember(admin1, group.id, m1)).statusCode).toBe(204);
      await waitEvent(
        Channels.conversation(group.id),
        (e) => e.type === 'member.removed' && e.userId === m1.id && e.byUserId === admin1.id,
      );
      await waitEvent(
        Channels.user(m1.id),
        (e) => e.type === 'membership.removed' && e.conversationId === group.id,
      );
      expect(errorOf(await call(h.app, m1, 'GET', `/v1/conversations/${group.id}`))).toEqual({
        status: 403,
        code: 'NOT_A_MEMBER',
      });
      expect(errorOf(await send(m1, group.id))).toEqual({ status: 403, code: 'NOT_A_MEMBER' });
      expect((await listAll(m1)).map((c) => c.id)).not.toContain(group.id);

      // The owner removes an admin.
      expect((await removeMember(owner, group.id, admin2)).statusCode).toBe(204);
      await waitEvent(
        Channels.conversation(group.id),
        (e) => e.type === 'member.removed' && e.userId === admin2.id && e.byUserId === owner.id,
      );
      await waitEvent(
        Channels.user(admin2.id),
        (e) => e.type === 'membership.removed' && e.conversationId === group.id,
      );

      expect(await roles(owner, group.id)).toEqual({
        [owner.id]: 'owner',
        [admin1.id]: 'admin',
        [m2.id]: 'member',
        [m3.id]: 'member',
      });
      expect((await summary(m2, group.id)).memberCount).toBe(4);
    });

    test('a removed member who is added back sees only what was sent after the return', async () => {
      const [alice, bob] = await users(2);
      const group = await createGroup(alice, [bob]);
      await sendOk(alice, group.id, 'before removal');
      expect((await removeMember(alice, group.id, bob)).statusCode).toBe(204);
      await sendOk(alice, group.id, 'while away');
      expect((await addMembers(alice, group.id, [bob])).statusCode).toBe(200);
      expect(await summary(bob, group.id)).toMatchObject({ lastSeq: 2, unreadCount: 0, lastMessage: null });
      await sendOk(alice, group.id, 'welcome back');
      expect((await history(bob, group.id)).messages.map((m) => m.body)).toEqual(['welcome back']);
    });

    test('changing roles is for the owner only', async () => {
      const [owner, bob, carol, outsider] = await users(4);
      const group = await createGroup(owner, [bob, carol]);

      expect((await changeRole(owner, group.id, bob, 'admin')).statusCode).toBe(204);
      await waitEvent(
        Channels.conversation(group.id),
        (e) => e.type === 'member.role_changed' && e.userId === bob.id && e.role === 'admin',
      );
      expect((await roles(carol, group.id))[bob.id]).toBe('admin');
      expect((await summary(bob, group.id)).role).toBe('admin');

      // An admin cannot change roles, not even of a plain member.
      expect(errorOf(await changeRole(bob, group.id, carol, 'admin'))).toEqual({ status: 403, code: 'INSUFFICIENT_ROLE' });
      // A member cannot either, not even their own.
      expect(errorOf(await changeRole(carol, group.id, bob, 'member'))).toEqual({ status: 403, code: 'INSUFFICIENT_ROLE' });
      expect(errorOf(await changeRole(carol, group.id, carol, 'admin'))).toEqual({
        status: 422,
        code: 'CANNOT_TARGET_SELF',
      });
      // The owner cannot demote themselves (ownership passes on by leaving).
      expect(errorOf(await changeRole(owner, group.id, owner, 'member'))).toEqual({
        status: 422,
        code: 'CANNOT_TARGET_SELF',
      });
      expect(errorOf(await changeRole(owner, group.id, outsider, 'admin'))).toEqual({
        status: 404,
        code: 'MEMBER_NOT_FOUND',
      });
      // "owner" is not a role one can be given.
      expect(
        errorOf(await call(h.app, owner, 'PATCH', `/v1/conversations/${group.id}/members/${bob.id}`, { role: 'owner' })),
      ).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
      expect(await roles(owner, group.id)).toEqual({ [owner.id]: 'owner', [bob.id]: 'admin', [carol.id]: 'member' });

      // The owner demotes back.
      expect((await changeRole(owner, group.id, bob, 'member')).statusCode).toBe(204);
      await waitEvent(
        Channels.conversation(group.id),
        (e) => e.type === 'member.role_changed' && e.userId === bob.id && e.role === 'member',
      );
      expect((await roles(owner, group.id))[bob.id]).toBe('member');
      // As a member again, Bob can no longer add anyone.
      expect(errorOf(await addMembers(bob, group.id, [outsider]))).toEqual({ status: 403, code: 'INSUFFICIENT_ROLE' });
    });

    test('a member leaves; afterwards they are no longer a member', async () => {
      const [alice, bob, carol] = await users(3);
      const group = await createGroup(alice, [bob, carol]);

      const left = await call(h.app, bob, 'POST', `/v1/conversations/${group.id}/leave`);
      expect(left.statusCode).toBe(204);
      await waitEvent(
        Channels.conversation(group.id),
        (e) => e.type === 'member.removed' && e.userId === bob.id && e.byUserId === bob.id,
      );
      await waitEvent(Channels.user(bob.id), (e) => e.type === 'membership.removed' && e.conversationId === group.id);
      expect(errorOf(await call(h.app, bob, 'GET', `/v1/conversations/${group.id}`))).toEqual({
        status: 403,
        code: 'NOT_A_MEMBER',
      });
      expect(errorOf(await call(h.app, bob, 'POST', `/v1/conversations/${group.id}/leave`))).toEqual({
        status: 403,
        code: 'NOT_A_MEMBER',
      });
      expect(await roles(alice, group.id)).toEqual({ [alice.id]: 'owner', [carol.id]: 'member' });
      expect((await summary(alice, group.id)).memberCount).toBe(2);

      // Removing yourself through DELETE is leaving too.
      expect((await removeMember(carol, group.id, carol)).statusCode).toBe(204);
      expect(await roles(alice, group.id)).toEqual({ [alice.id]: 'owner' });
      expect((await summary(alice, group.id)).memberCount).toBe(1);
    });

    test('an owner who leaves hands ownership to the longest-standing admin', async () => {
      const [owner, oldMember] = await users(2);
      // Two admins; the one added first must win even when its id sorts last, and even though a
      // plain member has been there longer still.
      let [firstAdmin, laterAdmin] = await users(2);
      if (firstAdmin.id < laterAdmin.id) [firstAdmin, laterAdmin] = [laterAdmin, firstAdmin];

      const group = await createGroup(owner, [oldMember]);
      expect((await addMembers(owner, group.id, [firstAdmin], 'admin')).statusCode).toBe(200);
      expect((await addMembers(owner, group.id, [laterAdmin], 'admin')).statusCode).toBe(200);

      expect((await call(h.app, owner, 'POST', `/v1/conversations/${group.id}/leave`)).statusCode).toBe(204);
      expect(await roles(oldMember, group.id)).toEqual({
        [oldMember.id]: 'member',
        [firstAdmin.id]: 'owner',
        [laterAdmin.id]: 'admin',
      });
      await waitEvent(
        Channels.conversation(group.id),
        (e) => e.type === 'member.role_changed' && e.userId === firstAdmin.id && e.role === 'owner',
      );
      await waitEvent(
        Channels.conversation(group.id),
        (e) => e.type === 'member.removed' && e.userId === owner.id && e.byUserId === owner.id,
      );
      expect((await summary(firstAdmin, group.id)).role).toBe('owner');
      expect((await summary(firstAdmin, group.id)).memberCount).toBe(3);

      // The new owner has the owner's powers.
      expect((await changeRole(firstAdmin, group.id, oldMember, 'admin')).statusCode).toBe(204);
      expect((await removeMember(firstAdmin, group.id, laterAdmin)).statusCode).toBe(204);
    });

    test('an owner who leaves a group without admins hands ownership to the longest-standing member', async () => {
      const [owner, early, late] = await users(3);
      const group = await createGroup(owner, [early]);
      expect((await addMembers(owner, group.id, [late])).statusCode).toBe(200);
      expect((await call(h.app, owner, 'POST', `/v1/conversations/${group.id}/leave`)).statusCode).toBe(204);
      expect(await roles(late, group.id)).toEqual({ [early.id]: 'owner', [late.id]: 'member' });
    });
  });

  describe('authorization', () => {
    test('a non-member gets NOT_A_MEMBER everywhere, and changes nothing', async () => {
      const [alice, bob, outsider, someone] = await users(4);
      const group = await createGroup(alice, [bob]);
      const direct = (await openDirect(alice, bob)).json<ConversationSummary>();
      await sendOk(alice, group.id, 'members only');
      await sendOk(alice, direct.id, 'just us');

      for (const conversationId of [group.id, direct.id]) {
        const base = `/v1/conversations/${conversationId}`;
        const attempts: Array<[string, Response]> = [
          ['get', await call(h.app, outsider, 'GET', base)],
          ['members', await call(h.app, outsider, 'GET', `${base}/members`)],
          ['history', await call(h.app, outsider, 'GET', `${base}/messages`)],
          ['history after', await call(h.app, outsider, 'GET', `${base}/messages?after=0`)],
          ['send', await send(outsider, conversationId, 'let me in')],
          ['read', await call(h.app, outsider, 'POST', `${base}/read`, { seq: 1 })],
          ['add members', await addMembers(outsider, conversationId, [someone])],
          ['add myself', await addMembers(outsider, conversationId, [outsider])],
        ];
        for (const [what, response] of attempts) {
          expect({ what, ...errorOf(response) }).toEqual({ what, status: 403, code: 'NOT_A_MEMBER' });
          expect(response.body).not.toContain('members only');
          expect(response.body).not.toContain('just us');
        }
        expect(await summary(alice, conversationId)).toMatchObject({ lastSeq: 1 });
      }
      expect(await roles(alice, group.id)).toEqual({ [alice.id]: 'owner', [bob.id]: 'member' });
      expect(await listAll(outsider)).toEqual([]);
    });

    test('an unknown conversation id is CONVERSATION_NOT_FOUND everywhere', async () => {
      const [alice, bob] = await users(2);
      const base = `/v1/conversations/${randomUUID()}`;
      const attempts: Array<[string, Response]> = [
        ['get', await call(h.app, alice, 'GET', base)],
        ['members', await call(h.app, alice, 'GET', `${base}/members`)],
        ['history', await call(h.app, alice, 'GET', `${base}/messages`)],
        ['send', await send(alice, randomUUID())],
        ['read', await call(h.app, alice, 'POST', `${base}/read`, { seq: 1 })],
        ['add members', await addMembers(alice, randomUUID(), [bob])],
        ['leave', await call(h.app, alice, 'POST', `${base}/leave`)],
        ['remove', await call(h.app, alice, 'DELETE', `${base}/members/${bob.id}`)],
        ['role', await call(h.app, alice, 'PATCH', `${base}/members/${bob.id}`, { role: 'admin' })],
      ];
      for (const [what, response] of attempts) {
        expect({ what, ...errorOf(response) }).toEqual({ what, status: 404, code: 'CONVERSATION_NOT_FOUND' });
      }
    });

    test('a malformed conversation id is VALIDATION_FAILED, and no token is UNAUTHENTICATED', async () => {
      const [alice] = await users(1);
      expect(errorOf(await call(h.app, alice, 'GET', '/v1/conversations/not-a-uuid'))).toEqual({
        status: 400,
        code: 'VALIDATION_FAILED',
      });
      expect(errorOf(await call(h.app, null, 'GET', '/v1/conversations'))).toEqual({
        status: 401,
        code: 'UNAUTHENTICATED',
      });
      expect(errorOf(await call(h.app, null, 'POST', '/v1/conversations/groups', { title: 't', memberIds: [] }))).toEqual(
        { status: 401, code: 'UNAUTHENTICATED' },
      );
    });
  });
});
