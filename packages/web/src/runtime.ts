import type { ParleyClient } from '@parley/client';
import { describeError } from './error-text';
import { initialState, type State } from './state';
import { createStore } from './store';

/** The app's state: one store, updated only through the modules that own each part. */
export const store = createStore<State>(initialState);

/** The session in use: its SDK client, and how to detach its listeners. */
export interface Session {
  client: ParleyClient;
  detach: () => void;
}

let current: Session | null = null;

export function session(): Session | null {
  return current;
}

export function setSession(next: Session | null): void {
  current?.detach();
  current = next;
}

/** The current client, or null when signed out. */
export function activeClient(): ParleyClient | null {
  return current?.client ?? null;
}

/** True while `client` is still the session in use (not signed out, not replaced by another user's). */
export function isCurrent(client: ParleyClient): boolean {
  return current?.client === client;
}

/**
 * Memory that belongs to one session (what was fetched, what is in flight): each session
 * gets its own, so nothing the previous user's session noted carries over to the next.
 */
export function sessionScoped<T>(create: () => T): () => T {
  const bySession = new WeakMap<ParleyClient, T>();
  return () => {
    const client = activeClient();
    if (!client) return create();
    let value = bySession.get(client);
    if (value === undefined) {
      value = create();
      bySession.set(client, value);
    }
    return value;
  };
}

/**
 * Calls the server with the current session's client. Resolves its answer, or `undefined`
 * when signed out, when the call failed (then `failure` is shown with the reason, unless
 * null), or when the session ended or changed hands before the answer came: an answer
 * for one user's session never lands in the next one's state.
 */
export async function request<T>(failure: string | null, call: (client: ParleyClient) => Promise<T>): Promise<T | undefined> {
  const client = activeClient();
  if (!client) return undefined;
  try {
    const answer = await call(client);
    return isCurrent(client) ? answer : undefined;
  } catch (error) {
    if (failure !== null && isCurrent(client)) toast(`${failure}: ${describeError(error)}`);
    return undefined;
  }
}

/** Shows a short message; a newer one replaces it, and it goes away by itself. */
let toastTimer: ReturnType<typeof setTimeout> | undefined;
export function toast(message: string): void {
  store.update((state) => ({ ...state, toast: message }));
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => store.update((state) => ({ ...state, toast: null })), 5000);
}
