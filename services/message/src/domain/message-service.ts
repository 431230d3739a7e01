import type { Database, Kysely, MessageRow } from '@parley/db';
import {
  ParleyError,
  type HistoryPage,
  type HistoryQuery,
  type Message,
  type ReadState,
  type SendMessageBody,
} from '@parley/protocol';
import * as conversations from '../repositories/conversations-repository';
import { databaseErrorKind } from '../repositories/database-errors';
import * as messages from '../repositories/messages-repository';
import type { EventPublisher } from './event-publisher';
import { MicroBatcher, type MicroBatcherOptions, type ItemOutcome } from '@parley/batching';
import { storeSendBatch, type SendRequest, type StoredSend } from './store-batch';
import { toMessage } from './mappers';
import { requireMember } from './membership';

export interface SendOutcome {
  message: Message;
  /** True when this was a retry of a send that had already been stored. */
  duplicate: boolean;
}

export interface MessageServiceOptions {
  /** Told once per new message, after its commit. */
  onMessageStored?: () => void;
  /** Group commit of concurrent sends (see MicroBatcher); `onBatch` sees each batch's size. */
  sendBatching?: Partial<MicroBatcherOptions>;
}

/** Sends per transaction at most; the rest wait for the next one. */
const DEFAULT_MAX_SEND_BATCH = 256;
/** Send transactions in flight at once, each on its own pooled connection. */
const DEFAULT_CONCURRENT_SEND_BATCHES = 4;

export class MessageService {
  private readonly onMessageStored: () => void;
  private readonly sends: MicroBatcher<SendRequest, StoredSend>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly publisher: EventPublisher,
    options: MessageServiceOptions = {},
  ) {
    this.onMessageStored = options.onMessageStored ?? (() => {});
    this.sends = new MicroBatcher((requests) => this.storeSends(requests), {
      maxBatch: DEFAULT_MAX_SEND_BATCH,
      maxConcurrent: DEFAULT_CONCURRENT_SEND_BATCHES,
      ...options.sendBatching,
    });
  }

  /**
   * Stores a message and returns it once committed. Concurrent sends share a transaction
   * (group commit, see storeSendBatch); seqs are gapless because the allocation and the
   * inserts commit together. The conversation row lock, taken first, serializes the
   * duplicate check with the insert: a retry with the same client message id, even a
   * concurrent one, finds the original instead of failing on the unique constraint or
   * storing a second copy.
   */
  async send(userId: string, conversationId: string, body: SendMessageBody): Promise<SendOutcome> {
    // PostgreSQL answers ids in lower case; the batch matches its rows by them.
    const request = { userId, conversationId: conversationId.toLowerCase(), clientMessageId: body.clientMessageId, body: body.body };
    const outcome = await this.sends.submit(request);
    const message = toMessage(outcome.row);
    if (!outcome.duplicate) {
      this.onMessageStored();
      // The stored id, lower case, names the channel the gateways subscribe to.
      this.publisher.publish(
        { v: 1, type: 'message.created', conversationId: message.conversationId, message },
        { conversationId: message.conversationId },
      );
    }
    return { message, duplicate: outcome.duplicate };
  }

  /**
   * One transaction for a batch of sends (one statement). If it fails for a reason other
   * than the database being unavailable, one bad send must not fail the others with it:
   * each is then stored on its own, and only the bad one fails.
   */
  private async storeSends(requests: readonly SendRequest[]): Promise<Array<ItemOutcome<StoredSend>>> {
    try {
      return await storeSendBatch(this.db, requests);
    } catch (error) {
      if (requests.length === 1 || databaseErrorKind(error) === 'unavailable') throw error;
      const outcomes: Array<ItemOutcome<StoredSend>> = [];
      for (const request of requests) {
        try {
          const [outcome] = await storeSendBatch(this.db, [request]);
          outcomes.push(outcome!);
        } catch (itemError) {
          outcomes.push({ ok: false, error: itemError });
        }
      }
      return outcomes;
    }
  }

  async history(userId: string, conversationId: string, query: HistoryQuery): Promise<HistoryPage> {
    const membership = requireMember(await conversations.findMembership(this.db, conversationId, userId, { lock: false }));
    const page =
      query.after !== undefined
        ? { direction: 'after' as const, seq: query.after }
        : { direction: 'before' as const, seq: query.before ?? membership.lastSeq + 1 };
    const { rows, hasMore } = await messages.findHistory(this.db, conversationId, {
      ...page,
      minSeqExclusive: membership.member.joinedSeq,
      limit: query.limit,
    });
    return { messages: rows.map(toMessage), hasMore };
  }

  async edit(userId: string, conversationId: string, seq: number, body: string): Promise<Message> {
    return this.change(userId, conversationId, seq, async (trx, current) => {
      if (current.deleted_at !== null) throw new ParleyError('MESSAGE_DELETED');
      const rev = await messages.allocateRev(trx, conversationId);
      return messages.updateMessage(trx, conversationId, seq, { rev, body, editedAt: new Date() });
    });
  }

  /** Deletes a message, leaving a tombstone (body null) that keeps its seq. Deleting twice is a no-op. */
  async delete(userId: string, conversationId: string, seq: number): Promise<Message> {
    return this.change(userId, conversationId, seq, async (trx, current) => {
      if (current.deleted_at !== null) return null;
      const rev = await messages.allocateRev(trx, conversationId);
      return messages.updateMessage(trx, conversationId, seq, { rev, body: null, deletedAt: new Date() });
    });
  }

  /** Moves the read marker forward (never back) and tells the other members and the reader's devices. */
  async markRead(userId: string, conversationId: string, seq: number): Promise<ReadState> {
    const moved = await conversations.advanceReadMarker(this.db, conversationId, userId, seq);
    if (moved) {
      this.publisher.publish(
        { v: 1, type: 'read', conversationId, userId, lastReadSeq: moved.lastReadSeq },
        { conversationId },
      );
      return readState(conversationId, moved.lastReadSeq, moved.lastSeq);
    }
    const membership = requireMember(await conversations.findMembership(this.db, conversationId, userId, { lock: false }));
    return readState(conversationId, membership.member.lastReadSeq, membership.lastSeq);
  }

  /** Runs an author-only change under the conversation lock and publishes the result. */
  private async change(
    userId: string,
    conversationId: string,
    seq: number,
    apply: (trx: Kysely<Database>, current: MessageRow) => Promise<MessageRow | null>,
  ): Promise<Message> {
    const { row, changed } = await this.db.transaction().execute(async (trx) => {
      const membership = requireMember(await conversations.findMembership(trx, conversationId, userId, { lock: true }));
      const current = await messages.findMessage(trx, conversationId, seq);
      if (!current || current.seq <= membership.member.joinedSeq) throw new ParleyError('MESSAGE_NOT_FOUND');
      if (current.sender_id !== userId) throw new ParleyError('NOT_MESSAGE_AUTHOR');
      const updated = await apply(trx, current);
      return { row: updated ?? current, changed: updated !== null };
    });
    const message = toMessage(row);
    if (changed) this.publisher.publish({ v: 1, type: 'message.updated', conversationId, message }, { conversationId });
    return message;
  }
}

function readState(conversationId: string, lastReadSeq: number, lastSeq: number): ReadState {
  return { conversationId, lastReadSeq, lastSeq, unreadCount: Math.max(0, lastSeq - lastReadSeq) };
}
