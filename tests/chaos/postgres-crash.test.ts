import { within } from '../e2e/support/wait';
import { expectNothingLost, Fleet, Ledger, sendLoop, spreadGroup } from '../e2e/support/fleet';
import { rawSendLoop, type RawSender } from './support/load';
import { PrivatePostgres } from './support/postgres-server';

// PostgreSQL crashes (`pg_ctl stop -m immediate`: no checkpoint, WAL replay on the next
// start) under steady load, and comes back. The topology runs on a PRIVATE cluster, so the
// shared server other test files use is never touched. Raw senders log every send's
// outcome as the wire gave it (ack, error frame, or no reply). While PostgreSQL is down
// every send is refused with a retryable error and none is acked; everything acked before
// survives the crash; sends are acked again after the restart without anyone's help; and
// the checker finds nothing acked lost, duplicated or out of order.

jest.setTimeout(120_000);

const MEMBERS = 6;
/** Failed sends every raw sender must see while PostgreSQL is down (keeps it down a while). */
const FAILURES_WHILE_DOWN = 15;

let pg: PrivatePostgres | undefined;
let fleet: Fleet | undefined;

beforeAll(async () => {
  pg = await PrivatePostgres.start();
  fleet = await Fleet.start({ name: 'pg', databaseUrl: pg.url });
});

afterAll(async () => {
  await fleet?.close();
  await pg?.destroy();
});

it('PostgreSQL stopped in immediate mode under load: retryable errors and no ack while down, nothing acked lost, service resumes by itself', async () => {
  const group = await spreadGroup(fleet!, 'p', MEMBERS);
  const ledger = new Ledger();
  let running = true;
  const senders: RawSender[] = [];
  const loops = group.members.map((member) =>
    rawSendLoop(fleet!, member, group.conversationId, ledger, () => running, {
      onSender: (sender) => {
        senders.push(sender);
        ledger.changed.notify();
      },
    }),
  );
  for (const loop of loops) loop.catch(() => undefined);
  await ledger.changed.until(() => senders.length === MEMBERS, 20_000, 'every raw sender open');
  await ledger.untilAcked(30, 30_000);

  // Crash.
  const ackedBefore = new Map(ledger.acked);
  const stoppingAt = Date.now();
  await within(pg!.stopImmediate(), 30_000, 'PostgreSQL to stop');
  const stoppedAt = Date.now();

  // Every sender sees refusals; each one retryable.
  const failuresSince = (sender: RawSender, at: number) => sender.outcomes.filter((outcome) => outcome.at >= at && outcome.kind === 'failed');
  await ledger.changed.until(
    () => senders.every((sender) => failuresSince(sender, stoppedAt).length >= FAILURES_WHILE_DOWN),
    30_000,
    () => `${FAILURES_WHILE_DOWN} failed sends per sender (${senders.map((sender) => failuresSince(sender, stoppedAt).length).join(', ')})`,
  );
  // REST through nginx says the same: 503 UNAVAILABLE, retryable.
  const rest = await group.members[0]!.client.rest
    .sendMessage(group.conversationId, { clientMessageId: 'rest-while-down', body: 'rest while down' })
    .then(
      () => ({ status: 200, code: 'OK', retryable: false }),
      (error: { status?: number; code: string; retryable: boolean }) => ({ status: error.status, code: error.code, retryable: error.retryable }),
    );
  expect(rest).toEqual({ status: 503, code: 'UNAVAILABLE', retryable: true });
  // An SDK send made while down: the SDK retries it with its client message id until stored.
  const sdkSends = sendLoop(group.members[1]!, group.conversationId, ledger, (index) => index < 3);
  sdkSends.catch(() => undefined);

  const whileDown = senders.flatMap((sender) => sender.outcomes.filter((outcome) => outcome.at >= stoppedAt));
  const refusals = whileDown.filter((outcome) => outcome.kind === 'failed');
  const codes = [...new Set(refusals.map((outcome) => `${outcome.code}${outcome.retryable ? '' : ' (not retryable)'}`))];
  expect(codes).toEqual(['UNAVAILABLE']);
  expect(whileDown.filter((outcome) => outcome.kind === 'acked')).toEqual([]);

  // Restart: acks resume by themselves.
  const restartingAt = Date.now();
  const downMs = restartingAt - stoppingAt;
  await within(pg!.startServer(), 30_000, 'PostgreSQL to start again');
  const ackedAtRestart = ledger.acked.size;
  await ledger.changed.until(
    () => senders.every((sender) => sender.outcomes.some((outcome) => outcome.at >= restartingAt && outcome.kind === 'acked')),
    30_000,
    () => `an ack for every raw sender after the restart: ${JSON.stringify(senders.map((sender) => sender.outcomes.filter((outcome) => outcome.at >= restartingAt).slice(-3)))} logs ${fleet!.topology.workDir}`,
  );
  const firstAckAfter = Math.min(
    ...senders.flatMap((sender) => sender.outcomes.filter((outcome) => outcome.at >= restartingAt && outcome.kind === 'acked').map((outcome) => outcome.at)),
  );
  const recoveryMs = firstAckAfter - restartingAt;
  const allAckedAfterMs = Date.now() - restartingAt;
  await ledger.untilAcked(ackedAtRestart + 30, 30_000);
  running = false;
  await within(Promise.all([...loops, sdkSends]), 30_000, 'the senders to stop');

  // Everything acked before the crash is there, under the seq its ack named.
  const stats = await expectNothingLost('postgres crash', ledger, group, 30_000, {
    allowUnacked: true,
    extra: { down_ms: downMs, refused_while_down: refusals.length, recovery_ms: recoveryMs, every_sender_acked_ms: allAckedAfterMs },
  });
  for (const [clientMessageId, message] of ackedBefore) expect(ledger.acked.get(clientMessageId)).toEqual(message);
  expect(stats.failed).toBeGreaterThanOrEqual(MEMBERS * FAILURES_WHILE_DOWN);
  // A refused send may still be stored if the connection died during its COMMIT; the
  // checker allows that once (unacked-stored) and counts any second copy as a duplicate.
  expect(stats.acked).toBeGreaterThan(ackedAtRestart);
});
