import { execFile } from 'node:child_process';
import { chmod, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SelfSignedCertOptions {
  /** Directory the `cert.pem` and `key.pem` are written to. */
  dir: string;
  commonName?: string;
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  days?: number;
  /**
   * `p256` (default) works everywhere, browsers included. `ed25519` is smaller and fine
   * for Node, curl and k6, but Chromium and Safari refuse it
   * (ERR_SSL_VERSION_OR_CIPHER_MISMATCH).
   */
  keyType?: 'ed25519' | 'p256';
  openssl?: string;
}

export interface SelfSignedCert {
  certPath: string;
  keyPath: string;
  /** The certificate, which is its own CA: pass it as `ca` to trust it. */
  certPem: string;
}

/** Makes a self-signed certificate with subjectAltNames by running the openssl CLI. */
export async function createSelfSignedCert(options: SelfSignedCertOptions): Promise<SelfSignedCert> {
  const certPath = path.join(options.dir, 'cert.pem');
  const keyPath = path.join(options.dir, 'key.pem');
  const dnsNames = options.dnsNames ?? ['localhost'];
  const ipAddresses = options.ipAddresses ?? ['127.0.0.1', '::1'];
  const altNames = [...dnsNames.map((name) => `DNS:${name}`), ...ipAddresses.map((ip) => `IP:${ip}`)].join(',');
  const key = options.keyType === 'ed25519' ? ['-newkey', 'ed25519'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  const openssl = options.openssl ?? 'openssl';
  // -nodes rather than -noenc: the former also works on OpenSSL 1.1.
  const args = [
    'req', '-x509', ...key, '-nodes',
    '-keyout', keyPath, '-out', certPath,
    '-days', String(options.days ?? 30),
    '-subj', `/CN=${options.commonName ?? 'localhost'}`,
    '-addext', `subjectAltName=${altNames}`,
  ];
  try {
    await run(openssl, args);
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') {
      throw new Error(`${openssl} not found: install it (Debian: apt-get install openssl)`);
    }
    throw new Error(`openssl could not make a certificate: ${failure.stderr?.trim() || failure.message}`);
  }
  await chmod(keyPath, 0o600);
  return { certPath, keyPath, certPem: await readFile(certPath, 'utf8') };
}
