import { AuthResponse, ErrorBody, LoginBody, ParleyError, RefreshBody, RegisterBody, Tokens } from '@parley/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { bearer, NoContent, type RouteContext } from './route-context';

export interface AuthRouteOptions {
  context: RouteContext;
  loginRateLimit: { max: number; windowSeconds: number };
  loginRateLimitPerIp: { max: number; windowSeconds: number };
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

  // Every login costs an argon2 verification (19 MiB, tens of ms). Besides the limit per
  // IP and username (route config below), one address gets a budget across all
  // usernames, so it can neither spray a password over many accounts nor keep the
  // hashing threads busy. (The plugin runs one limiter hook per request, so this one is
  // applied by hand.)
  const loginAttemptsPerIp = app.createRateLimit({
    max: limits.loginRateLimitPerIp.max,
    timeWindow: limits.loginRateLimitPerIp.windowSeconds * 1000,
    keyGenerator: (request: FastifyRequest) => `login-ip:${request.ip}`,
  });

  app.post(
    '/v1/auth/login',
    {
      onRequest: async (request) => {
        const attempts = await loginAttemptsPerIp(request);
        if (!attempts.isAllowed && attempts.isExceeded) {
          throw new ParleyError('RATE_LIMITED', `Too many login attempts; retry in ${attempts.ttlInSeconds} s.`);
        }
      },
      schema: {
        tags: ['auth'],
        summary: 'Log in; starts a session',
        body: LoginBody,
        response: { 200: AuthResponse, ...authErrors },
      },
      config: {
        // Keyed by IP and username, after validation so the body is known: guessing one
        // account's password is slow, and an attacker elsewhere cannot lock its owner out.
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
      onRequest: context.authenticate,
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
