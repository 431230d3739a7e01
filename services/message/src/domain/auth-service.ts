import {
  hashPassword,
  hashRefreshToken,
  needsRehash,
  newRefreshToken,
  verifyAgainstDummy,
  verifyPassword,
  type AccessTokenSigner,
  type TokenVerifier,
} from '@parley/auth';
import type { Database, Kysely } from '@parley/db';
import { ParleyError, type AuthResponse, type LoginBody, type RegisterBody, type Tokens } from '@parley/protocol';
import * as sessions from '../repositories/sessions-repository';
import * as users from '../repositories/users-repository';
import type { EventPublisher } from './event-publisher';
import { toMe } from './mappers';
import { MicroBatcher } from '@parley/batching';

export interface AuthenticatedUser {
  userId: string;
  sessionId: string;
}

export class AuthService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly signer: AccessTokenSigner,
    private readonly verifier: TokenVerifier,
    private readonly publisher: EventPublisher,
    private readonly refreshTokenTtlSeconds: number,
    /** How long a rotated refresh token may be retried while its successor is unused (0: never). */
    private readonly refreshReuseGraceSeconds: number,
  ) {}

  /**
   * Every authenticated request reads its session (revocation takes effect at once);
   * requests that arrive together read theirs with one statement.
   */
  private readonly sessionLookups = new MicroBatcher<string, { user_id: string; revoked_at: Date | null } | undefined>(
    async (sessionIds) => {
      const found = await sessions.findSessions(this.db, [...new Set(sessionIds)]);
      return sessionIds.map((id) => ({ ok: true, value: found.get(id) }));
    },
    { maxBatch: 500, maxConcurrent: 2 },
  );

  async register(body: RegisterBody): Promise<AuthResponse> {
    const passwordHash = await hashPassword(body.password);
    return this.db.transaction().execute(async (trx) => {
      const user = await users.insertUser(trx, {
        username: body.username,
        displayName: body.displayName ?? body.username,
        passwordHash,
      });
      if (!user) throw new ParleyError('USERNAME_TAKEN');
      const tokens = await this.startSession(trx, user.id, null);
      return { user: toMe(user), tokens };
    });
  }

  async login(body: LoginBody): Promise<AuthResponse> {
    const user = await users.findUserByUsername(this.db, body.username);
    const valid = user ? await verifyPassword(user.password_hash, body.password) : await verifyAgainstDummy(body.password);
    if (!user || !valid) throw new ParleyError('INVALID_CREDENTIALS');
    if (needsRehash(user.password_hash)) {
      await users.updatePasswordHash(this.db, user.id, await hashPassword(body.password));
    }
    const tokens = await this.startSession(this.db, user.id, body.deviceName ?? null);
    return { user: toMe(user), tokens };
  }

  /**
   * Rotates a refresh token. A token that was already rotated is a sign of theft (the
   * thief or the owner is replaying it), so the whole session is revoked and both lose
   * it. One exception keeps flaky networks from logging people out: the same token
   * presented again within the grace period, while the token it was exchanged for has
   * never been used, is a retry whose reply was lost. That unused successor is dropped
   * and a fresh pair issued.
   */
  async refresh(refreshToken: string): Promise<Tokens> {
    const hash = hashRefreshToken(refreshToken);
    type Outcome =
      | { tokens: Tokens }
      | { error: 'REFRESH_TOKEN_INVALID' | 'SESSION_REVOKED' }
      | { error: 'REFRESH_TOKEN_REUSED'; revoked: AuthenticatedUser };
    const outcome = await this.db.transaction().execute(async (trx): Promise<Outcome> => {
      const row = await sessions.lockRefreshToken(trx, hash);
      if (!row) return { error: 'REFRESH_TOKEN_INVALID' };
      if (row.revoked_at !== null) return { error: 'SESSION_REVOKED' };
      if (row.rotated_at !== null) {
        const withinGrace = Date.now() - row.rotated_at.getTime() <= this.refreshReuseGraceSeconds * 1000;
        if (withinGrace && row.replaced_by && (await sessions.deleteUnusedRefreshToken(trx, row.replaced_by))) {
          const issued = await this.issueTokens(trx, row.user_id, row.session_id);
          await sessions.markRefreshTokenRotated(trx, hash, issued.refreshHash, false);
          return { tokens: issued.tokens };
        }
        await sessions.revokeSession(trx, row.session_id, 'refresh_token_reuse');
        return { error: 'REFRESH_TOKEN_REUSED', revoked: { userId: row.user_id, sessionId: row.session_id } };
      }
      if (row.expires_at.getTime() <= Date.now()) return { error: 'REFRESH_TOKEN_INVALID' };
      const issued = await this.issueTokens(trx, row.user_id, row.session_id);
      await sessions.markRefreshTokenRotated(trx, hash, issued.refreshHash, true);
      return { tokens: issued.tokens };
    });
    if ('tokens' in outcome) return outcome.tokens;
    if ('revoked' in outcome) this.announceRevocation(outcome.revoked.userId, outcome.revoked.sessionId);
    throw new ParleyError(outcome.error);
  }

  async logout(auth: AuthenticatedUser): Promise<void> {
    if (await sessions.revokeSession(this.db, auth.sessionId, 'logout')) {
      this.announceRevocation(auth.userId, auth.sessionId);
    }
  }

  /** Verifies an access token and that its session is still live. */
  async authenticate(accessToken: string): Promise<AuthenticatedUser> {
    const claims = await this.verifier.verify(accessToken);
    const session = await this.sessionLookups.submit(claims.sessionId);
    if (!session || session.user_id !== claims.userId) throw new ParleyError('UNAUTHENTICATED');
    if (session.revoked_at !== null) throw new ParleyError('SESSION_REVOKED');
    return { userId: claims.userId, sessionId: claims.sessionId };
  }

  private async startSession(db: Kysely<Database>, userId: string, deviceName: string | null): Promise<Tokens> {
    const sessionId = await sessions.createSession(db, userId, deviceName);
    return (await this.issueTokens(db, userId, sessionId)).tokens;
  }

  private async issueTokens(
    db: Kysely<Database>,
    userId: string,
    sessionId: string,
  ): Promise<{ tokens: Tokens; refreshHash: Buffer }> {
    const refresh = newRefreshToken();
    const refreshTokenExpiresAt = new Date(Date.now() + this.refreshTokenTtlSeconds * 1000);
    await sessions.insertRefreshToken(db, { hash: refresh.hash, sessionId, expiresAt: refreshTokenExpiresAt });
    const access = await this.signer.sign(userId, sessionId);
    const tokens: Tokens = {
      tokenType: 'Bearer',
      accessToken: access.token,
      accessTokenExpiresAt: access.expiresAt.toISOString(),
      refreshToken: refresh.token,
      refreshTokenExpiresAt: refreshTokenExpiresAt.toISOString(),
      sessionId,
    };
    return { tokens, refreshHash: refresh.hash };
  }

  /** Gateways close the session's sockets on every node when they hear this. */
  private announceRevocation(userId: string, sessionId: string): void {
    this.publisher.publish({ v: 1, type: 'session.revoked', sessionId }, { userIds: [userId] });
  }
}
