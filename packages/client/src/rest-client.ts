import type {
  AddMembersBody,
  AuthResponse,
  Block,
  ChangeRoleBody,
  Contact,
  ConversationPage,
  ConversationSummary,
  CreateGroupBody,
  HistoryPage,
  LoginBody,
  Me,
  Member,
  Message,
  PublicUser,
  ReadState,
  RegisterBody,
  SendMessageBody,
  SendMessageResponse,
  SyncBody,
  SyncResponse,
  Tokens,
} from '@parley/protocol';
import { isParleyClientError } from './errors';
import type { HttpClient, HttpRequest } from './http';
import type { TokenManager } from './token-manager';

/** Codes after which one refresh and one retry may help. */
const REFRESHABLE = new Set(['TOKEN_EXPIRED', 'UNAUTHENTICATED']);

/**
 * Time limit of `POST /v1/auth/refresh` (see `refreshTokens`). Below the server's default
 * 30 s grace for retrying a refresh whose reply was lost, so a retry after a timeout is
 * still taken as a retry, not as reuse of a stolen token.
 */
export const REFRESH_TIMEOUT_MS = 20_000;

const enc = encodeURIComponent;
const conv = (conversationId: string) => `/v1/conversations/${enc(conversationId)}`;

/**
 * Typed calls to the REST API (docs/api.md). Authenticated calls take the access token
 * from the {@link TokenManager}; when one is answered `TOKEN_EXPIRED` (or `UNAUTHENTICATED`,
 * e.g. after a signing-key rotation) the token is refreshed once (single-flight) and the
 * call retried. `SESSION_REVOKED` clears the tokens (the session is over). Every failure is
 * a `ParleyClientError` with the server's code.
 */
export class RestClient {
  constructor(
    private readonly http: HttpClient,
    private readonly tokens: TokenManager,
  ) {}

  /** Any authenticated call, for endpoints without a helper. */
  async call<T>(request: Omit<HttpRequest, 'accessToken'>): Promise<T> {
    const token = await this.tokens.getAccessToken();
    try {
      return await this.http.request<T>({ ...request, accessToken: token });
    } catch (error) {
      if (!isParleyClientError(error)) throw error;
      if (error.loginRequired) {
        // The session is over (logout elsewhere, token theft detected): forget it, once.
        if (this.tokens.current?.accessToken === token) this.tokens.set(null);
        throw error;
      }
      if (!REFRESHABLE.has(error.code)) throw error;
      const fresh = await this.tokens.refresh(token);
      return this.http.request<T>({ ...request, accessToken: fresh.accessToken });
    }
  }

  // Auth (unauthenticated calls; the client stores the tokens they return)

  /** `POST /v1/auth/register`: creates the account and a first session. */
  register(body: RegisterBody): Promise<AuthResponse> {
    return this.http.request({ method: 'POST', path: '/v1/auth/register', body });
  }

  /** `POST /v1/auth/login`: starts a session. */
  login(body: LoginBody): Promise<AuthResponse> {
    return this.http.request({ method: 'POST', path: '/v1/auth/login', body });
  }

  /**
   * `POST /v1/auth/refresh`: rotates the tokens. Prefer `TokenManager.refresh`, which is
   * single-flight. Its time limit is long (60 s by default): once the server has rotated
   * the token, aborting the call loses the only copy of the new one.
   */
  refreshTokens(refreshToken: string, timeoutMs = REFRESH_TIMEOUT_MS): Promise<Tokens> {
    return this.http.request({ method: 'POST', path: '/v1/auth/refresh', body: { refreshToken }, timeoutMs });
  }

  /** `POST /v1/auth/logout`: revokes the current session. */
  async logout(): Promise<void> {
    await this.call<void>({ method: 'POST', path: '/v1/auth/logout' });
  }

  // Users

  /** `GET /v1/me`. */
  me(): Promise<Me> {
    return this.call({ method: 'GET', path: '/v1/me' });
  }

  /** `PATCH /v1/me`: changes the display name. */
  updateMe(displayName: string): Promise<Me> {
    return this.call({ method: 'PATCH', path: '/v1/me', body: { displayName } });
  }

  /** `GET /v1/users/{userId}`. */
  getUser(userId: string): Promise<PublicUser> {
    return this.call({ method: 'GET', path: `/v1/users/${enc(userId)}` });
  }

  /** `GET /v1/users/by-username/{username}` (case-insensitive). */
  findUser(username: string): Promise<PublicUser> {
    return this.call({ method: 'GET', path: `/v1/users/by-username/${enc(username)}` });
  }

  // Contacts and blocks

  /** `GET /v1/contacts`: contacts and pending requests. */
  async listContacts(): Promise<Contact[]> {
    return (await this.call<{ contacts: Contact[] }>({ method: 'GET', path: '/v1/contacts' })).contacts;
  }

  /** `POST /v1/contacts`: asks a user (or accepts, if they asked first). */
  requestContact(userId: string): Promise<Contact> {
    return this.call({ method: 'POST', path: '/v1/contacts', body: { userId } });
  }

  /** `POST /v1/contacts/{userId}/accept`. */
  acceptContact(userId: string): Promise<Contact> {
    return this.call({ method: 'POST', path: `/v1/contacts/${enc(userId)}/accept` });
  }

