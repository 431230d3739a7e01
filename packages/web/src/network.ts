import type { ParleyClient } from '@parley/client';
import { activeClient, store } from './runtime';

/** Opens the live connection; the SDK keeps it up (and reports its state) until it is closed. */
export function connectSession(client: ParleyClient): void {
  // Failures surface as connection states (needs-login, reconnecting), handled by the events.
  client.connect().catch(() => undefined);
}

function setOnline(online: boolean): void {
  store.update((state) => (state.online === online ? state : { ...state, online }));
}

/**
 * Follows the browser's network state. A browser that goes offline keeps its sockets
 * open but silent, which the SDK would otherwise notice only by its heartbeat (~50 s);
 * `reconnect()` drops the socket and connects again at once (unacknowledged sends go out
 * again with their ids once it is open).
 */
export function watchNetwork(): void {
  setOnline(navigator.onLine);
  window.addEventListener('offline', () => {
    setOnline(false);
    // Nothing can arrive on the old socket: let the SDK show and run its reconnect loop.
    activeClient()?.reconnect();
  });
  window.addEventListener('online', () => {
    setOnline(true);
    // The SDK may be waiting out a long backoff from the offline attempts.
    const client = activeClient();
    if (client && client.connectionState !== 'open') client.reconnect();
  });
}
