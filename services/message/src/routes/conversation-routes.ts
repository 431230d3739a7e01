import {
  AddMembersBody,
  ChangeRoleBody,
  ConversationListQuery,
  ConversationPage,
  ConversationParams,
  ConversationSummary,
  CreateDirectBody,
  CreateGroupBody,
  MemberList,
  MemberParams,
} from '@parley/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authedErrors, bearer, NoContent, type RouteContext } from './route-context';

export const conversationRoutes: FastifyPluginAsyncTypebox<{ context: RouteContext }> = async (app, { context }) => {
  app.addHook('onRequest', context.authenticate);
  const schema = (summary: string) => ({ tags: ['conversations'], summary, security: bearer });

  app.post(
    '/v1/conversations/direct',
    {
      schema: {
        ...schema('Open the direct conversation with a user (created once per pair)'),
        body: CreateDirectBody,
        response: { 200: ConversationSummary, 201: ConversationSummary, ...authedErrors },
      },
    },
    async (request, reply) => {
      const { conversation, created } = await context.conversations.openDirect(request.auth.userId, request.body.userId);
      return reply.status(created ? 201 : 200).send(conversation);
    },
  );

  app.post(
    '/v1/conversations/groups',
    {
      schema: {
        ...schema('Create a group; the creator is its owner'),
        body: CreateGroupBody,
        response: { 201: ConversationSummary, ...authedErrors },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await context.conversations.createGroup(request.auth.userId, request.body)),
  );

  app.get(
    '/v1/conversations',
    {
      schema: {
        ...schema('My conversations, most recently active first'),
        querystring: ConversationListQuery,
        response: { 200: ConversationPage, ...authedErrors },
      },
    },
    async (request) => context.conversations.list(request.auth.userId, request.query),
  );

  app.get(
    '/v1/conversations/:conversationId',
    {
      schema: {
        ...schema('One conversation'),
        params: ConversationParams,
        response: { 200: ConversationSummary, ...authedErrors },
      },
    },
    async (request) => context.conversations.get(request.auth.userId, request.params.conversationId),
  );

  app.get(
    '/v1/conversations/:conversationId/members',
    {
      schema: {
        ...schema('Members with their roles and read markers'),
        params: ConversationParams,
        response: { 200: MemberList, ...authedErrors },
      },
    },
    async (request) => ({
      members: await context.conversations.members(request.auth.userId, request.params.conversationId),
    }),
  );

  app.post(
    '/v1/conversations/:conversationId/members',
    {
      schema: {
        ...schema('Add members to a group (owner or admin; only the owner adds admins)'),
        params: ConversationParams,
        body: AddMembersBody,
        response: { 200: MemberList, ...authedErrors },
      },
    },
    async (request) => ({
      members: await context.conversations.addMembers(
        request.auth.userId,
        request.params.conversationId,
        request.body,
      ),
    }),
  );

  app.patch(
    '/v1/conversations/:conversationId/members/:userId',
    {
      schema: {
        ...schema("Change a member's role (owner only)"),
        params: MemberParams,
        body: ChangeRoleBody,
        response: { 204: NoContent, ...authedErrors },
      },
    },
    async (request, reply) => {
      const { conversationId, userId } = request.params;
      await context.conversations.changeRole(request.auth.userId, conversationId, userId, request.body.role);
      return reply.status(204).send(null);
    },
  );

  app.delete(
    '/v1/conversations/:conversationId/members/:userId',
    {
      schema: {
        ...schema('Remove a member (owners remove anyone, admins remove members; yourself = leave)'),
        params: MemberParams,
        response: { 204: NoContent, ...authedErrors },
      },
    },
    async (request, reply) => {
      const { conversationId, userId } = request.params;
      await context.conversations.removeMember(request.auth.userId, conversationId, userId);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/v1/conversations/:conversationId/leave',
    {
      schema: {
        ...schema('Leave a group (an owner hands ownership on)'),
        params: ConversationParams,
        response: { 204: NoContent, ...authedErrors },
      },
    },
    async (request, reply) => {
      await context.conversations.leave(request.auth.userId, request.params.conversationId);
      return reply.status(204).send(null);
    },
  );
};
