/**
 * Who is online, across nodes. Guarantees: a user is online while any node holds a
 * socket of theirs; after the last socket closes they are offline at once; if a node
 * dies, its users go offline within `ttlMs + ttlMs / 3` (the sweep interval), because
 * the survivors notice its heartbeat has lapsed. Changes are published on
 * `presence:{userId}`.
 *
 * `RedisPresence` keeps it for a fleet; `MemoryPresence` for a node that is the whole
 * deployment (the single-process server).
 */
export interface Presence {
  /** A socket of this user opened on this node (call once per user, on their first socket). */
  userConnected(userId: string): Promise<void>;
  /** The last socket of this user on this node closed. */
  userDisconnected(userId: string): Promise<void>;
  isOnline(userIds: readonly string[]): Promise<boolean[]>;
  start(): void;
  stop(): Promise<void>;
}
