import { mkdirSync } from 'node:fs';
import { PGlite, types, type Results } from '@electric-sql/pglite';
import { Kysely } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import type { Database } from './database';
import type { Db } from './db';
import { lockDirectory, type DirLock } from './dir-lock';
import { pgTextParsers } from './type-parsers';

export interface EmbeddedDbOptions {
  /**
   * Directory of the database files, created (and initialized) on first use. Omitted:
   * the database lives in memory and is gone when closed.
   */
  dataDir?: string;
}

/** Every type PGlite decodes itself; each is decoded the pg way instead. */
const DECODED_TYPES = Object.keys(types.parsers).map(Number).filter(Number.isInteger);

/**
 * What kysely-pglite-dialect calls on its client: `query()` and `close()`. PGlite's
 * `query()` uses the extended protocol, which refuses several statements in one string,
 * and migrations send whole scripts. A statement without parameters therefore goes
 * through `exec()` (the simple protocol, as pg sends it too) and yields the result of
 * its last statement; a single statement gives the same rows either way.
 */
class StatementClient {
  constructor(private readonly pglite: PGlite) {}

  async query(sql: string, params: unknown[] = []): Promise<Results> {
    if (params.length > 0) return this.pglite.query(sql, params);
    const results = await this.pglite.exec(sql);
    return results.at(-1) ?? { rows: [], fields: [], affectedRows: 0 };
  }

  /** The Db closes PGlite itself: Kysely skips this when it never ran a query. */
  async close(): Promise<void> {}
}

/**
 * PostgreSQL embedded in this process (PGlite, WASM): one connection, so the dialect
 * queues transactions one after the other (row locks never wait). Opening takes a few
 * seconds; a fresh directory takes longest (initdb). PGlite does not guard its
 * directory against a second process, so a lock file does: two writers would corrupt it.
 */
export async function createEmbeddedDb(options: EmbeddedDbOptions = {}): Promise<Db> {
  const { dataDir } = options;
  let lock: DirLock | undefined;
  if (dataDir !== undefined) {
    mkdirSync(dataDir, { recursive: true });
    lock = lockDirectory(dataDir);
  }
  let pglite: PGlite;
  try {
    pglite = await PGlite.create({ dataDir, parsers: pgTextParsers(DECODED_TYPES) });
  } catch (error) {
    lock?.release();
    throw error;
  }
  // The cast: the dialect is typed for PGlite but calls only what StatementClient has.
  const kysely = new Kysely<Database>({ dialect: new PGliteDialect(new StatementClient(pglite) as unknown as PGlite) });
  let closing: Promise<void> | undefined;
  const close = async () => {
    try {
      await kysely.destroy();
      // Shuts PostgreSQL down cleanly (a checkpoint), so the next open needs no recovery.
      await pglite.close();
    } finally {
      lock?.release();
    }
  };
  return { kysely, close: () => (closing ??= close()) };
}
