import type { ConversationSummary, Message, SyncBody, SyncCursor, SyncResponse } from '@parley/protocol';
import { Backoff, type BackoffOptions } from './backoff';
import { ParleyClientError, toClientError } from './errors';
import type { Delivered, DeliverySource, OfferOutcome, OrderedDelivery } from './ordered-delivery';
import { clearTimer, setTimer, type TimerHandle } from './platform';
import type { ConversationSyncState, SyncStateStore } from './sync-store';

/** What the engine tells the client to emit. */
export interface SyncEngineCallbacks {
  /** New messages, in seq order per conversation. */
  delivered(items: Delivered[]): void;
  /** A newer version (edit, delete) of a delivered message. */
  updated(message: Message, source: DeliverySource): void;
  /** A conversation summary from a sync page (new, changed, or read elsewhere). */
  conversation(summary: ConversationSummary): void;
  /** The user is no longer a member. */
  removed(conversationId: string): void;
  /** My read marker moved (on another device, seen through sync). */
  ownRead(conversationId: string, lastReadSeq: number): void;
  /** A complete pull finished. */
  synced(stats: SyncStats): void;
  /** A transient sync failure (it is retried) or a store failure. */
  error(error: ParleyClientError): void;
}

/** Counts of one complete pull (every page until `hasMore: false`). */
export interface SyncStats {
  pages: number;
  messages: number;
  conversations: number;
}

/** Options of {@link SyncEngine}. */
export interface SyncEngineOptions {
  api: { sync(body: SyncBody): Promise<SyncResponse> };
  delivery: OrderedDelivery;
  store: SyncStateStore;
  callbacks: SyncEngineCallbacks;
  /** Messages per sync page (1–1000). */
  pageLimit?: number;
  /** Delays between retries of a failed pull. */
  backoff?: Partial<BackoffOptions>;
  /** Follow-up pulls allowed in a row when a pull ends with a gap still open (messages arriving meanwhile). */
  maxFollowUps?: number;
  /**
   * Delays before a follow-up pull, and before a gap-triggered pull while the last pull
   * ended with a gap still open (default 1 s doubling to 30 s), so a gap the server cannot
   * fill never turns every live message into a burst of pulls.
   */
  gapBackoff?: Partial<BackoffOptions>;
}

/**
 * The offline pull and the sync cursors. A pull calls `POST /v1/sync` with the cursor
 * of every known conversation until `hasMore` is false, feeding each message through
 * {@link OrderedDelivery}. Cursors advance only over changes that were emitted: a
 * page's cursor is committed up to just below the oldest message still held back, so a
 * pull that fails halfway, or a held message that is never filled, can never make the
 * client skip anything. Live changes (socket, acks) advance the cursor too, one rev at a
 * time, so the next pull does not fetch them again.
 *
 * Each conversation is anchored from its summary's `joinedSeq` in the page that first
 * shows it, so a long first pull delivers, and commits its cursor, page by page: a pull
 * that fails halfway resumes from the last page applied.
 *
 * Pulls are coalesced: a request while one runs schedules one more run after it.
 */
export class SyncEngine {
  private readonly states = new Map<string, ConversationSyncState>();
  /** Revs applied live above a conversation's cursor, waiting for the one missing below them. */
  private readonly appliedAbove = new Map<string, Set<number>>();
  private readonly dirty = new Set<string>();
  private readonly removedIds = new Set<string>();
  private readonly backoff: Backoff;
  private readonly gapBackoff: Backoff;
  /** Cursors returned by the pages of the running pull (may run ahead of the committed ones). */
  private working = new Map<string, number>();
  /** Bumped by `clear()`: a pull of an earlier session drops what it fetched. */
  private generation = 0;
  /** Counts `reset()`s; per conversation, the count at its last reset. */
  private resets = 0;
  private readonly resetAt = new Map<string, number>();
  private followUpSleep = false;
  private readonly pageLimit: number;
  private readonly maxFollowUps: number;
  private loading: Promise<void> | null = null;
  private running: Promise<void> | null = null;
  private pending = false;
  /** Stopped until `start()`: a client that only uses REST never pulls on its own. */
  private stopped = true;
  private flushScheduled = false;
  private flushing: Promise<void> = Promise.resolve();
  private checkTimer: TimerHandle | undefined;
  private sleeper: { timer: TimerHandle; wake: () => void } | undefined;

