import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSigningJwk, importSigningJwk, type SigningKey } from '@parley/auth';

export const SIGNING_KEY_FILE = 'signing-key.json';

/**
 * The embedded mode's token signing key: made on the first start and kept in the data
 * directory (readable by its owner only), so access tokens issued before a restart
 * still verify after it. Call it while holding the data directory (the database lock),
 * so two processes never both make one.
 */
export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKey> {
  const path = join(dataDir, SIGNING_KEY_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const jwk = await generateSigningJwk(`local-${randomBytes(4).toString('hex')}`);
    text = `${JSON.stringify(jwk)}\n`;
    await mkdir(dataDir, { recursive: true });
    // Written aside, then renamed: a crash never leaves half a key behind.
    const partial = `${path}.${process.pid}.partial`;
    await writeFile(partial, text, { mode: 0o600 });
    await rename(partial, path);
  }
  try {
    return await importSigningJwk(JSON.parse(text) as Parameters<typeof importSigningJwk>[0]);
  } catch (error) {
    throw new Error(
      `${path} holds no usable signing key (${(error as Error).message}). Move it away and a new one is made ` +
        '(clients then refresh their tokens), or set AUTH_SIGNING_KEY.',
      { cause: error },
    );
  }
}
