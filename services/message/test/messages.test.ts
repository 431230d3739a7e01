import type {
  BusEvent,
  ConversationPage,
  ConversationSummary,
  ErrorBody,
  HistoryPage,
  Message,
  ReadState,
  SendMessageResponse,
} from '@parley/protocol';
import { sql } from '@parley/db';
import {
  call,
  createGroupAs,
  registerUsers,
  HARNESS_START_TIMEOUT_MS,
  MESSAGE_BACKENDS,
  startMessageHarness,
  type MessageHarness,
  type TestUser,
} from '../../../tests/support/message-harness';

let h: MessageHarness;

// ---------------------------------------------------------------------------------------
// Helpers

const messagesUrl = (conversationId: string) => `/v1/conversations/${conversationId}/messages`;
const messageUrl = (conversationId: string, seq: number) => `/v1/conversations/${conversationId}/messages/${seq}`;

async function users(count: number): Promise<TestUser[]> {
  return registerUsers(h.app, count);
}

async function createGroup(owner: TestUser, members: readonly TestUser[], title = 'group'): Promise<string> {
  return (await createGroupAs(h.app, owner, members, title)).id;
}

async function sendRaw(user: TestUser, conversationId: string, clientMessageId: string, body = `body ${clientMessageId}`) {
  return call(h.app, user, 'POST', messagesUrl(conversationId), { clientMessageId, body });
}

async function send(user: TestUser, conversationId: string, clientMessageId: string, body?: string): Promise<Message> {
  const response = await sendRaw(user, conversationId, clientMessageId, body);
  expect(response.statusCode).toBe(201);
  const reply = response.json<SendMessageResponse>();
  expect(reply.duplicate).toBe(false);
  return reply.message;
}

async function history(user: TestUser, conversationId: string, query = ''): Promise<HistoryPage> {
  const response = await call(h.app, user, 'GET', `${messagesUrl(conversationId)}${query}`);
  expect(response.statusCode).toBe(200);
  return response.json<HistoryPage>();
}

async function conversation(user: TestUser, conversationId: string): Promise<ConversationSummary> {
  const response = await call(h.app, user, 'GET', `/v1/conversations/${conversationId}`);
  expect(response.statusCode).toBe(200);
  return response.json<ConversationSummary>();
}

async function listed(user: TestUser, conversationId: string): Promise<ConversationSummary> {
  const response = await call(h.app, user, 'GET', '/v1/conversations?limit=200');
  expect(response.statusCode).toBe(200);
  const found = response.json<ConversationPage>().conversations.find((summary) => summary.id === conversationId);
  if (!found) throw new Error(`conversation ${conversationId} missing from the list`);
  return found;
}

/** Unread count as both the single-conversation GET and the list see it (they must agree). */
async function unread(user: TestUser, conversationId: string): Promise<number> {
  const one = await conversation(user, conversationId);
  const fromList = await listed(user, conversationId);
  expect(fromList.unreadCount).toBe(one.unreadCount);
  expect(fromList.lastReadSeq).toBe(one.lastReadSeq);
  expect(one.unreadCount).toBe(one.lastSeq - one.lastReadSeq);
  return one.unreadCount;
}

async function markRead(user: TestUser, conversationId: string, seq: number): Promise<ReadState> {
  const response = await call(h.app, user, 'POST', `/v1/conversations/${conversationId}/read`, { seq });
  expect(response.statusCode).toBe(200);
  return response.json<ReadState>();
}

function errorCode(response: { json<T>(): T }): string {
  return response.json<ErrorBody>().error.code;
}

