import { remember } from './people';
import { request, sessionScoped, store } from './runtime';
import { mergeMessages, withTimeline } from './state';

/*
 * What an open chat shows that the SDK does not deliver: its history, a page at a time
 * over REST, and its members (names, and each one's read marker for the receipts).
 * Everything after the session started arrives through the SDK (events.ts).
 */

/** Messages per history page. */
export const PAGE_SIZE = 30;

const newestLoading = sessionScoped(() => new Set<string>());
const membersLoaded = sessionScoped(() => new Set<string>());

/** Loads what an opened conversation shows: its newest page (once) and its members' read markers. */
export function prepareConversation(conversationId: string): void {
  const timeline = store.get().timelines[conversationId];
  if ((!timeline || timeline.floor === null) && !newestLoading().has(conversationId)) void loadNewest(conversationId);
  if (!membersLoaded().has(conversationId)) void refreshMembers(conversationId);
}

async function loadNewest(conversationId: string): Promise<void> {
  const loading = newestLoading();
  loading.add(conversationId);
  const page = await request('Could not load messages', (client) => client.rest.history(conversationId, { limit: PAGE_SIZE }));
  loading.delete(conversationId);
  if (!page) return;
  store.update((state) =>
    withTimeline(state, conversationId, (timeline) => ({
      ...timeline,
      messages: mergeMessages(timeline.messages, page.messages),
      // An empty conversation shows everything that arrives from now on.
      floor: page.messages[0]?.seq ?? 0,
      hasOlder: page.hasMore,
    })),
  );
}

/** Pages one step back into history (scrolling to the top of a chat); one page at a time. */
export async function loadOlder(conversationId: string): Promise<void> {
  const timeline = store.get().timelines[conversationId];
  if (!timeline || timeline.floor === null || !timeline.hasOlder || timeline.loadingOlder) return;
  const before = timeline.floor;
  store.update((state) => withTimeline(state, conversationId, (current) => ({ ...current, loadingOlder: true })));
  const page = await request('Could not load older messages', (client) =>
    client.rest.history(conversationId, { before, limit: PAGE_SIZE }),
  );
  store.update((state) => {
    // Signed out meanwhile: the timeline went with the session.
    if (!state.timelines[conversationId]) return state;
    return withTimeline(state, conversationId, (current) => ({
      ...current,
      loadingOlder: false,
      ...(page
        ? {
            messages: mergeMessages(current.messages, page.messages),
            floor: Math.min(current.floor ?? before, page.messages[0]?.seq ?? before),
            hasOlder: page.hasMore,
          }
        : {}),
    }));
  });
}

/**
 * After a reconnect: read markers moved while the socket was down are known only to the
 * server (a sync carries my own read state, not the others'). The open chat fetches its
 * members again now, the others when they are next opened.
 */
export function membersMayHaveMoved(): void {
  membersLoaded().clear();
  const { activeId, conversations } = store.get();
  if (activeId && conversations[activeId]) void refreshMembers(activeId);
}

/** Fetches the member list: names for group senders and everyone's read marker (receipts). */
export async function refreshMembers(conversationId: string): Promise<void> {
  const loaded = membersLoaded();
  loaded.add(conversationId);
  // Receipts and names are extras: the chat works without them, so a failure stays quiet.
  const members = await request(null, (client) => client.rest.listMembers(conversationId));
  if (!members) {
    loaded.delete(conversationId);
    return;
  }
  remember(members.map((member) => member.user));
  store.update((state) => {
    const reads = { ...state.reads[conversationId] };
    for (const member of members) {
      if (member.user.id === state.me?.id) continue;
      reads[member.user.id] = Math.max(reads[member.user.id] ?? 0, member.lastReadSeq);
    }
    return { ...state, reads: { ...state.reads, [conversationId]: reads } };
  });
}
