import { ParleyClientError, toClientError } from './errors';
import { abortAfter, type FetchLike } from './platform';

/** One JSON call. */
export interface HttpRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** Path under the base URL, starting with `/`, e.g. `/v1/me`. */
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  /** Access token for `Authorization: Bearer`. */
  accessToken?: string;
  /** This call's time limit, instead of the client's default. */
  timeoutMs?: number;
}

/** Options of {@link HttpClient}. */
export interface HttpClientOptions {
  /** Base URL of the API, e.g. `https://chat.example.com` (the `/v1/...` paths are appended). */
  baseUrl: string;
  fetch: FetchLike;
  /** Abort a call after this long (when the platform has `AbortController`). */
  timeoutMs: number;
  /** Wall clock; replaceable in tests. */
  now?: () => number;
}

/**
 * JSON over `fetch`: builds the URL, sends the body, turns every failure into a
 * {@link ParleyClientError} (the server's `{error: {code, message}}` body, a network
 * failure, a timeout) and keeps an estimate of the server's clock from the `Date`
 * header, so token expiry is judged by the server's time rather than a wrong device clock.
 */
export class HttpClient {
  private readonly baseUrl: string;
  private readonly now: () => number;
  private clockOffsetMs = 0;

  constructor(private readonly options: HttpClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.now = options.now ?? Date.now;
  }

  /** The server's current time as best known (local time corrected by the last `Date` header). */
  serverNow(): number {
    return this.now() + this.clockOffsetMs;
  }

  /** Sends one call and returns its parsed JSON body (`undefined` for 204). */
  async request<T>(request: HttpRequest): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (request.body !== undefined) headers['content-type'] = 'application/json';
    if (request.accessToken !== undefined) headers['authorization'] = `Bearer ${request.accessToken}`;
    const timeoutMs = request.timeoutMs ?? this.options.timeoutMs;
    const abort = abortAfter(timeoutMs);
    const init = {
      method: request.method,
      headers,
      ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
      ...(abort.signal === undefined ? {} : { signal: abort.signal }),
    };
    const sentAt = this.now();
    let status: number;
    let text: string;
    let header: (name: string) => string | null;
    try {
      const response = await this.options.fetch(this.url(request), init);
      status = response.status;
      header = (name) => response.headers.get(name);
      text = await response.text();
    } catch (error) {
      const aborted = error instanceof Error && error.name === 'AbortError';
      throw aborted
        ? new ParleyClientError('TIMEOUT', `${request.method} ${request.path} got no answer in ${timeoutMs} ms.`)
        : toClientError(error, 'NETWORK_ERROR');
    } finally {
      abort.cancel();
    }
    this.observeClock(header('date'), sentAt);
    if (status >= 200 && status < 300) {
      if (status === 204 || text === '') return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new ParleyClientError('BAD_RESPONSE', `${request.method} ${request.path} answered ${status} without JSON.`, {
          status,
        });
      }
    }
    throw this.errorOf(request, status, text, header);
  }

  private url(request: HttpRequest): string {
    const query = Object.entries(request.query ?? {})
      .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
      .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`)
      .join('&');
    return `${this.baseUrl}${request.path}${query ? `?${query}` : ''}`;
  }

  private errorOf(
    request: HttpRequest,
    status: number,
    text: string,
    header: (name: string) => string | null,
  ): ParleyClientError {
    let body: { error?: { code?: unknown; message?: unknown; requestId?: unknown; details?: unknown } } | undefined;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = undefined;
    }
    const error = body?.error;
    const retryAfter = Number(header('retry-after'));
    const requestId = typeof error?.requestId === 'string' ? error.requestId : (header('x-request-id') ?? undefined);
    const init = {
      status,
      ...(requestId === undefined ? {} : { requestId }),
      ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
      ...(Array.isArray(error?.details) ? { details: error.details as Array<{ path: string; message: string }> } : {}),
    };
    if (typeof error?.code === 'string') {
      const message = typeof error.message === 'string' ? error.message : error.code;
      return new ParleyClientError(error.code, message, init);
    }
    // Not our error body: a proxy's page (502 from nginx) or a bug.
    const code = status >= 500 ? 'UNAVAILABLE' : 'BAD_RESPONSE';
    return new ParleyClientError(code, `${request.method} ${request.path} answered ${status}.`, init);
  }

  private observeClock(date: string | null, sentAt: number): void {
    if (!date) return;
    const server = Date.parse(date);
    if (Number.isNaN(server)) return;
    // The header has one-second resolution and was stamped somewhere during the call.
    const midpoint = (sentAt + this.now()) / 2;
    this.clockOffsetMs = server + 500 - midpoint;
  }
}
