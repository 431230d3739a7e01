import type { MessageRow } from '@parley/db';
import { ParleyError } from '@parley/protocol';
import type { ItemOutcome } from '@parley/batching';
import * as conversations from '../repositories/conversations-repository';
import type { Executor } from '../repositories/executor';
import * as messages from '../repositories/messages-repository';
import * as sendBatches from '../repositories/send-batch-repository';
import type { SendWrites } from '../repositories/send-batch-repository';

export interface SendRequest {
  userId: string;
  conversationId: string;
  clientMessageId: string;
  body: string;
}

export interface StoredSend {
  row: MessageRow;
  /** True when this was a retry of a send that had already been stored. */
  duplicate: boolean;
}

const retryKey = (conversationId: string, senderId: string, clientMessageId: string) =>
  `${conversationId}/${senderId}/${clientMessageId}`;

/**
 * Stores a batch of sends in the caller's transaction with a fixed number of statements,
 * however many sends and conversations the batch holds: lock the conversations (id
 * order), read memberships, retries and blocks in one statement, then allocate seqs in
 * memory under those locks and write them, the messages and the senders' read markers in
 * another (repositories/send-batch-repository.ts). Seqs stay gapless:
 * the allocation and the inserts commit together or not at all.
 *
 * Each send gets its own answer, as a send on its own would: the original for a retry
 * (even one whose sender has since left: it was acknowledged when they could send),
 * CONVERSATION_NOT_FOUND, NOT_A_MEMBER or USER_BLOCKED. Two sends of the batch with the
 * same client message id are one message: the second is answered as a retry.
 */
export async function storeSendBatch(trx: Executor, requests: readonly SendRequest[]): Promise<Array<ItemOutcome<StoredSend>>> {
  const conversationIds = [...new Set(requests.map((request) => request.conversationId))];
  const locked = new Map((await conversations.lockConversations(trx, conversationIds)).map((row) => [row.id, row]));
  const known = requests.filter((request) => locked.has(request.conversationId));

  const directPeer = (request: SendRequest): string | undefined => {
    const directKey = locked.get(request.conversationId)?.directKey;
    return directKey ? (directKey.split(':').find((id) => id !== request.userId) ?? request.userId) : undefined;
  };
  // Every check in one statement: blocks are read for all direct sends, members or not.
  const checks = await sendBatches.readSendChecks(trx, {
    memberPairs: uniqueBy(known, (r) => `${r.conversationId}/${r.userId}`).map((r) => ({ conversationId: r.conversationId, userId: r.userId })),
    retryKeys: uniqueBy(known, (r) => retryKey(r.conversationId, r.userId, r.clientMessageId)).map((r) => ({
      conversationId: r.conversationId,
      senderId: r.userId,
      clientMessageId: r.clientMessageId,
    })),
    blockPairs: uniqueBy(
      known.flatMap((request) => {
        const peer = directPeer(request);
        return peer ? [{ a: request.userId, b: peer }] : [];
      }),
      (pair) => `${pair.a}/${pair.b}`,
    ),
  });
  // Retries are rare: their stored rows are read only when there are some.
  const stored =
    checks.retries.size === 0
      ? []
      : await messages.findMessagesByClientIds(
          trx,
          uniqueBy(known, (r) => retryKey(r.conversationId, r.userId, r.clientMessageId))
            .filter((r) => checks.retries.has(retryKey(r.conversationId, r.userId, r.clientMessageId)))
            .map((r) => ({ conversationId: r.conversationId, senderId: r.userId, clientMessageId: r.clientMessageId })),
        );
  const byRetryKey = new Map(stored.map((row) => [retryKey(row.conversation_id, row.sender_id, row.client_message_id), row]));

  // Decide each send in order; new ones take the next seq of their conversation.
  type Decision = { outcome: ItemOutcome<StoredSend> } | { newKey: string } | { sameAs: string };
  const next = new Map<string, { lastSeq: number; lastRev: number }>();
  const inserts: Array<SendWrites['messages'][number]> = [];
  const claimed = new Set<string>();
  const decisions: Decision[] = requests.map((request) => {
    const conversation = locked.get(request.conversationId);
    if (!conversation) return { outcome: { ok: false, error: new ParleyError('CONVERSATION_NOT_FOUND') } };
    const key = retryKey(request.conversationId, request.userId, request.clientMessageId);
    const original = byRetryKey.get(key);
    if (original) return { outcome: { ok: true, value: { row: original, duplicate: true } } };
    if (claimed.has(key)) return { sameAs: key };
    if (!checks.members.has(`${request.conversationId}/${request.userId}`)) {
      return { outcome: { ok: false, error: new ParleyError('NOT_A_MEMBER') } };
    }
    const peer = directPeer(request);
    if (peer && checks.blocked.has(`${request.userId}/${peer}`)) return { outcome: { ok: false, error: new ParleyError('USER_BLOCKED') } };
    const counters = next.get(conversation.id) ?? { lastSeq: conversation.lastSeq, lastRev: conversation.lastRev };
    counters.lastSeq += 1;
    counters.lastRev += 1;
    next.set(conversation.id, counters);
    claimed.add(key);
    inserts.push({ ...request, senderId: request.userId, seq: counters.lastSeq, rev: counters.lastRev });
    return { newKey: key };
  });

  // A sender has read up to their latest message of the batch.
  const markers = new Map<string, { conversationId: string; userId: string; seq: number }>();
  for (const insert of inserts) {
    const markerKey = `${insert.conversationId}/${insert.senderId}`;
    const seen = markers.get(markerKey);
    if (!seen || seen.seq < insert.seq) markers.set(markerKey, { conversationId: insert.conversationId, userId: insert.senderId, seq: insert.seq });
  }
  const written = await sendBatches.writeSends(trx, {
    allocations: [...next].map(([conversationId, counters]) => ({ conversationId, ...counters })),
    messages: inserts,
    readMarkers: [...markers.values()],
  });
  const inserted = new Map(written.map((row) => [retryKey(row.conversation_id, row.sender_id, row.client_message_id), row]));

  return decisions.map((decision) => {
    if ('outcome' in decision) return decision.outcome;
    const key = 'newKey' in decision ? decision.newKey : decision.sameAs;
    const row = inserted.get(key);
    if (!row) return { ok: false, error: new Error(`store batch: no inserted row for ${key}`) };
    return { ok: true, value: { row, duplicate: 'sameAs' in decision } };
  });
}

function uniqueBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const item of items) if (!seen.has(key(item))) seen.set(key(item), item);
  return [...seen.values()];
}
