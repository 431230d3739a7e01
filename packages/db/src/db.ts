import type { Kysely } from 'kysely';
import type { Database } from './database';

/**
 * A database the services run on: PostgreSQL through a pg pool (`createDb`) or embedded
 * PostgreSQL in this process (`createEmbeddedDb`). Both return values of the same JS
 * types (see type-parsers.ts), so the code above cannot tell them apart.
 */
export interface Db {
  kysely: Kysely<Database>;
  /** Ends every connection (and, embedded, shuts the database down cleanly). */
  close(): Promise<void>;
}
