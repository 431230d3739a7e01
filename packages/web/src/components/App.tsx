import { useEffect } from 'preact/hooks';
import { unreadShown } from '../chat';
import { store } from '../runtime';
import { useSelector } from '../store';
import { AuthScreen } from './AuthScreen';
import { ChatView } from './ChatView';
import { ConnectionBanner } from './ConnectionBanner';
import { Sidebar } from './Sidebar';

export function App() {
  const session = useSelector(store, (state) => state.session);
  if (session === 'starting') return <div class="splash">Loading…</div>;
  if (session === 'anonymous') return <AuthScreen />;
  return <Main />;
}

function Main() {
  const activeId = useSelector(store, (state) => state.activeId);
  const unread = useSelector(store, (state) =>
    Object.values(state.conversations).reduce((sum, summary) => sum + unreadShown(summary, state.activeId), 0),
  );
  // The tab's title tells a user in another tab that something arrived.
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) Parley` : 'Parley';
    return () => {
      document.title = 'Parley';
    };
  }, [unread]);
  return (
    <div class={activeId ? 'layout has-chat' : 'layout'}>
      <ConnectionBanner />
      <Sidebar />
      <main class="pane chat-pane">
        {activeId ? (
          <ChatView key={activeId} conversationId={activeId} />
        ) : (
          <div class="empty-chat">
            <p>Select a conversation, or start one from Contacts.</p>
          </div>
        )}
      </main>
      <Toast />
    </div>
  );
}

function Toast() {
  const toast = useSelector(store, (state) => state.toast);
  return (
    <div class="toast-region" role="alert" aria-live="assertive">
      {toast && <div class="toast">{toast}</div>}
    </div>
  );
}
