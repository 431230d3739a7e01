/**
 * Bus channel names. The bus adds its deployment prefix (e.g. `parley:`); these are the
 * names after it. The id sits inside `{...}` so that, on Redis Cluster with sharded
 * pub/sub, a channel hashes by its id alone. See docs/channels.md.
 *
 * - `conv:{<conversationId>}`: every event of one conversation (messages, edits,
 *   deletes, read receipts, membership). A gateway subscribes while it holds a socket of
 *   any member, so a message costs one PUBLISH however many members it has.
 * - `user:{<userId>}`: events for one user's devices that are not tied to a
 *   conversation they can already hear (joined or left one, contacts, session revoked).
 */
export const Channels = {
  conversation: (conversationId: string): string => `conv:{${conversationId}}`,
  user: (userId: string): string => `user:{${userId}}`,
  /** Fleet-wide notices (every gateway listens), e.g. "events were lost, resync". */
  system: (): string => 'system',
  /** Presence changes of one user; gateways subscribe for their users' direct peers. */
  presence: (userId: string): string => `presence:{${userId}}`,
} as const;
