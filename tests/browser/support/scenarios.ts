import type { Browser } from 'playwright-core';
import type { Backend, SeedUser } from './backend';
import { AppUser, launchBrowser, PHONE } from './browser';
import { uniqueName } from './names';

/** Messages seeded into one chat: more than one history page (30) of the app. */
const SEEDED = 45;

/**
 * The web client end to end, in a real Chromium, against a real server: two people in two
 * browser contexts (a third one over the API). The tests run in order and build on each
 * other (contacts, then a chat, then a group...), as one story.
 */
export function webClientScenarios(startBackend: () => Promise<Backend>): void {
  let backend: Backend;
  let browser: Browser;
  let alice: AppUser;
  let bob: AppUser;
  let carol: SeedUser;
  const extraUsers: AppUser[] = [];

  beforeAll(async () => {
    // Both started at once; whichever starts is kept, so afterAll stops it even if the other failed.
    const [started, launched] = await Promise.allSettled([startBackend(), launchBrowser()]);
    if (started.status === 'fulfilled') backend = started.value;
    if (launched.status === 'fulfilled') browser = launched.value;
    if (started.status === 'rejected') throw started.reason;
    if (launched.status === 'rejected') throw launched.reason;
  });

  afterAll(async () => {
    await browser?.close();
    await backend?.stop();
  });

  // The tests tell one story: after a failure, the rest say so instead of failing obscurely.
  let broken: string | undefined;
  const step = (name: string, body: () => Promise<void>) =>
    it(name, async () => {
      if (broken) throw new Error(`not run: "${broken}" failed`);
      try {
        await body();
      } catch (error) {
        broken = name;
        throw error;
      }
    });

  afterEach(() => {
    // An exception thrown in the page fails the test that caused it.
    for (const user of [alice, bob, ...extraUsers]) {
      if (user) expect({ user: user.username, errors: user.pageErrors }).toEqual({ user: user.username, errors: [] });
    }
  });

  step('registers two people, who become contacts', async () => {
    [alice, bob] = await Promise.all([
      AppUser.register(browser, backend, 'alice', 'Alice', 'desktop-register'),
      AppUser.register(browser, backend, 'bob', 'Bob'),
    ]);
    await alice.requestContact(bob.username);

    // Bob sees the request arrive live (a count on the Contacts tab) and accepts it.
    await bob.tab('Contacts').getByText('1').waitFor();
    await bob.tab('Contacts').click();
    await bob.screenshot('desktop-contacts');
    await bob.person(alice.username).getByRole('button', { name: 'Accept' }).click();
    await bob.page.getByRole('region', { name: 'Contacts' }).locator(`.person[data-username="${alice.username}"]`).waitFor();

    // Alice's side turns from "sent" to a contact without a reload.
    await alice.page.getByRole('region', { name: 'Contacts' }).locator(`.person[data-username="${bob.username}"]`).waitFor();

    // On a fleet, nginx spread the two sockets over two gateways: every live event so far
    // (and every one after) crossed Redis from one node to the other.
    if (backend.socketsPerGateway) expect(await backend.socketsPerGateway()).toEqual([1, 1]);
  });

  step('starts a direct chat: messages arrive live, unread badge, typing, read receipt', async () => {
    await alice.page.getByRole('region', { name: 'Contacts' }).locator(`.person[data-username="${bob.username}"]`).getByRole('button', { name: 'Message' }).click();
    await alice.page.locator('.chat-title', { hasText: 'Bob' }).waitFor();
    await bob.tab('Chats').click();

    await alice.send('Hi Bob! Lunch today?');
    // Bob is on the list, not in the chat: the conversation shows up with one unread.
    await bob.unreadBadge('Alice').getByText('1').waitFor();
    await alice.page.getByTestId('receipt').getByText('Sent').waitFor();

    await bob.openConversation('Alice');
    await bob.message('Hi Bob! Lunch today?').waitFor();
    await bob.unreadBadge('Alice').waitFor({ state: 'detached' });
    // Opening it marked it read: Alice's message now says so.
    await alice.page.getByTestId('receipt').getByText('Seen').waitFor();

    await bob.composer.pressSequentially('Sure', { delay: 20 });
    await alice.page.getByTestId('typing-indicator').getByText('Bob is typing…').waitFor();
    await bob.composer.press('Enter');
    await alice.message('Sure').waitFor();
    // The indicator goes away once the message is in.
    await alice.page.getByTestId('typing-indicator').getByText('Bob is typing…').waitFor({ state: 'detached' });

    // In the chat Bob has on screen, a new message never shows as unread, not even for the
    // moment before his read marker is stored.
    await bob.page.locator('.conversation-list').evaluate((list) => {
      const view = list.ownerDocument.defaultView!;
      new view.MutationObserver(() => {
        if (list.querySelector('.conversation.active [data-testid="unread-badge"]')) {
          (view as unknown as { badgeFlashed?: boolean }).badgeFlashed = true;
        }
      }).observe(list, { childList: true, subtree: true, characterData: true });
    });
    await alice.send('12:30 at the usual place?');
    await bob.message('12:30 at the usual place?').waitFor();
    expect(await bob.bodies()).toEqual(['Hi Bob! Lunch today?', 'Sure', '12:30 at the usual place?']);
    await alice.page.getByTestId('receipt').getByText('Seen').waitFor();
    expect(await bob.page.evaluate(() => (globalThis as unknown as { badgeFlashed?: boolean }).badgeFlashed)).toBeUndefined();
  });

  step('shows text that looks like HTML literally, never as markup', async () => {
    const markup = '<img src=x onerror="window.__injected=1"><b>bold?</b>';
    await alice.send(markup);
    await bob.message('<img src=x').waitFor();
    for (const user of [alice, bob]) {
      expect(await user.message('<img src=x').locator('.body').innerText()).toBe(markup);
      expect(await user.page.locator('.messages img, .messages b').count()).toBe(0);
      expect(await user.page.evaluate(() => (globalThis as unknown as { __injected?: number }).__injected)).toBeUndefined();
    }
  });

  step('edits and deletes my own message; the peer sees both', async () => {
    await alice.send('See you at 1');
    await bob.message('See you at 1').waitFor();

    // A draft in the box survives an edit that is abandoned with Escape.
    await alice.composer.fill('a draft');
    await alice.message('See you at 1').hover();
    await alice.message('See you at 1').getByRole('button', { name: 'Message actions' }).click();
    await alice.page.getByRole('button', { name: 'Edit', exact: true }).click();
    await alice.page.getByLabel('Edit message').press('Escape');
    await alice.page.getByLabel('Message', { exact: true }).waitFor();
    expect(await alice.composer.inputValue()).toBe('a draft');

    await alice.message('See you at 1').hover();
    await alice.message('See you at 1').getByRole('button', { name: 'Message actions' }).click();
    await alice.page.getByRole('button', { name: 'Edit', exact: true }).click();
    expect(await alice.page.getByLabel('Edit message').inputValue()).toBe('See you at 1');
    await alice.page.getByLabel('Edit message').fill('See you at 12:30');
    await alice.page.getByRole('button', { name: 'Save' }).click();
    await alice.message('See you at 12:30').locator('.edited').waitFor();
    await bob.message('See you at 12:30').locator('.edited').waitFor();
    await bob.message('See you at 1').filter({ hasNotText: '12:30' }).waitFor({ state: 'detached' });

    await alice.message('See you at 12:30').hover();
    await alice.message('See you at 12:30').getByRole('button', { name: 'Message actions' }).click();
    await alice.page.getByRole('button', { name: 'Delete', exact: true }).click();
    for (const user of [alice, bob]) {
      await user.message('See you at 12:30').waitFor({ state: 'detached' });
      await user.page.locator('.message.deleted .tombstone', { hasText: 'Message deleted' }).waitFor();
    }
    // Bob's own messages have actions; Alice's (as Bob sees them) do not.
    expect(await bob.message('Hi Bob!').getByRole('button', { name: 'Message actions' }).count()).toBe(0);
    // The draft is back in the box once editing is done.
    expect(await alice.composer.inputValue()).toBe('a draft');
  });

  step('pages back through history when scrolled to the top', async () => {
    carol = await backend.registerSeedUser('carol', 'Carol');
    const direct = await carol.client.rest.openDirect((await carol.client.rest.findUser(alice.username)).id);
    for (let index = 1; index <= SEEDED; index += 1) {
      await carol.client.rest.sendMessage(direct.id, { clientMessageId: `seed-${index}`, body: `Carol #${index}` });
    }

    // The conversation appears in Alice's list live, with everything unread.
    await alice.unreadBadge('Carol').getByText(String(SEEDED)).waitFor();
    const olderPages: string[] = [];
    alice.page.on('request', (request) => {
      if (request.url().includes('/messages?') && request.url().includes('before=')) olderPages.push(request.url());
    });
    await alice.openConversation('Carol');
    await alice.message(`Carol #${SEEDED}`).waitFor();
    await alice.unreadBadge('Carol').waitFor({ state: 'detached' });

    // The newest page (30) is shown; scrolling to the top loads the rest (15) above it,
    // once, and what the reader was looking at stays where it was.
    const firstShown = `Carol #${SEEDED - 29}`;
    expect((await alice.bodies())[0]).toBe(firstShown);
    const firstShownTop = (text: string) =>
      alice.page.locator('.messages').evaluate((element, body) => {
        const item = [...element.querySelectorAll('.message .body')].find((candidate) => candidate.textContent === body);
        return item!.getBoundingClientRect().top;
      }, text);
    await alice.page.locator('.messages').evaluate((element) => element.scrollTo({ top: 0 }));
    // Measured before the scroll event has been handled: the older page is not asked for yet.
    const topBefore = await firstShownTop(firstShown);
    await alice.page.getByText('Beginning of the conversation').waitFor();
    await alice.page.locator('.messages .body', { hasText: /^Carol #1$/ }).waitFor({ state: 'attached' });
    const topAfter = await firstShownTop(firstShown);
    expect(Math.abs(topAfter - topBefore)).toBeLessThanOrEqual(1);
    expect(await alice.page.locator('.messages').evaluate((element) => element.scrollTop)).toBeGreaterThan(0);
    expect(olderPages).toHaveLength(1);
    const expected = Array.from({ length: SEEDED }, (_, index) => `Carol #${index + 1}`);
    expect(await alice.bodies()).toEqual(expected);

    // Each chat keeps its own draft: the one left in Bob's is there on coming back.
    expect(await alice.composer.inputValue()).toBe('');
    await alice.openConversation('Bob');
    expect(await alice.composer.inputValue()).toBe('a draft');
    await alice.composer.fill('');
  });

  step('creates a group with a third person; messages reach every member', async () => {
    // Carol (over the API) asks Alice to be a contact; Alice accepts in the app.
    await carol.client.rest.requestContact((await carol.client.rest.findUser(alice.username)).id);
    await alice.tab('Contacts').click();
    await alice.person(carol.username).getByRole('button', { name: 'Accept' }).click();
    await alice.page.getByRole('region', { name: 'Contacts' }).locator(`.person[data-username="${carol.username}"]`).waitFor();

    await alice.tab('New group').click();
    await alice.page.getByLabel('Group name').fill('Lunch club');
    await alice.page.locator('.new-group').getByText('Bob', { exact: true }).click();
    await alice.page.locator('.new-group').getByText('Carol', { exact: true }).click();
    await alice.page.getByRole('button', { name: 'Create group' }).click();
    await alice.page.locator('.chat-title', { hasText: 'Lunch club' }).waitFor();
    await alice.page.getByTestId('chat-subtitle').getByText('3 members').waitFor();

    await alice.send('Welcome to the lunch club');
    await bob.unreadBadge('Lunch club').getByText('1').waitFor();
    await bob.openConversation('Lunch club');
    await bob.message('Welcome to the lunch club').waitFor();

    const groups = await carol.client.rest.listConversations();
    const group = groups.conversations.find((summary) => summary.title === 'Lunch club');
    expect(group).toMatchObject({ kind: 'group', memberCount: 3 });
    await carol.client.rest.sendMessage(group!.id, { clientMessageId: 'carol-hello', body: 'Count me in' });
    for (const user of [alice, bob]) {
      // In a group, the sender's name heads their messages.
      await user.message('Count me in').locator('.sender', { hasText: 'Carol' }).waitFor();
    }
    // Bob read it in the app; Carol's reply says she did too.
    await alice.page.getByTestId('receipt').getByText('Seen by 2').waitFor();
    await bob.screenshot('desktop-group');
  });

  step('catches up after being offline: banner while away, then every missed message once, in order', async () => {
    await bob.openConversation('Alice');
    await alice.openConversation('Bob');
    await bob.banner.waitFor({ state: 'detached' });

    await bob.context.setOffline(true);
    // The SDK's own state drives the banner: its connection attempts fail, it keeps retrying.
    await bob.page.locator('[data-testid="connection-banner"][data-state="reconnecting"]').waitFor();
    const missed = ['While you were away 1', 'While you were away 2', 'While you were away 3'];
    for (const text of missed) await alice.send(text);
    // Bob writes while offline: it waits as "sending" and goes out once he is back.
    await bob.composer.fill('Back soon');
    await bob.composer.press('Enter');
    await bob.page.locator('.message.pending', { hasText: 'Back soon' }).waitFor();
    expect(await bob.message('While you were away 1').count()).toBe(0);

    await bob.context.setOffline(false);
    await bob.banner.waitFor({ state: 'detached' });
    await bob.message(missed[2]!).waitFor();
    await alice.message('Back soon').waitFor();
    await bob.page.locator('.message.pending').waitFor({ state: 'detached' });

    const bodies = await bob.bodies();
    for (const text of [...missed, 'Back soon']) expect(bodies.filter((body) => body === text)).toHaveLength(1);
    const tail = bodies.slice(-4);
    expect(tail).toEqual([...missed, 'Back soon']);
    // Alice's view agrees on the order.
    expect((await alice.bodies()).slice(-4)).toEqual([...missed, 'Back soon']);

    // A receipt that moved while Alice was offline shows once she is back: no read event
    // reaches a socket that is down, and a sync carries only her own read state.
    await bob.openConversation('Lunch club');
    await alice.send('Are you back?');
    await alice.page.getByTestId('receipt').getByText('Sent').waitFor();
    await bob.unreadBadge('Alice').getByText('1').waitFor();
    await alice.context.setOffline(true);
    await alice.page.locator('[data-testid="connection-banner"][data-state="reconnecting"]').waitFor();
    await bob.openConversation('Alice');
    // Gone once the server has stored Bob's read marker.
    await bob.unreadBadge('Alice').waitFor({ state: 'detached' });
    await alice.context.setOffline(false);
    await alice.banner.waitFor({ state: 'detached' });
    await alice.page.getByTestId('receipt').getByText('Seen').waitFor();
  });

  step('works on a phone: list and chat one at a time, with a back button; a reload stays signed in', async () => {
    const phone = await bob.loginElsewhere(browser, PHONE);
    extraUsers.push(phone);
    const list = phone.page.locator('.list-pane');
    const chat = phone.page.locator('.chat');
    await phone.conversationRow('Alice').waitFor();
    expect(await chat.count()).toBe(0);
    // Presence of direct peers (Alice is online), and the group's last sender by name.
    await phone.conversationRow('Alice').locator('.presence.online').waitFor();
    await phone.conversationRow('Lunch club').getByText('Carol: Count me in').waitFor();
    await phone.screenshot('phone-list');

    await phone.conversationRow('Alice').click();
    await chat.waitFor();
    await list.waitFor({ state: 'hidden' });
    await phone.message('Back soon').waitFor();
    await phone.screenshot('phone-chat');

    await phone.send('Sent from my phone');
    await alice.message('Sent from my phone').waitFor();
    // Most recent activity first.
    expect(await alice.page.locator('.conversation-title').allInnerTexts()).toEqual(['Bob', 'Lunch club', 'Carol']);
    await alice.screenshot('desktop-chat');

    // A word longer than the screen is wide wraps inside its bubble: nothing scrolls sideways.
    const longWord = `https://example.com/${'a-very-long-path'.repeat(12)}`;
    await phone.send(longWord);
    const overflow = await phone.page.locator('.messages').evaluate((messages) => ({
      page: messages.ownerDocument.documentElement.scrollWidth - messages.ownerDocument.defaultView!.innerWidth,
      messages: messages.scrollWidth - messages.clientWidth,
    }));
    expect(overflow).toEqual({ page: 0, messages: 0 });

    // A reload resumes the session and reopens the chat (it is in the URL).
    await phone.page.reload();
    await phone.message('Sent from my phone').waitFor();
    await phone.banner.waitFor({ state: 'detached' });

    await phone.page.getByRole('button', { name: 'Back to conversations' }).click();
    await list.waitFor();
    await chat.waitFor({ state: 'detached' });
    await phone.conversationRow('Lunch club').waitFor();
  });

  step('a message the server refuses says why (its error code) and can be retried or discarded', async () => {
    await carol.client.rest.block((await carol.client.rest.findUser(alice.username)).id);
    await alice.openConversation('Carol');
    await alice.composer.fill('Are you there?');
    await alice.composer.press('Enter');
    const refused = alice.page.locator('.message.pending', { hasText: 'Are you there?' });
    await refused.getByText('Not sent.').waitFor();
    await alice.toast.getByText('USER_BLOCKED').waitFor();

    await refused.getByRole('button', { name: 'Retry' }).click();
    await refused.getByText('Not sent.').waitFor();
    await refused.getByRole('button', { name: 'Discard' }).click();
    await refused.waitFor({ state: 'detached' });
    expect(await alice.bodies()).not.toContain('Are you there?');
  });

  step('logging out and in as someone else on one tab shows nothing of the first user, even when her requests answer late', async () => {
    const tab = await AppUser.open(browser, backend, alice.username, alice.displayName);
    extraUsers.push(tab);
    // Alice's contact list and her logout answer only after the next person is signed in.
    const lateContacts = await tab.holdRequest(
      (request) => request.method() === 'GET' && new URL(request.url()).pathname === '/v1/contacts',
    );
    const lateLogout = await tab.holdRequest((request) => new URL(request.url()).pathname === '/v1/auth/logout');
    await tab.logIn();
    await lateContacts.reached;
    await tab.openConversation('Bob');
    await tab.message('Sent from my phone').waitFor();
    await tab.page.getByRole('button', { name: 'Log out' }).click();
    await lateLogout.reached;

    await tab.createAccount(uniqueName('dave'), 'Dave');
    // Alice's open chat is not Dave's: it is closed, and nothing of hers is fetched for him.
    await tab.page.getByText('No conversations yet').waitFor();
    expect(await tab.page.locator('.chat').count()).toBe(0);
    expect(new URL(tab.page.url()).hash).not.toContain('/c/');
    expect(await tab.page.title()).toBe('Parley');
    await lateContacts.release();
    await lateLogout.release();
    // Dave looks someone up: by the time the answer shows, Alice's late contact list has long arrived.
    await tab.tab('Contacts').click();
    await tab.page.getByRole('searchbox', { name: 'Username' }).fill(bob.username);
    await tab.page.getByRole('button', { name: 'Find' }).click();
    await tab.person(bob.username).getByRole('button', { name: 'Add contact' }).waitFor();
    await tab.page.getByText('No contacts yet.').waitFor();
    expect(await tab.page.getByRole('region', { name: 'Contacts' }).locator('.person').count()).toBe(0);

    // The tab's saved session is Dave's: Alice's late logout did not erase it.
    await tab.page.reload();
    await tab.signedIn();
    await tab.page.locator('.me', { hasText: 'Dave' }).waitFor();
  });
}
