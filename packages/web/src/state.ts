import type { ConnectionState } from '@parley/client';
import type { Contact, ConversationSummary, Message, PublicUser } from '@parley/protocol';

/** The loaded part of one conversation's history. */
export interface Timeline {
  /** Ascending by seq, one entry per seq (the highest rev seen). */
  messages: Message[];
  /**
   * Lowest seq of the window loaded from the server: everything from here to the newest
   * message is present. `null` until the newest page has been fetched. Messages below it
   * (delivered live before the window was fetched) are kept but not shown until paged in.
   */
  floor: number | null;
  /** Older messages exist on the server below `floor`. */
  hasOlder: boolean;
  loadingOlder: boolean;
}

/** A message the user sent that the server has not acknowledged yet. */
export interface PendingSend {
  clientMessageId: string;
  conversationId: string;
  body: string;
  /** Refused for good (not a member, blocked, invalid): shown with a retry button. */
  failed: boolean;
}

export type Panel = 'chats' | 'contacts' | 'new-group';

export interface State {
  session: 'starting' | 'anonymous' | 'ready';
  /** Shown on the login screen (why the session ended). */
  notice: string | null;
  me: PublicUser | null;
  connection: ConnectionState;
  /** The browser's own idea of the network (`navigator.onLine`). */
  online: boolean;
  conversations: Record<string, ConversationSummary>;
  timelines: Record<string, Timeline>;
  pending: PendingSend[];
  /** conversationId → userId → when the indicator expires (ms since epoch). */
  typing: Record<string, Record<string, number>>;
  presence: Record<string, boolean>;
  /** conversationId → userId → that member's read marker (others only). */
  reads: Record<string, Record<string, number>>;
  /** Users seen anywhere (peers, group members), for names. */
  users: Record<string, PublicUser>;
  contacts: Contact[];
  activeId: string | null;
  panel: Panel;
  editing: { conversationId: string; seq: number } | null;
  /** A short failure message shown as a toast. */
  toast: string | null;
}

export const initialState: State = {
  session: 'starting',
  notice: null,
  me: null,
  connection: 'idle',
  online: true,
  conversations: {},
  timelines: {},
  pending: [],
  typing: {},
  presence: {},
  reads: {},
  users: {},
  contacts: [],
  activeId: null,
  panel: 'chats',
  editing: null,
  toast: null,
};

/** What a signed-out app keeps: the screen it is on and the network; the rest belongs to the session. */
export function signedOut(state: State, notice: string | null): State {
  return { ...initialState, session: 'anonymous', notice, online: state.online };
}

export const emptyTimeline: Timeline = { messages: [], floor: null, hasOlder: false, loadingOlder: false };

/** Upserts messages by seq, keeping the higher rev; returns the same array when nothing changed. */
export function mergeMessages(list: Message[], incoming: readonly Message[]): Message[] {
  const last = list[list.length - 1];
  if (incoming.length === 1 && (!last || incoming[0]!.seq > last.seq)) return [...list, incoming[0]!];
  const bySeq = new Map(list.map((message) => [message.seq, message]));
  let changed = false;
  for (const message of incoming) {
    const current = bySeq.get(message.seq);
    if (current && current.rev >= message.rev) continue;
    bySeq.set(message.seq, message);
    changed = true;
  }
  return changed ? [...bySeq.values()].sort((a, b) => a.seq - b.seq) : list;
}

export function withTimeline(state: State, conversationId: string, change: (timeline: Timeline) => Timeline): State {
  const current = state.timelines[conversationId] ?? emptyTimeline;
  const next = change(current);
  return next === current ? state : { ...state, timelines: { ...state.timelines, [conversationId]: next } };
}

function unread(summary: ConversationSummary): number {
  return Math.max(0, summary.lastSeq - summary.lastReadSeq);
}

/** A summary after a message of it was delivered or changed. */
export function summaryWithMessage(summary: ConversationSummary, message: Message, meId: string | undefined): ConversationSummary {
  const last = summary.lastMessage;
  const newer = !last || message.seq > last.seq || (message.seq === last.seq && message.rev > last.rev);
  const lastSeq = Math.max(summary.lastSeq, message.seq);
  // The server marks my own sends read for me.
  const lastReadSeq = message.senderId === meId ? Math.max(summary.lastReadSeq, message.seq) : summary.lastReadSeq;
  const next: ConversationSummary = {
    ...summary,
    lastSeq,
    lastReadSeq,
    lastRev: Math.max(summary.lastRev, message.rev),
    ...(newer ? { lastMessage: message } : {}),
    ...(newer && message.seq > (last?.seq ?? 0) ? { lastActivityAt: message.createdAt } : {}),
  };
  return { ...next, unreadCount: unread(next) };
}

/** A summary from a sync merged over what live events already moved forward. */
export function mergeSummary(current: ConversationSummary | undefined, incoming: ConversationSummary): ConversationSummary {
  if (!current) return incoming;
  const keepLast =
    current.lastMessage &&
    (!incoming.lastMessage ||
      current.lastMessage.seq > incoming.lastMessage.seq ||
      (current.lastMessage.seq === incoming.lastMessage.seq && current.lastMessage.rev > incoming.lastMessage.rev));
  const next: ConversationSummary = {
    ...incoming,
    lastSeq: Math.max(current.lastSeq, incoming.lastSeq),
    lastRev: Math.max(current.lastRev, incoming.lastRev),
    lastReadSeq: Math.max(current.lastReadSeq, incoming.lastReadSeq),
    ...(keepLast ? { lastMessage: current.lastMessage, lastActivityAt: current.lastActivityAt } : {}),
  };
  return { ...next, unreadCount: unread(next) };
}

export function withReadMarker(summary: ConversationSummary, lastReadSeq: number): ConversationSummary {
  if (lastReadSeq <= summary.lastReadSeq) return summary;
  const next = { ...summary, lastReadSeq };
  return { ...next, unreadCount: unread(next) };
}

/** Conversations, most recent activity first. */
export function byActivity(conversations: Record<string, ConversationSummary>): ConversationSummary[] {
  return Object.values(conversations).sort(
    (a, b) => Date.parse(b.lastActivityAt) - Date.parse(a.lastActivityAt) || b.id.localeCompare(a.id),
  );
}

export function displayName(user: PublicUser | undefined | null): string {
  return user ? user.displayName || user.username : 'Someone';
}

export function conversationTitle(summary: ConversationSummary): string {
  if (summary.kind === 'direct') return displayName(summary.peer);
  return summary.title ?? 'Group';
}
