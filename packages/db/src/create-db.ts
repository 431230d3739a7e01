import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './database';

// PostgreSQL `bigint` (OID 20) arrives as a string because it can exceed 2^53. Our
// bigints are sequence numbers and counters that stay far below that, so parse them as
// numbers once, here, rather than at every use. Fail loudly if one ever does not fit.
const INT8_OID = 20;
pg.types.setTypeParser(INT8_OID, (value: string) => {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed)) throw new RangeError(`bigint ${value} exceeds Number.MAX_SAFE_INTEGER`);
  return parsed;
});

export interface DbOptions {
  connectionString: string;
  /** Most connections the pool opens. */
  maxConnections?: number;
  /** Server-side cap on any one statement, so a stuck query cannot pin a connection forever. */
  statementTimeoutMs?: number;
  /**
   * Longest wait for a row lock. A hot conversation serializes its writers on one row;
   * past this they fail fast (SQLSTATE 55P03, answered 503 "retry") instead of holding
   * pooled connections that every other conversation needs.
   */
  lockTimeoutMs?: number;
  applicationName?: string;
}

export interface Db {
  kysely: Kysely<Database>;
  pool: pg.Pool;
  close(): Promise<void>;
}

export function createDb(options: DbOptions): Db {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 20,
    statement_timeout: options.statementTimeoutMs ?? 15000,
    lock_timeout: options.lockTimeoutMs ?? 3000,
    application_name: options.applicationName ?? 'parley',
    connectionTimeoutMillis: 5000,
  });
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    kysely,
    pool,
    // Kysely's destroy() ends the pool it was given.
    close: () => kysely.destroy(),
  };
}
