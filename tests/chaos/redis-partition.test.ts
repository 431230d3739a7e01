import { httpRequest } from '@parley/deploy';
import { byNode, expectNothingLost, Fleet, isRunning, Ledger, spreadGroup, testUrls } from '../e2e/support/fleet';
import { within } from '../e2e/support/wait';
import { pacedSendLoop, untilReadyzStatus } from './support/load';
import { TcpProxy } from './support/tcp-proxy';

// One gateway cut off from Redis while everything else keeps it: the gateways reach Redis
// through a TCP proxy the test controls, and the proxy resets the victim node's connections
// (and every reconnect) until healed. The victim must notice within the documented bound
// (its /readyz turns 503), keep its clients' sockets and their sends (they need only the
// message service), and after the heal resubscribe and send `resync`, so its clients end
// with every acked message, once, in order.

jest.setTimeout(90_000);

const MEMBERS = 6;
const SEND_INTERVAL_MS = 150;
/** docs/guarantees.md: a reset link fails the next readiness ping at once; a silent one after its 2 s timeout. */
const NOTICE_BOUND_MS = 2_500;
/** Acks that must happen while the victim is cut off. */
const ACKS_WHILE_CUT = 40;

let proxy: TcpProxy | undefined;
let fleet: Fleet | undefined;

beforeAll(async () => {
  proxy = await TcpProxy.start(Number(new URL(testUrls().redisUrl).port || 6379), new URL(testUrls().redisUrl).hostname);
  fleet = await Fleet.start({ name: 'partition', gatewayEnv: { REDIS_URL: proxy.url } });
});

afterAll(async () => {
  await fleet?.close();
  await proxy?.close();
});

it('a gateway cut off from Redis: not ready within the bound, its clients keep sending, and after the heal nothing acked is lost', async () => {
  const group = await spreadGroup(fleet!, 'x', MEMBERS);
  const nodes = byNode(group.members);
  expect(nodes.size).toBe(3);
  const victimNodeId = group.members[0]!.nodeId!;
  const victim = fleet!.gateway(victimNodeId);
  const onVictim = nodes.get(victimNodeId)!;
  const others = fleet!.topology.gateways.filter((gateway) => gateway.nodeId !== victimNodeId);
  const isVictim = (label: string) => label.includes(`parley-gw-${victimNodeId}`) || label.includes(`parley-gw-sub-${victimNodeId}`);
  // Both of the victim's Redis connections (commands, subscriber) go through the proxy.
  expect(proxy!.count(isVictim)).toBe(2);

  const ledger = new Ledger();
  let running = true;
  const loops = group.members.map((member) => pacedSendLoop(member, group.conversationId, ledger, () => running, SEND_INTERVAL_MS));
  for (const loop of loops) loop.catch(() => undefined);
  await ledger.untilAcked(20, 30_000);

  const cutAt = Date.now();
  expect(proxy!.cut(isVictim)).toBe(2);
  const noticedMs = await untilReadyzStatus(victim.url, 503, cutAt, NOTICE_BOUND_MS);
  const readyz = JSON.parse((await httpRequest(`${victim.url}/readyz`, { timeoutMs: 5000 })).body) as { checks: Record<string, string> };
  expect(readyz.checks['redis']).not.toBe('ok');
  for (const gateway of others) expect((await httpRequest(`${gateway.url}/readyz`, { timeoutMs: 5000 })).status).toBe(200);

  // Cut off, the victim's clients still send (the message service stores and acks).
  const ackedAtCut = ledger.acked.size;
  await ledger.untilAcked(ackedAtCut + ACKS_WHILE_CUT, 30_000);
  const victimAcksWhileCut = [...ledger.acked.keys()].slice(ackedAtCut).filter((id) => onVictim.some((client) => id.startsWith(`${client.label}-`))).length;
  expect(victimAcksWhileCut).toBeGreaterThan(0);
  expect(isRunning(victim.pid)).toBe(true);
  const ackedWhileCut = ledger.acked.size - ackedAtCut;

  const healedAt = Date.now();
  proxy!.heal();
  await untilReadyzStatus(victim.url, 200, healedAt, 20_000);
  const readyAfterMs = Date.now() - healedAt;
  // The victim's clients get `resync` and pull what they missed.
  await Promise.all(onVictim.map((member) => member.until(() => member.frames('resync') >= 1, 15_000, 'a resync frame')));
  await Promise.all(onVictim.map((member) => member.until(() => member.syncs > member.syncsAtResync[0]!, 15_000, 'a sync after the resync')));
  const resyncedMs = Date.now() - healedAt;
  // Nobody lost their socket: the partition was the node's, not its clients'.
  for (const member of group.members) expect(member.hellos).toHaveLength(1);

  await ledger.untilAcked(ledger.acked.size + 20, 30_000);
  running = false;
  await within(Promise.all(loops), 30_000, 'the senders to stop');
  await expectNothingLost('redis partition', ledger, group, 30_000, {
    extra: { noticed_ms: noticedMs, acked_while_cut: ackedWhileCut, victim_clients_acked_while_cut: victimAcksWhileCut, ready_after_heal_ms: readyAfterMs, resynced_ms: resyncedMs },
  });
});
