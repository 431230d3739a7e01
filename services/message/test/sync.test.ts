import type {
  ConversationSummary,
  Message,
  SendMessageResponse,
  SyncBody,
  SyncCursor,
  SyncResponse,
} from '@parley/protocol';
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
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

async function users(count: number): Promise<TestUser[]> {
  return registerUsers(h.app, count);
}

async function createGroup(owner: TestUser, members: readonly TestUser[], title = 'group'): Promise<string> {
  return (await createGroupAs(h.app, owner, members, title)).id;
}

async function openDirect(user: TestUser, peer: TestUser): Promise<string> {
  const response = await call(h.app, user, 'POST', '/v1/conversations/direct', { userId: peer.id });
  expect(response.statusCode).toBe(201);
  return response.json<ConversationSummary>().id;
}

async function send(user: TestUser, conversationId: string, clientMessageId: string, body?: string): Promise<Message> {
  const response = await call(h.app, user, 'POST', messagesUrl(conversationId), {
    clientMessageId,
    body: body ?? `${clientMessageId} from ${user.username}`,
  });
  expect(response.statusCode).toBe(201);
  return response.json<SendMessageResponse>().message;
}

async function edit(user: TestUser, conversationId: string, seq: number, body: string): Promise<Message> {
  const response = await call(h.app, user, 'PATCH', messageUrl(conversationId, seq), { body });
  expect(response.statusCode).toBe(200);
  return response.json<Message>();
}

async function remove(user: TestUser, conversationId: string, seq: number): Promise<Message> {
  const response = await call(h.app, user, 'DELETE', messageUrl(conversationId, seq));
  expect(response.statusCode).toBe(200);
  return response.json<Message>();
}

async function syncOnce(user: TestUser, body: SyncBody): Promise<SyncResponse> {
  const response = await call(h.app, user, 'POST', '/v1/sync', body);
  expect(response.statusCode).toBe(200);
  return response.json<SyncResponse>();
}

/** What a well-behaved client keeps: cursors, its copy of each conversation, summaries. */
class Client {
  readonly cursors = new Map<string, { rev: number; lastReadSeq?: number }>();
  readonly messages = new Map<string, Map<number, Message>>();
  readonly summaries = new Map<string, ConversationSummary>();

  constructor(readonly user: TestUser) {}

  body(limit: number): SyncBody {
    const cursors: SyncCursor[] = [...this.cursors].map(([conversationId, cursor]) => ({ conversationId, ...cursor }));
    return { cursors, limit };
  }

  apply(page: SyncResponse): void {
    for (const message of page.messages) {
      const copy = this.messages.get(message.conversationId) ?? new Map<number, Message>();
      const held = copy.get(message.seq);
      if (held) expect(message.rev).toBeGreaterThan(held.rev); // never the same version twice
      copy.set(message.seq, message);
      this.messages.set(message.conversationId, copy);
    }
    for (const cursor of page.cursors) {
      const previous = this.cursors.get(cursor.conversationId);
      if (previous) expect(cursor.rev).toBeGreaterThanOrEqual(previous.rev); // cursors never go back
      this.cursors.set(cursor.conversationId, { ...previous, rev: cursor.rev });
    }
    for (const summary of page.conversations) {
      this.summaries.set(summary.id, summary);
      const cursor = this.cursors.get(summary.id) ?? { rev: 0 };
      this.cursors.set(summary.id, { ...cursor, lastReadSeq: summary.lastReadSeq });
    }
    for (const conversationId of page.removed) {
      this.cursors.delete(conversationId);
      this.messages.delete(conversationId);
      this.summaries.delete(conversationId);
    }
  }

  seqs(conversationId: string): number[] {
    return [...(this.messages.get(conversationId)?.keys() ?? [])].sort((a, b) => a - b);
  }
}

