import { Fleet } from './support/fleet';
import { range } from './support/wait';

// End to end through the real fleet: 3 gateway processes behind nginx (wss/https with a
// self-signed CA), the message service, PostgreSQL and Redis, driven by the SDK
// (@parley/client) as an app would: cross-node delivery, a user's devices, a group spread
// over every node, and offline catch-up with read receipts and unread counts.

jest.setTimeout(60_000);

let fleet: Fleet;

beforeAll(async () => {
  fleet = await Fleet.start({
    name: 'delivery',
    // The SDK sends one message per ack; the gateway's default 20 frames/s per socket paces
    // it (RATE_LIMITED replies, retried): lifted so 100 sends take one second, not five.
    // The limit itself is tested in fleet-abuse.
    gatewayEnv: { RATE_LIMIT_FRAMES_PER_SECOND: '1000' },
  });
});

afterEach(async () => {
  await fleet?.closeClients();
});

afterAll(async () => {
  await fleet?.close();
});

describe('delivery across gateway nodes', () => {
  it('A on one node sends to B on another: B gets each message once, in order; A’s second device on a third node too', async () => {
    const alice = await fleet.register('alice');
    const bob = await fleet.register('bob');
    const alice2 = await fleet.login(alice, 'alice-phone');
    const direct = await alice.client.rest.openDirect(bob.user.id);

    // least_conn on an idle fleet: three consecutive sockets land on three nodes.
    await fleet.connectAll([alice, bob, alice2]);
    expect(new Set([alice.nodeId, bob.nodeId, alice2.nodeId]).size).toBe(3);
    expect(fleet.topology.gateways.map((gateway) => gateway.nodeId)).toEqual(
      expect.arrayContaining([alice.nodeId, bob.nodeId, alice2.nodeId]),
    );

    const bodies = range(1, 5).map((index) => `hello bob #${index} ✓`);
    const acked = [];
    for (const body of bodies) acked.push(await alice.client.send(direct.id, body));
    expect(acked.map((message) => message.seq)).toEqual(range(1, 5));

    for (const receiver of [bob, alice2]) {
      await receiver.untilDelivered(direct.id, 5, 10_000);
    }
    // A complete pull after the live deliveries brings nothing new: each seq was emitted once.
    await Promise.all([bob, alice2, alice].map((client) => client.client.syncNow()));
    for (const receiver of [bob, alice2, alice]) {
      expect(receiver.seqs(direct.id)).toEqual(range(1, 5));
      expect(receiver.messages(direct.id).map((delivery) => delivery.message.body)).toEqual(bodies);
      expect(receiver.messages(direct.id).every((delivery) => delivery.message.senderId === alice.user.id)).toBe(true);
    }
    // Bob and Alice's phone heard it live from their own nodes (not only through a sync).
    expect(bob.messages(direct.id).filter((delivery) => delivery.source === 'socket').length).toBeGreaterThan(0);
    expect(alice2.messages(direct.id).filter((delivery) => delivery.source === 'socket').length).toBeGreaterThan(0);

    // And the other way round: Bob answers, both of Alice's devices get it.
    const answer = await bob.client.send(direct.id, 'hi alice');
    expect(answer.seq).toBe(6);
    await alice.untilDelivered(direct.id, 6, 10_000);
    await alice2.untilDelivered(direct.id, 6, 10_000);
    expect(alice.seqs(direct.id)).toEqual(range(1, 6));
    expect(alice2.seqs(direct.id)).toEqual(range(1, 6));
  });

  it('a body with characters outside the BMP (emoji) sent over the socket reaches the peer byte for byte', async () => {
    // docs/protocol.md: a body is 1–4,000 UTF-16 code units, any Unicode but NUL and unpaired
    // surrogates; a surrogate pair is a valid character. REST accepts it, so must the socket.
    const alice = await fleet.register('alice');
    const bob = await fleet.register('bob');
    const direct = await alice.client.rest.openDirect(bob.user.id);
    await fleet.connectAll([alice, bob]);
    expect(alice.nodeId).not.toBe(bob.nodeId);
    const body = 'launch 🚀 party 🎉 — “quoted” ✓';
    const overRest = await bob.client.rest.sendMessage(direct.id, { clientMessageId: 'rest-emoji', body });
    expect(overRest.message.body).toBe(body);
    const overSocket = await alice.client.send(direct.id, body);
    expect(overSocket).toMatchObject({ seq: 2, body });
    await bob.untilDelivered(direct.id, 2, 10_000);
    expect(bob.messages(direct.id).map((delivery) => delivery.message.body)).toEqual([body, body]);
  });

  it('a group of 20 users spread over the 3 nodes: everyone gets every message of a burst once, in seq order', async () => {
    const members = await fleet.registerMany('g', 20);
    const [owner] = members;
    const group = await owner!.client.rest.createGroup({
      title: 'fleet burst',
      memberIds: members.slice(1).map((member) => member.user.id),
    });
    await fleet.connectAll(members);
    const perNode = new Map<string, number>();
    for (const member of members) perNode.set(member.nodeId!, (perNode.get(member.nodeId!) ?? 0) + 1);
    expect(perNode.size).toBe(3);
    for (const count of perNode.values()) expect(count).toBeGreaterThanOrEqual(6);

    // A burst: 5 senders (on different nodes) with 6 messages each, all at once.
    const senders = members.slice(0, 5);
    const sends = senders.flatMap((sender) =>
      range(1, 6).map((index) => sender.client.send(group.id, `${sender.label}: burst ${index}`)),
    );
    const stored = await Promise.all(sends);
    const total = senders.length * 6;
    expect(stored.map((message) => message.seq).sort((a, b) => a - b)).toEqual(range(1, total));
    // Each sender's messages were stored in the order it sent them.
    for (const sender of senders) {
      const own = stored.filter((message) => message.senderId === sender.user.id).map((message) => message.seq);
      expect(own).toEqual([...own].sort((a, b) => a - b));
    }

    await Promise.all(members.map((member) => member.untilDelivered(group.id, total, 15_000)));
    await Promise.all(members.map((member) => member.client.syncNow()));
    const bodyOf = new Map(stored.map((message) => [message.seq, message.body]));
    for (const member of members) {
      expect({ member: member.label, seqs: member.seqs(group.id) }).toEqual({ member: member.label, seqs: range(1, total) });
      expect(member.messages(group.id).every((delivery) => delivery.message.body === bodyOf.get(delivery.message.seq))).toBe(true);
    }
    // Receivers that are not senders got the burst over their sockets, from all three nodes' fan-out.
    const live = members.slice(5).filter((member) => member.messages(group.id).some((delivery) => delivery.source === 'socket'));
    expect(new Set(live.map((member) => member.nodeId)).size).toBe(3);
  });
});

