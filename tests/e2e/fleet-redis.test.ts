import { getFreePort, httpRequest, PrivateRedis, waitForReady } from '@parley/deploy';
import { Redis } from 'ioredis';
import { expectNothingLost, Fleet, Ledger, sendLoop, spreadGroup } from './support/fleet';
import { within } from './support/wait';

// A Redis restart under traffic (docs/gateway.md, "Redis outage"). The topology runs on a
// PRIVATE redis-server, so the shared Redis other test files use is never touched. Redis is
// stopped (SIGTERM) and a new one started on the same port while clients send: sends keep
// being stored (PostgreSQL is the truth), the nodes recover by themselves, every socket
// gets `resync`, and after the SDK's sync everyone has every acked message, once.

jest.setTimeout(90_000);

const SENDERS = 6;
/** Messages each sender still sends once the fleet has recovered. */
const AFTER_RECOVERY = 5;
/** Upper bound per sender, so a stuck phase cannot loop forever. */
const MAX_PER_SENDER = 300;

let port: number;
let redis: PrivateRedis | undefined;
let fleet: Fleet;

beforeAll(async () => {
  port = await getFreePort();
  redis = await PrivateRedis.start(port);
  fleet = await Fleet.start({ name: 'redis', redisUrl: redis.url });
});

afterAll(async () => {
  await fleet?.close();
  if (redis) await within(redis.stop(), 10_000, 'the private redis-server to stop');
});

it('Redis killed (SIGKILL) and restarted under traffic: nodes recover, clients get resync, nothing acked is lost or doubled', async () => {
  const group = await spreadGroup(fleet, 'r', SENDERS);
  expect(new Set(group.members.map((member) => member.nodeId)).size).toBe(3);
  const gateways = fleet.topology.gateways;

  // Each sender keeps sending until it has sent AFTER_RECOVERY more once recovery is seen.
  const ledger = new Ledger();
  const next = new Map<string, number>();
  /** Each sender's last index, set once recovery is seen. */
  const lastIndex = new Map<string, number>();
  const loops = group.members.map((member) =>
    sendLoop(member, group.conversationId, ledger, (index) => {
      next.set(member.label, index);
      const last = lastIndex.get(member.label);
      return index < MAX_PER_SENDER && (last === undefined || index <= last);
    }),
  );
  await ledger.untilAcked(20, 30_000);
  expect(group.members.map((member) => member.frames('resync'))).toEqual(group.members.map(() => 0));

  // Redis crashes: SIGKILL to the private server (no goodbye on any socket).
  const current = redis!;
  redis = undefined;
  await within(current.stop('SIGKILL'), 10_000, 'redis-server to exit');
  const ackedAtStop = ledger.acked.size;
  // Readiness says so (the gateways check Redis)...
  await Promise.all(
    gateways.map((gateway) =>
      waitForReady(`${gateway.url}/readyz`, { timeoutMs: 10_000, intervalMs: 25, isReady: (response) => response.status === 503 }),
    ),
  );
  // ...and sends are still stored and acknowledged without the bus.
  await ledger.untilAcked(ackedAtStop + 10, 20_000);

  // A new redis-server on the same port (empty: no presence keys, no subscriptions).
  redis = await PrivateRedis.start(port);
  const restartedAt = Date.now();
  await Promise.all(gateways.map((gateway) => waitForReady(`${gateway.url}/readyz`, { timeoutMs: 20_000, intervalMs: 50 })));
  const readyAfterMs = Date.now() - restartedAt;
  await Promise.all(
    group.members.map((member) => member.until(() => member.frames('resync') >= 1, 15_000, 'a resync frame')),
  );
  // Each client answered its resync with a complete pull.
  await Promise.all(
    group.members.map((member) => member.until(() => member.syncs > member.syncsAtResync[0]!, 15_000, 'a sync after the resync')),
  );
  const resyncAfterMs = Date.now() - restartedAt;
  process.stdout.write(`[redis] gateways ready ${readyAfterMs} ms and every client resynced ${resyncAfterMs} ms after the restart\n`);
  for (const gateway of gateways) {
    const readyz = JSON.parse((await httpRequest(`${gateway.url}/readyz`)).body) as { checks: Record<string, string> };
    expect(readyz.checks).toMatchObject({ redis: 'ok' });
  }
  // The message service recovers too (its /readyz checks Redis), through nginx.
  await waitForReady(`${fleet.topology.httpsUrl}/readyz`, { timeoutMs: 20_000, intervalMs: 50, ca: fleet.topology.caCertPem });
  // Nobody lost their socket: the outage was the bus's, not the clients'.
  for (const member of group.members) expect(member.hellos).toHaveLength(1);

  // Traffic goes on after the recovery, then stops.
  for (const member of group.members) lastIndex.set(member.label, (next.get(member.label) ?? 0) + AFTER_RECOVERY);
  await within(Promise.all(loops), 60_000, 'every send to be acknowledged');

  await expectNothingLost('redis restart', ledger, group, 30_000, { extra: { ready_ms: readyAfterMs, resynced_ms: resyncAfterMs } });
});

it('a publish lost while only the message service’s Redis link was broken: once it is back, the recipient gets the message', async () => {
  // DESIGN.md invariant 3: a Redis outage ends in a pull that restores the exact history.
  // Here the outage is the message service's alone: the message is stored and acked, its
  // PUBLISH fails, and no gateway lost its subscription, so none resyncs by itself. In a
  // quiet conversation no later seq reveals the gap either. The recipient must still end up
  // with the message once the message service's connection is back.
  const alice = await fleet.register('alice');
  const bob = await fleet.register('bob');
  const direct = await alice.client.rest.openDirect(bob.user.id);
  await fleet.connectAll([alice, bob]);
  await alice.client.send(direct.id, 'first');
  await bob.untilDelivered(direct.id, 1, 10_000);

  const admin = new Redis(redis!.url, { maxRetriesPerRequest: 1 });
  try {
    // The broken link, made deterministic: PUBLISH is refused (NOPERM) while the message is
    // sent; then the message service's command connection is cut and reconnects, as after a
    // real outage of its link. The gateways' subscriber connections are never touched.
    await admin.call('ACL', 'SETUSER', 'default', '-publish');
    const stored = await alice.client.send(direct.id, 'second, published into the void');
    expect(stored.seq).toBe(2);
    await admin.call('ACL', 'SETUSER', 'default', '+publish');
    const clients = String(await admin.call('CLIENT', 'LIST', 'TYPE', 'normal'));
    const ids = clients
      .split('\n')
      .filter((line) => / name=parley-message( |$)/.test(line))
      .map((line) => /(?:^| )id=(\d+)/.exec(line)![1]!);
    expect(ids).toHaveLength(1);
    expect(await admin.call('CLIENT', 'KILL', 'ID', ids[0]!)).toBe(1);
  } finally {
    await admin.call('ACL', 'SETUSER', 'default', '+publish');
    admin.disconnect();
  }
  await bob.untilDelivered(direct.id, 2, 15_000);
  expect(bob.seqs(direct.id)).toEqual([1, 2]);
  expect(bob.hellos).toHaveLength(1);
});
