import argon2 from 'argon2';
import { HashingGate } from './hashing-gate';

/**
 * argon2id with the OWASP Password Storage Cheat Sheet's first recommended setting:
 * 19 MiB of memory, 2 iterations, 1 lane. Parameters are stored in each hash, so raising
 * them later keeps old hashes verifiable (see `needsRehash`).
 */
export const PASSWORD_HASH_OPTIONS = {
  type: argon2.argon2id,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

/**
 * node-argon2 writes the parameters as `m=…,p=…,t=…`; the PHC string format and the
 * reference libargon2 parser expect `m=…,t=…,p=…` (ranisalt/node-argon2#559). Store the
 * canonical order so the hashes stay portable to other verifiers; node-argon2 reads both.
 */
function canonicalParameterOrder(hash: string): string {
  return hash.replace(/\$m=(\d+),p=(\d+),t=(\d+)\$/, '$$m=$1,t=$3,p=$2$$');
}

/**
 * Every hash and verification in this process goes through one gate: as many at once as
 * libuv's default thread pool has threads, and a queue of a few seconds' work behind them.
 */
export const passwordHashing = new HashingGate(4, 256);

export async function hashPassword(password: string): Promise<string> {
  return canonicalParameterOrder(await passwordHashing.run(() => argon2.hash(password, PASSWORD_HASH_OPTIONS)));
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  return passwordHashing.run(async () => {
    try {
      return await argon2.verify(hash, password);
    } catch {
      return false; // a malformed stored hash verifies nothing
    }
  });
}

export function needsRehash(hash: string): boolean {
  return argon2.needsRehash(hash, PASSWORD_HASH_OPTIONS);
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends the same time as a real verification. Called when the username does not
 * exist, so response timing does not reveal which usernames are registered.
 */
export async function verifyAgainstDummy(password: string): Promise<false> {
  dummyHash ??= hashPassword('parley-dummy-password');
  await verifyPassword(await dummyHash, password);
  return false;
}
