// One reading of what a failed request says about PostgreSQL, shared by the error
// handler (503 UNAVAILABLE, retryable) and the metrics (parley_db_errors_total).

/**
 * PostgreSQL's SQLSTATE classes and driver errors that mean the database could not serve
 * (unreachable, shutting down, overloaded, lock wait or statement timeout), not a bug:
 * nothing was committed, and the client may retry.
 */
const UNAVAILABLE = /^(08|53|57|55P03$)|^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND)$/;

/** What a request error says about PostgreSQL: `unavailable`, `query`, or nothing (not a database error). */
export function databaseErrorKind(error: unknown): 'unavailable' | 'query' | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code } = error as { code?: unknown };
  // pg's errors for a lost or unobtainable connection carry no code: no connection frees up
  // in time, the connection ended, or (the ROLLBACK after a statement lost its connection)
  // the connection is known broken and nothing was sent on it.
  if (
    error.message === 'timeout exceeded when trying to connect' ||
    error.message.startsWith('Connection terminated') ||
    error.message === 'Client has encountered a connection error and is not queryable'
  ) {
    return 'unavailable';
  }
  if (typeof code !== 'string') return undefined;
  if (UNAVAILABLE.test(code)) return 'unavailable';
  // A SQLSTATE is five characters of digits and capitals; ParleyError and Fastify codes are not.
  return /^[0-9A-Z]{5}$/.test(code) ? 'query' : undefined;
}
