import type { Database, Kysely } from '@parley/db';
import { sql } from '@parley/db';
import { ParleyError, type Block, type Contact, type ContactState } from '@parley/protocol';
import * as contacts from '../repositories/contacts-repository';
import * as users from '../repositories/users-repository';
import type { EventPublisher } from './event-publisher';
import { toPublicUser } from './mappers';
import { pairKey } from './pair-key';

type Change = ContactState | 'removed';

/**
 * Contact requests, acceptance and blocks. Every change to a pair runs under an
 * advisory lock on that pair, so two users asking each other at once end up accepted
 * rather than with crossed requests.
 */
export class ContactService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly publisher: EventPublisher,
  ) {}

  async list(userId: string): Promise<Contact[]> {
    const rows = await contacts.listContacts(this.db, userId);
    return rows.map((row) => ({ user: toPublicUser(row), state: row.state, since: row.updated_at.toISOString() }));
  }

  async listBlocks(userId: string): Promise<Block[]> {
    const rows = await contacts.listBlocks(this.db, userId);
    return rows.map((row) => ({ user: toPublicUser(row), since: row.created_at.toISOString() }));
  }

  /** Asks `peerId` to be a contact; if they had already asked, both become contacts. */
  async request(userId: string, peerId: string): Promise<Contact> {
    await this.requireOtherUser(userId, peerId);
    const state = await this.withPairLock(userId, peerId, async (trx) => {
      if (await contacts.isBlockedEitherWay(trx, userId, peerId)) throw new ParleyError('USER_BLOCKED');
      const current = await contacts.findContactState(trx, userId, peerId);
      if (current === 'accepted' || current === 'outgoing') return { mine: current, changed: false };
      if (current === 'incoming') {
        await contacts.upsertContactPair(trx, { id: userId, state: 'accepted' }, { id: peerId, state: 'accepted' });
        return { mine: 'accepted' as const, changed: true };
      }
      await contacts.upsertContactPair(trx, { id: userId, state: 'outgoing' }, { id: peerId, state: 'incoming' });
      return { mine: 'outgoing' as const, changed: true };
    });
    if (state.changed) this.announce(userId, peerId, state.mine);
    return this.contactOf(userId, peerId);
  }

  async accept(userId: string, peerId: string): Promise<Contact> {
    await this.withPairLock(userId, peerId, async (trx) => {
      if ((await contacts.findContactState(trx, userId, peerId)) !== 'incoming') {
        throw new ParleyError('CONTACT_NOT_FOUND', 'There is no contact request from this user.');
      }
      await contacts.upsertContactPair(trx, { id: userId, state: 'accepted' }, { id: peerId, state: 'accepted' });
    });
    this.announce(userId, peerId, 'accepted');
    return this.contactOf(userId, peerId);
  }

  async decline(userId: string, peerId: string): Promise<void> {
    await this.withPairLock(userId, peerId, async (trx) => {
      if ((await contacts.findContactState(trx, userId, peerId)) !== 'incoming') {
        throw new ParleyError('CONTACT_NOT_FOUND', 'There is no contact request from this user.');
      }
      await contacts.deleteContactPair(trx, userId, peerId);
    });
    this.announce(userId, peerId, 'removed');
  }

  /** Removes a contact, or withdraws a request either way. */
  async remove(userId: string, peerId: string): Promise<void> {
    const removed = await this.withPairLock(userId, peerId, (trx) => contacts.deleteContactPair(trx, userId, peerId));
    if (!removed) throw new ParleyError('CONTACT_NOT_FOUND');
    this.announce(userId, peerId, 'removed');
  }

  /** Blocks a user: ends any contact relation; they can no longer message you or ask again. */
  async block(userId: string, peerId: string): Promise<void> {
    await this.requireOtherUser(userId, peerId);
    const hadContact = await this.withPairLock(userId, peerId, async (trx) => {
      await contacts.insertBlock(trx, userId, peerId);
      return contacts.deleteContactPair(trx, userId, peerId);
    });
    if (hadContact) this.announce(userId, peerId, 'removed');
  }

  async unblock(userId: string, peerId: string): Promise<void> {
    if (!(await contacts.deleteBlock(this.db, userId, peerId))) {
      throw new ParleyError('USER_NOT_FOUND', 'This user is not blocked.');
    }
  }

  private async requireOtherUser(userId: string, peerId: string): Promise<void> {
    if (userId === peerId) throw new ParleyError('CANNOT_TARGET_SELF');
    if ((await users.findPublicUsers(this.db, [peerId])).length === 0) throw new ParleyError('USER_NOT_FOUND');
  }

  private withPairLock<T>(a: string, b: string, work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtext(${`contacts:${pairKey(a, b)}`}))`.execute(trx);
      return work(trx);
    });
  }

  private async contactOf(userId: string, peerId: string): Promise<Contact> {
    const [row] = await contacts.listContacts(this.db, userId, peerId);
    if (!row) throw new ParleyError('CONTACT_NOT_FOUND');
    return { user: toPublicUser(row), state: row.state, since: row.updated_at.toISOString() };
  }

  /** Tells both users' devices; each side hears the state as it sees it. */
  private announce(userId: string, peerId: string, mine: Change): void {
    const theirs: Change = mine === 'outgoing' ? 'incoming' : mine === 'incoming' ? 'outgoing' : mine;
    this.publisher.publish({ v: 1, type: 'contact.changed', userId: peerId, state: mine }, { userIds: [userId] });
    this.publisher.publish({ v: 1, type: 'contact.changed', userId, state: theirs }, { userIds: [peerId] });
  }
}
