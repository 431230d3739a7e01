import { isParleyClientError } from '@parley/client';
import type { ConversationSummary, PublicUser } from '@parley/protocol';
import { activeClient, isCurrent, request, sessionScoped, store } from './runtime';
import { mergeSummary } from './state';

/** Users being fetched, or that could not be (not asked again this session). */
const usersAsked = sessionScoped(() => new Set<string>());

/** Keeps users' names for display. */
export function remember(users: readonly PublicUser[]): void {
  if (users.length === 0) return;
  store.update((state) => {
    const next = { ...state.users };
    for (const user of users) next[user.id] = user;
    return { ...state, users: next };
  });
}

/** Fetches a user's name when something shows a user the app has not met yet (a group sender). */
export function ensureUser(userId: string | undefined): void {
  const asked = usersAsked();
  if (!userId || store.get().users[userId] || asked.has(userId)) return;
  asked.add(userId);
  // A user that cannot be fetched stays "Someone": asking again on every render would flood the server.
  void request(null, (client) => client.rest.getUser(userId)).then((user) => {
    if (!user) return;
    remember([user]);
    asked.delete(userId);
  });
}

/** Counts contact fetches: only the latest one started may write its answer. */
let contactsFetch = 0;

export async function refreshContacts(): Promise<void> {
  const fetch = ++contactsFetch;
  const contacts = await request('Could not load contacts', (client) => client.rest.listContacts());
  // An older fetch answering late must not overwrite a newer list.
  if (!contacts || fetch !== contactsFetch) return;
  remember(contacts.map((contact) => contact.user));
  store.update((state) => ({ ...state, contacts }));
}

/** Finds a user by username; resolves null when there is none. Rejects on any other failure. */
export async function findUser(username: string): Promise<PublicUser | null> {
  const client = activeClient();
  if (!client) return null;
  try {
    const user = await client.rest.findUser(username);
    return isCurrent(client) ? user : null;
  } catch (error) {
    if (isParleyClientError(error) && error.code === 'USER_NOT_FOUND') return null;
    throw error;
  }
}

export type ContactAction = 'request' | 'accept' | 'decline' | 'remove';

const CONTACT_FAILURES: Record<ContactAction, string> = {
  request: 'Could not send the contact request',
  accept: 'Could not accept the request',
  decline: 'Could not decline the request',
  remove: 'Could not cancel the request',
};

export async function changeContact(userId: string, action: ContactAction): Promise<void> {
  await request(CONTACT_FAILURES[action], async (client) => {
    if (action === 'request') await client.rest.requestContact(userId);
    else if (action === 'accept') await client.rest.acceptContact(userId);
    else if (action === 'decline') await client.rest.declineContact(userId);
    else await client.rest.removeContact(userId);
  });
  // Also after a failure: the list shows where things stand now.
  await refreshContacts();
}

function upsertConversation(summary: ConversationSummary): string {
  if (summary.peer) remember([summary.peer]);
  store.update((state) => ({
    ...state,
    conversations: { ...state.conversations, [summary.id]: mergeSummary(state.conversations[summary.id], summary) },
  }));
  return summary.id;
}

/** Opens (creating if needed) the direct conversation with a user; resolves its id. */
export async function startDirect(userId: string): Promise<string | null> {
  const summary = await request('Could not open the chat', (client) => client.rest.openDirect(userId));
  return summary ? upsertConversation(summary) : null;
}

export async function createGroup(title: string, memberIds: string[]): Promise<string | null> {
  const summary = await request('Could not create the group', (client) => client.rest.createGroup({ title, memberIds }));
  return summary ? upsertConversation(summary) : null;
}
