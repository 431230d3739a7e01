import { Me, PublicUser, RoutingInfo, UpdateMeBody, UserIdParams, UsernameParams } from '@parley/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authedErrors, bearer, type RouteContext } from './route-context';

export const userRoutes: FastifyPluginAsyncTypebox<{ context: RouteContext }> = async (app, { context }) => {
  app.addHook('onRequest', context.authenticate);

  app.get(
    '/v1/me',
    { schema: { tags: ['users'], summary: 'The current user', security: bearer, response: { 200: Me, ...authedErrors } } },
    async (request) => context.users.me(request.auth.userId),
  );

  app.get(
    '/v1/me/routing',
    {
      schema: {
        tags: ['users'],
        summary: 'My conversation ids and direct peers (what a gateway subscribes to for me)',
        security: bearer,
        response: { 200: RoutingInfo, ...authedErrors },
      },
    },
    async (request) => context.users.routing(request.auth.userId),
  );

  app.patch(
    '/v1/me',
    {
      schema: {
        tags: ['users'],
        summary: 'Change the display name',
        security: bearer,
        body: UpdateMeBody,
        response: { 200: Me, ...authedErrors },
      },
    },
    async (request) => context.users.updateDisplayName(request.auth.userId, request.body.displayName),
  );

  app.get(
    '/v1/users/by-username/:username',
    {
      schema: {
        tags: ['users'],
        summary: 'Find a user by username (case-insensitive)',
        security: bearer,
        params: UsernameParams,
        response: { 200: PublicUser, ...authedErrors },
      },
    },
    async (request) => context.users.findByUsername(request.params.username),
  );

  app.get(
    '/v1/users/:userId',
    {
      schema: {
        tags: ['users'],
        summary: 'A user by id',
        security: bearer,
        params: UserIdParams,
        response: { 200: PublicUser, ...authedErrors },
      },
    },
    async (request) => context.users.findById(request.params.userId),
  );
};
