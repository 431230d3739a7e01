import { formatSummary, runScenario, type LoadResult } from '../../bench/src/load';
import { testUrls } from '../support/message-harness';

// A few seconds of the native load generator against the real topology (message service,
// 2 gateways, nginx) on the test database and Redis, so the generator cannot rot between
// benchmark runs. It asserts what must hold on any box: the run completes, every acked
// message reached every online member exactly once, seqs stayed gapless. Never timings:
// this box is shared and its times are noise.

jest.setTimeout(90_000);

let result: LoadResult;

beforeAll(async () => {
  const { databaseUrl, redisUrl } = testUrls();
  result = await runScenario({
    scenario: 'chat',
    users: 50,
    ratePerSecond: 50,
    warmupSeconds: 1,
    durationSeconds: 3,
    // Two forked workers, so merging their results is exercised too.
    workers: 2,
    sourceAddresses: 4,
    idleSeconds: 0.5,
    drainQuietMs: 500,
    // The PostgreSQL figure is not asserted: skip the idle pauses that make it exact.
    pgStatsSettleMs: 0,
    target: { kind: 'start', gateways: 2, databaseUrl, redisUrl },
  });
  process.stdout.write(`${formatSummary(result)}\n`);
});

describe('load generator smoke run (chat, 50 users, 2 gateways, 2 workers)', () => {
  it('connects every client', () => {
    expect(result.clients).toMatchObject({ requested: 50, connected: 50, failed: {}, workers: 2 });
  });

  it('sends, gets acks and delivers', () => {
    expect(result.sends.acked).toBeGreaterThan(0);
    expect(result.deliveries.total).toBeGreaterThan(0);
    expect(result.check.expected).toBeGreaterThan(0);
  });

  it('loses and duplicates nothing, with gapless seqs', () => {
    expect(result.check).toMatchObject({ lost: 0, duplicates: 0, unexpected: 0, duplicateAcks: 0, seqGaps: 0 });
    expect(result.ok).toBe(true);
  });

  it('reads the processes own figures', () => {
    expect(result.figures.gateways).toHaveLength(2);
    for (const gateway of result.figures.gateways) expect(gateway.connections).toBe(25);
    expect(result.figures.redis.total).toBeGreaterThan(0);
    // And the result is plain data.
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  });
});
