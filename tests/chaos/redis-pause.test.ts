import { getFreePort, httpRequest, PrivateRedis, waitForReady } from '@parley/deploy';
import { expectNothingLost, Fleet, Ledger, spreadGroup } from '../e2e/support/fleet';
import { within } from '../e2e/support/wait';
import { pacedSendLoop, rssBytes, untilReadyzStatus } from './support/load';

// Redis frozen (SIGSTOP) under steady load, then thawed (SIGCONT). The topology runs on a
// PRIVATE redis-server. A frozen Redis keeps its sockets open and answers nothing, the
// hardest outage to notice: the gateways must report themselves not ready, keep their
// memory bounded (no unbounded queue of commands or events), and after the thaw recover
// by themselves; sends are stored and acked throughout (PostgreSQL is the truth) and every
// client ends with every acked message once, in order.

const PAUSE_MS = Number(process.env['PARLEY_CHAOS_REDIS_PAUSE_MS'] ?? 30_000);
/** Stated bound: a gateway's RSS grows by less than this over the pause. */
const RSS_GROWTH_BOUND_BYTES = 64 * 1024 * 1024;
const MEMBERS = 6;
const SEND_INTERVAL_MS = 200;
/** Readiness pings time out after 2 s (docs/gateway.md); allow a loaded machine. */
const NOT_READY_WITHIN_MS = 5_000;

jest.setTimeout(PAUSE_MS + 90_000);

let redis: PrivateRedis | undefined;
let fleet: Fleet | undefined;

beforeAll(async () => {
  redis = await PrivateRedis.start(await getFreePort());
  fleet = await Fleet.start({ name: 'redis-pause', redisUrl: redis.url });
});

afterAll(async () => {
  redis?.resume();
  await fleet?.close();
  await redis?.stop();
});

it(`Redis paused (SIGSTOP) for ${PAUSE_MS / 1000} s under load: gateways not ready, memory bounded, then recover; nothing acked lost`, async () => {
  const group = await spreadGroup(fleet!, 'z', MEMBERS);
  const gateways = fleet!.topology.gateways;
  const ledger = new Ledger();
  let running = true;
  const loops = group.members.map((member) => pacedSendLoop(member, group.conversationId, ledger, () => running, SEND_INTERVAL_MS));
  // A loop cut short by a failed test rejects when its client closes: not an unhandled rejection.
  for (const loop of loops) loop.catch(() => undefined);
  await ledger.untilAcked(20, 30_000);

  const rssBefore = await Promise.all(gateways.map(async (gateway) => (await rssBytes(gateway.pid))!));
  const peak = [...rssBefore];
  const ackedAtPause = ledger.acked.size;
  expect(redis!.pause()).toBe(true);
  const pausedAt = Date.now();

  // Noticed: every gateway's /readyz turns 503.
  const notReadyMs = Math.max(...(await Promise.all(gateways.map((gateway) => untilReadyzStatus(gateway.url, 503, pausedAt, NOT_READY_WITHIN_MS)))));

  // The pause itself: RSS sampled every second (sampling, not synchronization).
  const sampler = setInterval(() => {
    void Promise.all(gateways.map((gateway) => rssBytes(gateway.pid))).then((values) =>
      values.forEach((value, index) => {
        if (value !== undefined) peak[index] = Math.max(peak[index]!, value);
      }),
    );
  }, 1000);
  try {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, PAUSE_MS - (Date.now() - pausedAt))));
  } finally {
    clearInterval(sampler);
  }
  const ackedDuringPause = ledger.acked.size - ackedAtPause;
  expect(redis!.resume()).toBe(true);
  const resumedAt = Date.now();

  // Recovery by itself: every gateway ready again, the message service too (through nginx).
  await Promise.all(gateways.map((gateway) => waitForReady(`${gateway.url}/readyz`, { timeoutMs: 30_000, intervalMs: 50 })));
  const readyMs = Date.now() - resumedAt;
  await waitForReady(`${fleet!.topology.httpsUrl}/readyz`, { timeoutMs: 30_000, intervalMs: 50, ca: fleet!.topology.caCertPem });
  for (const gateway of gateways) {
    const readyz = JSON.parse((await httpRequest(`${gateway.url}/readyz`)).body) as { checks: Record<string, string> };
    expect(readyz.checks).toMatchObject({ redis: 'ok' });
  }
  // Traffic goes on after the thaw, then stops.
  await ledger.untilAcked(ledger.acked.size + 20, 30_000);
  running = false;
  await within(Promise.all(loops), 30_000, 'the senders to stop');

  const growth = peak.map((value, index) => value - rssBefore[index]!);
  const resyncs = group.members.reduce((sum, member) => sum + member.frames('resync'), 0);
  await expectNothingLost('redis pause', ledger, group, 60_000, {
    extra: {
      pause_ms: resumedAt - pausedAt,
      not_ready_ms: notReadyMs,
      acked_during_pause: ackedDuringPause,
      ready_after_ms: readyMs,
      resync_frames: resyncs,
      max_rss_growth_mib: (Math.max(...growth) / 1048576).toFixed(1),
      max_rss_mib: (Math.max(...peak) / 1048576).toFixed(1),
    },
  });
  // Sends were stored and acked while the bus was frozen.
  expect(ackedDuringPause).toBeGreaterThan(0);
  for (const value of growth) expect(value).toBeLessThan(RSS_GROWTH_BOUND_BYTES);
});
