import type { MessageRow } from '@parley/db';
import { ParleyError } from '@parley/protocol';
import type { ItemOutcome } from '@parley/batching';
import type { Executor } from '../repositories/executor';
import * as sendBatches from '../repositories/send-batch-repository';

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

/**
 * Stores a batch of sends in one statement and one transaction of its own
 * (`store_send_batch`, migrations/src/0003-store-send-batch.ts): the conversations are
 * locked in id order, then memberships, retries and blocks are read and seqs allocated
 * under those locks, and the messages, the conversations' counters and the senders' read
 * markers written. Seqs stay gapless: the allocation and the inserts commit together or
 * not at all.
 *
 * Each send gets its own answer, as a send on its own would: the original for a retry
 * (even one whose sender has since left: it was acknowledged when they could send),
 * CONVERSATION_NOT_FOUND, NOT_A_MEMBER or USER_BLOCKED. Two sends of the batch with the
 * same client message id are one message: the second is answered as a retry.
 */
export async function storeSendBatch(db: Executor, requests: readonly SendRequest[]): Promise<Array<ItemOutcome<StoredSend>>> {
  const stored = await sendBatches.storeSends(
    db,
    requests.map((request) => ({
      conversationId: request.conversationId,
      senderId: request.userId,
      clientMessageId: request.clientMessageId,
      body: request.body,
    })),
  );
  return stored.map(({ outcome, row }): ItemOutcome<StoredSend> => {
    if (outcome === 'new' || outcome === 'same' || outcome === 'duplicate') {
      if (!row) return { ok: false, error: new Error(`store batch: no row for a ${outcome} send`) };
      return { ok: true, value: { row, duplicate: outcome !== 'new' } };
    }
    return { ok: false, error: new ParleyError(outcome) };
  });
}