  constructor(private readonly options: SyncEngineOptions) {
    this.backoff = new Backoff(options.backoff);
    this.gapBackoff = new Backoff({ initialMs: 1000, maxMs: 30_000, ...options.gapBackoff });
    this.pageLimit = options.pageLimit ?? 200;
    this.maxFollowUps = options.maxFollowUps ?? 3;
  }

  /** Loads the stored state once (later calls share the first load). */
  load(): Promise<void> {
    this.loading ??= (async () => {
      let stored: Record<string, ConversationSyncState>;
      try {
        stored = await this.options.store.load();
      } catch (error) {
        this.loading = null;
        throw new ParleyClientError('STORE_FAILED', 'The sync-state store could not be read.', { cause: error });
      }
      for (const [conversationId, state] of Object.entries(stored)) {
        if (this.states.has(conversationId)) continue;
        this.states.set(conversationId, { ...state });
        if (state.deliveredSeq === undefined) continue;
        const released = this.options.delivery.restore(conversationId, state.deliveredSeq);
        if (released.length > 0) this.options.callbacks.delivered(released);
      }
    })();
    return this.loading;
  }

  /** The sync cursor of a conversation (0 when unknown). */
  cursorRev(conversationId: string): number {
    return this.states.get(conversationId)?.rev ?? 0;
  }

  /** A copy of a conversation's state, if known. */
  stateOf(conversationId: string): ConversationSyncState | undefined {
    const state = this.states.get(conversationId);
    if (!state) return undefined;
    const deliveredSeq = this.options.delivery.deliveredSeq(conversationId);
    return { ...state, ...(deliveredSeq === undefined ? {} : { deliveredSeq }) };
  }

  /** Conversation ids the client has state for. */
  knownConversations(): string[] {
    return [...this.states.keys()];
  }

  /** Allows pulls (the client calls it on `connect()` and `syncNow()`). */
  start(): void {
    this.stopped = false;
  }

  /** Stops pulling: a running pull ends at its next step, timers are cleared, pending writes are flushed. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimer(this.checkTimer);
    this.checkTimer = undefined;
    this.sleeper?.wake();
    await this.flush();
  }

  /**
   * Asks for a complete pull. Resolves when a pull that started after this call has
   * finished; rejects when it fails for good (not retryable, or the engine stopped).
   */
  request(): Promise<void> {
    return this.startPull(true);
  }

  private startPull(explicit: boolean): Promise<void> {
    if (this.stopped) return Promise.reject(new ParleyClientError('CLIENT_CLOSED', 'The client is closed.'));
    if (this.running) {
      this.pending = true;
      // An explicit request (reconnect, resync, syncNow) does not wait out a gap follow-up's delay.
      if (explicit && this.followUpSleep) this.sleeper?.wake();
      return this.running;
    }
    const run = this.loop().finally(() => {
      if (this.running === run) this.running = null;
    });
    this.running = run;
    return run;
  }

  /**
   * Feeds one copy of a message (from the socket, a send ack, or a sync page) through
   * ordering and dedup, emits what it releases, and advances the cursor over what was
   * applied. Returns the outcome, so the caller can sync on `held`.
   */
  ingest(message: Message, source: DeliverySource): OfferOutcome {
    const outcome = this.options.delivery.offer(message, source);
    const conversationId = message.conversationId;
    switch (outcome.kind) {
      case 'delivered':
        this.options.callbacks.delivered(outcome.delivered);
        for (const { message: item } of outcome.delivered) this.noteApplied(conversationId, item.rev);
        this.markDirty(conversationId);
        break;
      case 'updated':
        this.options.callbacks.updated(outcome.message, outcome.source);
        this.noteApplied(conversationId, message.rev);
        break;
      case 'duplicate':
        // This version, or a newer one of the same message, was applied: the rev is covered.
        this.noteApplied(conversationId, message.rev);
        break;
      case 'held':
        break;
    }
    return outcome;
  }

