import { isParleyClientError } from '@parley/client';

/** The SDK's own failures carry messages for developers (method, path, timings): what they mean to a user. */
const CLIENT_FAILURES: Readonly<Record<string, string>> = {
  NETWORK_ERROR: 'The server cannot be reached.',
  TIMEOUT: 'The server did not answer in time.',
  DISCONNECTED: 'The connection dropped before the server answered.',
  BAD_RESPONSE: 'The server gave an answer the app does not understand.',
};

/**
 * A failure as the user reads it: the server's message (the SDK's in plain words), what
 * the server said about waiting or about the field at fault, and the code from
 * docs/errors.md, the stable part to quote when asking for help.
 */
export function describeError(error: unknown): string {
  if (!isParleyClientError(error)) return error instanceof Error ? error.message : String(error);
  let text = CLIENT_FAILURES[error.code] ?? error.message;
  const detail = error.details?.[0];
  if (detail) text += ` (${detail.path ? `${detail.path}: ` : ''}${detail.message})`;
  if (error.retryAfterMs) text += ` Try again in ${Math.ceil(error.retryAfterMs / 1000)} s.`;
  return `${text} [${error.code}]`;
}
