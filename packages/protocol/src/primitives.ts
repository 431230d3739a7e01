import { Type, type Static } from '@sinclair/typebox';
import { Limits } from './limits';

/**
 * Text that PostgreSQL can store and give back byte for byte: any Unicode except NUL
 * (which `text` rejects) and unpaired surrogates (which UTF-8 cannot encode, so they
 * would come back as U+FFFD). Written to mean the same with or without the regex `u`
 * flag (Ajv sets it, TypeBox does not): a surrogate is allowed only as a valid pair.
 */
export const SAFE_TEXT_PATTERN = '^(?:[^\\u0000\\uD800-\\uDFFF]|[\\uD800-\\uDBFF][\\uDC00-\\uDFFF])*$';

export const SafeText = (options: { minLength?: number; maxLength: number; description?: string }) =>
  Type.String({ ...options, pattern: SAFE_TEXT_PATTERN });

export const Id = Type.String({ format: 'uuid', description: 'A UUID.' });
export type Id = Static<typeof Id>;

/** Sequence numbers and revisions stay within JavaScript's exact integers (and PostgreSQL's bigint). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

export const Seq = Type.Integer({ minimum: 0, maximum: MAX_SEQ, description: 'Per-conversation message sequence number.' });

/** A seq in a URL path: plain decimal digits only (no `0x1`, `1e0` or spaces). */
export const SeqPathParam = Type.String({ pattern: '^[1-9][0-9]{0,15}$', description: 'A message seq (decimal).' });

export const Timestamp = Type.String({ format: 'date-time' });

/** Usernames are ASCII on purpose: no look-alike characters, no case tricks in URLs. */
export const Username = Type.String({
  minLength: Limits.usernameMinLength,
  maxLength: Limits.usernameMaxLength,
  pattern: '^[A-Za-z0-9_.-]+$',
  description: 'ASCII letters, digits, `_`, `.` and `-`; unique regardless of case.',
});

export const DisplayName = SafeText({ minLength: 1, maxLength: Limits.displayNameMaxLength });

export const Password = Type.String({
  minLength: Limits.passwordMinLength,
  maxLength: Limits.passwordMaxLength,
  pattern: SAFE_TEXT_PATTERN,
});

export const ClientMessageId = Type.String({
  minLength: 1,
  maxLength: Limits.clientMessageIdMaxLength,
  pattern: '^[A-Za-z0-9_:.-]+$',
  description: 'Chosen by the client, unique per sender and conversation; a UUID is a good choice.',
});

export const MessageBody = SafeText({ minLength: 1, maxLength: Limits.messageBodyMaxLength });

export const PageLimit = Type.Integer({ minimum: 1, maximum: Limits.pageSizeMax, default: Limits.pageSizeDefault });

/** The single error body every failing HTTP call returns. */
export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine-readable code, see docs/errors.md.' }),
      message: Type.String(),
      requestId: Type.Optional(Type.String()),
      details: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
    }),
  },
  { additionalProperties: false },
);
export type ErrorBody = Static<typeof ErrorBody>;