/** Checks what every sync page must satisfy, whatever the data. */
function checkPage(page: SyncResponse, limit: number): void {
  expect(page.messages.length).toBeLessThanOrEqual(limit);
  expect(page.conversations.length).toBeLessThanOrEqual(100);
  const inPage = new Set(page.conversations.map((summary) => summary.id));
  expect(inPage.size).toBe(page.conversations.length);
  // Messages come only for conversations in the page, grouped per conversation, in rev order.
  const finished = new Set<string>();
  let current: string | undefined;
  let lastRev = 0;
  const seen = new Set<string>();
  for (const message of page.messages) {
    expect(inPage.has(message.conversationId)).toBe(true);
    if (message.conversationId !== current) {
      expect(finished.has(message.conversationId)).toBe(false);
      if (current) finished.add(current);
      current = message.conversationId;
      lastRev = 0;
    }
    expect(message.rev).toBeGreaterThan(lastRev);
    lastRev = message.rev;
    const key = `${message.conversationId}/${message.seq}`;
    expect(seen.has(key)).toBe(false);
    seen.add(key);
  }
  for (const cursor of page.cursors) expect(inPage.has(cursor.conversationId)).toBe(true);
  for (const conversationId of page.removed) expect(inPage.has(conversationId)).toBe(false);
}

interface SyncRun {
  pages: SyncResponse[];
  messages: Message[];
  conversationIds: Set<string>;
}

/** Syncs until hasMore is false, applying every page; `between` runs after each page. */
async function syncUntilDone(
  client: Client,
  limit: number,
  between?: (pageIndex: number) => Promise<void>,
): Promise<SyncRun> {
  const run: SyncRun = { pages: [], messages: [], conversationIds: new Set() };
  for (;;) {
    const page = await syncOnce(client.user, client.body(limit));
    checkPage(page, limit);
    client.apply(page);
    run.pages.push(page);
    run.messages.push(...page.messages);
    for (const summary of page.conversations) run.conversationIds.add(summary.id);
    if (!page.hasMore) return run;
    if (run.pages.length > 300) throw new Error('sync never reports hasMore: false');
    await between?.(run.pages.length - 1);
  }
}

/** The messages the user may see in a conversation, straight from the table. */
async function visibleRows(conversationId: string, userId: string) {
  const member = await h.db.kysely
    .selectFrom('conversation_members')
    .select('joined_seq')
    .where('conversation_id', '=', conversationId)
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow();
  return h.db.kysely
    .selectFrom('messages')
    .selectAll()
    .where('conversation_id', '=', conversationId)
    .where('seq', '>', member.joined_seq)
    .orderBy('seq', 'asc')
    .execute();
}

/** The client's copy of a conversation equals what the server stores, message for message. */
async function expectMirrors(client: Client, conversationId: string): Promise<void> {
  const rows = await visibleRows(conversationId, client.user.id);
  const copy = client.messages.get(conversationId) ?? new Map<number, Message>();
  expect(client.seqs(conversationId)).toEqual(rows.map((row) => row.seq));
  for (const row of rows) {
    const held = copy.get(row.seq);
    expect(held).toMatchObject({ rev: row.rev, body: row.body, senderId: row.sender_id });
    expect(held?.deletedAt === null).toBe(row.deleted_at === null);
  }
  const lastRev = await h.db.kysely
    .selectFrom('conversations')
    .select('last_rev')
    .where('id', '=', conversationId)
    .executeTakeFirstOrThrow();
  expect(client.cursors.get(conversationId)?.rev).toBe(lastRev.last_rev);
}

async function expectUpToDate(client: Client): Promise<void> {
  const page = await syncOnce(client.user, client.body(7));
  expect(page.conversations).toEqual([]);
  expect(page.messages).toEqual([]);
  expect(page.removed).toEqual([]);
  expect(page.hasMore).toBe(false);
}

