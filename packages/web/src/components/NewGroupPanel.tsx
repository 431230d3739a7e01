import { useState } from 'preact/hooks';
import { createGroup } from '../people';
import { openConversation, showPanel } from '../router';
import { store } from '../runtime';
import { displayName } from '../state';
import { useSelector } from '../store';
import { Avatar } from './Avatar';

export function NewGroupPanel() {
  const contacts = useSelector(store, (state) => state.contacts);
  const accepted = contacts.filter((contact) => contact.state === 'accepted');
  const [title, setTitle] = useState('');
  const [members, setMembers] = useState<ReadonlySet<string>>(new Set());
  const [busy, setBusy] = useState(false);

  const toggle = (userId: string) => {
    const next = new Set(members);
    if (next.has(userId)) next.delete(userId);
    else next.add(userId);
    setMembers(next);
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    const id = await createGroup(title.trim(), [...members]);
    setBusy(false);
    if (!id) return;
    setTitle('');
    setMembers(new Set());
    showPanel('chats');
    openConversation(id);
  };

  return (
    <form class="new-group" onSubmit={submit}>
      <label>
        Group name
        <input required maxLength={128} value={title} onInput={(event) => setTitle(event.currentTarget.value)} />
      </label>
      <fieldset>
        <legend>Members</legend>
        {accepted.length === 0 && <p class="placeholder">Add contacts first: groups are made from your contacts.</p>}
        <ul class="people">
          {accepted.map(({ user }) => (
            <li key={user.id} class="person">
              <label class="check">
                <input type="checkbox" checked={members.has(user.id)} onChange={() => toggle(user.id)} />
                <Avatar id={user.id} name={displayName(user)} />
                <span class="person-name">
                  <span>{displayName(user)}</span>
                  <span class="muted small-text">@{user.username}</span>
                </span>
              </label>
            </li>
          ))}
        </ul>
      </fieldset>
      <button class="primary" type="submit" disabled={busy || !title.trim() || members.size === 0}>
        Create group
      </button>
    </form>
  );
}
