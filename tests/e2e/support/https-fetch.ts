import http from 'node:http';
import https from 'node:https';
import type { FetchLike, FetchResponseLike } from '@parley/client';

/** A `fetch` for the SDK over node:https that trusts one CA (undici is not installed). */
export interface HttpsFetch extends FetchLike {
  /** Closes the pooled keep-alive connections. */
  close(): void;
}

interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

function abortError(): Error {
  const error = new Error('The request was aborted.');
  error.name = 'AbortError';
  return error;
}

/**
 * The subset of WHATWG `fetch` the SDK uses (`FetchLike`): method, headers, a string
 * body, an `AbortSignal`; the response's status, headers and text. Connections are kept
 * alive (many small REST calls over TLS), and the SDK's abort signal destroys the request
 * with an `AbortError`, which the SDK reports as `TIMEOUT`.
 */
export function httpsFetch(ca: string): HttpsFetch {
  const agent = new https.Agent({ ca, keepAlive: true, maxSockets: 64, scheduling: 'lifo' });
  const fetch: FetchLike = (url, init) =>
    new Promise<FetchResponseLike>((resolve, reject) => {
      const target = new URL(url);
      const signal = init.signal as AbortSignalLike | undefined;
      if (signal?.aborted) return reject(abortError());
      const client = target.protocol === 'https:' ? https : http;
      const headers: Record<string, string | number> = { ...init.headers };
      if (init.body !== undefined) headers['content-length'] = Buffer.byteLength(init.body);
      const request = client.request(
        target,
        { method: init.method, headers, ...(target.protocol === 'https:' ? { agent } : {}) },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', fail);
          response.on('end', () => {
            cleanup();
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: response.statusCode ?? 0,
              headers: {
                get: (name: string) => {
                  const value = response.headers[name.toLowerCase()];
                  if (value === undefined) return null;
                  return Array.isArray(value) ? value.join(', ') : String(value);
                },
              },
              text: () => Promise.resolve(text),
            });
          });
        },
      );
      const onAbort = () => request.destroy(abortError());
      function cleanup() {
        signal?.removeEventListener('abort', onAbort);
      }
      function fail(error: Error) {
        cleanup();
        reject(error);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      request.on('error', fail);
      request.end(init.body);
    });
  return Object.assign(fetch, { close: () => agent.destroy() });
}
