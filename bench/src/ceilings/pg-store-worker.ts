/**
 * A client process of the storing-transaction ceiling: opens its share of the
 * connections, then has each send messages back to back (one transaction in flight per
 * connection, as a pooled service connection does) for the given time, recording the
 * commit latency of each. Several such processes keep node-postgres from being the limit.
 */
import pg from 'pg';
import { Histogram, type HistogramData } from '../load/histogram';
import { FOUR_STATEMENTS, SERVICE, SINGLE_STATEMENT } from './pg-store-sql';

export type PgStoreVariant = 'service' | 'four-statement' | 'single-statement';

export interface WorkConversation {
  id: string;
  kind: 'direct' | 'group';
  members: string[];
}

export interface PgConnectCommand {
  type: 'connect';
  databaseUrl: string;
  connections: number;
}

export interface PgRunCommand {
  type: 'run';
  variant: PgStoreVariant;
  conversations: WorkConversation[];
  durationMs: number;
  /** Makes client message ids unique across runs and processes. */
  tag: string;
  bodyBytes: number;
}

export interface PgDoneReply {
  type: 'done';
  transactions: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  histogram: HistogramData;
}

let clients: pg.Client[] = [];

async function service(client: pg.Client, conversation: WorkConversation, sender: string, peer: string | null, clientMessageId: string, body: string): Promise<void> {
  await client.query(SERVICE.begin);
  try {
    const locked = await client.query(SERVICE.lockConversation, [conversation.id]);
    if (locked.rowCount === 0) throw new Error('conversation not found');
    const member = await client.query(SERVICE.findMember, [conversation.id, sender]);
    const existing = await client.query(SERVICE.findByClientId, [conversation.id, sender, clientMessageId]);
    if (existing.rowCount !== 0) throw new Error('unexpected duplicate');
    if (member.rowCount === 0) throw new Error('not a member');
    if (peer !== null) {
      const blocked = await client.query(SERVICE.findBlock, [sender, peer, sender, peer, 1]);
      if (blocked.rowCount !== 0) throw new Error('blocked');
    }
    const allocated = await client.query<{ last_seq: string; last_rev: string }>(SERVICE.allocateSeq, [1, 1, conversation.id]);
    const { last_seq: seq, last_rev: rev } = allocated.rows[0]!;
    await client.query(SERVICE.insertMessage, [conversation.id, seq, rev, sender, clientMessageId, body]);
    await client.query(SERVICE.setReadMarker, [seq, conversation.id, sender, seq]);
    await client.query(SERVICE.commit);
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  }
}

// The lean forms run as named prepared statements, parsed and planned once per
// connection, as a tuned implementation would; the service form is sent unnamed, as
// Kysely sends it, and is parsed and planned every time.
const allocateSeq = { name: 'ceiling_allocate_seq', text: FOUR_STATEMENTS.allocateSeq };
const insertMessage = { name: 'ceiling_insert_message', text: FOUR_STATEMENTS.insertMessage };
const storeMessage = { name: 'ceiling_store_message', text: SINGLE_STATEMENT };

async function fourStatements(client: pg.Client, conversation: WorkConversation, sender: string, clientMessageId: string, body: string): Promise<void> {
  await client.query(FOUR_STATEMENTS.begin);
  try {
    const allocated = await client.query<{ last_seq: string; last_rev: string }>({ ...allocateSeq, values: [conversation.id] });
    const { last_seq: seq, last_rev: rev } = allocated.rows[0]!;
    const stored = await client.query({ ...insertMessage, values: [conversation.id, seq, rev, sender, clientMessageId, body] });
    if (stored.rowCount === 0) throw new Error('unexpected duplicate');
    await client.query(FOUR_STATEMENTS.commit);
  } catch (error) {
    await client.query(FOUR_STATEMENTS.rollback).catch(() => undefined);
    throw error;
  }
}

async function singleStatement(client: pg.Client, conversation: WorkConversation, sender: string, peer: string | null, clientMessageId: string, body: string): Promise<void> {
  const stored = await client.query({ ...storeMessage, values: [conversation.id, sender, clientMessageId, body, peer] });
  if (stored.rowCount === 0) throw new Error('not stored (duplicate, not a member or blocked)');
}

async function run(command: PgRunCommand): Promise<PgDoneReply> {
  const histogram = new Histogram();
  const body = 'm'.repeat(command.bodyBytes);
  const started = performance.now();
  const deadline = started + command.durationMs;
  let transactions = 0;
  let errors = 0;
  let firstError: string | undefined;
  await Promise.all(
    clients.map(async (client, lane) => {
      for (let counter = 0; performance.now() < deadline; counter += 1) {
        const conversation =
          command.conversations.length === 1 ? command.conversations[0]! : command.conversations[Math.floor(Math.random() * command.conversations.length)]!;
        // Direct: either side sends; group: the senders take turns, so every member sends.
        const senderIndex = conversation.kind === 'direct' ? Math.floor(Math.random() * 2) : (counter * clients.length + lane) % conversation.members.length;
        const sender = conversation.members[senderIndex]!;
        const peer = conversation.kind === 'direct' ? conversation.members[1 - senderIndex]! : null;
        const clientMessageId = `${command.tag}-${lane}-${counter}`;
        const begun = performance.now();
        try {
          if (command.variant === 'service') await service(client, conversation, sender, peer, clientMessageId, body);
          else if (command.variant === 'four-statement') await fourStatements(client, conversation, sender, clientMessageId, body);
          else await singleStatement(client, conversation, sender, peer, clientMessageId, body);
          transactions += 1;
          histogram.record((performance.now() - begun) * 1000);
        } catch (error) {
          errors += 1;
          firstError ??= (error as Error).message;
        }
      }
    }),
  );
  return { type: 'done', transactions, errors, firstError, elapsedMs: performance.now() - started, histogram: histogram.toData() };
}

process.on('message', (command: { type: string }) => {
  const fail = (error: Error) => process.send!({ type: 'error', message: error.stack ?? error.message });
  if (command.type === 'connect') {
    const { databaseUrl, connections } = command as PgConnectCommand;
    clients = Array.from({ length: connections }, () => new pg.Client({ connectionString: databaseUrl, application_name: 'parley-ceiling' }));
    Promise.all(clients.map((client) => client.connect())).then(() => process.send!({ type: 'connected' }), fail);
  } else if (command.type === 'run') {
    run(command as PgRunCommand).then((reply) => process.send!(reply), fail);
  } else if (command.type === 'exit') {
    Promise.allSettled(clients.map((client) => client.end())).then(() => process.exit(0), () => process.exit(0));
  }
});

process.on('disconnect', () => process.exit(0));