  /** `POST /v1/contacts/{userId}/decline`. */
  async declineContact(userId: string): Promise<void> {
    await this.call<void>({ method: 'POST', path: `/v1/contacts/${enc(userId)}/decline` });
  }

  /** `DELETE /v1/contacts/{userId}`: removes a contact or withdraws a request. */
  async removeContact(userId: string): Promise<void> {
    await this.call<void>({ method: 'DELETE', path: `/v1/contacts/${enc(userId)}` });
  }

  /** `GET /v1/blocks`. */
  async listBlocks(): Promise<Block[]> {
    return (await this.call<{ blocks: Block[] }>({ method: 'GET', path: '/v1/blocks' })).blocks;
  }

  /** `PUT /v1/blocks/{userId}`. */
  async block(userId: string): Promise<void> {
    await this.call<void>({ method: 'PUT', path: `/v1/blocks/${enc(userId)}` });
  }

  /** `DELETE /v1/blocks/{userId}`. */
  async unblock(userId: string): Promise<void> {
    await this.call<void>({ method: 'DELETE', path: `/v1/blocks/${enc(userId)}` });
  }

  // Conversations

  /** `GET /v1/conversations`: one page, most recent activity first; pass `nextCursor` back as `cursor`. */
  listConversations(options: { limit?: number; cursor?: string } = {}): Promise<ConversationPage> {
    return this.call({ method: 'GET', path: '/v1/conversations', query: { limit: options.limit, cursor: options.cursor } });
  }

  /** `GET /v1/conversations/{id}`. */
  getConversation(conversationId: string): Promise<ConversationSummary> {
    return this.call({ method: 'GET', path: conv(conversationId) });
  }

  /** `POST /v1/conversations/direct`: the one direct conversation with a user (created on first call). */
  openDirect(userId: string): Promise<ConversationSummary> {
    return this.call({ method: 'POST', path: '/v1/conversations/direct', body: { userId } });
  }

  /** `POST /v1/conversations/groups`: the caller becomes its owner. */
  createGroup(body: CreateGroupBody): Promise<ConversationSummary> {
    return this.call({ method: 'POST', path: '/v1/conversations/groups', body });
  }

  /** `GET /v1/conversations/{id}/members`. */
  async listMembers(conversationId: string): Promise<Member[]> {
    return (await this.call<{ members: Member[] }>({ method: 'GET', path: `${conv(conversationId)}/members` })).members;
  }

  /** `POST /v1/conversations/{id}/members`. */
  async addMembers(conversationId: string, body: AddMembersBody): Promise<Member[]> {
    const path = `${conv(conversationId)}/members`;
    return (await this.call<{ members: Member[] }>({ method: 'POST', path, body })).members;
  }

  /** `PATCH /v1/conversations/{id}/members/{userId}` (owner only). */
  async changeRole(conversationId: string, userId: string, role: ChangeRoleBody['role']): Promise<void> {
    await this.call<void>({ method: 'PATCH', path: `${conv(conversationId)}/members/${enc(userId)}`, body: { role } });
  }

  /** `DELETE /v1/conversations/{id}/members/{userId}`. */
  async removeMember(conversationId: string, userId: string): Promise<void> {
    await this.call<void>({ method: 'DELETE', path: `${conv(conversationId)}/members/${enc(userId)}` });
  }

  /** `POST /v1/conversations/{id}/leave`. */
  async leave(conversationId: string): Promise<void> {
    await this.call<void>({ method: 'POST', path: `${conv(conversationId)}/leave` });
  }

  // Messages, read state, sync

  /**
   * `POST /v1/conversations/{id}/messages`: idempotent on `clientMessageId` (a retry
   * returns the original with `duplicate: true`). `ParleyClient.send` retries for you.
   */
  sendMessage(conversationId: string, body: SendMessageBody): Promise<SendMessageResponse> {
    return this.call({ method: 'POST', path: `${conv(conversationId)}/messages`, body });
  }

  /** `GET /v1/conversations/{id}/messages`: newest page, or `before`/`after` a seq; always ascending. */
  history(conversationId: string, query: { before?: number; after?: number; limit?: number } = {}): Promise<HistoryPage> {
    return this.call({ method: 'GET', path: `${conv(conversationId)}/messages`, query });
  }

  /** `PATCH /v1/conversations/{id}/messages/{seq}` (author only). */
  editMessage(conversationId: string, seq: number, body: string): Promise<Message> {
    return this.call({ method: 'PATCH', path: `${conv(conversationId)}/messages/${seq}`, body: { body } });
  }

  /** `DELETE /v1/conversations/{id}/messages/{seq}`: leaves a tombstone (`body: null`). */
  deleteMessage(conversationId: string, seq: number): Promise<Message> {
    return this.call({ method: 'DELETE', path: `${conv(conversationId)}/messages/${seq}` });
  }

  /** `POST /v1/conversations/{id}/read`: moves my read marker forward (never back). */
  markRead(conversationId: string, seq: number): Promise<ReadState> {
    return this.call({ method: 'POST', path: `${conv(conversationId)}/read`, body: { seq } });
  }

  /** `POST /v1/sync`: one page of the offline pull. `ParleyClient` loops it for you. */
  sync(body: SyncBody): Promise<SyncResponse> {
    return this.call({ method: 'POST', path: '/v1/sync', body });
  }
}
