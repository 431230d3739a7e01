import { ErrorCatalogue, type ErrorBody, type ErrorCode, type RoutingInfo } from '@parley/protocol';
import { Pool } from 'undici';

/** The outcome of a call to the message service, already shaped for a reply frame. */
export type ServiceResult<T> =
  | { ok: true; status: number; body: T }
  | { ok: false; status: number; code: string; message: string; retryable: boolean };

export interface LatencyObserver {
  (route: string, outcome: string, seconds: number): void;
}

/**
 * Keep-alive connections to the message service (behind its own load balancer or a
 * Service, so one origin). Enough to keep its event loop and the send group commit fed
 * (services/message/src/domain/micro-batcher.ts); requests beyond them queue here, in
 * this process, instead of opening a connection each.
 */
const POOL_CONNECTIONS = 128;

/** undici's error codes for a request that ran out of time (the only reason we abort one). */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_ABORTED']);

/**
 * Calls the message service on behalf of a socket's user, with the user's own access
 * token: the service applies the same authorization as over REST. One undici Pool of
 * keep-alive connections carries every call; Node's fetch, on a busy node, spent more
 * CPU opening connections and building Request objects than the calls themselves.
 */
export class MessageServiceClient {
  private readonly pool: Pool;
  /** The base URL's path, for a service mounted below the root. */
  private readonly pathPrefix: string;

  constructor(
    baseUrl: string,
    private readonly timeoutMs: number,
    private readonly observe: LatencyObserver,
  ) {
    const url = new URL(baseUrl);
    this.pathPrefix = url.pathname.replace(/\/+$/, '');
    this.pool = new Pool(url.origin, { connections: POOL_CONNECTIONS, connectTimeout: timeoutMs });
  }

  /** Closes the pool's connections once the calls in flight are answered. */
  async close(): Promise<void> {
    await this.pool.close();
  }

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
    // One deadline for the whole call, queueing in the pool included. A timer cleared on
    // the answer, not AbortSignal.timeout: that one keeps its timer and signal alive for
    // the full timeout after every call, on a busy node megabytes of heap.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new DOMException('The message service did not answer in time.', 'TimeoutError')), this.timeoutMs);
    try {
      const response = await this.pool.request({
        method: method as 'GET' | 'POST',
        path: this.pathPrefix + path,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? null : JSON.stringify(body),
        signal: deadline.signal,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      outcome = String(response.statusCode);
      const text = await response.body.text();
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Not JSON (a proxy's error page): answered by status below.
      }
      if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true, status: response.statusCode, body: parsed as T };
      const error = (parsed as ErrorBody | null)?.error;
      const code = error?.code ?? 'UNAVAILABLE';
      const known = ErrorCatalogue[code as ErrorCode];
      return {
        ok: false,
        status: response.statusCode,
        code,
        message: error?.message ?? `message service answered ${response.statusCode}`,
        retryable: known ? known.retry !== 'never' : response.statusCode >= 500,
      };
    } catch (error) {
      // Timeout or connection failure: the request may or may not have been stored.
      // Sends are idempotent on the client message id, so a retry is always safe.
      const { name, code } = error as { name?: string; code?: string };
      outcome = name === 'TimeoutError' || name === 'AbortError' || TIMEOUT_CODES.has(code ?? '') ? 'timeout' : 'unreachable';
      return { ok: false, status: 503, code: 'UNAVAILABLE', message: 'The message service did not answer.', retryable: true };
    } finally {
      clearTimeout(timer);
      this.observe(route, outcome, (performance.now() - started) / 1000);
    }
  }
}
