import type { ContactStateColumn } from '@parley/db';
import type { Executor } from './executor';

export async function findContactState(
  db: Executor,
  ownerId: string,
  peerId: string,
): Promise<ContactStateColumn | undefined> {
  const row = await db
    .selectFrom('contacts')
    .select('state')
    .where('owner_id', '=', ownerId)
    .where('peer_id', '=', peerId)
    .executeTakeFirst();
  return row?.state;
}

/** Writes both sides of a contact relation. */
export async function upsertContactPair(
  db: Executor,
  a: { id: string; state: ContactStateColumn },
  b: { id: string; state: ContactStateColumn },
): Promise<void> {
  const now = new Date();
  await db
    .insertInto('contacts')
    .values([
      { owner_id: a.id, peer_id: b.id, state: a.state, updated_at: now },
      { owner_id: b.id, peer_id: a.id, state: b.state, updated_at: now },
    ])
    .onConflict((oc) =>
      oc.columns(['owner_id', 'peer_id']).doUpdateSet((eb) => ({
        state: eb.ref('excluded.state'),
        updated_at: eb.ref('excluded.updated_at'),
      })),
    )
    .execute();
}

/** Deletes both sides; returns false when there was nothing to delete. */
export async function deleteContactPair(db: Executor, a: string, b: string): Promise<boolean> {
  const result = await db
    .deleteFrom('contacts')
    .where((eb) =>
      eb.or([
        eb.and([eb('owner_id', '=', a), eb('peer_id', '=', b)]),
        eb.and([eb('owner_id', '=', b), eb('peer_id', '=', a)]),
      ]),
    )
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** The owner's contacts, or just the one with `peerId`. */
export async function listContacts(db: Executor, ownerId: string, peerId?: string) {
  let query = db
    .selectFrom('contacts as c')
    .innerJoin('users as u', 'u.id', 'c.peer_id')
    .select(['u.id', 'u.username', 'u.display_name', 'c.state', 'c.updated_at'])
    .where('c.owner_id', '=', ownerId);
  if (peerId !== undefined) query = query.where('c.peer_id', '=', peerId);
  return query.orderBy('u.username').execute();
}

export async function isBlockedEitherWay(db: Executor, a: string, b: string): Promise<boolean> {
  return anyBlockBetween(db, a, [b]);
}

/** True when `userId` blocked any of `others`, or any of them blocked `userId`. */
export async function anyBlockBetween(db: Executor, userId: string, others: readonly string[]): Promise<boolean> {
  if (others.length === 0) return false;
  const row = await db
    .selectFrom('blocks')
    .select('blocker_id')
    .where((eb) =>
      eb.or([
        eb.and([eb('blocker_id', '=', userId), eb('blocked_id', 'in', others)]),
        eb.and([eb('blocked_id', '=', userId), eb('blocker_id', 'in', others)]),
      ]),
    )
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export async function insertBlock(db: Executor, blockerId: string, blockedId: string): Promise<void> {
  await db
    .insertInto('blocks')
    .values({ blocker_id: blockerId, blocked_id: blockedId })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

export async function deleteBlock(db: Executor, blockerId: string, blockedId: string): Promise<boolean> {
  const result = await db
    .deleteFrom('blocks')
    .where('blocker_id', '=', blockerId)
    .where('blocked_id', '=', blockedId)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

export async function listBlocks(db: Executor, blockerId: string) {
  return db
    .selectFrom('blocks as b')
    .innerJoin('users as u', 'u.id', 'b.blocked_id')
    .select(['u.id', 'u.username', 'u.display_name', 'b.created_at'])
    .where('b.blocker_id', '=', blockerId)
    .orderBy('u.username')
    .execute();
}
