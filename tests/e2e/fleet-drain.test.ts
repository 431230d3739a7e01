import { byNode, expectNothingLost, Fleet, Ledger, sendLoop, spreadGroup } from './support/fleet';
import { within } from './support/wait';

// SIGTERM drain of one gateway under traffic (docs/gateway.md, "Drain"): its sockets are
// closed with 1012 spread over DRAIN_WINDOW_MS, the SDK reconnects at once through nginx to
// the other nodes, nothing is lost, and the process exits within the window.

jest.setTimeout(90_000);

const DRAIN_WINDOW_MS = 2000;
/** Exit comes when the last socket is gone; allow process teardown and a loaded machine. */
const EXIT_MARGIN_MS = 1500;
const SENDERS = 6;
const PER_SENDER = 30;

let fleet: Fleet;

beforeAll(async () => {
  fleet = await Fleet.start({ name: 'drain', drainWindowMs: DRAIN_WINDOW_MS });
});

afterAll(async () => {
  await fleet?.close();
});

it('SIGTERM drains a node under traffic: its clients get 1012 and move to the others, nothing is lost, the process exits within the window', async () => {
  const group = await spreadGroup(fleet, 'd', SENDERS);
  const nodes = byNode(group.members);
  expect(nodes.size).toBe(3);
  const drainedNodeId = group.members[0]!.nodeId!;
  const drained = nodes.get(drainedNodeId)!;
  expect(drained).toHaveLength(2);
  const gateway = fleet.gateway(drainedNodeId);

  const ledger = new Ledger();
  const loops = group.members.map((member) => sendLoop(member, group.conversationId, ledger, (index) => index < PER_SENDER));
  await ledger.untilAcked(30, 30_000);

  const signalledAt = Date.now();
  expect(gateway.kill('SIGTERM')).toBe(true);
  const exit = await within(gateway.waitForExit(), DRAIN_WINDOW_MS + 10_000, 'the drained gateway to exit');
  const exitMs = Date.now() - signalledAt;
  process.stdout.write(`[drain] window=${DRAIN_WINDOW_MS}ms exited after ${exitMs}ms with ${JSON.stringify(exit)}\n`);
  expect(exit).toEqual({ code: 0, signal: null });
  expect(exitMs).toBeLessThanOrEqual(DRAIN_WINDOW_MS + EXIT_MARGIN_MS);

  for (const client of drained) {
    await client.until(
      () => client.client.connectionState === 'open' && client.nodeId !== drainedNodeId,
      15_000,
      'a new socket on another node',
    );
    const closes = client.states.filter((change) => change.at >= signalledAt && change.closeCode !== undefined);
    expect(closes.map((change) => change.closeCode)).toEqual([1012]);
  }
  // Spread over the window: the second socket was closed well after the first.
  const closedAt = drained.map((client) => client.states.find((change) => change.closeCode === 1012)!.at).sort((a, b) => a - b);
  expect(closedAt[1]! - closedAt[0]!).toBeGreaterThanOrEqual(DRAIN_WINDOW_MS / 2);
  for (const client of group.members.filter((member) => !drained.includes(member))) {
    expect(client.hellos).toHaveLength(1);
  }

  await within(Promise.all(loops), 60_000, 'every send to be acknowledged');
  // The reconnect is all a client sees: no send was refused or retried after an error reply
  // (the SDK reports each one, even those it retries by itself).
  expect(group.members.flatMap((member) => member.errors.map((error) => `${member.label}: ${error.code} ${error.message}`))).toEqual([]);
  await expectNothingLost('drain', ledger, group, 30_000, { extra: { exit_ms: exitMs } });
});
