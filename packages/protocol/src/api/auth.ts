import { Type, type Static } from '@sinclair/typebox';
import { DisplayName, Id, Password, SafeText, Timestamp, Username } from '../primitives';
import { Me } from './users';

export const RegisterBody = Type.Object(
  { username: Username, password: Password, displayName: Type.Optional(DisplayName) },
  { additionalProperties: false },
);
export type RegisterBody = Static<typeof RegisterBody>;

export const LoginBody = Type.Object(
  {
    username: Username,
    password: Password,
    deviceName: Type.Optional(SafeText({ minLength: 1, maxLength: 64, description: 'Shown in session lists.' })),
  },
  { additionalProperties: false },
);
export type LoginBody = Static<typeof LoginBody>;

export const RefreshBody = Type.Object(
  { refreshToken: Type.String({ minLength: 1, maxLength: 512 }) },
  { additionalProperties: false },
);
export type RefreshBody = Static<typeof RefreshBody>;

export const Tokens = Type.Object(
  {
    tokenType: Type.Literal('Bearer'),
    accessToken: Type.String({ description: 'EdDSA-signed JWT; send as `Authorization: Bearer <token>`.' }),
    accessTokenExpiresAt: Timestamp,
    refreshToken: Type.String({ description: 'Single use: every refresh returns a new one.' }),
    refreshTokenExpiresAt: Timestamp,
    sessionId: Id,
  },
  { additionalProperties: false },
);
export type Tokens = Static<typeof Tokens>;

export const AuthResponse = Type.Object({ user: Me, tokens: Tokens }, { additionalProperties: false });
export type AuthResponse = Static<typeof AuthResponse>;
