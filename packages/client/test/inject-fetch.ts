import type { FetchLike } from '@parley/client';
import type { MessageApp } from '@parley/message-service';

/**
 * A `fetch` that routes the SDK's requests into the real message service with
 * `app.inject()` (no sockets, same routes, validation, auth and database). Records every
 * call so tests can count them.
 */
export function injectFetch(app: MessageApp): FetchLike & { calls: Array<{ method: string; path: string; body?: unknown }> } {
  const calls: Array<{ method: string; path: string; body?: unknown }> = [];
  const fetch: FetchLike = async (url, init) => {
    const { pathname, search } = new URL(url);
    calls.push({
      method: init.method,
      path: pathname,
      ...(init.body === undefined ? {} : { body: JSON.parse(init.body) as unknown }),
    });
    const response = await app.inject({
      method: init.method as 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
      url: `${pathname}${search}`,
      headers: init.headers,
      ...(init.body === undefined ? {} : { payload: init.body }),
    });
    return {
      status: response.statusCode,
      headers: {
        get: (name: string) => {
          const value = response.headers[name.toLowerCase()];
          if (value === undefined) return null;
          return Array.isArray(value) ? value.join(', ') : String(value);
        },
      },
      text: async () => response.body,
    };
  };
  return Object.assign(fetch, { calls });
}
