import { ErrorBody, ErrorCatalogue, Limits, SendBatchBody, SendBatchResponse, type SendBatchItem, type SendBatchResult } from '@parley/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger } from 'fastify';
import { catalogueErrorOf } from '../http/error-handler';
import type { RouteContext } from './route-context';

/**
 * Room for the largest batch: every send at its longest body, each character JSON-escaped
 * (6 bytes), and its token. Far above what a gateway sends; the item limit is the real bound.
 */
const SEND_BATCH_BODY_LIMIT_BYTES = Limits.sendBatchMaxItems * (Limits.messageBodyMaxLength * 6 + 8 * 1024);

/**
 * Routes for gateways, not for clients: nginx routes only /v1, /ws and the probes, so
 * /internal/ is reachable only on the service's own port. Nothing here trusts the caller:
 * every item carries its user's access token and is authorized on its own.
 */
export const internalRoutes: FastifyPluginAsyncTypebox<{ context: RouteContext }> = async (app, { context }) => {
  const failure = (error: unknown, log: FastifyBaseLogger): SendBatchResult => {
    const { code, message } = catalogueErrorOf(error, log);
    return { status: ErrorCatalogue[code].status, error: { code, message } };
  };

  /**
   * Every send answered as POST /v1/conversations/:id/messages would answer it alone, in
   * the call's order. Tokens are checked first, all at once; only then are the sends queued,
   * in order and in one turn, so they join one group commit (MicroBatcher) in the call's
   * order: two sends with the same client message id are answered 201 then 200, never the
   * other way round because the second token happened to be checked sooner.
   */
  const sendAll = async (items: readonly SendBatchItem[], log: FastifyBaseLogger): Promise<SendBatchResult[]> => {
    const senders = await Promise.allSettled(items.map((item) => context.auth.authenticate(item.accessToken)));
    return Promise.all(
      items.map(async (item, index): Promise<SendBatchResult> => {
        const sender = senders[index]!;
        if (sender.status === 'rejected') return failure(sender.reason, log);
        try {
          const outcome = await context.messages.send(sender.value.userId, item.conversationId, {
            clientMessageId: item.clientMessageId,
            body: item.body,
          });
          return { status: outcome.duplicate ? 200 : 201, response: outcome };
        } catch (error) {
          return failure(error, log);
        }
      }),
    );
  };

  app.post(
    '/internal/v1/send-batch',
    {
      bodyLimit: SEND_BATCH_BODY_LIMIT_BYTES,
      schema: {
        tags: ['internal'],
        summary:
          'Gateways: many users\' sends in one call, each with its own access token, authorized and answered alone (in order); ' +
          'the sends of one call are stored by the same group commit. Not routed by nginx.',
        body: SendBatchBody,
        response: { 200: SendBatchResponse, 400: ErrorBody, 413: ErrorBody, 415: ErrorBody },
      },
    },
    async (request) => ({ results: await sendAll(request.body.sends, request.log) }),
  );
};
