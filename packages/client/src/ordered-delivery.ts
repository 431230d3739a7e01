import type { Message } from '@parley/protocol';

/** Where a copy of a message came from. */
export type DeliverySource = 'socket' | 'sync' | 'send';

/** A message released to the application, with the source of the copy released. */
export interface Delivered {
  message: Message;
  source: DeliverySource;
}

/**
 * The result of offering one copy of a message:
 * - `delivered`: it (and any held messages it unblocked) may be emitted, in this order;
 * - `updated`: a newer version (edit, delete) of a message already delivered;
 * - `duplicate`: this version, or a newer one, was already delivered;
 * - `held`: it cannot be delivered yet, because earlier seqs are missing (`gap`) or the
 *   conversation's starting point is not known yet (`unanchored`). Recover with a sync.
 */
export type OfferOutcome =
  | { kind: 'delivered'; delivered: Delivered[] }
  | { kind: 'updated'; message: Message; source: DeliverySource }
  | { kind: 'duplicate' }
  | { kind: 'held'; reason: 'gap' | 'unanchored' };

/** Options of {@link OrderedDelivery}. */
export interface OrderedDeliveryOptions {
  /**
   * The sync cursor of a conversation: every change with a rev at or below it has been
   * applied, so an older copy is a duplicate even when the memory of seen revs has
   * forgotten it.
   */
  revFloor?: (conversationId: string) => number;
  /** How many `(message, rev)` pairs to remember for dropping duplicate versions. */
  seenCapacity?: number;
}

interface ConversationDelivery {
  /** Highest seq delivered, every visible seq below it delivered too; undefined = not anchored. */
  deliveredSeq: number | undefined;
  /** Messages past a gap, by seq. */
  held: Map<number, Delivered>;
}

/**
 * Per-conversation ordering and deduplication. Messages are released strictly in `seq`
 * order, each seq once as a new message; later versions of a delivered seq come out as
 * updates, and copies already seen are dropped. It decides, it does not fetch: a gap
 * or an unknown conversation is reported as `held`, and the caller syncs.
 *
 * A conversation must be anchored (its last delivered seq known) before anything is
 * released: from the store, or by the sync engine from the `joinedSeq` of the
 * conversation's summary (a member added later, or removed and added again, sees only
 * messages after joining, so the first visible seq is not always 1).
 */
export class OrderedDelivery {
  private readonly conversations = new Map<string, ConversationDelivery>();
  /** Last version seen per message, `conversationId \u0000 seq` → rev, oldest first (bounded). */
  private readonly seen = new Map<string, number>();
  private readonly revFloor: (conversationId: string) => number;
  private readonly seenCapacity: number;

  constructor(options: OrderedDeliveryOptions = {}) {
    this.revFloor = options.revFloor ?? (() => 0);
    this.seenCapacity = options.seenCapacity ?? 10_000;
  }

  /** Highest seq delivered in a conversation, or `undefined` when not anchored. */
  deliveredSeq(conversationId: string): number | undefined {
    return this.conversations.get(conversationId)?.deliveredSeq;
  }

  /** True when the conversation's starting point is known. */
  isAnchored(conversationId: string): boolean {
    return this.deliveredSeq(conversationId) !== undefined;
  }

  /**
   * Sets the last delivered seq from stored state. Meant for before any message is
   * offered; copies held meanwhile at or below the mark count as already delivered.
   */
  restore(conversationId: string, deliveredSeq: number): Delivered[] {
    const state = this.state(conversationId);
    state.deliveredSeq = Math.max(deliveredSeq, state.deliveredSeq ?? 0);
    for (const seq of [...state.held.keys()]) if (seq <= state.deliveredSeq) state.held.delete(seq);
    return this.release(conversationId, state);
  }

