import type { Database, Kysely } from '@parley/db';
import type { Message, SyncBody, SyncResponse } from '@parley/protocol';
import * as conversations from '../repositories/conversations-repository';
import * as messages from '../repositories/messages-repository';
import { toConversationSummary, toMessage } from './mappers';

/** Conversations one sync page covers, so a long absence is paged by conversations too. */
export const SYNC_CONVERSATIONS_PER_PAGE = 100;

/**
 * The offline pull. The client sends, per conversation it knows, the highest `rev` it
 * has applied (and its read marker); the reply carries what changed since, most
 * recently active conversations first, in pages bounded by `limit` messages and
 * SYNC_CONVERSATIONS_PER_PAGE conversations. Calling again with the returned cursors
 * until `hasMore` is false restores the exact state, edits and deletes included.
 */
export class SyncService {
  constructor(private readonly db: Kysely<Database>) {}

  async sync(userId: string, body: SyncBody): Promise<SyncResponse> {
    const known = new Map(body.cursors.map((cursor) => [cursor.conversationId, cursor]));
    const states = await conversations.findMembershipStates(this.db, userId);
    const memberOf = new Set(states.map((state) => state.id));
    const removed = body.cursors.filter((cursor) => !memberOf.has(cursor.conversationId)).map((c) => c.conversationId);

    const changed = states.filter((state) => {
      const cursor = known.get(state.id);
      if (!cursor) return true;
      if (state.last_rev > cursor.rev) return true;
      return cursor.lastReadSeq !== undefined && cursor.lastReadSeq !== state.last_read_seq;
    });
    const page = changed.slice(0, SYNC_CONVERSATIONS_PER_PAGE);

    let budget = body.limit;
    const pulled: Message[] = [];
    const cursors: SyncResponse['cursors'] = [];
    let hasMore = changed.length > page.length;
    for (const state of page) {
      const fromRev = known.get(state.id)?.rev ?? 0;
      if (state.last_rev <= fromRev) {
        cursors.push({ conversationId: state.id, rev: fromRev });
        continue;
      }
      if (budget === 0) {
        // Out of message budget: its summary is in this page, its messages in the next.
        cursors.push({ conversationId: state.id, rev: fromRev });
        hasMore = true;
        continue;
      }
      const rows = await messages.findChangedSince(this.db, state.id, fromRev, state.joined_seq, budget);
      budget -= rows.length;
      pulled.push(...rows.map(toMessage));
      const lastRev = rows[rows.length - 1]?.rev ?? fromRev;
      // Fewer rows than asked for means everything committed so far was returned (revs
      // commit in order under the conversation lock), hidden pre-join changes included.
      const complete = budget > 0;
      const rev = complete ? Math.max(lastRev, state.last_rev) : lastRev;
      if (!complete) hasMore = true;
      cursors.push({ conversationId: state.id, rev });
    }

    const summaries = await conversations.findSummaries(this.db, userId, {
      conversationIds: page.map((state) => state.id),
    });
    return {
      conversations: summaries.map(toConversationSummary),
      removed,
      messages: pulled,
      cursors,
      hasMore,
    };
  }
}
