import pg from 'pg';

const INT8_OID = 20;

/**
 * PostgreSQL `bigint` arrives as text because it can exceed 2^53. Our bigints are
 * sequence numbers and counters that stay far below that, so they are parsed as numbers
 * once, here, rather than at every use. Fail loudly if one ever does not fit.
 */
export function parseInt8(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed)) throw new RangeError(`bigint ${value} exceeds Number.MAX_SAFE_INTEGER`);
  return parsed;
}

// pg's parsers are process-wide: every pool and client in the process gets this one.
pg.types.setTypeParser(INT8_OID, parseInt8);

/**
 * pg's text-format parser for each of `oids`, for a driver (PGlite) that would otherwise
 * decode those types its own way: timestamps, bytea (a Buffer, not a bare Uint8Array),
 * bigint and the rest then come back exactly as they do from a real server.
 */
export function pgTextParsers(oids: readonly number[]): Record<number, (value: string) => unknown> {
  return Object.fromEntries(
    oids.map((oid) => [oid, pg.types.getTypeParser(oid as Parameters<typeof pg.types.getTypeParser>[0], 'text')]),
  );
}
