import { store } from './runtime';
import type { Panel } from './state';

/*
 * Where the user is. The open conversation lives in the URL hash (#/c/<id>): a reload
 * keeps it, and the browser's back button (or a phone's back gesture) returns to the list.
 */
const PREFIX = '#/c/';

function fromHash(): string | null {
  const hash = window.location.hash;
  return hash.startsWith(PREFIX) ? decodeURIComponent(hash.slice(PREFIX.length)) || null : null;
}

function apply(): void {
  const activeId = fromHash();
  store.update((state) => (state.activeId === activeId ? state : { ...state, activeId, editing: null }));
}

/** True while the open chat was opened from within the app (so "back" can pop it off history). */
let pushedByApp = false;

export function openConversation(conversationId: string): void {
  const target = PREFIX + encodeURIComponent(conversationId);
  if (window.location.hash === target) return apply();
  // Switching chats replaces the entry: back always leads to the list, not through every chat.
  if (fromHash() !== null) window.location.replace(target);
  else {
    pushedByApp = true;
    window.location.hash = target;
  }
}

export function closeConversation(): void {
  if (fromHash() === null) return;
  if (pushedByApp) {
    pushedByApp = false;
    window.history.back();
  } else window.location.replace('#/');
}

export function watchRoute(): void {
  window.addEventListener('hashchange', apply);
  apply();
  // A signed-out app leaves the chat it showed: the next person to sign in on this tab
  // must not land in (or fetch) a conversation of the previous one. At load the URL is
  // kept, so a resumed session reopens its chat.
  let ready = store.get().session === 'ready';
  store.subscribe(() => {
    const now = store.get().session === 'ready';
    if (ready && !now && fromHash() !== null) {
      pushedByApp = false;
      window.location.replace('#/');
    }
    ready = now;
  });
}

/** Shows one of the sidebar's panels. */
export function showPanel(panel: Panel): void {
  store.update((state) => ({ ...state, panel }));
}
