import { sql, type MessageRow } from '@parley/db';
import type { Executor } from './executor';

export interface SendItem {
  conversationId: string;
  senderId: string;
  clientMessageId: string;
  body: string;
}

/** What `store_send_batch` decided for one item (migrations/src/0003-store-send-batch.ts). */
export type SendItemOutcome = 'new' | 'same' | 'duplicate' | 'CONVERSATION_NOT_FOUND' | 'NOT_A_MEMBER' | 'USER_BLOCKED';

export interface StoredItem {
  outcome: SendItemOutcome;
  /** The stored message: for 'new', 'same' and 'duplicate'. */
  row: MessageRow | null;
}

type FunctionRow = { item: number; outcome: SendItemOutcome } & { [K in keyof MessageRow]: MessageRow[K] | null };

/**
 * Stores a batch of sends with one statement, its own transaction (autocommit): one round
 * trip to PostgreSQL however many sends and conversations the batch holds. Answers one
 * outcome per item, in item order.
 */
export async function storeSends(db: Executor, items: readonly SendItem[]): Promise<StoredItem[]> {
  if (items.length === 0) return [];
  const { rows } = await sql<FunctionRow>`
    select * from store_send_batch(
      ${items.map((item) => item.conversationId)}::uuid[], ${items.map((item) => item.senderId)}::uuid[],
      ${items.map((item) => item.clientMessageId)}::text[], ${items.map((item) => item.body)}::text[]
    )
  `.execute(db);
  if (rows.length !== items.length) throw new Error(`store_send_batch answered ${rows.length} rows for ${items.length} items`);
  return rows.map(({ item: _item, outcome, ...row }) => ({ outcome, row: row.seq === null ? null : (row as MessageRow) }));
}
