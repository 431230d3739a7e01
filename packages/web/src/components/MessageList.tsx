import { useEffect, useLayoutEffect, useMemo, useRef } from 'preact/hooks';
import type { ConversationSummary } from '@parley/protocol';
import { loadOlder } from '../history';
import { ensureUser } from '../people';
import { store } from '../runtime';
import { emptyTimeline } from '../state';
import { useSelector } from '../store';
import { MessageItem, PendingItem } from './MessageItem';

/** Within this many pixels of the top, the next older page is fetched. */
const LOAD_OLDER_AT_PX = 120;
/** Within this many pixels of the bottom, new messages keep the view scrolled down. */
const STICK_TO_BOTTOM_PX = 48;

export function MessageList({ conversation }: { conversation: ConversationSummary }) {
  const conversationId = conversation.id;
  const timeline = useSelector(store, (state) => state.timelines[conversationId] ?? emptyTimeline);
  const allPending = useSelector(store, (state) => state.pending);
  const reads = useSelector(store, (state) => state.reads[conversationId]);
  const users = useSelector(store, (state) => state.users);
  const meId = useSelector(store, (state) => state.me?.id);

  const { floor, hasOlder, loadingOlder } = timeline;
  const visible = useMemo(
    () => (floor === null ? [] : timeline.messages.filter((message) => message.seq >= floor)),
    [timeline.messages, floor],
  );
  // Group messages are headed by their sender's name: fetch the names not known yet.
  const senders = conversation.kind === 'group' ? [...new Set(visible.map((message) => message.senderId))].join() : '';
  useEffect(() => {
    for (const id of senders.split(',')) if (id) ensureUser(id);
  }, [senders]);
  const pending = allPending.filter((entry) => entry.conversationId === conversationId);

  // Receipt: on my newest stored message, who of the others has read up to it.
  const lastOwn = useMemo(() => {
    for (let index = visible.length - 1; index >= 0; index -= 1) if (visible[index]!.senderId === meId) return visible[index]!;
    return undefined;
  }, [visible, meId]);
  const readers = lastOwn ? Object.values(reads ?? {}).filter((seq) => seq >= lastOwn.seq).length : 0;
  let receipt = 'Sent';
  if (readers > 0) receipt = conversation.kind === 'group' ? `Seen by ${readers}` : 'Seen';

  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  /** Distance from the content's end to the viewport's top: kept when older messages are prepended. */
  const fromBottom = useRef(0);
  const firstSeq = useRef<number | undefined>(undefined);

  const remember = (element: HTMLDivElement) => {
    atBottom.current = element.scrollHeight - element.scrollTop - element.clientHeight < STICK_TO_BOTTOM_PX;
    fromBottom.current = element.scrollHeight - element.scrollTop;
  };

  const pendingCount = useRef(0);
  useLayoutEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const first = visible[0]?.seq;
    if (first !== undefined && firstSeq.current !== undefined && first < firstSeq.current) {
      // An older page came in above: keep what the reader was looking at in place.
      element.scrollTop = element.scrollHeight - fromBottom.current;
    } else if (atBottom.current || pending.length > pendingCount.current) {
      // Following the conversation, or I just sent something: show the end.
      element.scrollTop = element.scrollHeight;
    }
    firstSeq.current = first;
    pendingCount.current = pending.length;
    remember(element);
    // A first page too short to scroll cannot trigger the scroll handler: fetch more now.
    if (hasOlder && !loadingOlder && element.scrollHeight <= element.clientHeight) void loadOlder(conversationId);
  }, [visible, pending.length, hasOlder, loadingOlder, conversationId]);

  const onScroll = (event: Event) => {
    const element = event.currentTarget as HTMLDivElement;
    remember(element);
    if (element.scrollTop < LOAD_OLDER_AT_PX && hasOlder && !loadingOlder) void loadOlder(conversationId);
  };

  return (
    <div class="messages" ref={scroller} onScroll={onScroll}>
      {floor === null && <p class="placeholder">Loading messages…</p>}
      {floor !== null && hasOlder && (
        <button type="button" class="load-older" disabled={loadingOlder} onClick={() => void loadOlder(conversationId)}>
          {loadingOlder ? 'Loading…' : 'Load older messages'}
        </button>
      )}
      {floor !== null && !hasOlder && (
        <p class="history-start">
          {visible.length + pending.length === 0 ? 'No messages yet. Say hello!' : 'Beginning of the conversation'}
        </p>
      )}
      <ol class="message-items" role="log" aria-label="Messages" aria-live="polite">
        {visible.map((message, index) => {
          const previous = visible[index - 1];
          const continued =
            previous !== undefined &&
            previous.senderId === message.senderId &&
            Date.parse(message.createdAt) - Date.parse(previous.createdAt) < 5 * 60_000;
          return (
            <MessageItem
              key={message.seq}
              message={message}
              own={message.senderId === meId}
              sender={conversation.kind === 'group' && !continued && message.senderId !== meId ? users[message.senderId] : undefined}
              continued={continued}
              receipt={message === lastOwn ? receipt : undefined}
            />
          );
        })}
        {pending.map((entry) => (
          <PendingItem key={entry.clientMessageId} entry={entry} />
        ))}
      </ol>
    </div>
  );
}
