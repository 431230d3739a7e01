import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { startProcess, type ManagedProcess } from './managed-process';

const run = promisify(execFile);

// Debian puts nginx in /usr/sbin, which is not on a normal user's PATH.
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin', '/opt/homebrew/bin', '/usr/local/bin'];

const INSTALL_HINT = 'install it (Debian: apt-get update && apt-get install -y nginx) or pass its path';

/** Finds the nginx binary on PATH or in the usual sbin directories; throws saying how to install it. */
export function findNginx(pathEnv: string = process.env['PATH'] ?? ''): string {
  const dirs = [...pathEnv.split(path.delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, 'nginx');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  throw new Error(`nginx not found on PATH or in ${EXTRA_DIRS.join(', ')}: ${INSTALL_HINT}`);
}

/** Runs `nginx -t` on a config; resolves with nginx's output (warnings included), throws with it on failure. */
export async function testNginxConfig(nginx: string, prefix: string, configPath: string): Promise<string> {
  try {
    const { stderr, stdout } = await run(nginx, ['-t', '-p', prefix, '-c', configPath]);
    return `${stdout}${stderr}`;
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (failure.code === 'ENOENT') throw new Error(`${nginx} not found: ${INSTALL_HINT}`);
    throw new Error(`nginx -t failed for ${configPath}:\n${failure.stdout ?? ''}${failure.stderr ?? failure.message}`);
  }
}

/**
 * Puts a config in place only once `nginx -t` accepts it: a bad render never replaces
 * the file a running nginx (or its next reload) reads. Returns nginx's output.
 */
export async function installNginxConfig(nginx: string, prefix: string, configPath: string, text: string): Promise<string> {
  const candidate = `${configPath}.next`;
  await writeFile(candidate, text);
  const output = await testNginxConfig(nginx, prefix, candidate);
  await rename(candidate, configPath);
  return output;
}

export interface StartNginxOptions {
  nginx: string;
  prefix: string;
  configPath: string;
  logDir: string;
  env: NodeJS.ProcessEnv;
  detached?: boolean;
}

/** Starts nginx in the foreground as a child, so its master PID is the child's PID. */
export function startNginx(options: StartNginxOptions): Promise<ManagedProcess> {
  return startProcess({
    name: 'nginx',
    command: options.nginx,
    args: ['-p', options.prefix, '-c', options.configPath, '-g', 'daemon off;'],
    env: options.env,
    logDir: options.logDir,
    detached: options.detached,
  });
}
