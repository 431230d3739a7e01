import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, posix, sep } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply, FastifySchema } from 'fastify';

export interface WebClientOptions {
  /** Absolute path of the built web client (its index.html and assets). */
  root: string;
}

/** Paths that belong to the API: unknown ones there get the API's JSON 404, never the app. */
const API_PREFIXES = ['/v1/', '/.well-known/'];
/** The socket's path, asked for without an upgrade. */
const SOCKET_PATH = '/ws';

/**
 * The app's own files only: no inline code, no third-party origins; the socket is on the
 * page's own origin ('self' covers ws: and wss: there).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Kept out of the API's OpenAPI document (@fastify/swagger skips routes marked `hide`). */
export const HIDDEN = { hide: true } as FastifySchema;

export function webClientBuilt(root: string): boolean {
  return existsSync(join(root, 'index.html'));
}

/** The path of a request, decoded, or undefined when it cannot name a file. */
function requestPath(url: string): string | undefined {
  try {
    const path = decodeURIComponent(new URL(url, 'http://localhost').pathname);
    return path.includes('\0') ? undefined : path;
  } catch {
    return undefined;
  }
}

/** The file under `root` that `path` names, relative to it, or undefined when there is none. */
async function fileUnder(root: string, path: string): Promise<string | undefined> {
  const relative = posix.normalize(path).replace(/^\/+/, '');
  if (relative === '' || relative.split('/').some((segment) => segment === '..' || segment.startsWith('.'))) return undefined;
  const absolute = join(root, ...relative.split('/'));
  if (!absolute.startsWith(root.endsWith(sep) ? root : root + sep)) return undefined;
  const stats = await stat(absolute).catch(() => undefined);
  return stats?.isFile() ? relative : undefined;
}

function notBuiltPage(root: string): string {
  return `<!doctype html>
<meta charset="utf-8">
<title>Parley: web client not built</title>
<h1>The web client is not built</h1>
<p>Parley's API and WebSocket are running, but <code>${root.replace(/[<>&"]/g, '')}</code> holds no
<code>index.html</code>. Build it with <code>npm run build</code> (or set <code>WEB_ROOT</code>) and reload.</p>
`;
}

/**
 * Serves the web client beside the API: its files, and index.html for any other page
 * (the app routes in the browser). Names are not content-hashed, so every file is
 * revalidated (ETag) rather than cached blindly. A missing build gets a page saying how
 * to make it, instead of a bare 404.
 */
export const webClientRoutes: FastifyPluginAsync<WebClientOptions> = async (app, { root }) => {
  if (!webClientBuilt(root)) {
    app.get('/', { schema: HIDDEN }, async (_request, reply) =>
      reply.code(503).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(notBuiltPage(root)),
    );
    return;
  }

  await app.register(fastifyStatic, { root, serve: false, cacheControl: false });
  const sendIndex = (reply: FastifyReply) =>
    reply
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .sendFile('index.html');

  app.get('/*', { schema: HIDDEN }, async (request, reply) => {
    const path = requestPath(request.url);
    if (path === undefined || path === SOCKET_PATH || API_PREFIXES.some((prefix) => path.startsWith(prefix))) {
      return reply.callNotFound();
    }
    const file = await fileUnder(root, path);
    if (file === 'index.html' || (file === undefined && posix.extname(path) === '')) return sendIndex(reply);
    // A missing asset (it has an extension) is a 404, not the app's HTML under its name.
    if (file === undefined) return reply.callNotFound();
    return reply.header('cache-control', 'no-cache').sendFile(file);
  });
};
