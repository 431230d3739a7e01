export * from './database';
export * from './db';
export * from './create-db';
export * from './create-embedded-db';
export * from './migrate';
export { sql } from 'kysely';
export type { Kysely, Transaction } from 'kysely';
