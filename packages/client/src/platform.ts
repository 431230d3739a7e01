/**
 * The few host globals the SDK uses, typed here so the package compiles without Node or
 * DOM typings and runs on both. Globals are looked up at call time (not captured at
 * import), so test fake timers and late polyfills are honoured.
 */

/** An opaque timer handle (a number in browsers, an object in Node). */
export type TimerHandle = unknown;

/** The response shape the SDK reads from `fetch` (a subset of the WHATWG `Response`). */
export interface FetchResponseLike {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/** The request options the SDK passes to `fetch` (a subset of the WHATWG `RequestInit`). */
export interface FetchInitLike {
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** An `AbortSignal` when the platform has `AbortController`. */
  signal?: unknown;
}

/** A `fetch`-compatible function: the global `fetch`, undici's, or a test adapter. */
export type FetchLike = (url: string, init: FetchInitLike) => Promise<FetchResponseLike>;

/**
 * Any WebSocket class: the browser's global `WebSocket`, the `ws` package's `WebSocket`
 * (which also takes a third `options` argument with `headers`, `ca`, ...), undici's.
 * It is called as `new WebSocket(url, protocols)` or `new WebSocket(url, protocols, options)`
 * and must offer `send`, `close`, `readyState` and the `onopen`/`onmessage`/`onclose`/`onerror`
 * handler properties.
 */
export type WebSocketConstructor = new (...args: never[]) => object;

/** The instance shape the SDK relies on, common to the browser and `ws`. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((event: { message?: string; error?: unknown }) => void) | null;
}

interface PlatformGlobals {
  setTimeout(handler: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  fetch?: FetchLike;
  WebSocket?: WebSocketConstructor;
  crypto?: { randomUUID?: () => string; getRandomValues?: (array: Uint8Array) => Uint8Array };
  atob?: (data: string) => string;
  AbortController?: new () => { readonly signal: unknown; abort(): void };
}

const host = (): PlatformGlobals => globalThis as unknown as PlatformGlobals;

/** Longest delay `setTimeout` accepts (2^31 - 1 ms); longer ones would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `setTimeout`, with the delay clamped to what timers accept. */
export function setTimer(handler: () => void, ms: number): TimerHandle {
  return host().setTimeout(handler, Math.min(Math.max(0, ms), MAX_TIMER_MS));
}

/** `clearTimeout`; accepts `undefined`. */
export function clearTimer(handle: TimerHandle | undefined): void {
  if (handle !== undefined) host().clearTimeout(handle);
}

/** The global `fetch`, bound to the global object (browsers throw on an unbound call). */
export function globalFetch(): FetchLike | undefined {
  const fetch = host().fetch;
  return fetch ? (url, init) => fetch.call(globalThis, url, init) : undefined;
}

/** The global `WebSocket` class, if the platform has one (browsers, Node 22+). */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return host().WebSocket;
}

/** Starts an abort timer for a request, when the platform can abort. */
export function abortAfter(ms: number): { signal?: unknown; cancel(): void } {
  const Controller = host().AbortController;
  if (!Controller) return { cancel: () => {} };
  const controller = new Controller();
  const timer = setTimer(() => controller.abort(), ms);
  return { signal: controller.signal, cancel: () => clearTimer(timer) };
}

/** A random UUID v4: `crypto.randomUUID` when present (Node, secure browser contexts), else built from `getRandomValues`. */
export function randomUuid(): string {
  const crypto = host().crypto;
  if (crypto?.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  if (crypto?.getRandomValues) crypto.getRandomValues(bytes);
  // Last resort on very old platforms: ids need to be unique, not secret.
  else for (let index = 0; index < bytes.length; index += 1) bytes[index] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Decodes base64url text (no padding needed) to a string, or `undefined` when the platform lacks `atob`. */
export function decodeBase64Url(text: string): string | undefined {
  const atob = host().atob;
  if (!atob) return undefined;
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
  const binary = atob(padded);
  // atob yields one char per byte; decode UTF-8 (JWT claims may hold non-ASCII).
  try {
    return decodeURIComponent(
      Array.from(binary, (char) => `%${char.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''),
    );
  } catch {
    return binary;
  }
}
