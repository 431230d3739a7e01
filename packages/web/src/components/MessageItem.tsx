import { useState } from 'preact/hooks';
import type { Message, PublicUser } from '@parley/protocol';
import { deleteMessage, startEditing } from '../chat';
import { clockTime } from '../format';
import { discardSend, retrySend } from '../outgoing';
import { displayName, type PendingSend } from '../state';

interface Props {
  message: Message;
  own: boolean;
  /** The sender's name is shown (first message of a run in a group). */
  sender: PublicUser | undefined;
  /** Same sender as the message above, shortly after: drawn closer to it. */
  continued: boolean;
  /** "Sent" / "Seen": shown under my newest message. */
  receipt: string | undefined;
}

// Every body is rendered as a text node: whatever it contains (markup included) shows literally.
export function MessageItem({ message, own, sender, continued, receipt }: Props) {
  const [menu, setMenu] = useState(false);
  const deleted = message.body === null;
  const classes = ['message', own ? 'own' : 'theirs', continued ? 'continued' : '', deleted ? 'deleted' : ''];
  return (
    <li class={classes.join(' ')} data-seq={message.seq}>
      {sender && <span class="sender">{displayName(sender)}</span>}
      <div class="bubble-row">
        {own && !deleted && (
          <button
            type="button"
            class="message-menu"
            aria-label="Message actions"
            aria-expanded={menu}
            onClick={() => setMenu(!menu)}
          >
            ⋯
          </button>
        )}
        <div class="bubble">
          {deleted ? <em class="tombstone">Message deleted</em> : <span class="body">{message.body}</span>}
          <span class="meta">
            {message.editedAt && !deleted && <span class="edited">edited</span>}
            <time dateTime={message.createdAt}>{clockTime(message.createdAt)}</time>
          </span>
        </div>
      </div>
      {menu && own && !deleted && (
        <div class="message-actions">
          <button
            type="button"
            class="small"
            onClick={() => {
              setMenu(false);
              startEditing(message.conversationId, message.seq);
            }}
          >
            Edit
          </button>
          <button
            type="button"
            class="small danger"
            onClick={() => {
              setMenu(false);
              void deleteMessage(message.conversationId, message.seq);
            }}
          >
            Delete
          </button>
        </div>
      )}
      {receipt && (
        <span class="receipt" data-testid="receipt">
          {receipt}
        </span>
      )}
    </li>
  );
}

export function PendingItem({ entry }: { entry: PendingSend }) {
  return (
    <li class="message own pending" data-client-message-id={entry.clientMessageId}>
      <div class="bubble-row">
        <div class="bubble">
          <span class="body">{entry.body}</span>
        </div>
      </div>
      {entry.failed ? (
        <span class="receipt failed">
          Not sent.{' '}
          <button type="button" class="link" onClick={() => retrySend(entry.clientMessageId)}>
            Retry
          </button>{' '}
          <button type="button" class="link" onClick={() => discardSend(entry.clientMessageId)}>
            Discard
          </button>
        </span>
      ) : (
        <span class="receipt">Sending…</span>
      )}
    </li>
  );
}
