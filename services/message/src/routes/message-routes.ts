import {
  ConversationParams,
  EditMessageBody,
  HistoryPage,
  HistoryQuery,
  Message,
  MessageParams,
  ReadBody,
  ReadState,
  SendMessageBody,
  SendMessageResponse,
  SyncBody,
  SyncResponse,
  ErrorBody,
} from '@parley/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authedErrors, bearer, type RouteContext } from './route-context';

/** Sync cursors for thousands of conversations do not fit the default body limit. */
const SYNC_BODY_LIMIT_BYTES = 2 * 1024 * 1024;

export const messageRoutes: FastifyPluginAsyncTypebox<{ context: RouteContext }> = async (app, { context }) => {
  app.addHook('onRequest', context.authenticate);
  const schema = (summary: string) => ({ tags: ['messages'], summary, security: bearer });

  app.post(
    '/v1/conversations/:conversationId/messages',
    {
      schema: {
        ...schema('Send a message (idempotent on clientMessageId: a retry returns the original)'),
        params: ConversationParams,
        body: SendMessageBody,
        response: { 200: SendMessageResponse, 201: SendMessageResponse, ...authedErrors, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      const outcome = await context.messages.send(request.auth.userId, request.params.conversationId, request.body);
      return reply.status(outcome.duplicate ? 200 : 201).send(outcome);
    },
  );

  app.get(
    '/v1/conversations/:conversationId/messages',
    {
      schema: {
        ...schema('History by seq: newest page by default, `before` to page back, `after` to page forward'),
        params: ConversationParams,
        querystring: HistoryQuery,
        response: { 200: HistoryPage, ...authedErrors },
      },
    },
    async (request) => context.messages.history(request.auth.userId, request.params.conversationId, request.query),
  );

  app.patch(
    '/v1/conversations/:conversationId/messages/:seq',
    {
      schema: {
        ...schema('Edit one of my messages'),
        params: MessageParams,
        body: EditMessageBody,
        response: { 200: Message, ...authedErrors },
      },
    },
    async (request) =>
      context.messages.edit(
        request.auth.userId,
        request.params.conversationId,
        Number(request.params.seq),
        request.body.body,
      ),
  );

  app.delete(
    '/v1/conversations/:conversationId/messages/:seq',
    {
      schema: {
        ...schema('Delete one of my messages, leaving a tombstone'),
        params: MessageParams,
        response: { 200: Message, ...authedErrors },
      },
    },
    async (request) =>
      context.messages.delete(request.auth.userId, request.params.conversationId, Number(request.params.seq)),
  );

  app.post(
    '/v1/conversations/:conversationId/read',
    {
      schema: {
        ...schema('Mark read up to a seq (never moves back)'),
        params: ConversationParams,
        body: ReadBody,
        response: { 200: ReadState, ...authedErrors },
      },
    },
    async (request) => context.messages.markRead(request.auth.userId, request.params.conversationId, request.body.seq),
  );

  app.post(
    '/v1/sync',
    {
      bodyLimit: SYNC_BODY_LIMIT_BYTES,
      schema: {
        tags: ['sync'],
        summary: 'Offline pull: what changed since my cursors, paged',
        security: bearer,
        body: SyncBody,
        response: { 200: SyncResponse, ...authedErrors },
      },
    },
    async (request) => context.sync.sync(request.auth.userId, request.body),
  );
};
