import type { Migration } from 'kysely';
import * as m0001 from './0001-initial';
import * as m0002 from './0002-refresh-token-successor';
import * as m0003 from './0003-store-send-batch';

/**
 * Every migration, by name. Names sort in the order they apply; append only. Listing
 * them here (rather than reading a folder at run time) keeps the set explicit and
 * type-checked, and works the same from source and from `dist/`.
 */
export const migrations: Record<string, Migration> = {
  '0001-initial': m0001,
  '0002-refresh-token-successor': m0002,
  '0003-store-send-batch': m0003,
};
