import { randomUUID } from 'node:crypto';
import type { HistoryPage, SendMessageResponse } from '@parley/protocol';
import { MemoryBus } from '@parley/bus';
import pino from 'pino';
import { EventPublisher } from '../src/domain/event-publisher';
import { MessageService } from '../src/domain/message-service';
import {
  call,
  createGroupAs,
  errorOf,
  HARNESS_START_TIMEOUT_MS,
  MESSAGE_BACKENDS,
  registerUsers,
  startMessageHarness,
  type MessageHarness,
} from '../../../tests/support/message-harness';

// Group commit (services/message/src/domain/store-batch.ts): concurrent sends share one
// transaction, and each still gets the answer it would get alone.

let h: MessageHarness;

const messagesUrl = (conversationId: string) => `/v1/conversations/${conversationId}/messages`;

/** Sends stored per transaction so far, from the service's own histogram. */
async function batchSizes(): Promise<{ count: number; sum: number }> {
  const text = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
  const read = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { count: read('parley_send_batch_size_count'), sum: read('parley_send_batch_size_sum') };
}

describe.each(MESSAGE_BACKENDS)('on %s', (backend) => {
  beforeAll(async () => {
    h = await startMessageHarness({}, { backend });
  }, HARNESS_START_TIMEOUT_MS);
  afterAll(async () => h.close());

  it('one batch of mixed sends: each is answered as if alone, and the stored ones take gapless seqs', async () => {
    const [owner, member, outsider, blocker] = await registerUsers(h.app, 4);
    const group = await createGroupAs(h.app, owner!, [member!], 'batch');
    const direct = (await call(h.app, member!, 'POST', '/v1/conversations/direct', { userId: blocker!.id })).json<{ id: string }>().id;
    expect((await call(h.app, blocker!, 'PUT', `/v1/blocks/${member!.id}`)).statusCode).toBeLessThan(300);
    const earlier = (await call(h.app, owner!, 'POST', messagesUrl(group.id), { clientMessageId: 'earlier', body: 'earlier' })).json<SendMessageResponse>();
    const before = await batchSizes();

    // All at once: app.inject runs them in this process, so they reach the service together.
    const send = (user: typeof owner, conversationId: string, clientMessageId: string) =>
      call(h.app, user!, 'POST', messagesUrl(conversationId), { clientMessageId, body: `body ${clientMessageId}` });
    const [a, b, twinA, twinB, retry, notMember, missing, blocked] = await Promise.all([
      send(owner, group.id, 'a'),
      send(member, group.id, 'b'),
      send(member, group.id, 'twin'),
      send(member, group.id, 'twin'),
      send(owner, group.id, 'earlier'),
      send(outsider, group.id, 'c'),
      send(owner, randomUUID(), 'd'),
      send(member, direct, 'e'),
    ]);
    const after = await batchSizes();
    if (backend === 'postgres') {
      // Fewer transactions than sends: they were grouped.
      expect(after.sum - before.sum).toBe(8);
      expect(after.count - before.count).toBeLessThan(8);
    }

    expect([a, b].map((response) => response.statusCode)).toEqual([201, 201]);
    const twins = [twinA, twinB].map((response) => response.json<SendMessageResponse>());
    expect(twins.map((reply) => reply.duplicate).sort()).toEqual([false, true]);
    expect(twins[0]!.message.seq).toBe(twins[1]!.message.seq);
    expect(retry.statusCode).toBe(200);
    expect(retry.json<SendMessageResponse>()).toEqual({ ...earlier, duplicate: true });
    expect(errorOf(notMember)).toEqual({ status: 403, code: 'NOT_A_MEMBER' });
    expect(errorOf(missing)).toEqual({ status: 404, code: 'CONVERSATION_NOT_FOUND' });
    expect(errorOf(blocked)).toMatchObject({ code: 'USER_BLOCKED' });

    const page = (await call(h.app, owner!, 'GET', `${messagesUrl(group.id)}?limit=50`)).json<HistoryPage>();
    expect(page.messages.map((message) => message.seq)).toEqual([1, 2, 3, 4]);
    expect(page.messages.map((message) => message.clientMessageId).sort()).toEqual(['a', 'b', 'earlier', 'twin']);
    // Each sender's read marker is at their own latest message.
    const state = (await call(h.app, member!, 'GET', `/v1/conversations/${group.id}`)).json<{ lastReadSeq: number; lastSeq: number }>();
    const memberSeqs = page.messages.filter((message) => message.senderId === member!.id).map((message) => message.seq);
    expect(state).toMatchObject({ lastSeq: 4, lastReadSeq: Math.max(...memberSeqs) });
  });

  it('one batch over several conversations: each takes its own gapless seqs, and a block refuses either way', async () => {
    const [alice, bob, carol, dave] = await registerUsers(h.app, 4);
    const groupOne = await createGroupAs(h.app, alice!, [bob!], 'one');
    const groupTwo = await createGroupAs(h.app, carol!, [alice!], 'two');
    const toBob = (await call(h.app, alice!, 'POST', '/v1/conversations/direct', { userId: bob!.id })).json<{ id: string }>().id;
    const toDave = (await call(h.app, carol!, 'POST', '/v1/conversations/direct', { userId: dave!.id })).json<{ id: string }>().id;
    // Carol blocked Dave: Carol's own send to Dave is refused too.
    expect((await call(h.app, carol!, 'PUT', `/v1/blocks/${dave!.id}`)).statusCode).toBeLessThan(300);

    const send = (user: typeof alice, conversationId: string, clientMessageId: string) =>
      call(h.app, user!, 'POST', messagesUrl(conversationId), { clientMessageId, body: `body ${clientMessageId}` });
    const replies = await Promise.all([
      send(alice, groupOne.id, 'one-1'),
      send(carol, groupTwo.id, 'two-1'),
      send(bob, groupOne.id, 'one-2'),
      send(alice, toBob, 'direct-1'),
      send(carol, toDave, 'blocked'),
      send(alice, groupTwo.id, 'two-2'),
      send(bob, toBob, 'direct-2'),
    ]);
    expect(replies.map((reply) => reply.statusCode)).toEqual([201, 201, 201, 201, 403, 201, 201]);
    expect(errorOf(replies[4]!)).toMatchObject({ code: 'USER_BLOCKED' });

    const stored = async (conversationId: string, reader = alice) => {
      const page = (await call(h.app, reader!, 'GET', `${messagesUrl(conversationId)}?limit=50`)).json<HistoryPage>();
      return { seqs: page.messages.map((message) => message.seq), ids: page.messages.map((message) => message.clientMessageId).sort() };
    };
    expect(await stored(groupOne.id)).toEqual({ seqs: [1, 2], ids: ['one-1', 'one-2'] });
    expect(await stored(groupTwo.id)).toEqual({ seqs: [1, 2], ids: ['two-1', 'two-2'] });
    expect(await stored(toBob)).toEqual({ seqs: [1, 2], ids: ['direct-1', 'direct-2'] });
    expect(await stored(toDave, carol)).toEqual({ seqs: [], ids: [] });
  });

  it('an upper-case conversation id is the same conversation: stored, answered, and published on its channel', async () => {
    const [owner, member] = await registerUsers(h.app, 2);
    const group = await createGroupAs(h.app, owner!, [member!], 'case');
    const response = await call(h.app, owner!, 'POST', messagesUrl(group.id.toUpperCase()), { clientMessageId: 'upper', body: 'hi' });
    expect(response.statusCode).toBe(201);
    const { message } = response.json<SendMessageResponse>();
    expect(message).toMatchObject({ conversationId: group.id, seq: 1 });
    const published = await h.events.waitFor(
      ({ event }) => event.type === 'message.created' && event.message.clientMessageId === 'upper',
    );
    expect(published.channel).toContain(`conv:{${group.id}}`);
  });

  it('a send the database refuses fails alone: the others of its batch are stored', async () => {
    const [owner, member] = await registerUsers(h.app, 2);
    const group = await createGroupAs(h.app, owner!, [member!], 'poison');
    // Below the API's validation (which refuses NUL): PostgreSQL cannot store it in text.
    const service = new MessageService(h.db.kysely, new EventPublisher(new MemoryBus(), pino({ level: 'silent' }), { published() {}, failed() {} }));
    const outcomes = await Promise.allSettled([
      service.send(owner!.id, group.id, { clientMessageId: 'ok-1', body: 'fine' }),
      service.send(member!.id, group.id, { clientMessageId: 'bad', body: 'nul \u0000 inside' }),
      service.send(member!.id, group.id, { clientMessageId: 'ok-2', body: 'fine too' }),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const page = (await call(h.app, owner!, 'GET', `${messagesUrl(group.id)}?limit=50`)).json<HistoryPage>();
    expect(page.messages.map((message) => [message.seq, message.clientMessageId])).toEqual([
      [1, 'ok-1'],
      [2, 'ok-2'],
    ]);
  });
});
