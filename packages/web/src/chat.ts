import type { ConversationSummary } from '@parley/protocol';
import { ingestMessage } from './events';
import { activeClient, request, sessionScoped, store } from './runtime';
import { withReadMarker } from './state';

/*
 * What the user does in an open chat besides sending (outgoing.ts): writing a draft,
 * reading, typing, editing and deleting their own messages.
 */

/** conversationId → what is written in its box and not sent yet (kept while other chats are open). */
const drafts = sessionScoped(() => new Map<string, string>());

export function draftOf(conversationId: string): string {
  return drafts().get(conversationId) ?? '';
}

export function keepDraft(conversationId: string, text: string): void {
  if (text) drafts().set(conversationId, text);
  else drafts().delete(conversationId);
}

/** conversationId → the seq a read marker is being moved to. */
const readsInFlight = sessionScoped(() => new Map<string, number>());

/**
 * The unread count to show: none for the chat on screen, whose messages are being read
 * (its read marker moves a round trip later; the count would flash up meanwhile).
 */
export function unreadShown(summary: ConversationSummary, activeId: string | null): number {
  return summary.id === activeId && document.visibilityState === 'visible' ? 0 : summary.unreadCount;
}

/** Marks everything in a conversation read, if the user can see it. */
export async function markViewed(conversationId: string): Promise<void> {
  const summary = store.get().conversations[conversationId];
  if (!summary || document.visibilityState !== 'visible') return;
  const seq = summary.lastSeq;
  const inFlight = readsInFlight();
  if (seq <= summary.lastReadSeq || (inFlight.get(conversationId) ?? 0) >= seq) return;
  inFlight.set(conversationId, seq);
  // Nothing is lost on failure: the next view (or new message) tries again.
  const readState = await request(null, (client) => client.markRead(conversationId, seq));
  if (inFlight.get(conversationId) === seq) inFlight.delete(conversationId);
  if (!readState) return;
  store.update((state) => {
    const current = state.conversations[conversationId];
    if (!current) return state;
    const next = withReadMarker(current, readState.lastReadSeq);
    return next === current ? state : { ...state, conversations: { ...state.conversations, [conversationId]: next } };
  });
}

/** Tells the others I am typing (the SDK sends at most one frame per conversation every 3 s). */
export function notifyTyping(conversationId: string): void {
  void activeClient()?.typing(conversationId);
}

export function startEditing(conversationId: string, seq: number | null): void {
  store.update((state) => ({ ...state, editing: seq === null ? null : { conversationId, seq } }));
}

/** Edits one of my messages; the stored version replaces the shown one at once. Resolves whether it was saved. */
export async function editMessage(conversationId: string, seq: number, body: string): Promise<boolean> {
  const edited = await request('Could not edit', (client) => client.rest.editMessage(conversationId, seq, body));
  if (edited) ingestMessage(edited);
  return edited !== undefined;
}

/** Deletes one of my messages: a tombstone takes its place, for everyone. */
export async function deleteMessage(conversationId: string, seq: number): Promise<void> {
  const deleted = await request('Could not delete', (client) => client.rest.deleteMessage(conversationId, seq));
  if (deleted) ingestMessage(deleted);
}
