import { logout } from '../auth';
import { showPanel } from '../router';
import { store } from '../runtime';
import { displayName } from '../state';
import { useSelector } from '../store';
import { Avatar } from './Avatar';
import { ContactsPanel } from './ContactsPanel';
import { ConversationList } from './ConversationList';
import { NewGroupPanel } from './NewGroupPanel';

export function Sidebar() {
  const me = useSelector(store, (state) => state.me);
  const panel = useSelector(store, (state) => state.panel);
  const incoming = useSelector(store, (state) => state.contacts.filter((contact) => contact.state === 'incoming').length);
  return (
    <aside class="pane list-pane">
      <header class="pane-header">
        {me && <Avatar id={me.id} name={displayName(me)} />}
        <div class="me">
          <strong>{displayName(me)}</strong>
          <span class="muted">@{me?.username}</span>
        </div>
        <button type="button" class="ghost" onClick={() => void logout()}>
          Log out
        </button>
      </header>
      <nav class="tabs" aria-label="Sections">
        <button type="button" aria-current={panel === 'chats' ? 'page' : undefined} onClick={() => showPanel('chats')}>
          Chats
        </button>
        <button type="button" aria-current={panel === 'contacts' ? 'page' : undefined} onClick={() => showPanel('contacts')}>
          Contacts
          {incoming > 0 && (
            <span class="badge">
              {incoming}
              <span class="visually-hidden"> new requests</span>
            </span>
          )}
        </button>
        <button type="button" aria-current={panel === 'new-group' ? 'page' : undefined} onClick={() => showPanel('new-group')}>
          New group
        </button>
      </nav>
      <div class="pane-body">
        {panel === 'chats' && <ConversationList />}
        {panel === 'contacts' && <ContactsPanel />}
        {panel === 'new-group' && <NewGroupPanel />}
      </div>
    </aside>
  );
}
