import { AuthResponse, LoginBody, RefreshBody, RegisterBody, Tokens, ErrorBody } from '@parley/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { bearer, NoContent, type RouteContext } from './route-context';

export interface AuthRouteOptions {
  context: RouteContext;
  loginRateLimit: { max: number; windowSeconds: number };
  registerRateLimit: { max: number; windowSeconds: number };
}

const authErrors = { 400: ErrorBody, 401: ErrorBody, 409: ErrorBody, 429: ErrorBody } as const;

export const authRoutes: FastifyPluginAsyncTypebox<AuthRouteOptions> = async (app, { context, ...limits }) => {
  app.post(
    '/v1/auth/register',
    {
      schema: {
        tags: ['auth'],
        summary: 'Create an account and log in',
        body: RegisterBody,
        response: { 201: AuthResponse, ...authErrors },
      },
      config: {
        rateLimit: { max: limits.registerRateLimit.max, timeWindow: limits.registerRateLimit.windowSeconds * 1000 },
      },
    },
    async (request, reply) => reply.status(201).send(await context.auth.register(request.body)),
  );

  app.post(
    '/v1/auth/login',
    {
      schema: {
        tags: ['auth'],
        summary: 'Log in; starts a session',
        body: LoginBody,
        response: { 200: AuthResponse, ...authErrors },
      },
      config: {
        // Keyed by IP and username, after validation so the body is known: one attacker
        // cannot lock a user out from elsewhere, and cannot spray one account either.
        rateLimit: {
          max: limits.loginRateLimit.max,
          timeWindow: limits.loginRateLimit.windowSeconds * 1000,
          hook: 'preHandler',
          keyGenerator: (request: FastifyRequest) =>
            `login:${request.ip}:${(request.body as LoginBody).username.toLowerCase()}`,
        },
      },
    },
    async (request) => context.auth.login(request.body),
  );

  app.post(
    '/v1/auth/refresh',
    {
      schema: {
        tags: ['auth'],
        summary: 'Trade a refresh token for new tokens (the old one stops working)',
        body: RefreshBody,
        response: { 200: Tokens, ...authErrors },
      },
    },
    async (request) => context.auth.refresh(request.body.refreshToken),
  );

  app.post(
    '/v1/auth/logout',
    {
      preHandler: context.authenticate,
      schema: {
        tags: ['auth'],
        summary: 'Revoke the current session',
        security: bearer,
        response: { 204: NoContent, ...authErrors },
      },
    },
    async (request, reply) => {
      await context.auth.logout(request.auth);
      return reply.status(204).send(null);
    },
  );
};
