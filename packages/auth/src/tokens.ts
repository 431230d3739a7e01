import { createHash, randomBytes } from 'node:crypto';
import { ParleyError } from '@parley/protocol';
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { TOKEN_ALGORITHM, type JsonWebKeySet, type SigningKey } from './keys';

export interface TokenAudience {
  issuer: string;
  audience: string;
}

/** What an access token says about its bearer. */
export interface AccessClaims {
  userId: string;
  sessionId: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

/** Issues short-lived access JWTs: EdDSA, `kid` in the header, `sub` = user, `sid` = session. */
export class AccessTokenSigner {
  constructor(
    private readonly key: SigningKey,
    private readonly audience: TokenAudience,
    private readonly ttlSeconds: number,
  ) {}

  async sign(userId: string, sessionId: string): Promise<{ token: string; expiresAt: Date }> {
    const nowSeconds = Math.floor(Date.now() / 1000);
    const exp = nowSeconds + this.ttlSeconds;
    const token = await new SignJWT({ sid: sessionId })
      .setProtectedHeader({ alg: TOKEN_ALGORITHM, kid: this.key.kid, typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(this.audience.issuer)
      .setAudience(this.audience.audience)
      .setIssuedAt(nowSeconds)
      .setExpirationTime(exp)
      .sign(this.key.privateKey);
    return { token, expiresAt: new Date(exp * 1000) };
  }
}

/**
 * Verifies access JWTs with public keys only, so any node holding the JWKS can check a
 * token. Only EdDSA is accepted (an `alg: none` or HS256 token fails), the `kid` must
 * name a known key, and issuer, audience and expiry are enforced.
 */
export class AccessTokenVerifier {
  private readonly keySet: ReturnType<typeof createLocalJWKSet> | ReturnType<typeof createRemoteJWKSet>;

  /**
   * `keys` is either the key set itself or the URL of a JWKS document; a remote set is
   * cached and fetched again when a token names a `kid` it does not know (rotation).
   */
  constructor(
    keys: JsonWebKeySet | URL,
    private readonly audience: TokenAudience,
    private readonly clockToleranceSeconds = 5,
  ) {
    this.keySet = keys instanceof URL ? createRemoteJWKSet(keys, { cooldownDuration: 30_000 }) : createLocalJWKSet(keys);
  }

  async verify(token: string): Promise<AccessClaims> {
    try {
      const { payload } = await jwtVerify(token, this.keySet, {
        algorithms: [TOKEN_ALGORITHM],
        issuer: this.audience.issuer,
        audience: this.audience.audience,
        clockTolerance: this.clockToleranceSeconds,
        requiredClaims: ['sub', 'exp', 'sid'],
      });
      const { sub, sid, exp } = payload;
      if (typeof sub !== 'string' || typeof sid !== 'string' || typeof exp !== 'number') {
        throw new ParleyError('UNAUTHENTICATED', 'The access token is missing required claims.');
      }
      return { userId: sub, sessionId: sid, expiresAt: exp };
    } catch (error) {
      if (error instanceof ParleyError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw new ParleyError('TOKEN_EXPIRED');
      if (isTokenFault(error)) throw new ParleyError('UNAUTHENTICATED', 'The access token is invalid.');
      // Anything else is ours (the key set could not be fetched): not the client's fault.
      throw new ParleyError('UNAVAILABLE', 'The signing keys could not be fetched.');
    }
  }
}

/** Errors that say the token itself is bad (as opposed to the key set being unreachable). */
function isTokenFault(error: unknown): boolean {
  return (
    error instanceof joseErrors.JWSInvalid ||
    error instanceof joseErrors.JWSSignatureVerificationFailed ||
    error instanceof joseErrors.JWTInvalid ||
    error instanceof joseErrors.JWTClaimValidationFailed ||
    error instanceof joseErrors.JWKSNoMatchingKey ||
    error instanceof joseErrors.JWKSMultipleMatchingKeys ||
    error instanceof joseErrors.JOSEAlgNotAllowed ||
    error instanceof joseErrors.JOSENotSupported ||
    error instanceof joseErrors.JWKInvalid ||
    error instanceof joseErrors.JWEInvalid ||
    // Malformed input can also surface as a plain TypeError (e.g. bad base64url).
    error instanceof TypeError
  );
}

/** A refresh token is 256 random bits; only its SHA-256 is stored. */
export function newRefreshToken(): { token: string; hash: Buffer } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashRefreshToken(token) };
}

export function hashRefreshToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
