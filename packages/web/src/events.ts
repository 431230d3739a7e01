import type { ParleyClient } from '@parley/client';
import type { Message } from '@parley/protocol';
import { store } from './runtime';
import { saveTokens } from './session';
import { mergeMessages, mergeSummary, summaryWithMessage, withReadMarker, withTimeline, type State } from './state';

/** How long a typing indicator stays up after the last `typing` event (the SDK sends one per 3 s). */
export const TYPING_SHOWN_MS = 5000;

function applyMessage(state: State, message: Message): State {
  const meId = state.me?.id;
  let next = withTimeline(state, message.conversationId, (timeline) => {
    const messages = mergeMessages(timeline.messages, [message]);
    return messages === timeline.messages ? timeline : { ...timeline, messages };
  });
  const summary = next.conversations[message.conversationId];
  if (summary) {
    next = { ...next, conversations: { ...next.conversations, [summary.id]: summaryWithMessage(summary, message, meId) } };
  }
  if (message.senderId === meId) {
    // The stored copy replaces the "sending" placeholder.
    const pending = next.pending.filter((entry) => entry.clientMessageId !== message.clientMessageId);
    if (pending.length !== next.pending.length) next = { ...next, pending };
  } else {
    // Sending moves the sender's read marker to their message without a `read` event:
    // their own message is the receipt.
    const reads = next.reads[message.conversationId] ?? {};
    if ((reads[message.senderId] ?? 0) < message.seq) {
      next = { ...next, reads: { ...next.reads, [message.conversationId]: { ...reads, [message.senderId]: message.seq } } };
    }
    const typing = next.typing[message.conversationId];
    if (typing?.[message.senderId] !== undefined) {
      const { [message.senderId]: _gone, ...rest } = typing;
      next = { ...next, typing: { ...next.typing, [message.conversationId]: rest } };
    }
  }
  return next;
}

/** Merges a message from anywhere (SDK event, send ack, REST reply) into the state. */
export function ingestMessage(message: Message): void {
  store.update((state) => applyMessage(state, message));
}

function pruneTyping(state: State): State {
  const now = Date.now();
  let changed = false;
  const typing: State['typing'] = {};
  for (const [conversationId, users] of Object.entries(state.typing)) {
    const live = Object.entries(users).filter(([, until]) => until > now);
    if (live.length !== Object.keys(users).length) changed = true;
    if (live.length > 0) typing[conversationId] = Object.fromEntries(live);
  }
  return changed ? { ...state, typing } : state;
}

export interface EventHooks {
  /** The session ended on the server (revoked, expired beyond refresh). */
  sessionEnded(): void;
  /** Contacts changed (a request, an acceptance, a removal). */
  contactsChanged(): void;
  /** Membership of a conversation changed (its member list should be fetched again). */
  membersChanged(conversationId: string): void;
  /** The socket is open again after a drop, or the server said events were dropped: read receipts sent meanwhile were missed. */
  reconnected(): void;
}

/** Wires the SDK's events into the store; returns a function that removes every listener. */
export function bindEvents(client: ParleyClient, hooks: EventHooks): () => void {
  const typingTimers = new Set<ReturnType<typeof setTimeout>>();
  let wasOpen = false;
  const offs = [
    client.on('tokens', (tokens) => saveTokens(tokens)),
    client.on('message', (message) => ingestMessage(message)),
    client.on('messageUpdated', (message) => ingestMessage(message)),
    client.on('conversation', (summary) =>
      store.update((state) => {
        const users = summary.peer ? { ...state.users, [summary.peer.id]: summary.peer } : state.users;
        const merged = mergeSummary(state.conversations[summary.id], summary);
        return { ...state, users, conversations: { ...state.conversations, [summary.id]: merged } };
      }),
    ),
    client.on('conversationRemoved', ({ conversationId }) =>
      store.update((state) => {
        const { [conversationId]: _gone, ...conversations } = state.conversations;
        return { ...state, conversations, activeId: state.activeId === conversationId ? null : state.activeId };
      }),
    ),
    client.on('read', ({ conversationId, userId, lastReadSeq }) =>
      store.update((state) => {
        if (userId === state.me?.id) {
          const summary = state.conversations[conversationId];
          if (!summary) return state;
          const next = withReadMarker(summary, lastReadSeq);
          return next === summary ? state : { ...state, conversations: { ...state.conversations, [conversationId]: next } };
        }
        const reads = state.reads[conversationId] ?? {};
        if ((reads[userId] ?? 0) >= lastReadSeq) return state;
        return { ...state, reads: { ...state.reads, [conversationId]: { ...reads, [userId]: lastReadSeq } } };
      }),
    ),
    client.on('typing', ({ conversationId, userId }) => {
      store.update((state) => ({
        ...state,
        typing: { ...state.typing, [conversationId]: { ...state.typing[conversationId], [userId]: Date.now() + TYPING_SHOWN_MS } },
      }));
      const timer = setTimeout(() => {
        typingTimers.delete(timer);
        store.update(pruneTyping);
      }, TYPING_SHOWN_MS + 50);
      typingTimers.add(timer);
    }),
    client.on('presence', ({ userId, online }) =>
      store.update((state) =>
        state.presence[userId] === online ? state : { ...state, presence: { ...state.presence, [userId]: online } },
      ),
    ),
    client.on('contact', () => hooks.contactsChanged()),
    // Events may have been dropped: what a sync does not carry is fetched again.
    client.on('resync', () => {
      hooks.contactsChanged();
      hooks.reconnected();
    }),
    client.on('membership', ({ conversationId, change }) => {
      if (change.startsWith('member.')) hooks.membersChanged(conversationId);
    }),
    client.on('connectionState', ({ state: connection }) => {
      store.update((state) => (state.connection === connection ? state : { ...state, connection }));
      if (connection === 'needs-login') hooks.sessionEnded();
      // Every open, the first included: a contact event published before this socket
      // subscribed (or while it was down) was never heard, so the list is fetched again.
      if (connection === 'open') {
        hooks.contactsChanged();
        if (wasOpen) hooks.reconnected();
        wasOpen = true;
      }
    }),
  ];
  return () => {
    for (const off of offs) off();
    for (const timer of typingTimers) clearTimeout(timer);
  };
}
