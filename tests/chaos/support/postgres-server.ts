import { execFile } from 'node:child_process';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { getFreePort } from '@parley/deploy';
import { createDb, migrateToLatest } from '@parley/db';
import { migrations } from '@parley/migrations';
import pg from 'pg';

const run = promisify(execFile);

/** Where the PostgreSQL server binaries are (PG_BIN wins; else the newest Debian layout, else PATH). */
async function binDir(): Promise<string> {
  const fromEnv = process.env['PG_BIN'];
  if (fromEnv) return fromEnv;
  for (const version of ['17', '16', '15', '14']) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    try {
      await run(path.join(dir, 'pg_ctl'), ['--version']);
      return dir;
    } catch {
      // not this one
    }
  }
  return '';
}

/**
 * A private PostgreSQL cluster on a free loopback port, in a temp directory, so a test may
 * stop and crash it: the shared server other test files use is never touched. As root the
 * server runs as the `postgres` OS user (PostgreSQL refuses to run as root). The database
 * `parley` is created and migrated. `pg_ctl` signals only the postmaster of this data
 * directory (its postmaster.pid).
 */
export class PrivatePostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly asPostgres: boolean,
  ) {}

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  /** The migrated `parley` database. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/parley`;
  }

  static async start(): Promise<PrivatePostgres> {
    const bin = await binDir();
    const asPostgres = process.getuid?.() === 0;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'parley-pg-'));
    const server = new PrivatePostgres(dir, await getFreePort('127.0.0.1'), bin, asPostgres);
    try {
      if (asPostgres) {
        const { stdout } = await run('id', ['-u', 'postgres']);
        const { stdout: gid } = await run('id', ['-g', 'postgres']);
        await chown(dir, Number(stdout.trim()), Number(gid.trim()));
      }
      await server.pg('initdb', ['-D', server.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
      await server.startServer();
      const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${server.port}/postgres` });
      await admin.connect();
      try {
        await admin.query('CREATE DATABASE parley');
      } finally {
        await admin.end();
      }
      const db = createDb({ connectionString: server.url, maxConnections: 1 });
      try {
        await migrateToLatest(db.kysely, migrations);
      } finally {
        await db.close();
      }
      return server;
    } catch (error) {
      await server.destroy();
      throw error;
    }
  }

  /** `pg_ctl start`, waiting until it accepts connections. */
  async startServer(): Promise<void> {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    await this.pg('pg_ctl', ['-D', this.dataDir, '-l', path.join(this.dir, 'server.log'), '-o', options, '-w', '-t', '30', 'start']);
  }

  /**
   * `pg_ctl stop -m immediate`: every server process quits at once, without a checkpoint,
   * as after a crash; the next start replays the WAL. Resolves once the postmaster is gone.
   */
  async stopImmediate(): Promise<void> {
    await this.pg('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop']);
  }

  /** The postmaster's PID (first line of postmaster.pid), while it runs. */
  async pid(): Promise<number> {
    return Number((await readFile(path.join(this.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  }

  /** Stops the server if it runs and removes the directory. */
  async destroy(): Promise<void> {
    try {
      await this.stopImmediate();
    } catch {
      // not running
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  private async pg(tool: string, args: string[]): Promise<void> {
    const binary = this.bin ? path.join(this.bin, tool) : tool;
    try {
      if (this.asPostgres) await run('runuser', ['-u', 'postgres', '--', binary, ...args], { cwd: this.dir });
      else await run(binary, args, { cwd: this.dir });
    } catch (error) {
      let log = '';
      try {
        log = (await readFile(path.join(this.dir, 'server.log'), 'utf8')).split('\n').slice(-20).join('\n');
      } catch {
        // no log yet
      }
      throw new Error(`${tool} ${args.join(' ')} failed: ${(error as Error).message}\n${log}`);
    }
  }
}
