import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { findNginx } from './nginx-process';

const run = promisify(execFile);

/** How long each check waits for a server before calling it unreachable. */
const CHECK_TIMEOUT_MS = 3000;

/** What the local topology needs, and what to do when a part of it is missing. */
export interface PreflightOptions {
  databaseUrl: string;
  redisUrl: string;
  /** An nginx binary to use instead of searching for one. */
  nginxPath?: string;
  openssl?: string;
  /** Files that `npm run build` makes (the services' entry points, the web client). */
  builtFiles: readonly string[];
}

export interface PreflightResult {
  nginx: string;
  /** True when the database did not exist and was created. */
  createdDatabase: boolean;
}

/** Thrown with every problem found, each with how to fix it, so one run lists them all. */
export class PreflightError extends Error {
  override name = 'PreflightError';
  constructor(readonly problems: readonly string[]) {
    super(`the local topology cannot start:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

/** host:port of a URL, for messages (never its credentials). */
function endpointOf(url: string, defaultPort: number): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || '127.0.0.1'}:${parsed.port || defaultPort}`;
  } catch {
    return '<unparseable url>';
  }
}

function reasonOf(error: unknown): string {
  const failure = error as { code?: string; message?: string };
  return failure.message || failure.code || String(error);
}

/**
 * Makes sure the database named in `databaseUrl` exists: connects to it, and if the
 * server says it does not exist (3D000), creates it from the server's `postgres` database.
 */
async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const probe = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: CHECK_TIMEOUT_MS });
  try {
    await probe.connect();
    return false;
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw error;
  } finally {
    await probe.end().catch(() => undefined);
  }
  const target = new URL(databaseUrl);
  const name = decodeURIComponent(target.pathname.slice(1));
  const maintenance = new URL(databaseUrl);
  maintenance.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: maintenance.toString(), connectionTimeoutMillis: CHECK_TIMEOUT_MS });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE template0 ENCODING 'UTF8'`);
    return true;
  } finally {
    await admin.end().catch(() => undefined);
  }
}

async function checkPostgres(databaseUrl: string): Promise<{ problem?: string; created: boolean }> {
  try {
    return { created: await ensureDatabase(databaseUrl) };
  } catch (error) {
    const where = endpointOf(databaseUrl, 5432);
    const code = (error as { code?: string }).code;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT' || /timeout/i.test(reasonOf(error))) {
      return {
        created: false,
        problem:
          `PostgreSQL is not reachable at ${where} (${reasonOf(error)}). Start one ` +
          '(Debian: apt-get install -y postgresql && pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; ' +
          'macOS: brew install postgresql && brew services start postgresql), or set DATABASE_URL to one you have.',
      };
    }
    return {
      created: false,
      problem:
        `PostgreSQL at ${where} refused us (${reasonOf(error)}). Set DATABASE_URL to a role that may connect ` +
        '(and CREATE DATABASE, unless the database exists), e.g. postgres://postgres@127.0.0.1:5432/parley.',
    };
  }
}

async function checkRedis(redisUrl: string): Promise<string | undefined> {
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: CHECK_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The socket's own error (ECONNREFUSED, ...) says more than the rejected connect().
  let socketError: unknown;
  redis.on('error', (error) => (socketError ??= error));
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (error) {
    return (
      `Redis is not reachable at ${endpointOf(redisUrl, 6379)} (${reasonOf(socketError ?? error)}). Start one ` +
      '(Debian: apt-get install -y redis-server && redis-server --daemonize yes --bind 127.0.0.1 --port 6379; ' +
      'macOS: brew install redis && brew services start redis), or set REDIS_URL to one you have.'
    );
  } finally {
    redis.disconnect();
  }
}

async function checkOpenssl(openssl: string): Promise<string | undefined> {
  try {
    await run(openssl, ['version']);
    return undefined;
  } catch {
    return `${openssl} not found: nginx's self-signed certificate is made with it. Install it (Debian: apt-get install -y openssl).`;
  }
}

/**
 * Checks every outside part the local topology needs, all at once, and creates the
 * database if the server lacks it. Throws a PreflightError listing each problem with
 * how to fix it.
 */
export async function preflight(options: PreflightOptions): Promise<PreflightResult> {
  const problems: string[] = [];
  let nginx = '';
  try {
    nginx = options.nginxPath ?? findNginx();
    if (options.nginxPath && !existsSync(options.nginxPath)) {
      problems.push(`nginx not found at ${options.nginxPath}: install it (Debian: apt-get install -y nginx) or pass its path.`);
    }
  } catch (error) {
    problems.push(`${(error as Error).message}.`);
  }
  const missingBuilds = options.builtFiles.filter((file) => !existsSync(file));
  if (missingBuilds.length > 0) {
    problems.push(`not built: ${missingBuilds.map((file) => path.relative(process.cwd(), file)).join(', ')}. Run \`npm run build\`.`);
  }
  const [postgres, redis, openssl] = await Promise.all([
    checkPostgres(options.databaseUrl),
    checkRedis(options.redisUrl),
    checkOpenssl(options.openssl ?? 'openssl'),
  ]);
  for (const problem of [postgres.problem, redis, openssl]) if (problem) problems.push(problem);
  if (problems.length > 0) throw new PreflightError(problems);
  return { nginx, createdDatabase: postgres.created };
}
