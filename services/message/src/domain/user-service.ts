import type { Database, Kysely } from '@parley/db';
import { ParleyError, type Me, type PublicUser, type RoutingInfo } from '@parley/protocol';
import * as conversations from '../repositories/conversations-repository';
import * as users from '../repositories/users-repository';
import { toMe, toPublicUser } from './mappers';

export class UserService {
  constructor(private readonly db: Kysely<Database>) {}

  async me(userId: string): Promise<Me> {
    const user = await users.findUserById(this.db, userId);
    if (!user) throw new ParleyError('UNAUTHENTICATED');
    return toMe(user);
  }

  async updateDisplayName(userId: string, displayName: string): Promise<Me> {
    return toMe(await users.updateDisplayName(this.db, userId, displayName));
  }

  async findByUsername(username: string): Promise<PublicUser> {
    const user = await users.findUserByUsername(this.db, username);
    if (!user) throw new ParleyError('USER_NOT_FOUND');
    return toPublicUser(user);
  }

  /** One query on connect: everything a gateway subscribes to for this user. */
  async routing(userId: string): Promise<RoutingInfo> {
    const rows = await conversations.findRouting(this.db, userId);
    const directPeerIds = rows.flatMap((row) =>
      row.direct_key ? row.direct_key.split(':').filter((id) => id !== userId) : [],
    );
    const joinedSeqs = Object.fromEntries(rows.filter((row) => row.joined_seq > 0).map((row) => [row.id, row.joined_seq]));
    return { conversationIds: rows.map((row) => row.id), directPeerIds, joinedSeqs };
  }

  async findById(userId: string): Promise<PublicUser> {
    const [user] = await users.findPublicUsers(this.db, [userId]);
    if (!user) throw new ParleyError('USER_NOT_FOUND');
    return toPublicUser(user);
  }
}
