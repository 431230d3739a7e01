import type { IncomingMessage } from 'node:http';
import type { AccessClaims, AccessTokenVerifier } from '@parley/auth';
import { isParleyError, WS_AUTH_SUBPROTOCOL_PREFIX, type RoutingInfo } from '@parley/protocol';
import type { MessageServiceClient } from './message-service-client';

export type UpgradeDecision =
  | { ok: true; claims: AccessClaims; token: string; routing: RoutingInfo }
  | { ok: false; status: number; code: string; message: string };

const BEARER = /^Bearer ([A-Za-z0-9_.-]+)$/;

/**
 * The token of an upgrade request: `Authorization: Bearer` for clients that can set
 * headers, else a `parley.auth.<token>` subprotocol (browsers cannot set headers on a
 * WebSocket, and a token in the URL would land in access logs).
 */
export function tokenOf(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  const bearer = header ? BEARER.exec(header)?.[1] : undefined;
  if (bearer) return bearer;
  const offered = request.headers['sec-websocket-protocol'];
  if (!offered) return undefined;
  for (const protocol of offered.split(',')) {
    const trimmed = protocol.trim();
    if (trimmed.startsWith(WS_AUTH_SUBPROTOCOL_PREFIX)) return trimmed.slice(WS_AUTH_SUBPROTOCOL_PREFIX.length);
  }
  return undefined;
}

export function originAllowed(origin: string | undefined, allowed: string[] | '*'): boolean {
  // Non-browser clients send no Origin; the check protects browsers from cross-site use.
  if (origin === undefined || allowed === '*') return true;
  return allowed.includes(origin);
}

/**
 * Decides an upgrade before the socket is accepted: Origin allowlist, a valid access
 * token, and the message service's confirmation that the session is live (which also
 * returns what to subscribe to).
 */
export async function authorizeUpgrade(
  request: IncomingMessage,
  deps: { verifier: AccessTokenVerifier; messageService: MessageServiceClient; allowedOrigins: string[] | '*' },
): Promise<UpgradeDecision> {
  if (!originAllowed(request.headers.origin, deps.allowedOrigins)) {
    return { ok: false, status: 403, code: 'FORBIDDEN_ORIGIN', message: 'This Origin may not connect.' };
  }
  const token = tokenOf(request);
  if (!token) return { ok: false, status: 401, code: 'UNAUTHENTICATED', message: 'No access token offered.' };
  let claims: AccessClaims;
  try {
    claims = await deps.verifier.verify(token);
  } catch (error) {
    const code = isParleyError(error) ? error.code : 'UNAUTHENTICATED';
    const status = code === 'UNAVAILABLE' ? 503 : 401;
    return { ok: false, status, code, message: isParleyError(error) ? error.message : 'Invalid token.' };
  }
  const routing = await deps.messageService.routing(token);
  if (!routing.ok) return { ok: false, status: routing.status, code: routing.code, message: routing.message };
  return { ok: true, claims, token, routing: routing.body };
}
