import { store } from '../runtime';
import { useSelector } from '../store';

/**
 * Says when live updates are not flowing, from the SDK's connection state (connecting,
 * reconnecting after a drop), with the browser's offline flag as the likely reason.
 */
export function ConnectionBanner() {
  const connection = useSelector(store, (state) => state.connection);
  const online = useSelector(store, (state) => state.online);
  let text: string | null = null;
  if (!online) text = 'You are offline. Reconnecting when the network is back…';
  else if (connection === 'reconnecting' || connection === 'closed') text = 'Connection lost. Reconnecting…';
  else if (connection === 'connecting' || connection === 'idle') text = 'Connecting…';
  return (
    <div class="banner-slot" role="status" aria-live="polite">
      {text && (
        <div class="banner" data-testid="connection-banner" data-state={connection}>
          <span class="spinner" aria-hidden="true" />
          {text}
        </div>
      )}
    </div>
  );
}
