import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { Contact, PublicUser } from '@parley/protocol';
import { describeError } from '../error-text';
import { changeContact, findUser, startDirect } from '../people';
import { openConversation, showPanel } from '../router';
import { store } from '../runtime';
import { displayName } from '../state';
import { useSelector } from '../store';
import { Avatar } from './Avatar';

async function message(userId: string): Promise<void> {
  const id = await startDirect(userId);
  if (!id) return;
  showPanel('chats');
  openConversation(id);
}

export function ContactsPanel() {
  const contacts = useSelector(store, (state) => state.contacts);
  const incoming = contacts.filter((contact) => contact.state === 'incoming');
  const outgoing = contacts.filter((contact) => contact.state === 'outgoing');
  const accepted = contacts.filter((contact) => contact.state === 'accepted');
  return (
    <div class="contacts">
      <FindUser contacts={contacts} />
      {incoming.length > 0 && (
        <section aria-label="Requests">
          <h2>Requests</h2>
          <ul class="people">
            {incoming.map((contact) => (
              <Person key={contact.user.id} user={contact.user}>
                <button type="button" class="primary small" onClick={() => void changeContact(contact.user.id, 'accept')}>
                  Accept
                </button>
                <button type="button" class="ghost small" onClick={() => void changeContact(contact.user.id, 'decline')}>
                  Decline
                </button>
              </Person>
            ))}
          </ul>
        </section>
      )}
      <section aria-label="Contacts">
        <h2>Contacts</h2>
        {accepted.length === 0 && <p class="placeholder">No contacts yet.</p>}
        <ul class="people">
          {accepted.map((contact) => (
            <Person key={contact.user.id} user={contact.user}>
              <button type="button" class="small" onClick={() => void message(contact.user.id)}>
                Message
              </button>
            </Person>
          ))}
        </ul>
      </section>
      {outgoing.length > 0 && (
        <section aria-label="Sent requests">
          <h2>Sent requests</h2>
          <ul class="people">
            {outgoing.map((contact) => (
              <Person key={contact.user.id} user={contact.user}>
                <span class="muted small-text">Pending</span>
                <button type="button" class="ghost small" onClick={() => void changeContact(contact.user.id, 'remove')}>
                  Cancel
                </button>
              </Person>
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}

function FindUser({ contacts }: { contacts: Contact[] }) {
  const meId = useSelector(store, (state) => state.me?.id);
  const [query, setQuery] = useState('');
  const [found, setFound] = useState<PublicUser | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const search = async (event: Event) => {
    event.preventDefault();
    const username = query.trim();
    if (!username) return;
    setStatus('Searching…');
    setFound(null);
    try {
      const user = await findUser(username);
      setFound(user);
      setStatus(user ? null : `No user named “${username}”.`);
    } catch (error) {
      setStatus(describeError(error));
    }
  };
  const relation = found ? contacts.find((contact) => contact.user.id === found.id)?.state : undefined;
  return (
    <section aria-label="Find people">
      <form class="search" role="search" onSubmit={search}>
        <input
          type="search"
          aria-label="Username"
          placeholder="Find by username"
          autocomplete="off"
          value={query}
          onInput={(event) => setQuery(event.currentTarget.value)}
        />
        <button type="submit">Find</button>
      </form>
      <p class="search-status muted small-text" role="status">
        {status}
      </p>
      {found && (
        <ul class="people" aria-label="Search result">
          <Person user={found}>
            {found.id === meId ? (
              <span class="muted small-text">That is you</span>
            ) : (
              <>
                {relation === undefined && (
                  <button type="button" class="primary small" onClick={() => void changeContact(found.id, 'request')}>
                    Add contact
                  </button>
                )}
                {relation === 'outgoing' && <span class="muted small-text">Request sent</span>}
                {relation === 'incoming' && (
                  <button type="button" class="primary small" onClick={() => void changeContact(found.id, 'accept')}>
                    Accept
                  </button>
                )}
                <button type="button" class="small" onClick={() => void message(found.id)}>
                  Message
                </button>
              </>
            )}
          </Person>
        </ul>
      )}
    </section>
  );
}

function Person({ user, children }: { user: PublicUser; children: ComponentChildren }) {
  return (
    <li class="person" data-username={user.username}>
      <Avatar id={user.id} name={displayName(user)} />
      <span class="person-name">
        <span>{displayName(user)}</span>
        <span class="muted small-text">@{user.username}</span>
      </span>
      <span class="person-actions">{children}</span>
    </li>
  );
}
