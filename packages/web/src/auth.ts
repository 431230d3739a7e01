import { isLoginRequired, type MemorySyncStateStore, type ParleyClient } from '@parley/client';
import type { ConversationSummary } from '@parley/protocol';
import { describeError } from './error-text';
import { bindEvents } from './events';
import { membersMayHaveMoved, refreshMembers } from './history';
import { connectSession } from './network';
import { refreshContacts } from './people';
import { isCurrent, session, setSession, store } from './runtime';
import { createClient, loadTokens, saveTokens, startAtCurrentEnd } from './session';
import { signedOut } from './state';

/** At most this many conversations are listed at start (pages of 100). */
const MAX_LISTED = 1000;

function attach(client: ParleyClient): void {
  const detach = bindEvents(client, {
    sessionEnded: () => endSession('Your session has ended. Please log in again.'),
    contactsChanged: () => void refreshContacts(),
    membersChanged: (conversationId) => void refreshMembers(conversationId),
    reconnected: membersMayHaveMoved,
  });
  setSession({ client, detach });
}

async function listAll(client: ParleyClient): Promise<ConversationSummary[]> {
  const all: ConversationSummary[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.rest.listConversations({ limit: 100, ...(cursor ? { cursor } : {}) });
    all.push(...page.conversations);
    cursor = page.nextCursor ?? undefined;
  } while (cursor && all.length < MAX_LISTED);
  return all;
}

/** Loads what the first screen needs, then opens the live connection. */
async function start(client: ParleyClient, syncStore: MemorySyncStateStore): Promise<void> {
  const me = await client.rest.me();
  const conversations = await listAll(client);
  // Before connect(): the SDK reads the store once, on its first connect.
  startAtCurrentEnd(syncStore, conversations);
  if (!isCurrent(client)) return;
  store.update((state) => {
    const users = { ...state.users };
    for (const summary of conversations) if (summary.peer) users[summary.peer.id] = summary.peer;
    return {
      ...state,
      session: 'ready',
      notice: null,
      me: { id: me.id, username: me.username, displayName: me.displayName },
      users,
      conversations: Object.fromEntries(conversations.map((summary) => [summary.id, summary])),
    };
  });
  // Fetched again on every socket open (see bindEvents): a request sent before the socket
  // subscribed is heard by neither.
  void refreshContacts();
  connectSession(client);
}

/** At page load: resumes the saved session, if any. */
export async function resume(): Promise<void> {
  const tokens = loadTokens();
  if (!tokens) {
    store.update((state) => signedOut(state, null));
    return;
  }
  const { client, syncStore } = createClient(tokens);
  attach(client);
  try {
    await start(client, syncStore);
  } catch (error) {
    if (!isCurrent(client)) return;
    if (isLoginRequired(error)) await endSession('Your session has ended. Please log in again.');
    // Keep the saved session: a reload tries it again once the server is back.
    else await endSession(`Could not start: ${describeError(error)} Reload to try again.`, false);
  }
}

/** A session that could not be resumed for want of a network is tried again when the network is back. */
export function resumeWhenOnline(): void {
  window.addEventListener('online', () => {
    if (store.get().session === 'anonymous' && !session() && loadTokens()) void resume();
  });
}

/** Logs in (or registers, with `create`), then starts the session. Rejects with a readable error. */
export async function signIn(form: { username: string; password: string; displayName?: string; create: boolean }): Promise<void> {
  const { client, syncStore } = createClient();
  attach(client);
  try {
    if (form.create) {
      await client.register({
        username: form.username,
        password: form.password,
        ...(form.displayName ? { displayName: form.displayName } : {}),
      });
    } else {
      await client.login({ username: form.username, password: form.password, deviceName: 'Web' });
    }
    await start(client, syncStore);
  } catch (error) {
    if (isCurrent(client)) {
      // Logged in but could not start (the first screen failed to load): the form says
      // so, so no half-started session may linger, here (a reload) or on the server.
      setSession(null);
      saveTokens(null);
      await client.logout();
    }
    throw error;
  }
}

/** Ends the session here (server-side too, best effort) and shows the login screen. */
export async function logout(): Promise<void> {
  const current = session();
  setSession(null);
  // Forgotten before the server is asked: however late its answer comes, a reload must
  // not resume this session, and the next user's session saved meanwhile stays.
  saveTokens(null);
  store.update((state) => signedOut(state, null));
  await current?.client.logout();
}

/** The session cannot go on here: ask for a login (and forget it, when the server ended it). */
async function endSession(notice: string, forget = true): Promise<void> {
  const current = session();
  setSession(null);
  if (forget) saveTokens(null);
  store.update((state) => signedOut(state, notice));
  await current?.client.close();
}
