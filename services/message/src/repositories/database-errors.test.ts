import { databaseErrorKind } from './database-errors';

// pg's own errors for a lost connection carry no SQLSTATE; a PostgreSQL crash produces each
// of these (tests/chaos/postgres-crash.test.ts), and each must answer 503, not 500.
test.each([
  'timeout exceeded when trying to connect',
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'Client has encountered a connection error and is not queryable',
])('%j is unavailable', (message) => {
  expect(databaseErrorKind(new Error(message))).toBe('unavailable');
});

test('SQLSTATEs: connection, resources and shutdown classes are unavailable; others are query errors', () => {
  const withCode = (code: string) => Object.assign(new Error('x'), { code });
  expect(databaseErrorKind(withCode('57P01'))).toBe('unavailable');
  expect(databaseErrorKind(withCode('08006'))).toBe('unavailable');
  expect(databaseErrorKind(withCode('55P03'))).toBe('unavailable');
  expect(databaseErrorKind(withCode('23505'))).toBe('query');
  expect(databaseErrorKind(new Error('something else'))).toBeUndefined();
});
