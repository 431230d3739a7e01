import { ParleyError } from '@parley/protocol';
import type { FastifyRequest } from 'fastify';
import type { AuthService, AuthenticatedUser } from '../domain/auth-service';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authenticate hook on every route that requires a token. */
    auth: AuthenticatedUser;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9_.-]+)$/;

/**
 * An onRequest hook that admits only requests with a valid access token of a live
 * session. It runs before the body is read or validated, so an anonymous caller gets 401
 * whatever it sends, and no body is parsed for it.
 */
export function makeAuthenticate(authService: AuthService) {
  return async function authenticate(request: FastifyRequest): Promise<void> {
    const header = request.headers.authorization;
    const match = header ? BEARER.exec(header) : null;
    if (!match?.[1]) throw new ParleyError('UNAUTHENTICATED', 'Send `Authorization: Bearer <access token>`.');
    request.auth = await authService.authenticate(match[1]);
  };
}
