import { BlockList, Contact, ContactList, ContactRequestBody, UserIdParams } from '@parley/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authedErrors, bearer, NoContent, type RouteContext } from './route-context';

export const contactRoutes: FastifyPluginAsyncTypebox<{ context: RouteContext }> = async (app, { context }) => {
  app.addHook('onRequest', context.authenticate);
  const schema = (summary: string) => ({ tags: ['contacts'], summary, security: bearer });

  app.get(
    '/v1/contacts',
    { schema: { ...schema('My contacts and pending requests'), response: { 200: ContactList, ...authedErrors } } },
    async (request) => ({ contacts: await context.contacts.list(request.auth.userId) }),
  );

  app.post(
    '/v1/contacts',
    {
      schema: {
        ...schema('Ask a user to be a contact (accepts theirs if they asked first)'),
        body: ContactRequestBody,
        response: { 200: Contact, ...authedErrors },
      },
    },
    async (request) => context.contacts.request(request.auth.userId, request.body.userId),
  );

  app.post(
    '/v1/contacts/:userId/accept',
    {
      schema: { ...schema('Accept a contact request'), params: UserIdParams, response: { 200: Contact, ...authedErrors } },
    },
    async (request) => context.contacts.accept(request.auth.userId, request.params.userId),
  );

  app.post(
    '/v1/contacts/:userId/decline',
    {
      schema: {
        ...schema('Decline a contact request'),
        params: UserIdParams,
        response: { 204: NoContent, ...authedErrors },
      },
    },
    async (request, reply) => {
      await context.contacts.decline(request.auth.userId, request.params.userId);
      return reply.status(204).send(null);
    },
  );

  app.delete(
    '/v1/contacts/:userId',
    {
      schema: {
        ...schema('Remove a contact or withdraw a request'),
        params: UserIdParams,
        response: { 204: NoContent, ...authedErrors },
      },
    },
    async (request, reply) => {
      await context.contacts.remove(request.auth.userId, request.params.userId);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/v1/blocks',
    { schema: { ...schema('Users I blocked'), response: { 200: BlockList, ...authedErrors } } },
    async (request) => ({ blocks: await context.contacts.listBlocks(request.auth.userId) }),
  );

  app.put(
    '/v1/blocks/:userId',
    {
      schema: {
        ...schema('Block a user: they can no longer message me or ask to be a contact'),
        params: UserIdParams,
        response: { 204: NoContent, ...authedErrors },
      },
    },
    async (request, reply) => {
      await context.contacts.block(request.auth.userId, request.params.userId);
      return reply.status(204).send(null);
    },
  );

  app.delete(
    '/v1/blocks/:userId',
    {
      schema: { ...schema('Unblock a user'), params: UserIdParams, response: { 204: NoContent, ...authedErrors } },
    },
    async (request, reply) => {
      await context.contacts.unblock(request.auth.userId, request.params.userId);
      return reply.status(204).send(null);
    },
  );
};
