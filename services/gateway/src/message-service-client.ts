import { ErrorCatalogue, type ErrorBody, type ErrorCode, type RoutingInfo } from '@parley/protocol';

/** The outcome of a call to the message service, already shaped for a reply frame. */
export type ServiceResult<T> =
  | { ok: true; status: number; body: T }
  | { ok: false; status: number; code: string; message: string; retryable: boolean };

export interface LatencyObserver {
  (route: string, outcome: string, seconds: number): void;
}

/**
 * Calls the message service on behalf of a socket's user, with the user's own access
 * token: the service applies the same authorization as over REST. Node's fetch keeps
 * connections alive and pools them per origin, so sends reuse warm connections.
 */
export class MessageServiceClient {
  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs: number,
    private readonly observe: LatencyObserver,
  ) {}

  routing(token: string): Promise<ServiceResult<RoutingInfo>> {
    return this.request('GET', '/v1/me/routing', 'routing', token);
  }

  sendMessage(token: string, conversationId: string, body: { clientMessageId: string; body: string }) {
    return this.request<{ message: unknown; duplicate: boolean }>(
      'POST',
      `/v1/conversations/${conversationId}/messages`,
      'send',
      token,
      body,
    );
  }

  markRead(token: string, conversationId: string, seq: number) {
    return this.request<unknown>('POST', `/v1/conversations/${conversationId}/read`, 'read', token, { seq });
  }

  private async request<T>(
    method: string,
    path: string,
    route: string,
    token: string,
    body?: unknown,
  ): Promise<ServiceResult<T>> {
    const started = performance.now();
    let outcome = 'error';
    try {
      const response = await fetch(this.baseUrl + path, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      outcome = String(response.status);
      const parsed: unknown = await response.json().catch(() => null);
      if (response.ok) return { ok: true, status: response.status, body: parsed as T };
      const error = (parsed as ErrorBody | null)?.error;
      const code = error?.code ?? 'UNAVAILABLE';
      const known = ErrorCatalogue[code as ErrorCode];
      return {
        ok: false,
        status: response.status,
        code,
        message: error?.message ?? `message service answered ${response.status}`,
        retryable: known ? known.retry !== 'never' : response.status >= 500,
      };
    } catch (error) {
      // Timeout or connection failure: the request may or may not have been stored.
      // Sends are idempotent on the client message id, so a retry is always safe.
      outcome = (error as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable';
      return { ok: false, status: 503, code: 'UNAVAILABLE', message: 'The message service did not answer.', retryable: true };
    } finally {
      this.observe(route, outcome, (performance.now() - started) / 1000);
    }
  }
}