  /**
   * A pull because a gap was seen (a held socket message). Runs at once, unless the last
   * pull ended with a gap still open: then it waits for the gap backoff, so a gap the
   * server cannot fill costs one pull per backoff step, not one per live message.
   */
  requestForGap(): Promise<void> {
    if (this.stopped) return Promise.reject(new ParleyClientError('CLIENT_CLOSED', 'The client is closed.'));
    if (this.gapBackoff.attempt === 0) return this.startPull(false);
    // The running pull's follow-ups (themselves delayed) cover it.
    if (this.running) return this.running;
    if (this.checkTimer === undefined) this.checkGapsLater(this.gapBackoff.next());
    return Promise.resolve();
  }

  /**
   * Forgets everything about a conversation without reporting it removed (I was added to
   * it again: its old cursor and delivered seq no longer apply), then the caller syncs.
   * Returns false when it was not known.
   */
  reset(conversationId: string): boolean {
    if (!this.states.has(conversationId)) return false;
    this.resets += 1;
    this.resetAt.set(conversationId, this.resets);
    this.states.delete(conversationId);
    this.working.delete(conversationId);
    this.appliedAbove.delete(conversationId);
    this.options.delivery.forget(conversationId);
    this.dirty.delete(conversationId);
    this.removedIds.add(conversationId);
    this.scheduleFlush();
    return true;
  }

  /**
   * Forgets all sync state, in memory and in the store (logout, or another user logs in
   * on this client), and stops. A pull under way drops what it fetched. `start()` again
   * for the next session.
   */
  async clear(): Promise<void> {
    this.generation += 1;
    await this.stop();
    this.running = null;
    this.pending = false;
    let ids = [...this.states.keys()];
    if (!this.loading) {
      // Never loaded: the store may still hold the previous session's state.
      try {
        ids = Object.keys(await this.options.store.load());
      } catch (error) {
        this.options.callbacks.error(
          new ParleyClientError('STORE_FAILED', 'The sync-state store could not be read.', { cause: error }),
        );
      }
    }
    this.states.clear();
    this.working = new Map();
    this.appliedAbove.clear();
    this.resetAt.clear();
    this.dirty.clear();
    for (const id of ids) this.removedIds.add(id);
    this.options.delivery.clear();
    this.gapBackoff.reset();
    this.backoff.reset();
    this.loading = null;
    await this.flush();
  }

  /** Records my own read marker (from an ack or a `read` frame about me); it only moves forward. */
  noteOwnRead(conversationId: string, lastReadSeq: number): boolean {
    const state = this.states.get(conversationId);
    if (!state || (state.lastReadSeq !== undefined && state.lastReadSeq >= lastReadSeq)) return false;
    state.lastReadSeq = lastReadSeq;
    this.markDirty(conversationId);
    return true;
  }

  /**
   * Syncs after `delayMs` if, by then, a gap is still open: a held message, or a live
   * change whose predecessor rev never arrived (a missed edit or delete shows only so).
   */
  checkGapsLater(delayMs: number): void {
    if (this.stopped || this.checkTimer !== undefined) return;
    this.checkTimer = setTimer(() => {
      this.checkTimer = undefined;
      if (this.stopped || !this.hasOpenGap()) return;
      this.startPull(false).catch((error: unknown) => this.options.callbacks.error(toClientError(error)));
    }, delayMs);
  }

  /** True between `start()` and `stop()`. */
  get started(): boolean {
    return !this.stopped;
  }

  /**
   * True when some conversation waits for a missing seq or rev. Held copies of a
   * conversation I am not a member of (an ack after I left) do not count once a pull has
   * confirmed it: a pull forgets them.
   */
  hasOpenGap(): boolean {
    return this.heldGap() || this.appliedAbove.size > 0;
  }

