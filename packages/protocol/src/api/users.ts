import { Type, type Static } from '@sinclair/typebox';
import { DisplayName, Id, Timestamp, Username } from '../primitives';

export const PublicUser = Type.Object(
  { id: Id, username: Type.String(), displayName: Type.String() },
  { additionalProperties: false },
);
export type PublicUser = Static<typeof PublicUser>;

export const Me = Type.Object(
  { id: Id, username: Type.String(), displayName: Type.String(), createdAt: Timestamp },
  { additionalProperties: false },
);
export type Me = Static<typeof Me>;

export const UpdateMeBody = Type.Object({ displayName: DisplayName }, { additionalProperties: false });
export type UpdateMeBody = Static<typeof UpdateMeBody>;

export const UsernameParams = Type.Object({ username: Username }, { additionalProperties: false });
export type UsernameParams = Static<typeof UsernameParams>;

export const UserIdParams = Type.Object({ userId: Id }, { additionalProperties: false });
export type UserIdParams = Static<typeof UserIdParams>;

/** What a gateway needs to route one user's events: the conversations and direct peers to listen to. */
export const RoutingInfo = Type.Object(
  {
    conversationIds: Type.Array(Id),
    directPeerIds: Type.Array(Id, { description: 'The other members of my direct conversations (presence).' }),
    joinedSeqs: Type.Record(Type.String(), Type.Integer({ minimum: 1 }), {
      description: 'For conversations I joined late: my joinedSeq (I may not see messages up to it).',
    }),
  },
  { additionalProperties: false },
);
export type RoutingInfo = Static<typeof RoutingInfo>;
