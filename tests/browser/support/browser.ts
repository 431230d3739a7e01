import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page, type Request, type Route } from 'playwright-core';
import type { Backend } from './backend';
import { PASSWORD, uniqueName } from './names';

/** Debian's Chromium (CI installs it); playwright-core never downloads a browser. */
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** How long a single UI expectation may take (real time delivery is far faster). */
export const UI_TIMEOUT_MS = 10_000;

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** The README's pictures: rewritten only with UPDATE_SCREENSHOTS=1, so test runs leave the tree clean. */
const SCREENSHOT_DIR = path.resolve(__dirname, '../../../packages/web/screenshots');
/** Every run's pictures, one folder per test file (git-ignored): look at them after a run. */
const ARTIFACT_DIR = path.resolve(__dirname, '../../../test-artifacts/screenshots');

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`No Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  }
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/** A request of a page held back by the test until it lets it go (see {@link AppUser.holdRequest}). */
export interface HeldRequest {
  /** Resolves once the request was made (and is held). */
  readonly reached: Promise<void>;
  /** Lets it go on to the server; resolves once its answer has arrived in full. */
  release(): Promise<void>;
}

/**
 * One person using the web app in their own browser context (own storage, own session).
 * Every wait is on visible DOM state through Playwright's auto-waiting locators.
 */
export class AppUser {
  /**
   * Script errors and Content-Security-Policy violations in the page (nginx sends a strict
   * policy): a test checks it stays empty.
   */
  readonly pageErrors: string[] = [];

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
    readonly username: string,
    readonly displayName: string,
    readonly backend: Backend,
  ) {
    page.on('pageerror', (error) => this.pageErrors.push(String(error)));
    page.on('console', (message) => {
      if (message.type() === 'error' && message.text().includes('Content Security Policy')) this.pageErrors.push(message.text());
    });
    if (process.env['PARLEY_BROWSER_LOG'] === '1') {
      page.on('console', (message) => process.stdout.write(`[${username} console.${message.type()}] ${message.text()}\n`));
      page.on('pageerror', (error) => process.stdout.write(`[${username} pageerror] ${String(error)}\n`));
    }
  }

  static async open(
    browser: Browser,
    backend: Backend,
    username: string,
    displayName: string,
    viewport = DESKTOP,
  ): Promise<AppUser> {
    const context = await browser.newContext({
      viewport,
      ignoreHTTPSErrors: backend.ignoreHTTPSErrors,
      ...(viewport === PHONE ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
    });
    context.setDefaultTimeout(UI_TIMEOUT_MS);
    const user = new AppUser(context, await context.newPage(), username, displayName, backend);
    await user.page.goto(`${backend.baseUrl}/`);
    return user;
  }

  /** A new person: opens the app and creates the account through its form. */
  /** Opens the app and creates an account; `screenshot` names a picture of the filled-in form. */
  static async register(
    browser: Browser,
    backend: Backend,
    label: string,
    displayName: string,
    screenshot?: string,
  ): Promise<AppUser> {
    const user = await AppUser.open(browser, backend, uniqueName(label), displayName);
    await user.createAccount(user.username, displayName, screenshot);
    return user;
  }

  /** The same person on another device (a new context): logs in through the form. */
  async loginElsewhere(browser: Browser, viewport = DESKTOP): Promise<AppUser> {
    const other = await AppUser.open(browser, this.backend, this.username, this.displayName, viewport);
    await other.logIn();
    return other;
  }

  /** Logs in through the form shown on this page. */
  async logIn(): Promise<void> {
    await this.fillCredentials(this.username);
    await this.page.getByRole('button', { name: 'Log in', exact: true }).click();
    await this.signedIn();
  }

  /** Creates an account through the form shown on this page (on this tab, whoever used it before). */
  async createAccount(username: string, displayName: string, screenshot?: string): Promise<void> {
    await this.page.getByRole('tab', { name: 'Create account' }).click();
    await this.fillCredentials(username);
    await this.page.getByLabel('Display name').fill(displayName);
    if (screenshot) await this.screenshot(screenshot);
    await this.page.getByRole('button', { name: 'Create account', exact: true }).click();
    await this.signedIn();
  }

  private async fillCredentials(username: string): Promise<void> {
    await this.page.getByLabel('Username').fill(username);
    await this.page.getByLabel('Password').fill(PASSWORD);
  }

  /**
   * Holds back the page's next request that `matches` (it reaches the server only on
   * `release()`), to make one answer arrive late on purpose. Later ones pass.
   */
  async holdRequest(matches: (request: Request) => boolean): Promise<HeldRequest> {
    let held: Route | undefined;
    let reached!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const handler = (route: Route) => {
      if (held || !matches(route.request())) return route.fallback();
      held = route;
      reached();
      return undefined;
    };
    await this.page.route('**/v1/**', handler);
    return {
      reached: reachedPromise,
      release: async () => {
        if (held) {
          await held.continue();
          await (await held.request().response())?.finished();
        }
        // Only once it is answered: unrouting first would leave it unanswered.
        await this.page.unroute('**/v1/**', handler);
      },
    };
  }

  async signedIn(): Promise<void> {
    await this.page.getByRole('button', { name: 'Log out' }).waitFor();
  }

  // The conversation list

  tab(name: 'Chats' | 'Contacts' | 'New group'): Locator {
    return this.page.getByRole('navigation', { name: 'Sections' }).getByRole('button', { name });
  }

  conversationRow(title: string): Locator {
    return this.page.locator('.conversation', { has: this.page.locator('.conversation-title', { hasText: title }) });
  }

  unreadBadge(title: string): Locator {
    return this.conversationRow(title).getByTestId('unread-badge');
  }

  async openConversation(title: string): Promise<void> {
    await this.tab('Chats').click();
    await this.conversationRow(title).click();
    await this.page.locator('.chat-title', { hasText: title }).waitFor();
  }

  // Contacts

  person(username: string): Locator {
    return this.page.locator(`.person[data-username="${username}"]`);
  }

  async requestContact(username: string): Promise<void> {
    await this.tab('Contacts').click();
    await this.page.getByLabel('Username', { exact: true }).fill(username);
    await this.page.getByRole('button', { name: 'Find' }).click();
    await this.person(username).getByRole('button', { name: 'Add contact' }).click();
    await this.person(username).getByText('Request sent').waitFor();
  }

  // The open chat

  get messages(): Locator {
    return this.page.locator('.messages .message');
  }

  message(text: string): Locator {
    return this.page.locator('.messages .message', { has: this.page.locator('.body', { hasText: text }) });
  }

  /** The toast showing now (errors). */
  get toast(): Locator {
    return this.page.locator('.toast');
  }

  /** Bodies of the shown messages, top to bottom. */
  async bodies(): Promise<string[]> {
    return this.page.locator('.messages .message .body, .messages .message .tombstone').allInnerTexts();
  }

  get banner(): Locator {
    return this.page.getByTestId('connection-banner');
  }

  get composer(): Locator {
    return this.page.locator('.composer textarea');
  }

  /** Types and sends a message, and waits until the server has stored it (no longer "sending"). */
  async send(text: string): Promise<void> {
    await this.composer.fill(text);
    await this.composer.press('Enter');
    await this.page.locator('.message.pending', { hasText: text }).waitFor({ state: 'detached' });
    await this.message(text).waitFor();
  }

  async screenshot(name: string): Promise<void> {
    const testFile = path.basename(expect.getState().testPath ?? 'browser', '.test.ts');
    const dirs = [path.join(ARTIFACT_DIR, testFile)];
    if (process.env['UPDATE_SCREENSHOTS'] === '1') dirs.push(SCREENSHOT_DIR);
    // No hover highlight left over from the last click.
    await this.page.mouse.move(this.page.viewportSize()!.width - 1, this.page.viewportSize()!.height - 1);
    for (const dir of dirs) {
      await mkdir(dir, { recursive: true });
      await this.page.screenshot({ path: path.join(dir, `${name}.png`) });
    }
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}