  /** Writes pending state changes to the store now. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.writeDirty());
    return this.flushing;
  }

  /** Held messages in known conversations, or in unknown ones not checked by a pull yet. */
  private heldGap(): boolean {
    return this.options.delivery.conversationsWithHeld().length > 0;
  }

  private async loop(): Promise<void> {
    const generation = this.generation;
    let followUps = 0;
    do {
      this.pending = false;
      const gapLeft = await this.runWithRetry();
      if (!gapLeft) {
        this.gapBackoff.reset();
        continue;
      }
      const delay = this.gapBackoff.next();
      if (followUps < this.maxFollowUps) {
        followUps += 1;
        this.followUpSleep = true;
        try {
          await this.sleep(delay);
        } finally {
          this.followUpSleep = false;
        }
        if (generation !== this.generation) return;
        this.pending = true;
      }
    } while (this.pending && !this.stopped && generation === this.generation);
  }

  private async runWithRetry(): Promise<boolean> {
    const generation = this.generation;
    for (;;) {
      try {
        const gapLeft = await this.runOnce();
        this.backoff.reset();
        return gapLeft;
      } catch (caught) {
        const error = toClientError(caught);
        if (this.stopped || generation !== this.generation) {
          throw new ParleyClientError('CLIENT_CLOSED', 'The client is closed.', { cause: error });
        }
        if (error.retry !== 'backoff') throw error;
        this.options.callbacks.error(error);
        await this.sleep(Math.max(this.backoff.next(), error.retryAfterMs ?? 0));
        if (this.stopped) throw new ParleyClientError('CLIENT_CLOSED', 'The client is closed.', { cause: error });
      }
    }
  }

  /** One complete pull; returns true when a gap is still open at the end. */
  private async runOnce(): Promise<boolean> {
    const generation = this.generation;
    const closed = () => this.stopped || generation !== this.generation;
    await this.load();
    this.working = new Map();
    const stats: SyncStats = { pages: 0, messages: 0, conversations: 0 };
    for (;;) {
      if (closed()) throw new ParleyClientError('CLIENT_CLOSED', 'The client is closed.');
      const resetsBefore = this.resets;
      const page = await this.options.api.sync({ cursors: this.cursors(), limit: this.pageLimit });
      if (closed()) throw new ParleyClientError('CLIENT_CLOSED', 'The client is closed.');
      stats.pages += 1;
      stats.messages += page.messages.length;
      stats.conversations += page.conversations.length;
      this.applyPage(page, resetsBefore);
      if (!page.hasMore) break;
    }
    for (const conversationId of this.states.keys()) this.commit(conversationId, this.working.get(conversationId));
    // What is held for a conversation I am not a member of (a late ack after I left) never comes.
    for (const conversationId of this.options.delivery.conversationIds()) {
      if (!this.states.has(conversationId)) this.options.delivery.forget(conversationId);
    }
    await this.flush();
    if (closed()) throw new ParleyClientError('CLIENT_CLOSED', 'The client is closed.');
    this.options.callbacks.synced(stats);
    return this.heldGap();
  }

  /** Applies one page; parts about a conversation reset after the page was asked for are stale and skipped. */
  private applyPage(page: SyncResponse, resetsBefore: number): void {
    const stale = (conversationId: string) => (this.resetAt.get(conversationId) ?? 0) > resetsBefore;
    for (const conversationId of page.removed) if (!stale(conversationId)) this.forget(conversationId);
    for (const summary of page.conversations) {
      if (stale(summary.id)) continue;
      this.ensure(summary.id);
      this.options.callbacks.conversation(summary);
      if (this.noteOwnRead(summary.id, summary.lastReadSeq)) this.options.callbacks.ownRead(summary.id, summary.lastReadSeq);
      // Seqs up to joinedSeq are never sent to me: start there (or skip up to it after a re-add).
      const released = this.options.delivery.anchorAt(summary.id, summary.joinedSeq);
      if (released.length > 0) this.options.callbacks.delivered(released);
      this.markDirty(summary.id);
    }
    for (const message of page.messages) {
      if (stale(message.conversationId)) continue;
      this.ensure(message.conversationId);
      this.ingest(message, 'sync');
    }
    for (const cursor of page.cursors) {
      if (stale(cursor.conversationId)) continue;
      this.ensure(cursor.conversationId);
      this.working.set(cursor.conversationId, Math.max(this.working.get(cursor.conversationId) ?? 0, cursor.rev));
      this.commit(cursor.conversationId, this.working.get(cursor.conversationId));
    }
  }

