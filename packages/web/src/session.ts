import { MemorySyncStateStore, ParleyClient, type Tokens } from '@parley/client';
import type { ConversationSummary } from '@parley/protocol';

/*
 * The session lives in sessionStorage: it survives a reload and stays with its tab. One
 * session per tab matters because refresh tokens rotate and are single use: two tabs
 * refreshing the same one would look like theft to the server and revoke the session.
 *
 * Keeping the refresh token where scripts can read it means a script injected into the
 * page could steal it. That trade-off is accepted for this app: it renders every piece of
 * user text as text, never as HTML, and loads no third-party script.
 */
const TOKENS_KEY = 'parley.tokens';

function storage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    // Storage can be disabled (privacy settings): the app still works, without resuming.
    return null;
  }
}

export function loadTokens(): Tokens | undefined {
  try {
    const raw = storage()?.getItem(TOKENS_KEY);
    return raw ? (JSON.parse(raw) as Tokens) : undefined;
  } catch {
    return undefined;
  }
}

export function saveTokens(tokens: Tokens | null): void {
  const store = storage();
  if (!store) return;
  if (tokens) store.setItem(TOKENS_KEY, JSON.stringify(tokens));
  else store.removeItem(TOKENS_KEY);
}

/**
 * Starts the SDK's sync cursors at the conversations' current end (the documented way to
 * skip old history): the app pages history over REST when a chat is opened, so the SDK only
 * delivers what happens from now on. Done at every start, before `connect()` (the SDK reads
 * its store then), so a reload never pulls history it will not show.
 */
export function startAtCurrentEnd(store: MemorySyncStateStore, summaries: readonly ConversationSummary[]): void {
  for (const summary of summaries) {
    store.save(summary.id, { rev: summary.lastRev, deliveredSeq: summary.lastSeq, lastReadSeq: summary.lastReadSeq });
  }
}

/** A client for this page's origin: REST under /v1 and the socket at /ws (wss: on https). */
export function createClient(tokens?: Tokens): { client: ParleyClient; syncStore: MemorySyncStateStore } {
  // Cursors in memory: each start begins at the current end (above), so nothing needs keeping.
  const syncStore = new MemorySyncStateStore();
  const client = new ParleyClient({ baseUrl: window.location.origin, store: syncStore, ...(tokens ? { tokens } : {}) });
  return { client, syncStore };
}
