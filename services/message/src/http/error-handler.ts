import { ErrorCatalogue, isParleyError, type ErrorBody, type ErrorCode } from '@parley/protocol';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { databaseErrorKind } from '../repositories/database-errors';

/** Fastify's own errors, by code, and what they mean in our catalogue. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
};

function body(code: ErrorCode, message: string, request: FastifyRequest, details?: ErrorBody['error']['details']) {
  const error: ErrorBody['error'] = { code, message, requestId: request.id };
  if (details) error.details = details;
  return { error };
}

function send(reply: FastifyReply, code: ErrorCode, message: string, details?: ErrorBody['error']['details']) {
  return reply.status(ErrorCatalogue[code].status).send(body(code, message, reply.request, details));
}

/** Renders every error as `{ error: { code, message, requestId } }` with its catalogue status. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isParleyError(error)) {
      if (error.code === 'RATE_LIMITED') request.log.warn({ url: request.url }, 'rate limited');
      return send(reply, error.code, error.message);
    }
    if (error.validation) {
      const details = error.validation.map((issue) => {
        const extra = (issue.params as { additionalProperty?: unknown }).additionalProperty;
        return {
          path: `${error.validationContext ?? ''}${issue.instancePath}`,
          message: typeof extra === 'string' ? `unknown field "${extra}"` : (issue.message ?? 'is invalid'),
        };
      });
      return send(reply, 'VALIDATION_FAILED', `Invalid ${error.validationContext ?? 'request'}: ${error.message}`, details);
    }
    const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (mapped) return send(reply, mapped, ErrorCatalogue[mapped].message);
    if (error instanceof SyntaxError) return send(reply, 'MALFORMED_JSON', ErrorCatalogue.MALFORMED_JSON.message);
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 && databaseErrorKind(error) !== 'unavailable') {
      request.log.info({ err: error }, 'client error without a catalogue code');
      return send(reply, 'VALIDATION_FAILED', error.message);
    }
    const { code, message } = catalogueErrorOf(error, request.log);
    return send(reply, code, message);
  });

  app.setNotFoundHandler((request, reply) => send(reply, 'NOT_FOUND', `No route for ${request.method} ${request.url}.`));
}

/**
 * What an error from the work of a request means in the catalogue (the error handler's
 * last step, and the per-item answers of POST /internal/v1/send-batch): a ParleyError as
 * itself, an unreachable database as UNAVAILABLE, anything else as INTERNAL, logged.
 */
export function catalogueErrorOf(error: unknown, log: FastifyBaseLogger): { code: ErrorCode; message: string } {
  if (isParleyError(error)) return { code: error.code, message: error.message };
  if (databaseErrorKind(error) === 'unavailable') {
    log.error({ err: error }, 'dependency unavailable');
    return { code: 'UNAVAILABLE', message: ErrorCatalogue.UNAVAILABLE.message };
  }
  log.error({ err: error }, 'unhandled error');
  return { code: 'INTERNAL', message: ErrorCatalogue.INTERNAL.message };
}