  /**
   * Sets where a conversation's visible history starts, as the server reports it (a
   * summary's `joinedSeq`): seqs at or below `joinedSeq` are never sent to me. Anchors an
   * unanchored conversation, and moves an anchored one up past seqs it can no longer
   * receive (I was removed and added again). Held copies at or below it are released
   * first, in seq order (nothing received is dropped), then everything that follows.
   * Returns what became deliverable; a no-op when the mark is already at or above it.
   */
  anchorAt(conversationId: string, joinedSeq: number): Delivered[] {
    const state = this.state(conversationId);
    if (state.deliveredSeq !== undefined && state.deliveredSeq >= joinedSeq) return [];
    const out: Delivered[] = [];
    const below = [...state.held.keys()].filter((seq) => seq <= joinedSeq).sort((a, b) => a - b);
    for (const seq of below) {
      const entry = state.held.get(seq);
      state.held.delete(seq);
      if (!entry) continue;
      this.remember(this.key(conversationId, seq), entry.message.rev);
      out.push(entry);
    }
    state.deliveredSeq = joinedSeq;
    return out.concat(this.release(conversationId, state));
  }

  /** Offers one copy of a message (new, edited or deleted, from any source). */
  offer(message: Message, source: DeliverySource): OfferOutcome {
    const conversationId = message.conversationId;
    const state = this.state(conversationId);
    const key = this.key(conversationId, message.seq);
    if (state.deliveredSeq !== undefined && message.seq <= state.deliveredSeq) {
      const seenRev = this.seen.get(key);
      if (message.rev <= this.revFloor(conversationId) || (seenRev !== undefined && message.rev <= seenRev)) {
        return { kind: 'duplicate' };
      }
      this.remember(key, message.rev);
      return { kind: 'updated', message, source };
    }
    const held = state.held.get(message.seq);
    if (!held || message.rev > held.message.rev) state.held.set(message.seq, { message, source });
    if (state.deliveredSeq === undefined) return { kind: 'held', reason: 'unanchored' };
    if (message.seq !== state.deliveredSeq + 1) return { kind: 'held', reason: 'gap' };
    return { kind: 'delivered', delivered: this.release(conversationId, state) };
  }

  /** Number of messages waiting behind a gap (or for an anchor). */
  heldCount(conversationId: string): number {
    return this.conversations.get(conversationId)?.held.size ?? 0;
  }

  /** Lowest rev among held messages: a sync cursor must stay below it, or they could be lost. */
  minHeldRev(conversationId: string): number | undefined {
    const held = this.conversations.get(conversationId)?.held;
    if (!held || held.size === 0) return undefined;
    let min = Infinity;
    for (const { message } of held.values()) min = Math.min(min, message.rev);
    return min;
  }

  /** Conversations with held messages. */
  conversationsWithHeld(): string[] {
    return [...this.conversations].filter(([, state]) => state.held.size > 0).map(([id]) => id);
  }

  /** Conversations with any delivery state (anchored, or holding messages). */
  conversationIds(): string[] {
    return [...this.conversations.keys()];
  }

  /** Drops everything about every conversation (logout, another user). */
  clear(): void {
    this.conversations.clear();
    this.seen.clear();
  }

  /** Drops everything about a conversation (the user left it). */
  forget(conversationId: string): void {
    this.conversations.delete(conversationId);
    const prefix = `${conversationId}\u0000`;
    for (const key of [...this.seen.keys()]) if (key.startsWith(prefix)) this.seen.delete(key);
  }

  private release(conversationId: string, state: ConversationDelivery): Delivered[] {
    const out: Delivered[] = [];
    let next = (state.deliveredSeq ?? 0) + 1;
    for (let entry = state.held.get(next); entry; entry = state.held.get(next)) {
      state.held.delete(next);
      state.deliveredSeq = next;
      this.remember(this.key(conversationId, next), entry.message.rev);
      out.push(entry);
      next += 1;
    }
    return out;
  }

  private state(conversationId: string): ConversationDelivery {
    let state = this.conversations.get(conversationId);
    if (!state) {
      state = { deliveredSeq: undefined, held: new Map() };
      this.conversations.set(conversationId, state);
    }
    return state;
  }

  private key(conversationId: string, seq: number): string {
    return `${conversationId}\u0000${seq}`;
  }

  private remember(key: string, rev: number): void {
    this.seen.delete(key);
    this.seen.set(key, rev);
    if (this.seen.size > this.seenCapacity) {
      const oldest = this.seen.keys().next();
      if (!oldest.done) this.seen.delete(oldest.value);
    }
  }
}
