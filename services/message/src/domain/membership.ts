import { ParleyError } from '@parley/protocol';
import type { Membership } from '../repositories/conversations-repository';

export type ActiveMembership = Membership & { member: NonNullable<Membership['member']> };

/** Returns the membership, or throws the error that explains why there is none. */
export function requireMember(membership: Membership | undefined): ActiveMembership {
  if (!membership) throw new ParleyError('CONVERSATION_NOT_FOUND');
  if (!membership.member) throw new ParleyError('NOT_A_MEMBER');
  return membership as ActiveMembership;
}