async function dbMessages(conversationId: string) {
  return h.db.kysely
    .selectFrom('messages')
    .selectAll()
    .where('conversation_id', '=', conversationId)
    .orderBy('seq', 'asc')
    .execute();
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

function eventsOf(conversationId: string, type: BusEvent['type']) {
  return h.events.received.filter(
    (entry) => entry.event.type === type && 'conversationId' in entry.event && entry.event.conversationId === conversationId,
  );
}

describe.each(MESSAGE_BACKENDS)('on %s', (backend) => {
  beforeAll(async () => {
    h = await startMessageHarness({}, { backend });
  }, HARNESS_START_TIMEOUT_MS);
  afterAll(async () => h.close());

  // ---------------------------------------------------------------------------------------
  // Ordering

  describe('per-conversation order under concurrency', () => {
    test('50 concurrent senders, two rounds, get seqs 1..100 with no gap and no duplicate', async () => {
      const members = await users(50);
      const [owner] = members;
      if (!owner) throw new Error('no owner');
      const conversationId = await createGroup(
        owner,
        members.filter((member) => member !== owner),
        'fifty',
      );

      const replies: Message[] = [];
      for (const round of [1, 2]) {
        const responses = await Promise.all(
          members.map((member, index) => sendRaw(member, conversationId, `r${round}-u${index}`)),
        );
        for (const response of responses) expect(response.statusCode).toBe(201);
        const messages = responses.map((response) => response.json<SendMessageResponse>());
        for (const reply of messages) expect(reply.duplicate).toBe(false);
        const roundSeqs = messages.map((reply) => reply.message.seq).sort((a, b) => a - b);
        // Each round takes the next 50 seqs: everything of round 1 committed before round 2 began.
        expect(roundSeqs).toEqual(range((round - 1) * 50 + 1, round * 50));
        replies.push(...messages.map((reply) => reply.message));
      }

      // The replies: 100 distinct seqs, exactly 1..100.
      const replySeqs = replies.map((message) => message.seq).sort((a, b) => a - b);
      expect(replySeqs).toEqual(range(1, 100));

      // The table agrees with every reply: same seq for the same (sender, client message id).
      const rows = await dbMessages(conversationId);
      expect(rows.map((row) => row.seq)).toEqual(range(1, 100));
      const bySeq = new Map(rows.map((row) => [row.seq, row]));
      for (const message of replies) {
        const row = bySeq.get(message.seq);
        expect(row?.sender_id).toBe(message.senderId);
        expect(row?.client_message_id).toBe(message.clientMessageId);
        expect(row?.body).toBe(message.body);
        expect(row?.rev).toBe(message.rev);
      }
      // Revs are distinct too (sync relies on them), and the conversation counters match.
      expect(new Set(rows.map((row) => row.rev)).size).toBe(100);
      const counters = await h.db.kysely
        .selectFrom('conversations')
        .select(['last_seq', 'last_rev'])
        .where('id', '=', conversationId)
        .executeTakeFirstOrThrow();
      expect(counters).toEqual({ last_seq: 100, last_rev: 100 });

      // And a reader sees the same 100 in ascending order.
      const page = await history(owner, conversationId, '?limit=200');
      expect(page.messages.map((message) => message.seq)).toEqual(range(1, 100));
      expect(page.hasMore).toBe(false);
    });
  });

  // ---------------------------------------------------------------------------------------
  // Idempotency

  describe('idempotent send', () => {
    test('10 concurrent retries of one send store one row and all return the same seq', async () => {
      const [alice, bob] = await users(2);
      if (!alice || !bob) throw new Error('users');
      const conversationId = await createGroup(alice, [bob], 'retries');

      const responses = await Promise.all(
        Array.from({ length: 10 }, () => sendRaw(alice, conversationId, 'same-id', 'hello once')),
      );
      const statuses = responses.map((response) => response.statusCode).sort();
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
      const replies = responses.map((response) => ({
        status: response.statusCode,
        reply: response.json<SendMessageResponse>(),
      }));
      for (const { status, reply } of replies) expect(reply.duplicate).toBe(status === 200);
      const original = replies.find(({ status }) => status === 201)?.reply.message;
      expect(original?.seq).toBe(1);
      // Every reply carries the original message, byte for byte.
      for (const { reply } of replies) expect(reply.message).toEqual(original);

      const rows = await dbMessages(conversationId);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ seq: 1, sender_id: alice.id, client_message_id: 'same-id', body: 'hello once' });

      // A later retry, even with a different body, still returns the original.
      const late = await sendRaw(alice, conversationId, 'same-id', 'a different body');
      expect(late.statusCode).toBe(200);
      expect(late.json<SendMessageResponse>()).toEqual({ message: original, duplicate: true });

      // Another sender may use the same client message id in the same conversation.
      const bobs = await sendRaw(bob, conversationId, 'same-id', 'from bob');
      expect(bobs.statusCode).toBe(201);
      expect(bobs.json<SendMessageResponse>().message).toMatchObject({ seq: 2, senderId: bob.id, body: 'from bob' });
      // ...and so may the same sender in another conversation.
      const other = await createGroup(alice, [bob], 'other');
      expect((await send(alice, other, 'same-id')).seq).toBe(1);

      const after = await dbMessages(conversationId);
      expect(after.map((row) => [row.seq, row.sender_id, row.client_message_id])).toEqual([
        [1, alice.id, 'same-id'],
        [2, bob.id, 'same-id'],
      ]);
      const counters = await conversation(alice, conversationId);
      expect(counters.lastSeq).toBe(2);
    });

    test('a retry interleaved with other senders keeps seqs gapless and returns the original', async () => {
      const members = await users(6);
      const [owner] = members;
      if (!owner) throw new Error('users');
      const conversationId = await createGroup(owner, members.slice(1), 'mixed');
      const responses = await Promise.all(
        members.flatMap((member, index) => [
          sendRaw(member, conversationId, `m${index}`),
          sendRaw(member, conversationId, `m${index}`),
          sendRaw(member, conversationId, `m${index}`),
        ]),
      );
      expect(responses.filter((response) => response.statusCode === 201)).toHaveLength(6);
      expect(responses.filter((response) => response.statusCode === 200)).toHaveLength(12);
      const seqByKey = new Map<string, Set<number>>();
      for (const response of responses) {
        const { message } = response.json<SendMessageResponse>();
        const key = `${message.senderId}/${message.clientMessageId}`;
        seqByKey.set(key, (seqByKey.get(key) ?? new Set()).add(message.seq));
      }
      expect(seqByKey.size).toBe(6);
      for (const seqs of seqByKey.values()) expect(seqs.size).toBe(1);
      const rows = await dbMessages(conversationId);
      expect(rows.map((row) => row.seq)).toEqual(range(1, 6));
    });
  });

  // ---------------------------------------------------------------------------------------
  // History

  describe('history paging', () => {
    let alice: TestUser;
    let bob: TestUser;
    let conversationId: string;
    const bodies = new Map<number, string>();

    beforeAll(async () => {
      [alice, bob] = (await users(2)) as [TestUser, TestUser];
      conversationId = await createGroup(alice, [bob], 'history');
      for (let index = 1; index <= 120; index += 1) {
        const sender = index % 3 === 0 ? bob : alice;
        const message = await send(sender, conversationId, `h${index}`, `message number ${index}`);
        expect(message.seq).toBe(index);
        bodies.set(index, `message number ${index}`);
      }
    });

    function expectAscendingAndIntact(page: HistoryPage) {
      const seqs = page.messages.map((message) => message.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      for (const message of page.messages) {
        expect(message.conversationId).toBe(conversationId);
        expect(message.body).toBe(bodies.get(message.seq));
      }
    }

    test('the default page is the newest 50, in ascending order', async () => {
      const page = await history(bob, conversationId);
      expect(page.messages.map((message) => message.seq)).toEqual(range(71, 120));
      expect(page.hasMore).toBe(true);
      expectAscendingAndIntact(page);
    });

    test('`before` pages back to the start, every message exactly once', async () => {
      const seen: number[] = [];
      const pages: Array<{ first: number; count: number; hasMore: boolean }> = [];
      let page = await history(bob, conversationId, '?limit=50');
      for (;;) {
        expectAscendingAndIntact(page);
        seen.unshift(...page.messages.map((message) => message.seq));
        pages.push({ first: page.messages[0]?.seq ?? -1, count: page.messages.length, hasMore: page.hasMore });
        if (!page.hasMore) break;
        const oldest = page.messages[0];
        if (!oldest || pages.length > 10) throw new Error('paging back does not end');
        page = await history(bob, conversationId, `?limit=50&before=${oldest.seq}`);
      }
      expect(pages).toEqual([
        { first: 71, count: 50, hasMore: true },
        { first: 21, count: 50, hasMore: true },
        { first: 1, count: 20, hasMore: false },
      ]);
      expect(seen).toEqual(range(1, 120));
    });

    test('`after` pages forward to the end, every message exactly once', async () => {
      const seen: number[] = [];
      const pages: Array<{ first: number; count: number; hasMore: boolean }> = [];
      let cursor = 0;
      for (;;) {
        const page = await history(alice, conversationId, `?limit=50&after=${cursor}`);
        expectAscendingAndIntact(page);
        seen.push(...page.messages.map((message) => message.seq));
        pages.push({ first: page.messages[0]?.seq ?? -1, count: page.messages.length, hasMore: page.hasMore });
        if (!page.hasMore) break;
        const newest = page.messages[page.messages.length - 1];
        if (!newest || pages.length > 10) throw new Error('paging forward does not end');
        cursor = newest.seq;
      }
      expect(pages).toEqual([
        { first: 1, count: 50, hasMore: true },
        { first: 51, count: 50, hasMore: true },
        { first: 101, count: 20, hasMore: false },
      ]);
      expect(seen).toEqual(range(1, 120));
    });

    test('hasMore is exact when the remainder equals the page size', async () => {
      // 120 = 3 x 40: the last page is full, and still says there is nothing more.
      const back = await history(alice, conversationId, '?limit=40&before=41');
      expect(back.messages.map((message) => message.seq)).toEqual(range(1, 40));
      expect(back.hasMore).toBe(false);
      const forward = await history(alice, conversationId, '?limit=40&after=80');
      expect(forward.messages.map((message) => message.seq)).toEqual(range(81, 120));
      expect(forward.hasMore).toBe(false);
      const empty = await history(alice, conversationId, '?after=120');
      expect(empty).toEqual({ messages: [], hasMore: false });
      const oneMore = await history(alice, conversationId, '?limit=40&before=42');
      expect(oneMore.messages.map((message) => message.seq)).toEqual(range(2, 41));
      expect(oneMore.hasMore).toBe(true);
    });

    test('a non-member cannot read the history', async () => {
      const [stranger] = await users(1);
      if (!stranger) throw new Error('users');
      const response = await call(h.app, stranger, 'GET', messagesUrl(conversationId));
      expect(response.statusCode).toBe(403);
      expect(errorCode(response)).toBe('NOT_A_MEMBER');
    });
  });

  // ---------------------------------------------------------------------------------------
  // Edit and delete

  describe('edit and delete', () => {
    test('only the author edits and deletes; tombstones keep their seq; errors are precise', async () => {
      const [alice, bob] = await users(2);
      if (!alice || !bob) throw new Error('users');
      const conversationId = await createGroup(alice, [bob], 'edits');
      const first = await send(alice, conversationId, 'e1', 'original');
      const second = await send(bob, conversationId, 'e2', 'bob says');
      expect(first).toMatchObject({ seq: 1, rev: 1, editedAt: null, deletedAt: null });

      // Someone else's message: 403, and nothing changes.
      const foreignEdit = await call(h.app, bob, 'PATCH', messageUrl(conversationId, 1), { body: 'hijacked' });
      expect(foreignEdit.statusCode).toBe(403);
      expect(errorCode(foreignEdit)).toBe('NOT_MESSAGE_AUTHOR');
      const foreignDelete = await call(h.app, bob, 'DELETE', messageUrl(conversationId, 1));
      expect(foreignDelete.statusCode).toBe(403);
      expect(errorCode(foreignDelete)).toBe('NOT_MESSAGE_AUTHOR');
      expect((await dbMessages(conversationId))[0]).toMatchObject({ body: 'original', rev: 1, deleted_at: null });

      // The author edits: rev goes up, editedAt is set, seq stays.
      const editResponse = await call(h.app, alice, 'PATCH', messageUrl(conversationId, 1), { body: 'edited' });
      expect(editResponse.statusCode).toBe(200);
      const edited = editResponse.json<Message>();
      expect(edited).toMatchObject({ seq: 1, body: 'edited', deletedAt: null, createdAt: first.createdAt });
      expect(edited.rev).toBeGreaterThan(second.rev);
      expect(edited.editedAt).not.toBeNull();
      const afterEdit = await conversation(bob, conversationId);
      expect(afterEdit.lastSeq).toBe(2); // an edit takes no seq
      expect(afterEdit.lastRev).toBe(edited.rev);

      // The author deletes: a tombstone with the same seq and a higher rev.
      const deleteResponse = await call(h.app, alice, 'DELETE', messageUrl(conversationId, 1));
      expect(deleteResponse.statusCode).toBe(200);
      const tombstone = deleteResponse.json<Message>();
      expect(tombstone).toMatchObject({ seq: 1, body: null, senderId: alice.id, clientMessageId: 'e1' });
      expect(tombstone.deletedAt).not.toBeNull();
      expect(tombstone.rev).toBeGreaterThan(edited.rev);

      // History shows the tombstone in place.
      const page = await history(bob, conversationId);
      expect(page.messages).toEqual([tombstone, second]);
      const rows = await dbMessages(conversationId);
      expect(rows.map((row) => [row.seq, row.body, row.deleted_at !== null])).toEqual([
        [1, null, true],
        [2, 'bob says', false],
      ]);

      // Editing a deleted message is refused.
      const editDeleted = await call(h.app, alice, 'PATCH', messageUrl(conversationId, 1), { body: 'resurrect' });
      expect(editDeleted.statusCode).toBe(409);
      expect(errorCode(editDeleted)).toBe('MESSAGE_DELETED');

      // Deleting twice is a no-op that returns the same tombstone (no new rev).
      const again = await call(h.app, alice, 'DELETE', messageUrl(conversationId, 1));
      expect(again.statusCode).toBe(200);
      expect(again.json<Message>()).toEqual(tombstone);
      expect((await conversation(alice, conversationId)).lastRev).toBe(tombstone.rev);

      // Unknown seq: 404 for both.
      const missingEdit = await call(h.app, alice, 'PATCH', messageUrl(conversationId, 99), { body: 'x' });
      expect(missingEdit.statusCode).toBe(404);
      expect(errorCode(missingEdit)).toBe('MESSAGE_NOT_FOUND');
      const missingDelete = await call(h.app, alice, 'DELETE', messageUrl(conversationId, 99));
      expect(missingDelete.statusCode).toBe(404);
      expect(errorCode(missingDelete)).toBe('MESSAGE_NOT_FOUND');

      // A non-member cannot touch messages at all.
      const [stranger] = await users(1);
      if (!stranger) throw new Error('users');
      const strangerEdit = await call(h.app, stranger, 'PATCH', messageUrl(conversationId, 2), { body: 'x' });
      expect(strangerEdit.statusCode).toBe(403);
      expect(errorCode(strangerEdit)).toBe('NOT_A_MEMBER');
      expect((await dbMessages(conversationId))[1]?.body).toBe('bob says');
    });
  });

  // ---------------------------------------------------------------------------------------
  // Read state

  describe('read state and unread counts', () => {
    test('read markers move forward only, clamp at lastSeq, and unread = lastSeq - lastReadSeq', async () => {
      const [alice, bob, carol, dave] = await users(4);
      if (!alice || !bob || !carol || !dave) throw new Error('users');
      const conversationId = await createGroup(alice, [bob, carol], 'reads');
      expect(await unread(bob, conversationId)).toBe(0);

      for (let index = 1; index <= 5; index += 1) await send(alice, conversationId, `a${index}`);
      expect(await unread(alice, conversationId)).toBe(0); // own messages are read
      expect(await unread(bob, conversationId)).toBe(5);
      expect(await unread(carol, conversationId)).toBe(5);

      // Forward.
      expect(await markRead(bob, conversationId, 3)).toEqual({ conversationId, lastReadSeq: 3, lastSeq: 5, unreadCount: 2 });
      expect(await unread(bob, conversationId)).toBe(2);
      // Never back.
      expect(await markRead(bob, conversationId, 2)).toEqual({ conversationId, lastReadSeq: 3, lastSeq: 5, unreadCount: 2 });
      expect(await markRead(bob, conversationId, 0)).toEqual({ conversationId, lastReadSeq: 3, lastSeq: 5, unreadCount: 2 });
      expect((await conversation(bob, conversationId)).lastReadSeq).toBe(3);
      // Clamped at lastSeq.
      expect(await markRead(bob, conversationId, 1000)).toEqual({ conversationId, lastReadSeq: 5, lastSeq: 5, unreadCount: 0 });
      const bobRow = await h.db.kysely
        .selectFrom('conversation_members')
        .select('last_read_seq')
        .where('conversation_id', '=', conversationId)
        .where('user_id', '=', bob.id)
        .executeTakeFirstOrThrow();
      expect(bobRow.last_read_seq).toBe(5);
      expect(await unread(bob, conversationId)).toBe(0);
      expect(await unread(carol, conversationId)).toBe(5); // one member's read is not another's

      // New messages count; edits and deletes do not change the count.
      await send(alice, conversationId, 'a6');
      await send(alice, conversationId, 'a7');
      expect(await unread(bob, conversationId)).toBe(2);
      expect(await unread(carol, conversationId)).toBe(7);
      expect((await call(h.app, alice, 'PATCH', messageUrl(conversationId, 6), { body: 'changed' })).statusCode).toBe(200);
      expect((await call(h.app, alice, 'DELETE', messageUrl(conversationId, 7))).statusCode).toBe(200);
      expect(await unread(bob, conversationId)).toBe(2); // the deleted message still counts
      expect(await unread(carol, conversationId)).toBe(7);
      expect(await unread(alice, conversationId)).toBe(0);

      // Sending marks everything up to one's own message read, for the sender only.
      await send(bob, conversationId, 'b8');
      expect(await unread(bob, conversationId)).toBe(0);
      expect((await conversation(bob, conversationId)).lastReadSeq).toBe(8);
      expect(await unread(alice, conversationId)).toBe(1);
      expect(await unread(carol, conversationId)).toBe(8);

      // A member added late starts with nothing unread and counts only what follows.
      const added = await call(h.app, alice, 'POST', `/v1/conversations/${conversationId}/members`, { userIds: [dave.id] });
      expect(added.statusCode).toBe(200);
      const daveStart = await conversation(dave, conversationId);
      expect(daveStart).toMatchObject({ lastSeq: 8, lastReadSeq: 8, unreadCount: 0 });
      expect(await unread(dave, conversationId)).toBe(0);
      // A late member cannot move the marker before the join either.
      expect(await markRead(dave, conversationId, 2)).toMatchObject({ lastReadSeq: 8, unreadCount: 0 });
      await send(carol, conversationId, 'c9');
      await send(alice, conversationId, 'a10');
      expect(await unread(dave, conversationId)).toBe(2);
      expect(await unread(carol, conversationId)).toBe(1);
      expect(await markRead(dave, conversationId, 9)).toEqual({ conversationId, lastReadSeq: 9, lastSeq: 10, unreadCount: 1 });
      expect(await unread(dave, conversationId)).toBe(1);
      // The late member's history starts after the join.
      expect((await history(dave, conversationId)).messages.map((message) => message.seq)).toEqual([9, 10]);

      // A non-member cannot mark read.
      const [stranger] = await users(1);
      if (!stranger) throw new Error('users');
      const denied = await call(h.app, stranger, 'POST', `/v1/conversations/${conversationId}/read`, { seq: 1 });
      expect(denied.statusCode).toBe(403);
      expect(errorCode(denied)).toBe('NOT_A_MEMBER');
    });

    test('concurrent reads never move the marker back', async () => {
      const [alice, bob] = await users(2);
      if (!alice || !bob) throw new Error('users');
      const conversationId = await createGroup(alice, [bob], 'racing reads');
      for (let index = 1; index <= 20; index += 1) await send(alice, conversationId, `r${index}`);
      // A fixed interleaving of high and low marks, all in flight at once.
      const seqs = range(1, 10).flatMap((n) => [21 - n, n]);
      await Promise.all(seqs.map((seq) => markRead(bob, conversationId, seq)));
      expect((await conversation(bob, conversationId)).lastReadSeq).toBe(20);
    });
  });

  // ---------------------------------------------------------------------------------------
  // Events

  describe('events after commit', () => {
    test('created, updated (edit and delete) and read reach a subscriber, each readable on arrival', async () => {
      const [alice, bob] = await users(2);
      if (!alice || !bob) throw new Error('users');
      const conversationId = await createGroup(alice, [bob], 'events');
      const channel = `conv:{${conversationId}}`;

      // message.created: when it arrives, the message is already in the history.
      const sending = sendRaw(alice, conversationId, 'ev1', 'ring ring');
      const created = await h.events.waitFor(
        ({ event }) => event.type === 'message.created' && event.conversationId === conversationId,
      );
      const visible = await history(bob, conversationId);
      expect(created.channel).toBe(channel);
      if (created.event.type !== 'message.created') throw new Error('unexpected event');
      expect(visible.messages).toContainEqual(created.event.message);
      const sent = (await sending).json<SendMessageResponse>().message;
      expect(created.event.message).toEqual(sent);

      // message.updated for an edit.
      const editing = call(h.app, alice, 'PATCH', messageUrl(conversationId, sent.seq), { body: 'ring ring, edited' });
      const editEvent = await h.events.waitFor(
        ({ event }) =>
          event.type === 'message.updated' && event.conversationId === conversationId && event.message.editedAt !== null,
      );
      const afterEdit = await history(bob, conversationId);
      expect(editEvent.channel).toBe(channel);
      if (editEvent.event.type !== 'message.updated') throw new Error('unexpected event');
      expect(afterEdit.messages).toContainEqual(editEvent.event.message);
      expect(editEvent.event.message.body).toBe('ring ring, edited');
      expect(editEvent.event.message).toEqual((await editing).json<Message>());

      // message.updated for a delete (a tombstone).
      const deleting = call(h.app, alice, 'DELETE', messageUrl(conversationId, sent.seq));
      const deleteEvent = await h.events.waitFor(
        ({ event }) =>
          event.type === 'message.updated' && event.conversationId === conversationId && event.message.deletedAt !== null,
      );
      const afterDelete = await history(bob, conversationId);
      expect(deleteEvent.channel).toBe(channel);
      if (deleteEvent.event.type !== 'message.updated') throw new Error('unexpected event');
      expect(deleteEvent.event.message.body).toBeNull();
      expect(afterDelete.messages).toContainEqual(deleteEvent.event.message);
      expect(deleteEvent.event.message).toEqual((await deleting).json<Message>());

      // read, with the new marker, readable on arrival.
      const reading = markRead(bob, conversationId, sent.seq);
      const readEvent = await h.events.waitFor(
        ({ event }) => event.type === 'read' && event.conversationId === conversationId && event.userId === bob.id,
      );
      const bobNow = await call(h.app, alice, 'GET', `/v1/conversations/${conversationId}/members`);
      expect(readEvent.channel).toBe(channel);
      expect(readEvent.event).toEqual({ v: 1, type: 'read', conversationId, userId: bob.id, lastReadSeq: sent.seq });
      const members = bobNow.json<{ members: Array<{ user: { id: string }; lastReadSeq: number }> }>().members;
      expect(members.find((member) => member.user.id === bob.id)?.lastReadSeq).toBe(sent.seq);
      expect((await reading).lastReadSeq).toBe(sent.seq);
    });

    // Needs a second connection holding a lock while the write waits on it; the embedded
    // database has one connection, on which transactions run one after another.
    (backend === 'postgres' ? test : test.skip)('nothing is published while the storing transaction is still open', async () => {
      const [alice, bob] = await users(2);
      if (!alice || !bob) throw new Error('users');
      const conversationId = await createGroup(alice, [bob], 'held open');
      const elsewhere = await createGroup(alice, [bob], 'barrier');
      const original = await send(alice, conversationId, 'held-0', 'before');
      let barriers = 0;

      /**
       * Holds a row lock that the write needs for its last statement, starts the write,
       * waits until PostgreSQL shows it blocked on us (its transaction is open, not yet
       * committed), and checks that no event for the conversation went out meanwhile.
       */
      async function whileHeld<T>(lockRow: (trx: typeof h.db.kysely) => Promise<unknown>, write: () => Promise<T>): Promise<T> {
        let release: () => void = () => {};
        const released = new Promise<void>((resolve) => (release = resolve));
        let holding: (pid: number) => void = () => {};
        const held = new Promise<number>((resolve) => (holding = resolve));
        const holder = h.db.kysely.transaction().execute(async (trx) => {
          await lockRow(trx);
          const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
          holding(rows[0]?.pid ?? -1);
          await released;
        });
        const holderPid = await held;
        const before = h.events.received.length;
        const writing = write();
        try {
          const deadline = Date.now() + 5000;
          for (;;) {
            const { rows } = await sql<{ n: number }>`
            select count(*)::int as n from pg_stat_activity where ${holderPid}::int = any(pg_blocking_pids(pid))
          `.execute(h.db.kysely);
            if ((rows[0]?.n ?? 0) > 0) break;
            if (Date.now() > deadline) throw new Error('the write never blocked on the held lock');
            await new Promise((resolve) => setImmediate(resolve));
          }
          // Barrier: anything the blocked write published earlier, on the same publisher, is here by now.
          barriers += 1;
          const barrierId = `barrier-${barriers}`;
          await send(alice, elsewhere, barrierId);
          await h.events.waitFor(
            ({ event }) => event.type === 'message.created' && event.message.clientMessageId === barrierId,
          );
          const early = h.events.received
            .slice(before)
            .filter(({ event }) => 'conversationId' in event && event.conversationId === conversationId);
          expect(early).toEqual([]);
        } finally {
          // Always let go, so a failure here cannot leave the write (and the pool) stuck.
          release();
          await holder;
        }
        return writing;
      }

      // A send blocks on the sender's read-marker update, its last statement.
      const sending = await whileHeld(
        (trx) =>
          trx
            .selectFrom('conversation_members')
            .select('user_id')
            .where('conversation_id', '=', conversationId)
            .where('user_id', '=', alice.id)
            .forUpdate()
            .execute(),
        () => sendRaw(alice, conversationId, 'held-1', 'after'),
      );
      expect(sending.statusCode).toBe(201);
      const created = await h.events.waitFor(
        ({ event }) =>
          event.type === 'message.created' &&
          event.conversationId === conversationId &&
          event.message.clientMessageId === 'held-1',
      );
      if (created.event.type !== 'message.created') throw new Error('unexpected event');
      expect((await history(bob, conversationId)).messages).toContainEqual(created.event.message);

      // An edit blocks on the message row update.
      const editing = await whileHeld(
        (trx) =>
          trx
            .selectFrom('messages')
            .select('seq')
            .where('conversation_id', '=', conversationId)
            .where('seq', '=', original.seq)
            .forUpdate()
            .execute(),
        () => call(h.app, alice, 'PATCH', messageUrl(conversationId, original.seq), { body: 'edited while held' }),
      );
      expect(editing.statusCode).toBe(200);
      const updated = await h.events.waitFor(
        ({ event }) => event.type === 'message.updated' && event.conversationId === conversationId,
      );
      if (updated.event.type !== 'message.updated') throw new Error('unexpected event');
      expect(updated.event.message.body).toBe('edited while held');
      expect((await history(bob, conversationId)).messages).toContainEqual(updated.event.message);
    });

    test('a duplicate send, a repeated delete and a backward read publish nothing', async () => {
      const [alice, bob] = await users(2);
      if (!alice || !bob) throw new Error('users');
      const conversationId = await createGroup(alice, [bob], 'quiet retries');

      const responses = await Promise.all(Array.from({ length: 5 }, () => sendRaw(alice, conversationId, 'dup')));
      expect(responses.filter((response) => response.statusCode === 201)).toHaveLength(1);
      const retry = await sendRaw(alice, conversationId, 'dup');
      expect(retry.statusCode).toBe(200);
      const second = await send(alice, conversationId, 'dup-2');
      await call(h.app, alice, 'DELETE', messageUrl(conversationId, second.seq));
      await call(h.app, alice, 'DELETE', messageUrl(conversationId, second.seq)); // no-op
      await markRead(bob, conversationId, 2);
      await markRead(bob, conversationId, 1); // does not move: no event

      // A barrier: events from one publisher arrive in publish order, so once this one is
      // here, anything the calls above published has arrived too.
      await send(alice, conversationId, 'barrier');
      await h.events.waitFor(
        ({ event }) =>
          event.type === 'message.created' &&
          event.conversationId === conversationId &&
          event.message.clientMessageId === 'barrier',
      );

      const created = eventsOf(conversationId, 'message.created').map((entry) =>
        entry.event.type === 'message.created' ? entry.event.message.clientMessageId : '',
      );
      expect(created).toEqual(['dup', 'dup-2', 'barrier']);
      expect(eventsOf(conversationId, 'message.updated')).toHaveLength(1);
      const reads = eventsOf(conversationId, 'read').map((entry) => (entry.event.type === 'read' ? entry.event.lastReadSeq : -1));
      expect(reads).toEqual([2]);
    });

    test('every one of 30 concurrent sends is announced exactly once, matching the stored message', async () => {
      const members = await users(6);
      const [owner] = members;
      if (!owner) throw new Error('users');
      const conversationId = await createGroup(owner, members.slice(1), 'burst');
      const responses = await Promise.all(
        members.flatMap((member, index) =>
          range(1, 5).map((n) => sendRaw(member, conversationId, `burst-${index}-${n}`)),
        ),
      );
      for (const response of responses) expect(response.statusCode).toBe(201);
      await h.events.waitFor(() => eventsOf(conversationId, 'message.created').length >= 30);
      // Barrier, so that a 31st (duplicate) event would be here too.
      await send(owner, conversationId, 'burst-barrier');
      await h.events.waitFor(() => eventsOf(conversationId, 'message.created').length >= 31);
      const announced = eventsOf(conversationId, 'message.created').map((entry) =>
        entry.event.type === 'message.created' ? entry.event.message.seq : -1,
      );
      expect([...announced].sort((a, b) => a - b)).toEqual(range(1, 31));
      const stored = await history(owner, conversationId, '?limit=200');
      for (const entry of eventsOf(conversationId, 'message.created')) {
        if (entry.event.type !== 'message.created') continue;
        expect(stored.messages[entry.event.message.seq - 1]).toEqual(entry.event.message);
      }
    });
  });
});