describe('offline sync', () => {
  it('B offline while A sends 100: on connect B pulls exactly those 100 in order, reads them, A sees the receipt, unread counts agree', async () => {
    const alice = await fleet.register('alice');
    // Small pages, so the catch-up takes several sync round trips.
    const bob = await fleet.register('bob', { syncPageLimit: 30 });
    const direct = await alice.client.rest.openDirect(bob.user.id);
    await fleet.connectAll([alice, bob]);
    expect(alice.nodeId).not.toBe(bob.nodeId);

    // Bob is online for the first message and reads it, then goes offline.
    await alice.client.send(direct.id, 'before you go');
    await bob.untilDelivered(direct.id, 1, 10_000);
    await bob.client.markRead(direct.id, 1);
    await alice.until(() => alice.reads.some((read) => read.userId === bob.user.id && read.lastReadSeq === 1), 10_000, 'receipt 1');
    await bob.close();
    expect(bob.client.connectionState).toBe('closed');

    const bodies = range(1, 100).map((index) => `while you were away #${index}`);
    for (const body of bodies) await alice.client.send(direct.id, body);

    const bobSummary = async () =>
      (await bob.client.rest.listConversations()).conversations.find((conversation) => conversation.id === direct.id)!;
    const aliceSummary = async () =>
      (await alice.client.rest.listConversations()).conversations.find((conversation) => conversation.id === direct.id)!;
    expect(await bobSummary()).toMatchObject({ lastSeq: 101, lastReadSeq: 1, unreadCount: 100 });
    expect(await aliceSummary()).toMatchObject({ lastSeq: 101, lastReadSeq: 101, unreadCount: 0 });

    // Back online: the SDK pulls what it missed (several pages of 30).
    const syncsBefore = bob.syncs;
    await bob.connect();
    await bob.untilDelivered(direct.id, 101, 15_000);
    await bob.until(() => bob.syncs > syncsBefore, 10_000, 'the catch-up sync to complete');
    await bob.client.syncNow();
    const caughtUp = bob.messages(direct.id).slice(1);
    expect(caughtUp.map((delivery) => delivery.message.seq)).toEqual(range(2, 101));
    expect(caughtUp.map((delivery) => delivery.message.body)).toEqual(bodies);
    expect(caughtUp.every((delivery) => delivery.source === 'sync')).toBe(true);
    expect(bob.seqs(direct.id)).toEqual(range(1, 101));

    // Bob reads everything; Alice (another node) gets the receipt; both lists agree.
    const state = await bob.client.markRead(direct.id, 101);
    expect(state).toEqual({ conversationId: direct.id, lastReadSeq: 101, lastSeq: 101, unreadCount: 0 });
    await alice.until(
      () => alice.reads.some((read) => read.userId === bob.user.id && read.lastReadSeq === 101),
      10_000,
      'the read receipt for 101',
    );
    expect(await bobSummary()).toMatchObject({ lastSeq: 101, lastReadSeq: 101, unreadCount: 0 });
    expect(await aliceSummary()).toMatchObject({ lastSeq: 101, lastReadSeq: 101, unreadCount: 0 });
    const members = await alice.client.rest.listMembers(direct.id);
    expect(members.find((member) => member.user.id === bob.user.id)).toMatchObject({ lastReadSeq: 101 });
    expect(bob.client.conversationState(direct.id)).toMatchObject({ deliveredSeq: 101, lastReadSeq: 101 });
  });
});
