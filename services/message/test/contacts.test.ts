import { randomUUID } from 'node:crypto';
import {
  Channels,
  type Block,
  type Contact,
  type ContactState,
  type ConversationSummary,
  type HistoryPage,
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

async function contactsOf(user: TestUser): Promise<Array<{ userId: string; state: ContactState }>> {
  const response = await call(h.app, user, 'GET', '/v1/contacts');
  expect(response.statusCode).toBe(200);
  return response.json<{ contacts: Contact[] }>().contacts.map((c) => ({ userId: c.user.id, state: c.state }));
}

async function blocksOf(user: TestUser): Promise<string[]> {
  const response = await call(h.app, user, 'GET', '/v1/blocks');
  expect(response.statusCode).toBe(200);
  return response.json<{ blocks: Block[] }>().blocks.map((b) => b.user.id);
}

/** Waits for `contact.changed` on `owner`'s user channel, saying how owner now sees `peer`. */
function contactEvent(owner: TestUser, peer: TestUser, state: ContactState | 'removed') {
  return h.events.waitFor(
    ({ channel, event }) =>
      channel === Channels.user(owner.id) &&
      event.type === 'contact.changed' &&
      event.userId === peer.id &&
      event.state === state,
  );
}

function contactEventsBetween(a: TestUser, b: TestUser) {
  return h.events.received.filter(
    ({ channel, event }) =>
      event.type === 'contact.changed' &&
      ((channel === Channels.user(a.id) && event.userId === b.id) ||
        (channel === Channels.user(b.id) && event.userId === a.id)),
  );
}

async function request(from: TestUser, to: TestUser): Promise<Response> {
  return call(h.app, from, 'POST', '/v1/contacts', { userId: to.id });
}

async function befriend(a: TestUser, b: TestUser): Promise<void> {
  expect((await request(a, b)).statusCode).toBe(200);
  const accepted = await call(h.app, b, 'POST', `/v1/contacts/${a.id}/accept`);
  expect(accepted.statusCode).toBe(200);
  expect(accepted.json<Contact>().state).toBe('accepted');
}

async function openDirect(from: TestUser, to: TestUser): Promise<Response> {
  return call(h.app, from, 'POST', '/v1/conversations/direct', { userId: to.id });
}

async function send(from: TestUser, conversationId: string, body = 'hi'): Promise<Response> {
  return call(h.app, from, 'POST', `/v1/conversations/${conversationId}/messages`, {
    clientMessageId: randomUUID(),
    body,
  });
}

describe.each(MESSAGE_BACKENDS)('on %s', (backend) => {
  beforeAll(async () => {
    h = await startMessageHarness({}, { backend });
  }, HARNESS_START_TIMEOUT_MS);
  afterAll(async () => h.close());

  describe('contact requests', () => {
    test('a request is outgoing for me and incoming for them, and both users hear it', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);

      const response = await request(alice, bob);
      expect(response.statusCode).toBe(200);
      const contact = response.json<Contact>();
      expect(contact.user).toEqual({ id: bob.id, username: bob.username, displayName: expect.any(String) });
      expect(contact.state).toBe('outgoing');
      expect(Number.isNaN(Date.parse(contact.since))).toBe(false);

      expect(await contactsOf(alice)).toEqual([{ userId: bob.id, state: 'outgoing' }]);
      expect(await contactsOf(bob)).toEqual([{ userId: alice.id, state: 'incoming' }]);

      await contactEvent(alice, bob, 'outgoing');
      await contactEvent(bob, alice, 'incoming');
    });

    test('asking again is harmless: the request stays outgoing, nothing is duplicated', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      expect((await request(alice, bob)).statusCode).toBe(200);
      const again = await request(alice, bob);
      expect(again.statusCode).toBe(200);
      expect(again.json<Contact>().state).toBe('outgoing');
      expect(await contactsOf(alice)).toEqual([{ userId: bob.id, state: 'outgoing' }]);
      expect(await contactsOf(bob)).toEqual([{ userId: alice.id, state: 'incoming' }]);
    });

    test('accepting makes both sides accepted and tells both users', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      expect((await request(alice, bob)).statusCode).toBe(200);

      const accepted = await call(h.app, bob, 'POST', `/v1/contacts/${alice.id}/accept`);
      expect(accepted.statusCode).toBe(200);
      expect(accepted.json<Contact>()).toMatchObject({ user: { id: alice.id, username: alice.username }, state: 'accepted' });

      expect(await contactsOf(alice)).toEqual([{ userId: bob.id, state: 'accepted' }]);
      expect(await contactsOf(bob)).toEqual([{ userId: alice.id, state: 'accepted' }]);
      await contactEvent(alice, bob, 'accepted');
      await contactEvent(bob, alice, 'accepted');

      // Asking an accepted contact again changes nothing.
      const again = await request(alice, bob);
      expect(again.statusCode).toBe(200);
      expect(again.json<Contact>().state).toBe('accepted');
      expect(await contactsOf(bob)).toEqual([{ userId: alice.id, state: 'accepted' }]);
    });

    test('the requester cannot accept or decline their own request', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      expect((await request(alice, bob)).statusCode).toBe(200);

      expect(errorOf(await call(h.app, alice, 'POST', `/v1/contacts/${bob.id}/accept`))).toEqual({
        status: 404,
        code: 'CONTACT_NOT_FOUND',
      });
      expect(errorOf(await call(h.app, alice, 'POST', `/v1/contacts/${bob.id}/decline`))).toEqual({
        status: 404,
        code: 'CONTACT_NOT_FOUND',
      });
      expect(await contactsOf(alice)).toEqual([{ userId: bob.id, state: 'outgoing' }]);
      expect(await contactsOf(bob)).toEqual([{ userId: alice.id, state: 'incoming' }]);
    });

    test('declining removes the request on both sides and tells both users', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      expect((await request(alice, bob)).statusCode).toBe(200);

      const declined = await call(h.app, bob, 'POST', `/v1/contacts/${alice.id}/decline`);
      expect(declined.statusCode).toBe(204);
      expect(declined.body).toBe('');
      expect(await contactsOf(alice)).toEqual([]);
      expect(await contactsOf(bob)).toEqual([]);
      await contactEvent(alice, bob, 'removed');
      await contactEvent(bob, alice, 'removed');

      // Nothing left to decline or accept.
      expect(errorOf(await call(h.app, bob, 'POST', `/v1/contacts/${alice.id}/decline`))).toEqual({
        status: 404,
        code: 'CONTACT_NOT_FOUND',
      });
      expect(errorOf(await call(h.app, bob, 'POST', `/v1/contacts/${alice.id}/accept`))).toEqual({
        status: 404,
        code: 'CONTACT_NOT_FOUND',
      });
      // Alice may ask again afterwards.
      const again = await request(alice, bob);
      expect(again.statusCode).toBe(200);
      expect(again.json<Contact>().state).toBe('outgoing');
    });

    test('the requester can withdraw a request', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      expect((await request(alice, bob)).statusCode).toBe(200);

      const withdrawn = await call(h.app, alice, 'DELETE', `/v1/contacts/${bob.id}`);
      expect(withdrawn.statusCode).toBe(204);
      expect(await contactsOf(alice)).toEqual([]);
      expect(await contactsOf(bob)).toEqual([]);
      await contactEvent(bob, alice, 'removed');
      await contactEvent(alice, bob, 'removed');
      expect(errorOf(await call(h.app, bob, 'POST', `/v1/contacts/${alice.id}/accept`))).toEqual({
        status: 404,
        code: 'CONTACT_NOT_FOUND',
      });
    });

    test('either side can remove an accepted contact; removing twice is CONTACT_NOT_FOUND', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      await befriend(alice, bob);

      const removed = await call(h.app, bob, 'DELETE', `/v1/contacts/${alice.id}`);
      expect(removed.statusCode).toBe(204);
      expect(await contactsOf(alice)).toEqual([]);
      expect(await contactsOf(bob)).toEqual([]);
      await contactEvent(alice, bob, 'removed');
      await contactEvent(bob, alice, 'removed');

      expect(errorOf(await call(h.app, bob, 'DELETE', `/v1/contacts/${alice.id}`))).toEqual({
        status: 404,
        code: 'CONTACT_NOT_FOUND',
      });
      expect(errorOf(await call(h.app, alice, 'DELETE', `/v1/contacts/${bob.id}`))).toEqual({
        status: 404,
        code: 'CONTACT_NOT_FOUND',
      });
    });

    test('a request to someone who already asked me accepts both ways', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      expect((await request(alice, bob)).statusCode).toBe(200);

      const mutual = await request(bob, alice);
      expect(mutual.statusCode).toBe(200);
      expect(mutual.json<Contact>()).toMatchObject({ user: { id: alice.id }, state: 'accepted' });
      expect(await contactsOf(alice)).toEqual([{ userId: bob.id, state: 'accepted' }]);
      expect(await contactsOf(bob)).toEqual([{ userId: alice.id, state: 'accepted' }]);
      await contactEvent(alice, bob, 'accepted');
      await contactEvent(bob, alice, 'accepted');
    });

    test('two users asking each other at the same moment end up accepted, not with crossed requests', async () => {
      for (let round = 0; round < 5; round++) {
        const alice = await registerUser(h.app);
        const bob = await registerUser(h.app);
        const [fromAlice, fromBob] = await Promise.all([request(alice, bob), request(bob, alice)]);
        expect(fromAlice.statusCode).toBe(200);
        expect(fromBob.statusCode).toBe(200);
        expect(await contactsOf(alice)).toEqual([{ userId: bob.id, state: 'accepted' }]);
        expect(await contactsOf(bob)).toEqual([{ userId: alice.id, state: 'accepted' }]);
      }
    });

    test('a request to myself is CANNOT_TARGET_SELF', async () => {
      const alice = await registerUser(h.app);
      expect(errorOf(await request(alice, alice))).toEqual({ status: 422, code: 'CANNOT_TARGET_SELF' });
      expect(await contactsOf(alice)).toEqual([]);
    });

    test('a request to an unknown user is USER_NOT_FOUND', async () => {
      const alice = await registerUser(h.app);
      const response = await call(h.app, alice, 'POST', '/v1/contacts', { userId: randomUUID() });
      expect(errorOf(response)).toEqual({ status: 404, code: 'USER_NOT_FOUND' });
      expect(await contactsOf(alice)).toEqual([]);
    });

    test('a malformed user id is VALIDATION_FAILED', async () => {
      const alice = await registerUser(h.app);
      expect(errorOf(await call(h.app, alice, 'POST', '/v1/contacts', { userId: 'not-a-uuid' }))).toEqual({
        status: 400,
        code: 'VALIDATION_FAILED',
      });
      expect(errorOf(await call(h.app, alice, 'POST', '/v1/contacts/not-a-uuid/accept'))).toEqual({
        status: 400,
        code: 'VALIDATION_FAILED',
      });
    });

    test('accepting without a request is CONTACT_NOT_FOUND', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      expect(errorOf(await call(h.app, alice, 'POST', `/v1/contacts/${bob.id}/accept`))).toEqual({
        status: 404,
        code: 'CONTACT_NOT_FOUND',
      });
      expect(errorOf(await call(h.app, alice, 'POST', `/v1/contacts/${randomUUID()}/accept`))).toEqual({
        status: 404,
        code: 'CONTACT_NOT_FOUND',
      });
      expect(await contactsOf(alice)).toEqual([]);
      expect(await contactsOf(bob)).toEqual([]);
    });

    test('contacts need a token', async () => {
      expect(errorOf(await call(h.app, null, 'GET', '/v1/contacts'))).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
      expect(errorOf(await call(h.app, null, 'GET', '/v1/blocks'))).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    });

    test('each user sees only their own contacts', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      const carol = await registerUser(h.app);
      await befriend(alice, bob);
      expect((await request(carol, alice)).statusCode).toBe(200);

      const aliceContacts = await contactsOf(alice);
      expect(aliceContacts).toHaveLength(2);
      expect(aliceContacts).toEqual(
        expect.arrayContaining([
          { userId: bob.id, state: 'accepted' },
          { userId: carol.id, state: 'incoming' },
        ]),
      );
      expect(await contactsOf(bob)).toEqual([{ userId: alice.id, state: 'accepted' }]);
      expect(await contactsOf(carol)).toEqual([{ userId: alice.id, state: 'outgoing' }]);
      const list = (await call(h.app, alice, 'GET', '/v1/contacts')).json<{ contacts: Contact[] }>();
      for (const contact of list.contacts) expect(contact.user.id).not.toBe(alice.id);
    });
  });

  describe('blocks', () => {
    test('blocking ends the contact relation on both sides and tells both users', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      await befriend(alice, bob);

      const blocked = await call(h.app, alice, 'PUT', `/v1/blocks/${bob.id}`);
      expect(blocked.statusCode).toBe(204);
      expect(await contactsOf(alice)).toEqual([]);
      expect(await contactsOf(bob)).toEqual([]);
      await contactEvent(alice, bob, 'removed');
      await contactEvent(bob, alice, 'removed');
    });

    test('blocking also ends a pending request', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      expect((await request(bob, alice)).statusCode).toBe(200);

      expect((await call(h.app, alice, 'PUT', `/v1/blocks/${bob.id}`)).statusCode).toBe(204);
      expect(await contactsOf(alice)).toEqual([]);
      expect(await contactsOf(bob)).toEqual([]);
      await contactEvent(bob, alice, 'removed');
      // The request is gone: accepting it now finds nothing.
      expect(errorOf(await call(h.app, alice, 'POST', `/v1/contacts/${bob.id}/accept`))).toEqual({
        status: 404,
        code: 'CONTACT_NOT_FOUND',
      });
    });

    test('while a block exists, neither user can ask the other to be a contact', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      expect((await call(h.app, alice, 'PUT', `/v1/blocks/${bob.id}`)).statusCode).toBe(204);

      // The blocked user, towards the blocker...
      expect(errorOf(await request(bob, alice))).toEqual({ status: 403, code: 'USER_BLOCKED' });
      // ...and the blocker, towards the blocked user.
      expect(errorOf(await request(alice, bob))).toEqual({ status: 403, code: 'USER_BLOCKED' });
      expect(await contactsOf(alice)).toEqual([]);
      expect(await contactsOf(bob)).toEqual([]);

      // No contact.changed event may have been published for the refused requests. A later
      // event from the same publisher is the barrier: pub/sub keeps one connection's order.
      const carol = await registerUser(h.app);
      expect((await request(alice, carol)).statusCode).toBe(200);
      await contactEvent(carol, alice, 'incoming');
      expect(contactEventsBetween(alice, bob)).toEqual([]);
    });

    test('while a block exists, neither user can open a direct conversation with the other', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      expect((await call(h.app, bob, 'PUT', `/v1/blocks/${alice.id}`)).statusCode).toBe(204);

      expect(errorOf(await openDirect(alice, bob))).toEqual({ status: 403, code: 'USER_BLOCKED' });
      expect(errorOf(await openDirect(bob, alice))).toEqual({ status: 403, code: 'USER_BLOCKED' });

      // And no conversation was created for either of them.
      for (const user of [alice, bob]) {
        const list = await call(h.app, user, 'GET', '/v1/conversations');
        expect(list.statusCode).toBe(200);
        expect(list.json<{ conversations: ConversationSummary[] }>().conversations).toEqual([]);
      }
    });

    test.each([
      ['the blocked user', 'blocked'],
      ['the blocker', 'blocker'],
    ] as const)(
      'after a block, %s can neither send in the existing direct conversation nor reopen it; unblocking restores both',
      async (_label, actor) => {
        const alice = await registerUser(h.app);
        const bob = await registerUser(h.app);
        const opened = await openDirect(alice, bob);
        expect(opened.statusCode).toBe(201);
        const conversationId = opened.json<ConversationSummary>().id;
        expect((await send(alice, conversationId, 'before the block')).statusCode).toBe(201);
        expect((await send(bob, conversationId, 'reply')).statusCode).toBe(201);

        // Alice blocks Bob.
        expect((await call(h.app, alice, 'PUT', `/v1/blocks/${bob.id}`)).statusCode).toBe(204);
        const [sender, other] = actor === 'blocker' ? [alice, bob] : [bob, alice];

        expect(errorOf(await send(sender, conversationId, 'during the block'))).toEqual({
          status: 403,
          code: 'USER_BLOCKED',
        });
        expect(errorOf(await openDirect(sender, other))).toEqual({ status: 403, code: 'USER_BLOCKED' });

        // Nothing was stored.
        const during = await call(h.app, other, 'GET', `/v1/conversations/${conversationId}/messages`);
        expect(during.statusCode).toBe(200);
        expect(during.json<HistoryPage>().messages.map((m) => m.body)).toEqual(['before the block', 'reply']);

        // Only the blocker can lift the block.
        expect((await call(h.app, alice, 'DELETE', `/v1/blocks/${bob.id}`)).statusCode).toBe(204);

        const after = await send(sender, conversationId, 'after the block');
        expect(after.statusCode).toBe(201);
        expect(after.json<{ message: { seq: number } }>().message.seq).toBe(3);
        const reopened = await openDirect(sender, other);
        expect(reopened.statusCode).toBe(200);
        expect(reopened.json<ConversationSummary>().id).toBe(conversationId);
        const history = await call(h.app, other, 'GET', `/v1/conversations/${conversationId}/messages`);
        expect(history.json<HistoryPage>().messages.map((m) => m.body)).toEqual([
          'before the block',
          'reply',
          'after the block',
        ]);
      },
    );

    test('the blocked user cannot lift the block', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      expect((await call(h.app, alice, 'PUT', `/v1/blocks/${bob.id}`)).statusCode).toBe(204);

      expect((await call(h.app, bob, 'DELETE', `/v1/blocks/${alice.id}`)).statusCode).toBe(404);
      expect(await blocksOf(alice)).toEqual([bob.id]);
      expect(errorOf(await request(bob, alice))).toEqual({ status: 403, code: 'USER_BLOCKED' });
    });

    test('a block in each direction: lifting one leaves the other in force', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      expect((await call(h.app, alice, 'PUT', `/v1/blocks/${bob.id}`)).statusCode).toBe(204);
      expect((await call(h.app, bob, 'PUT', `/v1/blocks/${alice.id}`)).statusCode).toBe(204);

      expect((await call(h.app, alice, 'DELETE', `/v1/blocks/${bob.id}`)).statusCode).toBe(204);
      expect(errorOf(await request(alice, bob))).toEqual({ status: 403, code: 'USER_BLOCKED' });
      expect(errorOf(await openDirect(alice, bob))).toEqual({ status: 403, code: 'USER_BLOCKED' });

      expect((await call(h.app, bob, 'DELETE', `/v1/blocks/${alice.id}`)).statusCode).toBe(204);
      expect((await request(alice, bob)).json<Contact>().state).toBe('outgoing');
      expect((await openDirect(alice, bob)).statusCode).toBe(201);
    });

    test('GET /v1/blocks lists the users I blocked, and only mine', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      const carol = await registerUser(h.app);
      expect(await blocksOf(alice)).toEqual([]);

      expect((await call(h.app, alice, 'PUT', `/v1/blocks/${bob.id}`)).statusCode).toBe(204);
      expect((await call(h.app, alice, 'PUT', `/v1/blocks/${carol.id}`)).statusCode).toBe(204);
      // Blocking twice is harmless.
      expect((await call(h.app, alice, 'PUT', `/v1/blocks/${carol.id}`)).statusCode).toBe(204);

      const list = await call(h.app, alice, 'GET', '/v1/blocks');
      expect(list.statusCode).toBe(200);
      const blocks = list.json<{ blocks: Block[] }>().blocks;
      expect(blocks.map((b) => b.user.id).sort()).toEqual([bob.id, carol.id].sort());
      const bobEntry = blocks.find((b) => b.user.id === bob.id);
      expect(bobEntry?.user).toEqual({ id: bob.id, username: bob.username, displayName: expect.any(String) });
      expect(Number.isNaN(Date.parse(bobEntry?.since ?? ''))).toBe(false);

      // The blocked users do not see the block as one of theirs.
      expect(await blocksOf(bob)).toEqual([]);
      expect(await blocksOf(carol)).toEqual([]);

      expect((await call(h.app, alice, 'DELETE', `/v1/blocks/${bob.id}`)).statusCode).toBe(204);
      expect(await blocksOf(alice)).toEqual([carol.id]);
    });

    test('blocking myself is CANNOT_TARGET_SELF; blocking an unknown user is USER_NOT_FOUND', async () => {
      const alice = await registerUser(h.app);
      expect(errorOf(await call(h.app, alice, 'PUT', `/v1/blocks/${alice.id}`))).toEqual({
        status: 422,
        code: 'CANNOT_TARGET_SELF',
      });
      expect(errorOf(await call(h.app, alice, 'PUT', `/v1/blocks/${randomUUID()}`))).toEqual({
        status: 404,
        code: 'USER_NOT_FOUND',
      });
      expect(await blocksOf(alice)).toEqual([]);
    });

    test('after unblocking, contacts can be made again', async () => {
      const alice = await registerUser(h.app);
      const bob = await registerUser(h.app);
      await befriend(alice, bob);
      expect((await call(h.app, bob, 'PUT', `/v1/blocks/${alice.id}`)).statusCode).toBe(204);
      expect((await call(h.app, bob, 'DELETE', `/v1/blocks/${alice.id}`)).statusCode).toBe(204);

      // The old relation does not come back by itself.
      expect(await contactsOf(alice)).toEqual([]);
      await befriend(alice, bob);
      expect(await contactsOf(bob)).toEqual([{ userId: alice.id, state: 'accepted' }]);
    });
  });
});
