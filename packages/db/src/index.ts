export * from './database';
export * from './create-db';
export * from './migrate';
export { sql } from 'kysely';
export type { Kysely, Transaction } from 'kysely';
