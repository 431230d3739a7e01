import { Type, type Static } from '@sinclair/typebox';
import { Limits } from '../limits';
import { Id, PageLimit, SafeText, Seq, Timestamp } from '../primitives';
import { Message } from './messages';
import { PublicUser } from './users';

export const Role = Type.Union([Type.Literal('owner'), Type.Literal('admin'), Type.Literal('member')]);
export type Role = Static<typeof Role>;

export const ConversationKind = Type.Union([Type.Literal('direct'), Type.Literal('group')]);
export type ConversationKind = Static<typeof ConversationKind>;

export const ConversationSummary = Type.Object(
  {
    id: Id,
    kind: ConversationKind,
    title: Type.Union([Type.String(), Type.Null()]),
    role: Role,
    memberCount: Type.Integer({ minimum: 0 }),
    peer: Type.Union([PublicUser, Type.Null()], { description: 'The other member of a direct conversation.' }),
    lastSeq: Seq,
    lastRev: Seq,
    lastReadSeq: Seq,
    joinedSeq: Type.Integer({
      minimum: 0,
      description: 'Messages with seq above this are visible to me (0 unless I joined late or rejoined).',
    }),
    unreadCount: Type.Integer({ minimum: 0, description: '`lastSeq - lastReadSeq`; deleted messages still count.' }),
    lastMessage: Type.Union([Message, Type.Null()]),
    lastActivityAt: Timestamp,
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
export type ConversationSummary = Static<typeof ConversationSummary>;

export const ConversationParams = Type.Object({ conversationId: Id }, { additionalProperties: false });
export type ConversationParams = Static<typeof ConversationParams>;

export const MemberParams = Type.Object({ conversationId: Id, userId: Id }, { additionalProperties: false });
export type MemberParams = Static<typeof MemberParams>;

export const CreateDirectBody = Type.Object({ userId: Id }, { additionalProperties: false });
export type CreateDirectBody = Static<typeof CreateDirectBody>;

export const CreateGroupBody = Type.Object(
  {
    title: SafeText({ minLength: 1, maxLength: Limits.titleMaxLength }),
    memberIds: Type.Array(Id, { maxItems: Limits.membersPerRequestMax, uniqueItems: true }),
  },
  { additionalProperties: false },
);
export type CreateGroupBody = Static<typeof CreateGroupBody>;

export const AddMembersBody = Type.Object(
  {
    userIds: Type.Array(Id, { minItems: 1, maxItems: Limits.membersPerRequestMax, uniqueItems: true }),
    role: Type.Optional(Type.Union([Type.Literal('admin'), Type.Literal('member')], { default: 'member' })),
  },
  { additionalProperties: false },
);
export type AddMembersBody = Static<typeof AddMembersBody>;

export const ChangeRoleBody = Type.Object(
  { role: Type.Union([Type.Literal('admin'), Type.Literal('member')]) },
  { additionalProperties: false },
);
export type ChangeRoleBody = Static<typeof ChangeRoleBody>;

export const Member = Type.Object(
  { user: PublicUser, role: Role, joinedAt: Timestamp, lastReadSeq: Seq },
  { additionalProperties: false },
);
export type Member = Static<typeof Member>;

export const MemberList = Type.Object({ members: Type.Array(Member) }, { additionalProperties: false });

export const ConversationListQuery = Type.Object(
  { limit: PageLimit, cursor: Type.Optional(Type.String({ maxLength: 200 })) },
  { additionalProperties: false },
);
export type ConversationListQuery = Static<typeof ConversationListQuery>;

export const ConversationPage = Type.Object(
  {
    conversations: Type.Array(ConversationSummary, { description: 'Most recent activity first.' }),
    nextCursor: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type ConversationPage = Static<typeof ConversationPage>;
