import { Type, type Static } from '@sinclair/typebox';
import { Id, Timestamp } from '../primitives';
import { PublicUser } from './users';

export const ContactState = Type.Union(
  [Type.Literal('outgoing'), Type.Literal('incoming'), Type.Literal('accepted')],
  { description: '`outgoing`: you asked them; `incoming`: they asked you; `accepted`: mutual contacts.' },
);
export type ContactState = Static<typeof ContactState>;

export const Contact = Type.Object(
  { user: PublicUser, state: ContactState, since: Timestamp },
  { additionalProperties: false },
);
export type Contact = Static<typeof Contact>;

export const ContactList = Type.Object({ contacts: Type.Array(Contact) }, { additionalProperties: false });

export const ContactRequestBody = Type.Object({ userId: Id }, { additionalProperties: false });
export type ContactRequestBody = Static<typeof ContactRequestBody>;

export const Block = Type.Object({ user: PublicUser, since: Timestamp }, { additionalProperties: false });
export type Block = Static<typeof Block>;
export const BlockList = Type.Object({ blocks: Type.Array(Block) }, { additionalProperties: false });
