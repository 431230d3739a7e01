import { useEffect, useMemo } from 'preact/hooks';
import type { ConversationSummary } from '@parley/protocol';
import { unreadShown } from '../chat';
import { shortTime } from '../format';
import { ensureUser } from '../people';
import { openConversation } from '../router';
import { store } from '../runtime';
import { byActivity, conversationTitle, displayName } from '../state';
import { useSelector } from '../store';
import { Avatar } from './Avatar';

export function ConversationList() {
  const conversations = useSelector(store, (state) => state.conversations);
  const sorted = useMemo(() => byActivity(conversations), [conversations]);
  if (sorted.length === 0) {
    return <p class="placeholder">No conversations yet. Find someone in Contacts to start one.</p>;
  }
  return (
    <ul class="conversation-list" aria-label="Conversations">
      {sorted.map((summary) => (
        <ConversationRow key={summary.id} summary={summary} />
      ))}
    </ul>
  );
}

function preview(summary: ConversationSummary, meId: string | undefined, senderName: string): string {
  const last = summary.lastMessage;
  if (!last) return summary.kind === 'group' ? `${summary.memberCount} members` : 'No messages yet';
  const text = last.body ?? 'Message deleted';
  if (last.senderId === meId) return `You: ${text}`;
  return summary.kind === 'group' ? `${senderName}: ${text}` : text;
}

function ConversationRow({ summary }: { summary: ConversationSummary }) {
  const active = useSelector(store, (state) => state.activeId === summary.id);
  const meId = useSelector(store, (state) => state.me?.id);
  // Unknown presence (no event yet) shows no dot rather than a wrong "offline".
  const online = useSelector(store, (state) => (summary.peer ? state.presence[summary.peer.id] : undefined));
  const typing = useSelector(store, (state) => Object.keys(state.typing[summary.id] ?? {}).length > 0);
  const senderId = summary.kind === 'group' ? summary.lastMessage?.senderId : undefined;
  const sender = useSelector(store, (state) => (senderId ? state.users[senderId] : undefined));
  useEffect(() => ensureUser(senderId), [senderId]);
  const unread = unreadShown(summary, active ? summary.id : null);
  const title = conversationTitle(summary);
  const avatarId = summary.peer?.id ?? summary.id;
  return (
    <li>
      <button
        type="button"
        class={active ? 'conversation active' : 'conversation'}
        aria-current={active ? 'true' : undefined}
        data-conversation-id={summary.id}
        onClick={() => openConversation(summary.id)}
      >
        <Avatar id={avatarId} name={title} online={online} />
        <span class="conversation-text">
          <span class="conversation-top">
            <span class="conversation-title">{title}</span>
            <time class="muted" dateTime={summary.lastActivityAt}>
              {shortTime(summary.lastActivityAt)}
            </time>
          </span>
          <span class="conversation-bottom">
            <span class={typing ? 'conversation-preview typing-text' : 'conversation-preview'}>
              {typing ? 'typing…' : preview(summary, meId, displayName(sender))}
            </span>
            {unread > 0 && (
              <span class="badge" data-testid="unread-badge">
                {unread > 99 ? '99+' : unread}
                <span class="visually-hidden"> unread</span>
              </span>
            )}
          </span>
        </span>
      </button>
    </li>
  );
}
