import type { AccessClaims } from './tokens';

/** Anything that turns an access token into its claims, or throws the ParleyError that says why not. */
export interface TokenVerifier {
  verify(token: string): Promise<AccessClaims>;
}

export interface TokenCacheOptions {
  /** Tokens remembered at most; the oldest goes first (default 10,000). */
  maxEntries?: number;
  /** How long a verified token is trusted without checking its signature again (default 60 s). */
  maxAgeMs?: number;
}

/**
 * Remembers tokens already verified, until their expiry and at most `maxAgeMs`. A client
 * sends the same access token with every request for minutes; verifying its EdDSA
 * signature each time cost the message service more CPU than the send it authorized.
 * A token is trusted for what it said when it was verified: a key removed from the key
 * set stops its tokens within `maxAgeMs`. Revocation is not the token's business: the
 * session is still read on every request.
 */
export class CachingTokenVerifier implements TokenVerifier {
  private readonly verified = new Map<string, { claims: AccessClaims; trustedUntil: number }>();
  private readonly maxEntries: number;
  private readonly maxAgeMs: number;

  constructor(
    private readonly inner: TokenVerifier,
    options: TokenCacheOptions = {},
  ) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxAgeMs = options.maxAgeMs ?? 60_000;
  }

  async verify(token: string): Promise<AccessClaims> {
    const now = Date.now();
    const known = this.verified.get(token);
    if (known && known.trustedUntil > now) return known.claims;
    if (known) this.verified.delete(token);
    const claims = await this.inner.verify(token);
    if (this.verified.size >= this.maxEntries) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { claims, trustedUntil: Math.min(claims.expiresAt * 1000, now + this.maxAgeMs) });
    return claims;
  }
}
