import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import { Limits } from '@parley/protocol';
import { draftOf, editMessage, keepDraft, notifyTyping, startEditing } from '../chat';
import { sendMessage } from '../outgoing';
import { store } from '../runtime';
import { useSelector } from '../store';

export function Composer({ conversationId }: { conversationId: string }) {
  const editing = useSelector(store, (state) => (state.editing?.conversationId === conversationId ? state.editing : null));
  const editedBody = useSelector(store, (state) =>
    editing ? state.timelines[conversationId]?.messages.find((message) => message.seq === editing.seq)?.body ?? null : null,
  );
  // The box holds this chat's draft, or while editing the edited message.
  const [text, setText] = useState(() => draftOf(conversationId));
  const saving = useRef(false);
  const input = useRef<HTMLTextAreaElement>(null);

  const mounted = useRef(false);
  // Before paint, so the box never shows the draft under an "Edit message" label.
  useLayoutEffect(() => {
    setText(editing ? editedBody ?? '' : draftOf(conversationId));
    // On opening a chat, focus only where it does not pop up an on-screen keyboard.
    if (mounted.current || window.matchMedia('(hover: hover)').matches) input.current?.focus();
    mounted.current = true;
  }, [editing?.seq]);

  const submit = async (event?: Event) => {
    event?.preventDefault();
    const body = text.trim();
    if (!body) return;
    if (editing) {
      // One save at a time: a second Enter while the first is on its way would store the edit twice.
      if (saving.current) return;
      saving.current = true;
      const saved = body === editedBody || (await editMessage(conversationId, editing.seq, body));
      saving.current = false;
      if (saved) startEditing(conversationId, null);
      return;
    }
    setText('');
    keepDraft(conversationId, '');
    sendMessage(conversationId, body);
  };

  const onKeyDown = (event: KeyboardEvent) => {
    // Enter sends, Shift+Enter breaks the line (the usual chat convention); Escape leaves editing.
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) void submit(event);
    else if (event.key === 'Escape' && editing) startEditing(conversationId, null);
  };

  return (
    <form class="composer" onSubmit={(event) => void submit(event)}>
      {editing && (
        <div class="editing-bar">
          <span>Editing message</span>
          <button type="button" class="link" onClick={() => startEditing(conversationId, null)}>
            Cancel
          </button>
        </div>
      )}
      <div class="composer-row">
        <textarea
          ref={input}
          rows={1}
          aria-label={editing ? 'Edit message' : 'Message'}
          placeholder="Write a message"
          maxLength={Limits.messageBodyMaxLength}
          value={text}
          onInput={(event) => {
            const value = event.currentTarget.value;
            setText(value);
            if (editing) return;
            keepDraft(conversationId, value);
            if (value) notifyTyping(conversationId);
          }}
          onKeyDown={onKeyDown}
        />
        <button class="primary" type="submit" disabled={!text.trim()}>
          {editing ? 'Save' : 'Send'}
        </button>
      </div>
    </form>
  );
}
