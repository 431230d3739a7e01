/**
 * The error catalogue. Every error Parley returns carries one of these codes: over HTTP
 * in `{ error: { code, message } }` with the status given here, and over the socket in
 * `error` frames. Codes are stable; messages are for humans and may change.
 *
 * `retry` tells a client what it may do: `never` (fix the request), `after-refresh`
 * (get a new access token, then retry), `backoff` (retry later with the same
 * idempotency key; nothing was stored, or the retry is deduplicated).
 */
export const ErrorCatalogue = {
  VALIDATION_FAILED: { status: 400, retry: 'never', message: 'The request does not match its schema.' },
  MALFORMED_JSON: { status: 400, retry: 'never', message: 'The request body is not valid JSON.' },
  UNAUTHENTICATED: { status: 401, retry: 'never', message: 'A valid access token is required.' },
  TOKEN_EXPIRED: { status: 401, retry: 'after-refresh', message: 'The access token has expired.' },
  SESSION_REVOKED: { status: 401, retry: 'never', message: 'The session was revoked; log in again.' },
  INVALID_CREDENTIALS: { status: 401, retry: 'never', message: 'Wrong username or password.' },
  REFRESH_TOKEN_INVALID: { status: 401, retry: 'never', message: 'The refresh token is unknown or expired.' },
  REFRESH_TOKEN_REUSED: {
    status: 401,
    retry: 'never',
    message: 'The refresh token was already used; the session has been revoked.',
  },
  NOT_A_MEMBER: { status: 403, retry: 'never', message: 'You are not a member of this conversation.' },
  INSUFFICIENT_ROLE: { status: 403, retry: 'never', message: 'Your role in this conversation does not allow this.' },
  NOT_MESSAGE_AUTHOR: { status: 403, retry: 'never', message: 'Only the author can change this message.' },
  USER_BLOCKED: { status: 403, retry: 'never', message: 'A block between you and this user prevents this.' },
  FORBIDDEN_ORIGIN: { status: 403, retry: 'never', message: 'This Origin may not connect.' },
  NOT_FOUND: { status: 404, retry: 'never', message: 'No such route.' },
  USER_NOT_FOUND: { status: 404, retry: 'never', message: 'No such user.' },
  CONVERSATION_NOT_FOUND: { status: 404, retry: 'never', message: 'No such conversation.' },
  MESSAGE_NOT_FOUND: { status: 404, retry: 'never', message: 'No such message.' },
  CONTACT_NOT_FOUND: { status: 404, retry: 'never', message: 'No such contact or contact request.' },
  MEMBER_NOT_FOUND: { status: 404, retry: 'never', message: 'That user is not a member of this conversation.' },
  USERNAME_TAKEN: { status: 409, retry: 'never', message: 'That username is taken.' },
  MESSAGE_DELETED: { status: 409, retry: 'never', message: 'The message was deleted.' },
  NOT_A_GROUP: { status: 409, retry: 'never', message: 'Only group conversations allow this.' },
  CANNOT_TARGET_SELF: { status: 422, retry: 'never', message: 'You cannot do this to yourself.' },
  GROUP_FULL: { status: 422, retry: 'never', message: 'The group would exceed its member limit.' },
  PAYLOAD_TOO_LARGE: { status: 413, retry: 'never', message: 'The request body is too large.' },
  UNKNOWN_TYPE: { status: 400, retry: 'never', message: 'Unknown frame type.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retry: 'never', message: 'Send application/json.' },
  RATE_LIMITED: { status: 429, retry: 'backoff', message: 'Too many requests; slow down.' },
  INTERNAL: { status: 500, retry: 'backoff', message: 'Internal error.' },
  UNAVAILABLE: { status: 503, retry: 'backoff', message: 'A dependency is unavailable; try again.' },
} as const satisfies Record<string, { status: number; retry: 'never' | 'after-refresh' | 'backoff'; message: string }>;

export type ErrorCode = keyof typeof ErrorCatalogue;

/** An error with a catalogue code. Throw it anywhere; the HTTP layer renders it. */
export class ParleyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message?: string) {
    super(message ?? ErrorCatalogue[code].message);
    this.name = 'ParleyError';
    this.code = code;
    this.status = ErrorCatalogue[code].status;
  }
}

export function isParleyError(value: unknown): value is ParleyError {
  return value instanceof ParleyError;
}
