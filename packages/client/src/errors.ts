import { ErrorCatalogue, type ErrorCode } from '@parley/protocol';

/** What a caller may do after an error, as in the server's error catalogue (docs/errors.md). */
export type RetryPolicy = 'never' | 'after-refresh' | 'backoff';

/**
 * Codes the SDK raises itself, next to the server's catalogue codes:
 * - `NETWORK_ERROR`: the request or socket failed before an answer (retryable);
 * - `TIMEOUT`: no answer in time (retryable; sends stay idempotent);
 * - `DISCONNECTED`: the socket closed while the request waited (retryable);
 * - `BAD_RESPONSE`: the server answered with something that is not the protocol;
 * - `NOT_LOGGED_IN`: no session: call `login` or `register` first;
 * - `CLIENT_CLOSED`: `close()` was called while the request waited;
 * - `CONNECTION_CLOSED`: the server closed the socket for good (close code in `closeCode`);
 * - `LISTENER_FAILED`: one of your event listeners threw (the error is in `cause`);
 * - `STORE_FAILED`: the sync-state store rejected a read or write.
 */
export type ClientErrorCode =
  | 'NETWORK_ERROR'
  | 'TIMEOUT'
  | 'DISCONNECTED'
  | 'BAD_RESPONSE'
  | 'NOT_LOGGED_IN'
  | 'CLIENT_CLOSED'
  | 'CONNECTION_CLOSED'
  | 'LISTENER_FAILED'
  | 'STORE_FAILED';

const CLIENT_RETRY: Record<ClientErrorCode, RetryPolicy> = {
  NETWORK_ERROR: 'backoff',
  TIMEOUT: 'backoff',
  DISCONNECTED: 'backoff',
  BAD_RESPONSE: 'backoff',
  NOT_LOGGED_IN: 'never',
  CLIENT_CLOSED: 'never',
  CONNECTION_CLOSED: 'never',
  LISTENER_FAILED: 'never',
  STORE_FAILED: 'never',
};

/** Codes after which only a new login helps: the session is gone. */
const LOGIN_REQUIRED = new Set<string>([
  'NOT_LOGGED_IN',
  'SESSION_REVOKED',
  'REFRESH_TOKEN_INVALID',
  'REFRESH_TOKEN_REUSED',
]);

/** Extra facts an error may carry. */
export interface ParleyClientErrorInit {
  /** HTTP status of a REST failure. */
  status?: number;
  /** Overrides the policy derived from the code (e.g. an `error` frame's `retryable: false`). */
  retry?: RetryPolicy;
  /** The server's request id (`x-request-id`), to quote in a bug report. */
  requestId?: string;
  /** `VALIDATION_FAILED` details from the server. */
  details?: Array<{ path: string; message: string }>;
  /** Milliseconds the server asked to wait (`retry-after`). */
  retryAfterMs?: number;
  /** The WebSocket close code, for `CONNECTION_CLOSED`. */
  closeCode?: number;
  /** The client message id of a send that failed, so it can be retried later without a duplicate. */
  clientMessageId?: string;
  cause?: unknown;
}

/**
 * Every error the SDK reports, from the server (REST body or socket `error` frame) or
 * from the SDK itself. `code` is a catalogue code (docs/errors.md) or a
 * {@link ClientErrorCode}; an SDK older than the server may see codes it does not know,
 * so `code` is typed as a string too.
 */
export class ParleyClientError extends Error {
  readonly code: ErrorCode | ClientErrorCode | (string & {});
  readonly retry: RetryPolicy;
  readonly status?: number;
  readonly requestId?: string;
  readonly details?: Array<{ path: string; message: string }>;
  readonly retryAfterMs?: number;
  readonly closeCode?: number;
  readonly clientMessageId?: string;

  constructor(code: string, message: string, init: ParleyClientErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'ParleyClientError';
    this.code = code;
    this.retry = init.retry ?? retryPolicyOf(code, init.status);
    if (init.status !== undefined) this.status = init.status;
    if (init.requestId !== undefined) this.requestId = init.requestId;
    if (init.details !== undefined) this.details = init.details;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    if (init.closeCode !== undefined) this.closeCode = init.closeCode;
    if (init.clientMessageId !== undefined) this.clientMessageId = init.clientMessageId;
  }

  /** True when the same request may be tried again (after a refresh or a pause). */
  get retryable(): boolean {
    return this.retry !== 'never';
  }

  /** True when the session is gone and only `login` helps. */
  get loginRequired(): boolean {
    return LOGIN_REQUIRED.has(this.code);
  }
}

/** Narrows an unknown value to a {@link ParleyClientError}. */
export function isParleyClientError(value: unknown): value is ParleyClientError {
  return value instanceof ParleyClientError;
}

/** The retry policy of a code: the catalogue's for server codes, the SDK's own for client codes, else by HTTP status. */
export function retryPolicyOf(code: string, status?: number): RetryPolicy {
  if (Object.prototype.hasOwnProperty.call(ErrorCatalogue, code)) return ErrorCatalogue[code as ErrorCode].retry;
  if (Object.prototype.hasOwnProperty.call(CLIENT_RETRY, code)) return CLIENT_RETRY[code as ClientErrorCode];
  if (status !== undefined && (status >= 500 || status === 429 || status === 408)) return 'backoff';
  return 'never';
}

/** True when `error` means the session is gone (see {@link ParleyClientError.loginRequired}). */
export function isLoginRequired(error: unknown): boolean {
  return isParleyClientError(error) && error.loginRequired;
}

/** Wraps anything thrown into a {@link ParleyClientError}, keeping the original as `cause`. */
export function toClientError(error: unknown, fallbackCode: ClientErrorCode = 'NETWORK_ERROR'): ParleyClientError {
  if (isParleyClientError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ParleyClientError(fallbackCode, message, { cause: error });
}
