/**
 * What the client remembers about one conversation between syncs.
 *
 * Invariant kept by the SDK: every change with `rev <= rev` has been emitted to the
 * application, and every message with `seq <= deliveredSeq` has been emitted as a
 * `message` event. So a cursor never skips anything, and after a restart with a
 * persistent store nothing already emitted comes back as a new `message`.
 */
export interface ConversationSyncState {
  /** The sync cursor: the highest `rev` fully applied. */
  rev: number;
  /** Highest `seq` emitted, with every visible seq below it emitted too; absent until known. */
  deliveredSeq?: number;
  /** My read marker as last seen; sent with the cursor so the server reports changes from my other devices. */
  lastReadSeq?: number;
}

/**
 * Where sync state lives between runs. The SDK keeps the state in memory and writes
 * every change through this interface (batched, after the events it covers were
 * emitted); `load` is called once, by the first `connect()` or `syncNow()`.
 *
 * Implement it over `localStorage`, IndexedDB, SQLite... to resume after a restart
 * without pulling everything again. Keep it per user: log out, clear it.
 */
export interface SyncStateStore {
  /** Everything stored, keyed by conversation id. */
  load(): Promise<Record<string, ConversationSyncState>> | Record<string, ConversationSyncState>;
  /** Stores (replaces) one conversation's state. */
  save(conversationId: string, state: ConversationSyncState): Promise<void> | void;
  /** Forgets a conversation (the user left it or was removed). */
  remove(conversationId: string): Promise<void> | void;
}

/** The default store: memory only, so each new client starts with a full pull. */
export class MemorySyncStateStore implements SyncStateStore {
  private readonly states = new Map<string, ConversationSyncState>();

  load(): Record<string, ConversationSyncState> {
    return Object.fromEntries([...this.states].map(([id, state]) => [id, { ...state }]));
  }

  save(conversationId: string, state: ConversationSyncState): void {
    this.states.set(conversationId, { ...state });
  }

  remove(conversationId: string): void {
    this.states.delete(conversationId);
  }
}
