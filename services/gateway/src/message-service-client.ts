import { MicroBatcher, type ItemOutcome } from '@parley/batching';
import {
  ErrorCatalogue,
  Limits,
  type ErrorBody,
  type ErrorCode,
  type RoutingInfo,
  type SendBatchItem,
  type SendBatchResponse,
  type SendMessageResponse,
} from '@parley/protocol';
import { Pool } from 'undici';

/** The outcome of a call to the message service, already shaped for a reply frame. */
export type ServiceResult<T> =
  | { ok: true; status: number; body: T }
  | { ok: false; status: number; code: string; message: string; retryable: boolean };

export interface ServiceClientObservers {
  /** Every HTTP call: route (`routing`, `send-batch`, `read`), outcome (status, `timeout`, `unreachable`), seconds. */
  observe(route: string, outcome: string, seconds: number): void;
  /** The number of sends in each send-batch call. */
  onSendBatch?(size: number): void;
}

/**
 * Keep-alive connections to the message service (behind its own load balancer or a
 * Service, so one origin). Enough for the connect-time routing calls of a connect storm
 * beside the send batches; requests beyond them queue here, in this process, instead of
 * opening a connection each.
 */
const POOL_CONNECTIONS = 128;

/**
 * Send-batch calls in flight at once. Below it every send leaves at once in a call of its
 * own; at it, sends queue and leave together in the next call, so under load Fastify's
 * and undici's cost per request is paid per batch. Each call's sends share one group
 * commit in the service.
 */
const SEND_BATCHES_IN_FLIGHT = 8;

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

  private readonly sends: MicroBatcher<SendBatchItem, ServiceResult<SendMessageResponse>>;

  constructor(
    baseUrl: string,
    private readonly timeoutMs: number,
    private readonly observers: ServiceClientObservers,
  ) {
    const url = new URL(baseUrl);
    this.pathPrefix = url.pathname.replace(/\/+$/, '');
    this.pool = new Pool(url.origin, { connections: POOL_CONNECTIONS, connectTimeout: timeoutMs });
    this.sends = new MicroBatcher((items) => this.sendBatch(items), {
      maxBatch: Limits.sendBatchMaxItems,
      maxConcurrent: SEND_BATCHES_IN_FLIGHT,
      ...(observers.onSendBatch ? { onBatch: observers.onSendBatch } : {}),
    });
  }

  /** Closes the pool's connections once the calls in flight are answered. */
  async close(): Promise<void> {
    await this.pool.close();
  }

  routing(token: string): Promise<ServiceResult<RoutingInfo>> {
    return this.request('GET', '/v1/me/routing', 'routing', token);
  }

  /** Stored by the service with the sends of other sockets that queue with it (see SEND_BATCHES_IN_FLIGHT). */
  sendMessage(token: string, conversationId: string, body: { clientMessageId: string; body: string }): Promise<ServiceResult<SendMessageResponse>> {
    return this.sends.submit({ accessToken: token, conversationId, clientMessageId: body.clientMessageId, body: body.body });
  }

  markRead(token: string, conversationId: string, seq: number) {
    return this.request<unknown>('POST', `/v1/conversations/${conversationId}/read`, 'read', token, { seq });
  }

  /** One call for the batch; a failed call (timeout, service down) is every send's answer. */
  private async sendBatch(items: readonly SendBatchItem[]): Promise<Array<ItemOutcome<ServiceResult<SendMessageResponse>>>> {
    const call = await this.request<SendBatchResponse>('POST', '/internal/v1/send-batch', 'send-batch', null, { sends: items });
    if (!call.ok) return items.map(() => ({ ok: true, value: call }));
    return call.body.results.map((result) => ({
      ok: true,
      value:
        result.response !== undefined
          ? { ok: true, status: result.status, body: result.response }
          : failure(result.status, result.error ?? null),
    }));
  }

  private async request<T>(
    method: string,
    path: string,
    route: string,
    token: string | null,
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
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
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
      return failure(response.statusCode, (parsed as ErrorBody | null)?.error ?? null);
    } catch (error) {
      // Timeout or connection failure: the request may or may not have been stored.
      // Sends are idempotent on the client message id, so a retry is always safe.
      const { name, code } = error as { name?: string; code?: string };
      outcome = name === 'TimeoutError' || name === 'AbortError' || TIMEOUT_CODES.has(code ?? '') ? 'timeout' : 'unreachable';
      return { ok: false, status: 503, code: 'UNAVAILABLE', message: 'The message service did not answer.', retryable: true };
    } finally {
      clearTimeout(timer);
      this.observers.observe(route, outcome, (performance.now() - started) / 1000);
    }
  }
}

/** A refusal from the service (an error body, or a proxy's page without one) as a ServiceResult. */
function failure(status: number, error: Pick<ErrorBody['error'], 'code' | 'message'> | null): ServiceResult<never> {
  const code = error?.code ?? 'UNAVAILABLE';
  const known = ErrorCatalogue[code as ErrorCode];
  return {
    ok: false,
    status,
    code,
    message: error?.message ?? `message service answered ${status}`,
    retryable: known ? known.retry !== 'never' : status >= 500,
  };
}
