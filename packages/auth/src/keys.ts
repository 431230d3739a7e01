import { exportJWK, generateKeyPair, importJWK, type JWK, type KeyLike } from 'jose';

/** The one signature algorithm Parley issues and accepts. */
export const TOKEN_ALGORITHM = 'EdDSA';

export interface SigningKey {
  kid: string;
  privateKey: KeyLike | Uint8Array;
  publicJwk: JWK;
}

export interface JsonWebKeySet {
  keys: JWK[];
}

/** Makes a fresh Ed25519 key as a private JWK, with `kid`, `alg` and `use` set. */
export async function generateSigningJwk(kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair(TOKEN_ALGORITHM, { crv: 'Ed25519', extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: TOKEN_ALGORITHM, use: 'sig' };
}

/** Checks and imports a private Ed25519 JWK. Throws a message fit for a config error. */
export async function importSigningJwk(jwk: JWK): Promise<SigningKey> {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') throw new Error('signing key must be an Ed25519 (OKP) JWK');
  if (typeof jwk.d !== 'string') throw new Error('signing key must be a private JWK (with "d")');
  if (typeof jwk.kid !== 'string' || jwk.kid.length === 0) throw new Error('signing key must carry a "kid"');
  const privateKey = await importJWK(jwk, TOKEN_ALGORITHM);
  const { d: _private, ...publicPart } = jwk;
  return { kid: jwk.kid, privateKey, publicJwk: toPublicJwk(publicPart) };
}

/** Keeps only the public members of a JWK, with `alg` and `use` filled in. */
export function toPublicJwk(jwk: JWK): JWK {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || typeof jwk.kid !== 'string') {
    throw new Error('verification keys must be Ed25519 public JWKs with "x" and "kid"');
  }
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid: jwk.kid, alg: TOKEN_ALGORITHM, use: 'sig' };
}
