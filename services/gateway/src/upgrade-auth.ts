import type { IncomingMessage } from 'node:http';
import type { AccessClaims, AccessTokenVerifier } from '@parley/auth';
import { isParleyError, WS_AUTH_SUBPROTOCOL_PREFIX, type RoutingInfo } from '@parley/protocol';
import type { MessageServiceClient } from './message-service-client';

/**
 * Why an upgrade was refused: the `reason` label of `parley_gateway_upgrades_rejected_total`
 * (docs/metrics.md), so a 503 says whether the node is full, draining or cannot reach the
 * message service.
 */
export type RefusalReason = 'path' | 'draining' | 'full' | 'origin' | 'token' | 'jwks' | 'session' | 'message-service' | 'per-user';

export type UpgradeDecision =
  | { ok: true; claims: AccessClaims; token: string; routing: RoutingInfo }
  | { ok: false; reason: RefusalReason; status: number; code: string; message: string };

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
    return { ok: false, reason: 'origin', status: 403, code: 'FORBIDDEN_ORIGIN', message: 'This Origin may not connect.' };
  }
  const token = tokenOf(request);
  if (!token) return { ok: false, reason: 'token', status: 401, code: 'UNAUTHENTICATED', message: 'No access token offered.' };
  let claims: AccessClaims;
  try {
    claims = await deps.verifier.verify(token);
  } catch (error) {
    const code = isParleyError(error) ? error.code : 'UNAUTHENTICATED';
    // UNAVAILABLE: the signing keys (JWKS) could not be fetched.
    const unavailable = code === 'UNAVAILABLE';
    const message = isParleyError(error) ? error.message : 'Invalid token.';
    return { ok: false, reason: unavailable ? 'jwks' : 'token', status: unavailable ? 503 : 401, code, message };
  }
  const routing = await deps.messageService.routing(token);
  if (!routing.ok) {
    const reason = routing.status === 401 || routing.status === 403 ? 'session' : 'message-service';
    return { ok: false, reason, status: routing.status, code: routing.code, message: routing.message };
  }
  return { ok: true, claims, token, routing: routing.body };
}
