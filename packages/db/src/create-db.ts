import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './database';
import type { Db } from './db';
import './type-parsers';

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
  /**
   * Told when a pooled connection fails outside a query (the server restarted or crashed),
   * idle or checked out between the statements of a transaction. pg drops that connection
   * and opens a new one on demand; the statement that needed it fails (answered 503).
   * Without these listeners the error would be unhandled and end the process.
   */
  onConnectionError?: (error: Error) => void;
}

/** PostgreSQL over a pg pool: the production backend. */
export function createDb(options: DbOptions): Db {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 20,
    statement_timeout: options.statementTimeoutMs ?? 15000,
    lock_timeout: options.lockTimeoutMs ?? 3000,
    application_name: options.applicationName ?? 'parley',
    connectionTimeoutMillis: 5000,
  });
  const report = (error: Error) => options.onConnectionError?.(error);
  pool.on('error', report);
  pool.on('connect', (client) => client.on('error', report));
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    kysely,
    // Kysely's destroy() ends the pool it was given.
    close: () => kysely.destroy(),
  };
}
