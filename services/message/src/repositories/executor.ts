import type { Database, Kysely } from '@parley/db';

/** A Kysely handle: the pool-backed instance or a transaction. Repositories accept either. */
export type Executor = Kysely<Database>;

const UNIQUE_VIOLATION = '23505';

export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, constraint: violated } = error as { code?: unknown; constraint?: unknown };
  return code === UNIQUE_VIOLATION && (constraint === undefined || violated === constraint);
}
