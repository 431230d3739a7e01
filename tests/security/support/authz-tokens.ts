// Access tokens an attacker could present, built beside a real one: each is refused by
// the message service and the gateway alike (docs/errors.md: UNAUTHENTICATED, or
// TOKEN_EXPIRED for an expired one).
import { generateSigningJwk, importSigningJwk, type SigningKey } from '@parley/auth';
import { base64url, SignJWT } from 'jose';

export interface TokenContext {
  /** The service's current signing key. */
  signingKey: SigningKey;
  issuer: string;
  audience: string;
}

export interface Subject {
  userId: string;
  sessionId: string;
}

export interface ForgedToken {
  name: string;
  token: string;
  /** The documented refusal: HTTP 401 with this code. */
  code: 'UNAUTHENTICATED' | 'TOKEN_EXPIRED';
}

const now = (): number => Math.floor(Date.now() / 1000);

interface SignOptions {
  key?: SigningKey;
  kid?: string;
  issuer?: string;
  audience?: string;
  iat?: number;
  exp?: number;
  nbf?: number;
}

/** Signs exactly as the service does (EdDSA, kid, sub, sid, iss, aud, iat, exp), with overrides. */
export async function signAs(context: TokenContext, subject: Subject, options: SignOptions = {}): Promise<string> {
  const key = options.key ?? context.signingKey;
  const iat = options.iat ?? now();
  const jwt = new SignJWT({ sid: subject.sessionId })
    .setProtectedHeader({ alg: 'EdDSA', kid: options.kid ?? key.kid, typ: 'JWT' })
    .setSubject(subject.userId)
    .setIssuer(options.issuer ?? context.issuer)
    .setAudience(options.audience ?? context.audience)
    .setIssuedAt(iat)
    .setExpirationTime(options.exp ?? iat + 600);
  if (options.nbf !== undefined) jwt.setNotBefore(options.nbf);
  return jwt.sign(key.privateKey);
}

function encodeJson(value: unknown): string {
  return base64url.encode(JSON.stringify(value));
}

function claimsOf(token: string): Record<string, unknown> {
  const payload = token.split('.')[1] ?? '';
  return JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as Record<string, unknown>;
}

/**
 * Every forged or unusable token for `subject`'s live session. `valid` is a real token
 * of that session, issued by the service, the base of the tampered ones.
 */
export async function forgedTokens(context: TokenContext, subject: Subject, valid: string): Promise<ForgedToken[]> {
  const claims = claimsOf(valid);
  const [header, payload, signature] = valid.split('.') as [string, string, string];
  const stranger = await importSigningJwk(await generateSigningJwk(`stranger-${Math.random().toString(36).slice(2, 8)}`));
  const publicX = base64url.decode(context.signingKey.publicJwk.x ?? '');
  const hs256 = (secret: Uint8Array) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: context.signingKey.kid, typ: 'JWT' }).sign(secret);
  const t = now();
  return [
    { name: 'expired', code: 'TOKEN_EXPIRED', token: await signAs(context, subject, { iat: t - 3600, exp: t - 1800 }) },
    {
      name: 'tampered signature',
      code: 'UNAUTHENTICATED',
      // Flip bits in the middle of the signature (the last character only carries padding bits).
      token: `${header}.${payload}.${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`,
    },
    {
      name: 'tampered payload (sub changed, signature kept)',
      code: 'UNAUTHENTICATED',
      token: `${header}.${encodeJson({ ...claims, sub: '00000000-0000-4000-8000-000000000000' })}.${signature}`,
    },
    {
      name: 'alg none, unsigned',
      code: 'UNAUTHENTICATED',
      token: `${encodeJson({ alg: 'none', typ: 'JWT' })}.${payload}.`,
    },
    {
      name: 'alg none with the original signature kept',
      code: 'UNAUTHENTICATED',
      token: `${encodeJson({ alg: 'none', kid: context.signingKey.kid, typ: 'JWT' })}.${payload}.${signature}`,
    },
    { name: 'HS256 keyed with the raw public key bytes', code: 'UNAUTHENTICATED', token: await hs256(publicX) },
    {
      name: 'HS256 keyed with the public JWK text',
      code: 'UNAUTHENTICATED',
      token: await hs256(new TextEncoder().encode(JSON.stringify(context.signingKey.publicJwk))),
    },
    { name: 'wrong aud', code: 'UNAUTHENTICATED', token: await signAs(context, subject, { audience: 'not-parley' }) },
    { name: 'wrong iss', code: 'UNAUTHENTICATED', token: await signAs(context, subject, { issuer: 'https://evil.example' }) },
    { name: 'future nbf', code: 'UNAUTHENTICATED', token: await signAs(context, subject, { nbf: t + 3600 }) },
    { name: 'unknown kid (a stranger key)', code: 'UNAUTHENTICATED', token: await signAs(context, subject, { key: stranger }) },
    {
      name: 'a stranger key claiming the service kid',
      code: 'UNAUTHENTICATED',
      token: await signAs(context, subject, { key: stranger, kid: context.signingKey.kid }),
    },
    { name: 'not a JWT', code: 'UNAUTHENTICATED', token: 'not.a.jwt' },
  ];
}
