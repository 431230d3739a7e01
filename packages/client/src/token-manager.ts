import type { Tokens } from '@parley/protocol';
import { isLoginRequired, ParleyClientError, toClientError } from './errors';
import { decodeBase64Url, setTimer } from './platform';

/** What the access token says about itself (read, not verified: the server verifies). */
export interface AccessClaims {
  userId: string;
  sessionId: string;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
}

/** Options of {@link TokenManager}. */
export interface TokenManagerOptions {
  /** Trades a refresh token for new tokens (`POST /v1/auth/refresh`). */
  refresh: (refreshToken: string) => Promise<Tokens>;
  /** The server's current time in ms (defaults to the local clock). */
  now?: () => number;
  /**
   * How long before expiry to refresh, at most. The lead is also capped at a quarter of
   * the token's lifetime, so short-lived tokens are not refreshed on every call.
   */
  refreshLeadMs?: number;
  /**
   * Pauses before presenting the same refresh token again after a refresh whose outcome
   * is unknown (`TIMEOUT`, `NETWORK_ERROR`: the server may have rotated the token and the
   * reply was lost). One retry per entry; default `[0, 2000]`. The server accepts the same
   * refresh token again for a short grace period (30 s) while its successor is unused, so
   * these retries must come quickly.
   */
  unknownOutcomeRetryDelaysMs?: readonly number[];
}

/** Codes after which a refresh may or may not have happened on the server. */
const OUTCOME_UNKNOWN = new Set(['TIMEOUT', 'NETWORK_ERROR']);

/**
 * Holds the session's tokens and refreshes them. Refreshes are single-flight: every
 * caller that needs a refresh while one is running shares it. This matters: a refresh
 * token is single use, and the server treats two refreshes with the same token as theft
 * and revokes the whole session.
 */
export class TokenManager {
  private tokens: Tokens | null = null;
  /** Local receipt time and lifetime of the current access token (for the refresh lead). */
  private receivedAt = 0;
  private lifetimeMs = 0;
  private inflight: Promise<Tokens> | null = null;
  /** Bumped by every `set`, so a refresh that finishes after a logout or login is dropped. */
  private generation = 0;
  private readonly listeners = new Set<(tokens: Tokens | null) => void>();
  private readonly now: () => number;
  private readonly refreshLeadMs: number;

  constructor(private readonly options: TokenManagerOptions) {
    this.now = options.now ?? Date.now;
    this.refreshLeadMs = options.refreshLeadMs ?? 60_000;
  }

  /** The current tokens, or `null` when logged out. */
  get current(): Tokens | null {
    return this.tokens;
  }

  /** True while a refresh is running. */
  get refreshing(): boolean {
    return this.inflight !== null;
  }

  /** Replaces the tokens (after a login, or `null` to forget the session) and notifies listeners. */
  set(tokens: Tokens | null): void {
    this.generation += 1;
    this.tokens = tokens;
    if (tokens) {
      this.receivedAt = this.now();
      this.lifetimeMs = Math.max(0, Date.parse(tokens.accessTokenExpiresAt) - this.receivedAt);
    }
    for (const listener of [...this.listeners]) listener(tokens);
  }

  /** Calls `listener` after every change of tokens (a login, a refresh, a logout); returns an unsubscribe function. */
  onChange(listener: (tokens: Tokens | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The claims of the current access token, or `null` when logged out or unreadable. */
  claims(): AccessClaims | null {
    const token = this.tokens?.accessToken;
    const payload = token?.split('.')[1];
    if (!this.tokens || !payload) return null;
    try {
      const decoded = decodeBase64Url(payload);
      const claims = decoded === undefined ? {} : (JSON.parse(decoded) as { sub?: unknown; sid?: unknown });
      return {
        userId: typeof claims.sub === 'string' ? claims.sub : '',
        sessionId: typeof claims.sid === 'string' ? claims.sid : this.tokens.sessionId,
        expiresAt: Date.parse(this.tokens.accessTokenExpiresAt),
      };
    } catch {
      return null;
    }
  }

  /** When (server time, ms) the access token should be refreshed; `undefined` when logged out. */
  refreshDueAt(): number | undefined {
    if (!this.tokens) return undefined;
    const expiresAt = Date.parse(this.tokens.accessTokenExpiresAt);
    const lead = Math.min(this.refreshLeadMs, this.lifetimeMs / 4);
    return expiresAt - lead;
  }

  /** Milliseconds until the refresh is due (0 when due now); `undefined` when logged out. */
  msUntilRefresh(): number | undefined {
    const due = this.refreshDueAt();
    return due === undefined ? undefined : Math.max(0, due - this.now());
  }

  /**
   * A usable access token: the current one, or a fresh one when it is due for refresh.
   * Throws `NOT_LOGGED_IN` without a session, and the refresh's error when it fails.
   */
  async getAccessToken(): Promise<string> {
    if (this.inflight) return (await this.inflight).accessToken;
    const tokens = this.tokens;
    if (!tokens) throw new ParleyClientError('NOT_LOGGED_IN', 'Log in first.');
    if ((this.msUntilRefresh() ?? 0) > 0) return tokens.accessToken;
    return (await this.refresh(tokens.accessToken)).accessToken;
  }

  /**
   * Refreshes the tokens, once for all concurrent callers. Pass the access token you found
   * stale (e.g. the one a 401 answered): if the tokens changed since, the newer ones are
   * returned without another refresh. When the server says the session is over
   * (`REFRESH_TOKEN_INVALID`, `REFRESH_TOKEN_REUSED`, `SESSION_REVOKED`), the tokens are
   * cleared and listeners hear `null`.
   */
  refresh(staleAccessToken?: string): Promise<Tokens> {
    if (this.inflight) return this.inflight;
    const tokens = this.tokens;
    if (!tokens) return Promise.reject(new ParleyClientError('NOT_LOGGED_IN', 'Log in first.'));
    if (staleAccessToken !== undefined && staleAccessToken !== tokens.accessToken) return Promise.resolve(tokens);
    const generation = this.generation;
    const run = (async () => {
      try {
        const next = await this.refreshWithRetries(tokens.refreshToken, generation);
        if (this.generation === generation) this.set(next);
        // A logout or another login happened meanwhile: theirs wins.
        if (!this.tokens) throw new ParleyClientError('NOT_LOGGED_IN', 'Logged out during a refresh.');
        return this.tokens;
      } catch (error) {
        if (this.generation === generation && isLoginRequired(error)) this.set(null);
        throw error;
      }
    })();
    const settled = run.finally(() => {
      if (this.inflight === settled) this.inflight = null;
    });
    this.inflight = settled;
    return settled;
  }

  /** One refresh call, presented again with the same token while its outcome is unknown. */
  private async refreshWithRetries(refreshToken: string, generation: number): Promise<Tokens> {
    const delays = this.options.unknownOutcomeRetryDelaysMs ?? [0, 2000];
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.options.refresh(refreshToken);
      } catch (error) {
        const delay = delays[attempt];
        if (delay === undefined || generation !== this.generation || !OUTCOME_UNKNOWN.has(toClientError(error).code)) {
          throw error;
        }
        await new Promise<void>((resolve) => setTimer(resolve, delay));
        if (generation !== this.generation) throw error;
      }
    }
  }
}
