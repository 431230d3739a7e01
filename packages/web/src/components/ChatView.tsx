import { useEffect } from 'preact/hooks';
import { markViewed } from '../chat';
import { prepareConversation } from '../history';
import { ensureUser } from '../people';
import { closeConversation } from '../router';
import { store } from '../runtime';
import { conversationTitle, displayName } from '../state';
import { useSelector } from '../store';
import { Avatar } from './Avatar';
import { Composer } from './Composer';
import { MessageList } from './MessageList';

export function ChatView({ conversationId }: { conversationId: string }) {
  const summary = useSelector(store, (state) => state.conversations[conversationId]);
  const online = useSelector(store, (state) => (summary?.peer ? state.presence[summary.peer.id] : undefined));
  const lastSeq = summary?.lastSeq ?? 0;
  const known = summary !== undefined;

  // Its history and members, once it is a conversation of mine (it may become one later, by a sync).
  useEffect(() => {
    if (known) prepareConversation(conversationId);
  }, [conversationId, known]);

  // Reading happens when the chat is on screen: on open, on every new message, on returning to the tab.
  useEffect(() => {
    void markViewed(conversationId);
    const onVisible = () => void markViewed(conversationId);
    document.addEventListener('visibilitychange', onVisible);
    return () => document.removeEventListener('visibilitychange', onVisible);
  }, [conversationId, lastSeq]);

  if (!summary) {
    return (
      <section class="chat">
        <header class="pane-header chat-header">
          <button type="button" class="back" aria-label="Back to conversations" onClick={closeConversation}>
            ‹
          </button>
          <h2 class="chat-title">Conversation</h2>
        </header>
        <p class="placeholder">This conversation is not available.</p>
      </section>
    );
  }
  const title = conversationTitle(summary);
  const subtitle =
    summary.kind === 'group' ? `${summary.memberCount} members` : online ? 'Online' : `@${summary.peer?.username ?? ''}`;
  return (
    <section class="chat" aria-label={`Chat with ${title}`}>
      <header class="pane-header chat-header">
        <button type="button" class="back" aria-label="Back to conversations" onClick={closeConversation}>
          ‹
        </button>
        <Avatar id={summary.peer?.id ?? summary.id} name={title} online={online} />
        <div class="chat-heading">
          <h2 class="chat-title">{title}</h2>
          <span class="muted small-text" data-testid="chat-subtitle">
            {subtitle}
          </span>
        </div>
      </header>
      <MessageList conversation={summary} />
      <TypingLine conversationId={conversationId} />
      <Composer conversationId={conversationId} />
    </section>
  );
}

function TypingLine({ conversationId }: { conversationId: string }) {
  const typing = useSelector(store, (state) => state.typing[conversationId]);
  const users = useSelector(store, (state) => state.users);
  const typists = Object.keys(typing ?? {});
  useEffect(() => typists.forEach(ensureUser), [typists.join()]);
  const names = typists.map((userId) => displayName(users[userId]));
  let text = '';
  if (names.length === 1) text = `${names[0]!} is typing…`;
  else if (names.length > 1) text = `${names.length} people are typing…`;
  return (
    <div class="typing-line" aria-live="polite" data-testid="typing-indicator">
      {text}
    </div>
  );
}
