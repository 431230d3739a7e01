import type { Database, Kysely, RoleColumn } from '@parley/db';
import {
  Limits,
  ParleyError,
  type AddMembersBody,
  type ConversationPage,
  type ConversationSummary,
  type CreateGroupBody,
  type Member,
} from '@parley/protocol';
import * as contacts from '../repositories/contacts-repository';
import * as conversations from '../repositories/conversations-repository';
import type { Membership } from '../repositories/conversations-repository';
import * as users from '../repositories/users-repository';
import { decodeListCursor, encodeListCursor } from './list-cursor';
import { requireMember } from './membership';
import type { EventPublisher } from './event-publisher';
import { toConversationSummary, toPublicUser } from './mappers';
import { pairKey } from './pair-key';

function requireGroup(membership: Membership): void {
  if (membership.kind !== 'group') throw new ParleyError('NOT_A_GROUP');
}

/** Who may add, remove or re-role whom. Owners manage everyone; admins manage members. */
function canManage(actor: RoleColumn, target: RoleColumn): boolean {
  return actor === 'owner' || (actor === 'admin' && target === 'member');
}

export class ConversationService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly publisher: EventPublisher,
  ) {}

  /** Returns the direct conversation with `peerId`, creating it on first use. */
  async openDirect(userId: string, peerId: string): Promise<{ conversation: ConversationSummary; created: boolean }> {
    if (userId === peerId) throw new ParleyError('CANNOT_TARGET_SELF');
    if ((await users.findPublicUsers(this.db, [peerId])).length === 0) throw new ParleyError('USER_NOT_FOUND');
    if (await contacts.isBlockedEitherWay(this.db, userId, peerId)) throw new ParleyError('USER_BLOCKED');
    const directKey = pairKey(userId, peerId);
    const { id, created } = await this.db.transaction().execute(async (trx) => {
      const newId = await conversations.insertConversation(trx, {
        kind: 'direct',
        title: null,
        directKey,
        createdBy: userId,
      });
      if (newId === undefined) {
        const existing = await conversations.findConversationIdByDirectKey(trx, directKey);
        if (!existing) throw new Error('direct conversation vanished during creation');
        return { id: existing, created: false };
      }
      await conversations.insertMembers(
        trx,
        newId,
        [
          { userId, role: 'member' },
          { userId: peerId, role: 'member' },
        ],
        0,
      );
      return { id: newId, created: true };
    });
    if (created) {
      // Each side learns who its peer is, so its gateway can relay the peer's presence.
      for (const [member, peer] of [
        [userId, peerId],
        [peerId, userId],
      ] as const) {
        this.publisher.publish(
          { v: 1, type: 'membership.added', conversationId: id, directPeerId: peer },
          { userIds: [member] },
        );
      }
    }
    return { conversation: await this.get(userId, id), created };
  }

  async createGroup(userId: string, body: CreateGroupBody): Promise<ConversationSummary> {
    const others = body.memberIds.filter((id) => id !== userId);
    if (others.length + 1 > Limits.groupMaxMembers) throw new ParleyError('GROUP_FULL');
    await this.requireUsersExist(others);
    await this.refuseBlocked(userId, others);
    const id = await this.db.transaction().execute(async (trx) => {
      const newId = await conversations.insertConversation(trx, {
        kind: 'group',
        title: body.title,
        directKey: null,
        createdBy: userId,
      });
      if (newId === undefined) throw new Error('group insert returned no id');
      await conversations.insertMembers(
        trx,
        newId,
        [{ userId, role: 'owner' }, ...others.map((other) => ({ userId: other, role: 'member' as const }))],
        0,
      );
      return newId;
    });
    this.announceJoined(id, [userId, ...others]);
    return this.get(userId, id);
  }

  async list(userId: string, page: { limit: number; cursor?: string }): Promise<ConversationPage> {
    const after = page.cursor === undefined ? undefined : decodeListCursor(page.cursor);
    const rows = await conversations.findSummaries(this.db, userId, { after, limit: page.limit + 1 });
    const pageRows = rows.slice(0, page.limit);
    const last = pageRows[pageRows.length - 1];
    return {
      conversations: pageRows.map(toConversationSummary),
      nextCursor:
        rows.length > page.limit && last ? encodeListCursor({ activityMicros: last.activity_micros, id: last.id }) : null,
    };
  }

  async get(userId: string, conversationId: string): Promise<ConversationSummary> {
    const [row] = await conversations.findSummaries(this.db, userId, { conversationIds: [conversationId] });
    if (row) return toConversationSummary(row);
    requireMember(await conversations.findMembership(this.db, conversationId, userId, { lock: false }));
    throw new ParleyError('NOT_A_MEMBER');
  }

  async members(userId: string, conversationId: string): Promise<Member[]> {
    requireMember(await conversations.findMembership(this.db, conversationId, userId, { lock: false }));
    const rows = await conversations.listMembers(this.db, conversationId);
    return rows.map((row) => ({
      user: toPublicUser(row),
      role: row.role,
      joinedAt: row.joined_at.toISOString(),
      lastReadSeq: row.last_read_seq,
    }));
  }

  async addMembers(userId: string, conversationId: string, body: AddMembersBody): Promise<Member[]> {
    const role = body.role ?? 'member';
    await this.requireUsersExist(body.userIds);
    await this.refuseBlocked(userId, body.userIds);
    const { ids: added, joinedSeq } = await this.db.transaction().execute(async (trx) => {
      const membership = requireMember(await conversations.findMembership(trx, conversationId, userId, { lock: true }));
      requireGroup(membership);
      if (!canManage(membership.member.role, role)) throw new ParleyError('INSUFFICIENT_ROLE');
      if (membership.memberCount + body.userIds.length > Limits.groupMaxMembers) throw new ParleyError('GROUP_FULL');
      const ids = await conversations.insertMembers(
        trx,
        conversationId,
        body.userIds.map((id) => ({ userId: id, role })),
        membership.lastSeq,
      );
      return { ids, joinedSeq: membership.lastSeq };
    });
    if (added.length > 0) {
      this.publisher.publish(
        { v: 1, type: 'member.added', conversationId, userIds: added, role, byUserId: userId },
        { conversationId },
      );
      this.announceJoined(conversationId, added, joinedSeq);
    }
    return this.members(userId, conversationId);
  }

  /** Removes another member. Removing yourself is leaving. */
  async removeMember(userId: string, conversationId: string, targetId: string): Promise<void> {
    if (targetId === userId) return this.leave(userId, conversationId);
    await this.db.transaction().execute(async (trx) => {
      const membership = requireMember(await conversations.findMembership(trx, conversationId, userId, { lock: true }));
      requireGroup(membership);
      const targetRole = await conversations.findMemberRole(trx, conversationId, targetId);
      if (!targetRole) throw new ParleyError('MEMBER_NOT_FOUND');
      if (!canManage(membership.member.role, targetRole)) throw new ParleyError('INSUFFICIENT_ROLE');
      await conversations.deleteMember(trx, conversationId, targetId);
    });
    this.announceRemoved(conversationId, targetId, userId);
  }

  /** Leaves a group. An owner who leaves hands ownership to the longest-standing admin, else member. */
  async leave(userId: string, conversationId: string): Promise<void> {
    const successor = await this.db.transaction().execute(async (trx) => {
      const membership = requireMember(await conversations.findMembership(trx, conversationId, userId, { lock: true }));
      requireGroup(membership);
      await conversations.deleteMember(trx, conversationId, userId);
      if (membership.member.role !== 'owner') return undefined;
      const next = await conversations.findSuccessorOwner(trx, conversationId);
      if (next) await conversations.updateMemberRole(trx, conversationId, next, 'owner');
      return next;
    });
    this.announceRemoved(conversationId, userId, userId);
    if (successor) {
      this.publisher.publish(
        { v: 1, type: 'member.role_changed', conversationId, userId: successor, role: 'owner' },
        { conversationId },
      );
    }
  }

  async changeRole(userId: string, conversationId: string, targetId: string, role: 'admin' | 'member') {
    if (targetId === userId) throw new ParleyError('CANNOT_TARGET_SELF');
    await this.db.transaction().execute(async (trx) => {
      const membership = requireMember(await conversations.findMembership(trx, conversationId, userId, { lock: true }));
      requireGroup(membership);
      if (membership.member.role !== 'owner') throw new ParleyError('INSUFFICIENT_ROLE');
      if (!(await conversations.updateMemberRole(trx, conversationId, targetId, role))) {
        throw new ParleyError('MEMBER_NOT_FOUND');
      }
    });
    this.publisher.publish({ v: 1, type: 'member.role_changed', conversationId, userId: targetId, role }, { conversationId });
  }

  /** Nobody can pull someone into a group across a block, either way. */
  private async refuseBlocked(userId: string, ids: readonly string[]): Promise<void> {
    if (await contacts.anyBlockBetween(this.db, userId, ids)) {
      throw new ParleyError('USER_BLOCKED', 'A block between you and one of these users prevents this.');
    }
  }

  private async requireUsersExist(ids: readonly string[]): Promise<void> {
    const found = await users.findPublicUsers(this.db, ids);
    if (found.length !== new Set(ids).size) throw new ParleyError('USER_NOT_FOUND', 'One or more users do not exist.');
  }

  /** New members' devices learn of the conversation (and their gateways subscribe to it). */
  private announceJoined(conversationId: string, userIds: readonly string[], joinedSeq = 0): void {
    this.publisher.publish(
      { v: 1, type: 'membership.added', conversationId, ...(joinedSeq > 0 ? { joinedSeq } : {}) },
      { userIds },
    );
  }

  private announceRemoved(conversationId: string, targetId: string, byUserId: string): void {
    this.publisher.publish(
      { v: 1, type: 'member.removed', conversationId, userId: targetId, byUserId },
      { conversationId },
    );
    this.publisher.publish({ v: 1, type: 'membership.removed', conversationId }, { userIds: [targetId] });
  }
}
