import { percentile } from '../chaos/support/checker';
import { byNode, expectNothingLost, Fleet, Ledger, sendLoop, spreadGroup } from './support/fleet';
import { within } from './support/wait';

// kill -9 of a gateway process while its clients are sending: the SDK reconnects through
// nginx to the surviving nodes, retries unacknowledged sends with the same client message
// id, and pulls what it missed. Nothing acknowledged is lost, nothing is shown twice.
// Time to caught-up: from the kill until a victim's client is open on another node and
// shows every message acked before the kill.

jest.setTimeout(90_000);

const SENDERS = 9;
const PER_SENDER = 20;

let fleet: Fleet;

beforeAll(async () => {
  fleet = await Fleet.start({ name: 'kill' });
});

afterAll(async () => {
  await fleet?.close();
});

it('SIGKILL of a node under traffic: its clients move to the others; every send is acked, stored once and delivered once to everyone', async () => {
  const group = await spreadGroup(fleet, 'k', SENDERS);
  const nodes = byNode(group.members);
  expect(nodes.size).toBe(3);
  for (const onNode of nodes.values()) expect(onNode).toHaveLength(3);
  const victimNodeId = group.members[0]!.nodeId!;
  const victims = nodes.get(victimNodeId)!;
  const victim = fleet.gateway(victimNodeId);

  const ledger = new Ledger();
  const loops = group.members.map((member) => sendLoop(member, group.conversationId, ledger, (index) => index < PER_SENDER));

  // Kill it mid-traffic: some messages acked, the victims' loops still running.
  await ledger.untilAcked(40, 30_000);
  const ackedBy = (label: string) => [...ledger.acked.keys()].filter((id) => id.startsWith(`${label}-`)).length;
  const victimsAckedAtKill = victims.map((client) => ackedBy(client.label));
  const seqsAtKill = [...ledger.acked.values()].map((message) => message.seq);
  const killedAt = Date.now();
  // Each victim is caught up once open on another node and showing every message acked before the kill.
  const caughtUp = victims.map((client) =>
    client
      .until(
        () => {
          if (client.client.connectionState !== 'open' || client.nodeId === victimNodeId) return false;
          const seen = new Set(client.seqs(group.conversationId));
          return seqsAtKill.every((seq) => seen.has(seq));
        },
        30_000,
        'caught up on another node',
      )
      .then(() => Date.now() - killedAt),
  );
  expect(victim.kill('SIGKILL')).toBe(true);
  expect(await within(victim.waitForExit(), 5_000, 'the killed gateway to exit')).toEqual({ code: null, signal: 'SIGKILL' });
  expect(victimsAckedAtKill.every((count) => count < PER_SENDER)).toBe(true);

  // Every send is eventually acknowledged (retried with its client message id).
  await within(Promise.all(loops), 60_000, 'every send to be acknowledged');
  expect(ledger.acked.size).toBe(SENDERS * PER_SENDER);

  // The victims lost their socket and came back through nginx on a surviving node.
  for (const client of victims) {
    await client.until(
      () => client.client.connectionState === 'open' && client.nodeId !== victimNodeId,
      20_000,
      'a new socket on another node',
    );
    expect(client.states.some((change) => change.at >= killedAt && change.state === 'reconnecting')).toBe(true);
    expect(client.hellos.slice(1).every((nodeId) => nodeId !== victimNodeId)).toBe(true);
  }
  const backAfter = victims.map((client) => client.states.find((change) => change.at >= killedAt && change.state === 'open')!.at - killedAt);
  const caughtUpMs = await Promise.all(caughtUp);
  process.stdout.write(
    `[kill -9] the victim's clients were open again on other nodes after ${backAfter.join(', ')} ms, caught up after ${caughtUpMs.join(', ')} ms\n`,
  );
  // The others kept their sockets.
  for (const client of group.members.filter((member) => !victims.includes(member))) {
    expect(client.hellos).toHaveLength(1);
  }

  await expectNothingLost('kill -9', ledger, group, 30_000, {
    extra: { victims: victims.length, p99_caught_up_ms: percentile(caughtUpMs, 99), max_reopen_ms: Math.max(...backAfter) },
  });
});
