import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateSigningJwk } from '@parley/auth';
import { ParleyClient, type Message } from '@parley/client';
import { getFreePort, REPO_ROOT, startProcess, waitForReady, type ManagedProcess } from '@parley/deploy';
import { FAULT_EXIT_CODE } from '@parley/message-service';
import pg from 'pg';
import { PASSWORD, testUrls } from '../e2e/support/fleet';
import { within } from '../e2e/support/wait';
import { check, formatReport, invariantCounters, zeroes, type SendRecord } from './support/checker';

// The message service dies between COMMIT and its reply (the test-only fault hook
// FAULT_EXIT_AFTER_COMMIT, refused outside NODE_ENV=test): the message is stored, the
// client never heard so. Its retry with the same client message id, against the restarted
// service, returns the original seq, and the row exists once (DESIGN.md invariant 1).

jest.setTimeout(60_000);

const HOST = '127.0.0.1';
let workDir: string;
let port: number;
let signingKey: string;
let running: ManagedProcess | undefined;

async function startMessageService(faultExitAfterCommit: boolean): Promise<ManagedProcess> {
  const { databaseUrl, redisUrl } = testUrls();
  const child = await startProcess({
    name: faultExitAfterCommit ? 'message-with-fault' : 'message',
    command: process.execPath,
    args: [path.join(REPO_ROOT, 'services/message/dist/server.js')],
    env: {
      ...process.env,
      NODE_ENV: 'test',
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      BUS_PREFIX: `parley-chaos-commit-${port}:`,
      AUTH_SIGNING_KEY: signingKey,
      HOST,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      FAULT_EXIT_AFTER_COMMIT: String(faultExitAfterCommit),
    },
    logDir: workDir,
  });
  running = child;
  await waitForReady(`http://${HOST}:${port}/readyz`, { timeoutMs: 20_000, process: child });
  return child;
}

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'parley-commit-die-'));
  port = await getFreePort(HOST);
  signingKey = JSON.stringify(await generateSigningJwk('commit-then-die'));
});

afterAll(async () => {
  await running?.stop('SIGTERM', 10_000);
  await rm(workDir, { recursive: true, force: true });
});

it('killed between COMMIT and the reply: the retry returns the original seq and the row exists once', async () => {
  const faulty = await startMessageService(true);
  const client = new ParleyClient({ baseUrl: `http://${HOST}:${port}` });
  await client.register({ username: `die_${port}_${Date.now().toString(36)}`, password: PASSWORD });
  const conversation = await client.rest.createGroup({ title: 'commit then die', memberIds: [] });
  const clientMessageId = `die-${port}-1`;
  const body = 'stored, but nobody was told';

  // The send commits, then the process exits before answering.
  const first = await client.rest.sendMessage(conversation.id, { clientMessageId, body }).then(
    () => 'answered',
    (error: { code: string }) => error.code,
  );
  expect(first).toBe('NETWORK_ERROR');
  expect(await within(faulty.waitForExit(), 10_000, 'the message service to exit')).toEqual({ code: FAULT_EXIT_CODE, signal: null });

  // The row is there (committed), though the client never got an ack.
  const db = new pg.Client({ connectionString: testUrls().databaseUrl });
  await db.connect();
  const rows = async () =>
    (await db.query<{ seq: string }>('SELECT seq FROM messages WHERE conversation_id = $1 AND client_message_id = $2', [conversation.id, clientMessageId]))
      .rows.map((row) => Number(row.seq));
  try {
    expect(await rows()).toEqual([1]);

    // The restarted service (fault off) answers the retry with the original.
    await startMessageService(false);
    const retry = await client.rest.sendMessage(conversation.id, { clientMessageId, body });
    expect(retry).toMatchObject({ duplicate: true, message: { seq: 1, clientMessageId, body } });
    expect(await rows()).toEqual([1]);
    // And the next send takes the next seq: no gap, no second copy.
    const next = await client.rest.sendMessage(conversation.id, { clientMessageId: `die-${port}-2`, body: 'after the restart' });
    expect(next).toMatchObject({ duplicate: false, message: { seq: 2 } });

    const history = (await client.rest.history(conversation.id, { after: 0, limit: 200 })).messages;
    const records: SendRecord[] = [
      { clientMessageId, conversationId: conversation.id, sender: 'die', body, outcome: { kind: 'acked', message: retry.message } },
      { clientMessageId: `die-${port}-2`, conversationId: conversation.id, sender: 'die', body: 'after the restart', outcome: { kind: 'acked', message: next.message as Message } },
    ];
    const report = check(records, [{ member: 'die', conversationId: conversation.id, history }]);
    process.stdout.write(`${formatReport('commit then die', report, { first_attempt: first, exit_code: FAULT_EXIT_CODE, rows: (await rows()).length })}\n`);
    expect(invariantCounters(report)).toEqual(zeroes());
  } finally {
    await db.end();
    await client.close();
  }
});