  /** Moves the stored cursor toward `target`, never past a held message. */
  private commit(conversationId: string, target: number | undefined): void {
    const state = this.states.get(conversationId);
    if (!state || target === undefined) return;
    const minHeld = this.options.delivery.minHeldRev(conversationId);
    const safe = minHeld === undefined ? target : Math.min(target, minHeld - 1);
    if (safe <= state.rev) return;
    state.rev = safe;
    this.advance(conversationId, state);
    this.markDirty(conversationId);
  }

  /** Advances the cursor by a live change: only when it is the very next rev (or fills the hole below earlier ones). */
  private noteApplied(conversationId: string, rev: number): void {
    const state = this.states.get(conversationId);
    if (!state || rev <= state.rev) return;
    if (rev === state.rev + 1) {
      state.rev = rev;
      this.advance(conversationId, state);
      this.markDirty(conversationId);
      return;
    }
    let above = this.appliedAbove.get(conversationId);
    if (!above) {
      above = new Set();
      this.appliedAbove.set(conversationId, above);
    }
    above.add(rev);
  }

  private advance(conversationId: string, state: ConversationSyncState): void {
    const above = this.appliedAbove.get(conversationId);
    if (!above) return;
    while (above.delete(state.rev + 1)) state.rev += 1;
    for (const rev of above) if (rev <= state.rev) above.delete(rev);
    if (above.size === 0) this.appliedAbove.delete(conversationId);
  }

  private cursors(): SyncCursor[] {
    return [...this.states].map(([conversationId, state]) => ({
      conversationId,
      rev: Math.max(state.rev, this.working.get(conversationId) ?? 0),
      ...(state.lastReadSeq === undefined ? {} : { lastReadSeq: state.lastReadSeq }),
    }));
  }

  private ensure(conversationId: string): ConversationSyncState {
    let state = this.states.get(conversationId);
    if (!state) {
      state = { rev: 0 };
      this.states.set(conversationId, state);
      this.removedIds.delete(conversationId);
      this.markDirty(conversationId);
    }
    return state;
  }

  private forget(conversationId: string): void {
    const known = this.states.delete(conversationId);
    this.appliedAbove.delete(conversationId);
    this.options.delivery.forget(conversationId);
    this.dirty.delete(conversationId);
    this.removedIds.add(conversationId);
    this.scheduleFlush();
    if (known) this.options.callbacks.removed(conversationId);
  }

  private markDirty(conversationId: string): void {
    this.dirty.add(conversationId);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    void Promise.resolve().then(() => {
      this.flushScheduled = false;
      return this.flush();
    });
  }

  private async writeDirty(): Promise<void> {
    const dirty = [...this.dirty];
    const removed = [...this.removedIds];
    this.dirty.clear();
    this.removedIds.clear();
    try {
      for (const conversationId of removed) await this.options.store.remove(conversationId);
      for (const conversationId of dirty) {
        const state = this.stateOf(conversationId);
        if (state) await this.options.store.save(conversationId, state);
      }
    } catch (error) {
      // Keep them for the next write; the in-memory state stays right either way.
      for (const conversationId of dirty) if (this.states.has(conversationId)) this.dirty.add(conversationId);
      for (const conversationId of removed) if (!this.states.has(conversationId)) this.removedIds.add(conversationId);
      this.options.callbacks.error(
        new ParleyClientError('STORE_FAILED', 'The sync-state store could not be written.', { cause: error }),
      );
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimer(timer);
        this.sleeper = undefined;
        resolve();
      };
      const timer = setTimer(wake, ms);
      this.sleeper = { timer, wake };
    });
  }
}