describe.each(MESSAGE_BACKENDS)('on %s', (backend) => {
  beforeAll(async () => {
    h = await startMessageHarness({}, { backend });
  }, HARNESS_START_TIMEOUT_MS);
  afterAll(async () => h.close());

  // ---------------------------------------------------------------------------------------
  // Catching up after being offline

  describe('catching up', () => {
    test('an offline client gets exactly the missed messages, per conversation in order, over several pages', async () => {
      const [me, p1, p2, p3] = await users(4);
      if (!me || !p1 || !p2 || !p3) throw new Error('users');
      const a = await createGroup(p1, [me], 'A');
      const b = await openDirect(p2, me);
      const c = await createGroup(p2, [me, p1], 'C');
      const d = await createGroup(p3, [me], 'D (quiet)');
      const e = await openDirect(me, p3);
      await send(p1, a, 'a-pre-1');
      await send(me, a, 'a-pre-2');
      await send(p2, b, 'b-pre-1');
      await send(p1, c, 'c-pre-1');
      await send(p3, d, 'd-pre-1');
      await send(p3, e, 'e-pre-1');

      // First sync from nothing: every conversation from its beginning.
      const client = new Client(me);
      const first = await syncUntilDone(client, 7);
      expect(first.conversationIds).toEqual(new Set([a, b, c, d, e]));
      for (const id of [a, b, c, d, e]) await expectMirrors(client, id);
      await expectUpToDate(client);
      const before = new Map([a, b, c].map((id) => [id, client.cursors.get(id)?.rev ?? -1]));

      // Offline: three conversations get 33 messages, concurrently and interleaved.
      const sends: Array<Promise<Message>> = [];
      for (let index = 1; index <= 12; index += 1) {
        sends.push(send(p1, a, `a-${index}`));
        sends.push(send(p2, b, `b-${index}`));
        if (index <= 9) sends.push(send(index % 2 === 0 ? p1 : p2, c, `c-${index}`));
      }
      const sent = await Promise.all(sends);
      expect(sent).toHaveLength(33);

      const run = await syncUntilDone(client, 7);
      expect(run.pages.length).toBeGreaterThanOrEqual(Math.ceil(33 / 7));
      for (const page of run.pages.slice(0, -1)) expect(page.hasMore).toBe(true);
      expect(run.conversationIds).toEqual(new Set([a, b, c])); // quiet ones never show up
      expect(run.messages).toHaveLength(33); // nothing twice, nothing already held
      for (const id of [a, b, c]) {
        const missed = (await visibleRows(id, me.id)).filter((row) => row.rev > (before.get(id) ?? 0));
        const received = run.messages.filter((message) => message.conversationId === id);
        // Exactly the missed ones, in order (sends only, so rev order is seq order).
        expect(received.map((message) => message.seq)).toEqual(missed.map((row) => row.seq));
        expect(received.map((message) => message.body)).toEqual(missed.map((row) => row.body));
        await expectMirrors(client, id);
      }
      for (const id of [d, e]) await expectMirrors(client, id);
      const summaryA = client.summaries.get(a);
      expect(summaryA).toMatchObject({ lastSeq: 14, unreadCount: 12 });
      expect(summaryA?.lastMessage?.seq).toBe(14);
      await expectUpToDate(client);
    });

    test('more than 100 changed conversations are paged by conversations too', async () => {
      const [busy] = await users(1);
      if (!busy) throw new Error('users');
      const ids: string[] = [];
      for (let batch = 0; batch < 7; batch += 1) {
        ids.push(...(await Promise.all(range(1, 15).map((n) => createGroup(busy, [], `g${batch}-${n}`)))));
      }
      expect(ids).toHaveLength(105);
      await Promise.all(ids.map((id) => send(busy, id, 'first')));

      // From nothing, with room for every message: the conversation bound splits it.
      const client = new Client(busy);
      const run = await syncUntilDone(client, 1000);
      expect(run.pages.map((page) => page.conversations.length)).toEqual([100, 5]);
      expect(run.pages.map((page) => page.messages.length)).toEqual([100, 5]);
      expect(run.pages.map((page) => page.hasMore)).toEqual([true, false]);
      expect(run.conversationIds).toEqual(new Set(ids));
      // Most recently active first: the first page holds the 100 most recent.
      const byActivity = await h.db.kysely
        .selectFrom('conversations')
        .select('id')
        .where('id', 'in', ids)
        .orderBy('last_activity_at', 'desc')
        .orderBy('id', 'desc')
        .execute();
      expect(new Set(run.pages[0]?.conversations.map((summary) => summary.id))).toEqual(
        new Set(byActivity.slice(0, 100).map((row) => row.id)),
      );
      await expectUpToDate(client);

      // Another device sends a second message everywhere; both bounds bite now.
      await Promise.all(ids.map((id) => send(busy, id, 'second')));
      const again = await syncUntilDone(client, 40);
      expect(again.messages).toHaveLength(105);
      expect(again.conversationIds).toEqual(new Set(ids));
      for (const message of again.messages) expect(message.seq).toBe(2);
      for (const id of ids) expect(client.seqs(id)).toEqual([1, 2]);
      for (const id of ids.slice(0, 5)) await expectMirrors(client, id);
      await expectUpToDate(client);
    });
  });

  // ---------------------------------------------------------------------------------------
  // Edits and deletes

  describe('changes to messages the client already has', () => {
    test('edits and deletes come back with a higher rev on the next sync', async () => {
      const [me, peer] = await users(2);
      if (!me || !peer) throw new Error('users');
      const conversationId = await createGroup(peer, [me], 'edits');
      for (let index = 1; index <= 5; index += 1) await send(peer, conversationId, `p${index}`);
      const mine = await send(me, conversationId, 'mine');
      const client = new Client(me);
      await syncUntilDone(client, 7);
      await expectMirrors(client, conversationId);
      const held = new Map(client.messages.get(conversationId));

      const edited = await edit(peer, conversationId, 2, 'second, edited');
      const deleted = await remove(peer, conversationId, 4);
      const myEdit = await edit(me, conversationId, mine.seq, 'mine, edited on my phone');

      const run = await syncUntilDone(client, 7);
      expect(run.messages).toEqual([edited, deleted, myEdit]); // in rev order, nothing else
      for (const message of run.messages) expect(message.rev).toBeGreaterThan(held.get(message.seq)?.rev ?? Infinity);
      expect(client.messages.get(conversationId)?.get(4)).toMatchObject({ body: null, seq: 4 });
      expect(client.messages.get(conversationId)?.get(4)?.deletedAt).not.toBeNull();
      expect(client.messages.get(conversationId)?.get(2)?.body).toBe('second, edited');
      expect(run.conversationIds).toEqual(new Set([conversationId]));
      await expectMirrors(client, conversationId);
      await expectUpToDate(client);
    });

    test('a change made while the client is paging is not lost', async () => {
      const [me, peer] = await users(2);
      if (!me || !peer) throw new Error('users');
      const conversationId = await createGroup(peer, [me], 'moving target');
      for (let index = 1; index <= 10; index += 1) await send(peer, conversationId, `m${index}`);

      const client = new Client(me);
      const run = await syncUntilDone(client, 3, async (pageIndex) => {
        if (pageIndex === 0) {
          // The client already holds seq 1; change it, and one it has not reached yet.
          await edit(peer, conversationId, 1, 'first, edited mid-sync');
          await remove(peer, conversationId, 8);
          await send(peer, conversationId, 'm11');
        }
      });
      expect(run.pages.length).toBeGreaterThan(2);
      await expectMirrors(client, conversationId);
      expect(client.messages.get(conversationId)?.get(1)?.body).toBe('first, edited mid-sync');
      expect(client.messages.get(conversationId)?.get(8)?.body).toBeNull();
      expect(client.seqs(conversationId)).toEqual(range(1, 11));
      await expectUpToDate(client);
    });
  });

  // ---------------------------------------------------------------------------------------
  // Conversations: new, removed, read elsewhere, up to date

  describe('conversation-level changes', () => {
    test('new conversations, removals, reads on another device and an up-to-date client', async () => {
      const [me, owner1, owner2, peer] = await users(4);
      if (!me || !owner1 || !owner2 || !peer) throw new Error('users');
      const known = await createGroup(peer, [me], 'known');
      await send(peer, known, 'k1');
      const kicked = await createGroup(owner2, [me], 'kicked from');
      await send(owner2, kicked, 'r1');
      const left = await createGroup(owner1, [me], 'left');
      await send(owner1, left, 'l1');

      const client = new Client(me);
      await syncUntilDone(client, 7);
      expect(client.summaries.get(known)).toMatchObject({ lastSeq: 1, lastReadSeq: 0, unreadCount: 1 });

      // A fully up-to-date client gets nothing, with or without read markers in its cursors.
      await expectUpToDate(client);
      const bare = await syncOnce(me, {
        cursors: [...client.cursors].map(([conversationId, cursor]) => ({ conversationId, rev: cursor.rev })),
        limit: 7,
      });
      expect(bare).toMatchObject({ conversations: [], messages: [], removed: [], hasMore: false });

      // A conversation the client has never heard of comes with its summary and history.
      const fresh = await createGroup(owner1, [me, peer], 'new to me');
      await send(owner1, fresh, 'n1', 'hello newcomer');
      await send(peer, fresh, 'n2');
      const discovered = await syncUntilDone(client, 7);
      expect(discovered.conversationIds).toEqual(new Set([fresh]));
      const summary = discovered.pages[0]?.conversations.find((item) => item.id === fresh);
      expect(summary).toMatchObject({
        id: fresh,
        kind: 'group',
        title: 'new to me',
        role: 'member',
        memberCount: 3,
        lastSeq: 2,
        lastReadSeq: 0,
        unreadCount: 2,
      });
      expect(summary?.lastMessage?.seq).toBe(2);
      expect(discovered.messages.map((message) => [message.conversationId, message.seq])).toEqual([
        [fresh, 1],
        [fresh, 2],
      ]);
      expect(discovered.messages[0]?.body).toBe('hello newcomer');
      await expectMirrors(client, fresh);

      // Removed by the owner, and left by choice: both come back in `removed`.
      const kick = await call(h.app, owner2, 'DELETE', `/v1/conversations/${kicked}/members/${me.id}`);
      expect(kick.statusCode).toBe(204);
      const leave = await call(h.app, me, 'POST', `/v1/conversations/${left}/leave`);
      expect(leave.statusCode).toBe(204);
      await send(owner2, kicked, 'r2', 'said after you were removed');
      await send(owner1, left, 'l2', 'said after you left');
      const staleCursors = client.body(7);
      const gone = await syncOnce(me, staleCursors);
      checkPage(gone, 7);
      expect([...gone.removed].sort()).toEqual([kicked, left].sort());
      expect(gone.conversations.map((item) => item.id)).not.toContain(kicked);
      expect(gone.conversations.map((item) => item.id)).not.toContain(left);
      expect(gone.messages.filter((message) => [kicked, left].includes(message.conversationId))).toEqual([]);
      expect(gone.cursors.map((cursor) => cursor.conversationId)).not.toContain(kicked);
      expect(gone.hasMore).toBe(false);
      client.apply(gone);
      // Sending the stale cursors again keeps answering `removed`.
      expect([...(await syncOnce(me, staleCursors)).removed].sort()).toEqual([kicked, left].sort());
      await expectUpToDate(client);

      // Read on another device: the summary comes back with the new marker, no messages.
      const revBefore = client.cursors.get(known)?.rev;
      expect(client.cursors.get(known)?.lastReadSeq).toBe(0);
      const read = await call(h.app, me, 'POST', `/v1/conversations/${known}/read`, { seq: 1 });
      expect(read.statusCode).toBe(200);
      const readElsewhere = await syncOnce(me, client.body(7));
      expect(readElsewhere.conversations.map((item) => item.id)).toEqual([known]);
      expect(readElsewhere.conversations[0]).toMatchObject({ lastReadSeq: 1, unreadCount: 0, lastSeq: 1 });
      expect(readElsewhere.messages).toEqual([]);
      expect(readElsewhere.cursors).toEqual([{ conversationId: known, rev: revBefore }]);
      expect(readElsewhere.hasMore).toBe(false);
      client.apply(readElsewhere);
      await expectUpToDate(client);
    });

    test('sync is per user: a cursor for someone else’s conversation reveals nothing', async () => {
      const [me, a, b] = await users(3);
      if (!me || !a || !b) throw new Error('users');
      const theirs = await createGroup(a, [b], 'private');
      await send(a, theirs, 'secret', 'not for me');
      const page = await syncOnce(me, { cursors: [{ conversationId: theirs, rev: 0 }], limit: 7 });
      expect(page.removed).toEqual([theirs]);
      expect(page.messages).toEqual([]);
      expect(page.conversations).toEqual([]);
    });
  });

  // ---------------------------------------------------------------------------------------
  // Late joiners

  describe('a member who joined late', () => {
    test('never receives pre-join messages or their later edits through sync', async () => {
      const [owner, peer, late] = await users(3);
      if (!owner || !peer || !late) throw new Error('users');
      const conversationId = await createGroup(owner, [peer], 'late');
      for (let index = 1; index <= 5; index += 1) await send(owner, conversationId, `pre-${index}`, `before you came ${index}`);
      await send(peer, conversationId, 'pre-6');
      await edit(owner, conversationId, 2, 'edited before the join');

      const added = await call(h.app, owner, 'POST', `/v1/conversations/${conversationId}/members`, {
        userIds: [late.id],
      });
      expect(added.statusCode).toBe(200);

      // Right after joining: the conversation, but no message and no preview of one.
      const client = new Client(late);
      const joined = await syncUntilDone(client, 2);
      expect(joined.conversationIds).toEqual(new Set([conversationId]));
      expect(joined.messages).toEqual([]);
      expect(client.summaries.get(conversationId)).toMatchObject({
        lastSeq: 6,
        lastReadSeq: 6,
        unreadCount: 0,
        lastMessage: null,
      });
      await expectMirrors(client, conversationId);
      await expectUpToDate(client);

      // After the join: new messages, plus edits and deletes of pre-join ones (which stay hidden).
      for (let index = 7; index <= 9; index += 1) await send(owner, conversationId, `post-${index}`);
      await edit(owner, conversationId, 1, 'pre-join, edited after the join');
      await remove(owner, conversationId, 3);
      await edit(peer, conversationId, 6, 'pre-join, edited by the peer');

      const run = await syncUntilDone(client, 2);
      expect(run.messages.map((message) => message.seq)).toEqual([7, 8, 9]);
      for (const message of run.messages) expect(message.seq).toBeGreaterThan(6);
      expect(client.seqs(conversationId)).toEqual([7, 8, 9]);
      expect(client.summaries.get(conversationId)).toMatchObject({ lastSeq: 9, lastReadSeq: 6, unreadCount: 3 });
      await expectMirrors(client, conversationId); // the cursor reached lastRev despite the hidden changes
      await expectUpToDate(client);

      // A sync from scratch (a new device) sees the same, and nothing before the join.
      const newDevice = new Client(late);
      const fromScratch = await syncUntilDone(newDevice, 1);
      expect(fromScratch.messages.map((message) => message.seq).sort((x, y) => x - y)).toEqual([7, 8, 9]);
      await expectMirrors(newDevice, conversationId);

      // A later pre-join edit moves the cursor but delivers nothing.
      await edit(owner, conversationId, 2, 'edited yet again');
      const hidden = await syncUntilDone(client, 2);
      expect(hidden.messages).toEqual([]);
      await expectMirrors(client, conversationId);
      await expectUpToDate(client);
    });
  });
});
