import { describeError } from './error-text';
import { ingestMessage } from './events';
import { activeClient, isCurrent, store, toast } from './runtime';
import type { PendingSend } from './state';

/*
 * Sends are shown at once as "Sending…" and replaced by the stored copy when the server
 * acknowledges them. The SDK retries each send (socket, or REST while the socket is down)
 * with its client message id until it is stored, so it rejects only when the server
 * refuses it for good (not a member, blocked, ...): the entry then offers Retry (same id:
 * never stored twice) and Discard.
 */

function newClientMessageId(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  // randomUUID needs a secure context; plain http on a LAN address has none.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function setFailed(clientMessageId: string, failed: boolean): void {
  store.update((state) => ({
    ...state,
    pending: state.pending.map((entry) => (entry.clientMessageId === clientMessageId ? { ...entry, failed } : entry)),
  }));
}

function attempt(entry: PendingSend): void {
  const client = activeClient();
  if (!client) return;
  client.send(entry.conversationId, entry.body, { clientMessageId: entry.clientMessageId }).then(
    (message) => {
      if (isCurrent(client)) ingestMessage(message);
    },
    (error: unknown) => {
      // Signed out meanwhile (the SDK rejects with CLIENT_CLOSED): the entry went with the session.
      if (!isCurrent(client)) return;
      setFailed(entry.clientMessageId, true);
      toast(`Message not sent: ${describeError(error)}`);
    },
  );
}

export function sendMessage(conversationId: string, body: string): void {
  const entry: PendingSend = { clientMessageId: newClientMessageId(), conversationId, body, failed: false };
  store.update((state) => ({ ...state, pending: [...state.pending, entry] }));
  attempt(entry);
}

/** Tries a refused send again. */
export function retrySend(clientMessageId: string): void {
  const entry = store.get().pending.find((candidate) => candidate.clientMessageId === clientMessageId);
  if (!entry?.failed) return;
  setFailed(clientMessageId, false);
  attempt(entry);
}

export function discardSend(clientMessageId: string): void {
  store.update((state) => ({ ...state, pending: state.pending.filter((entry) => entry.clientMessageId !== clientMessageId) }));
}
