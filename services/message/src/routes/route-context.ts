import type { FastifyRequest } from 'fastify';
import type { AuthService } from '../domain/auth-service';
import type { ContactService } from '../domain/contact-service';
import type { ConversationService } from '../domain/conversation-service';
import type { MessageService } from '../domain/message-service';
import type { SyncService } from '../domain/sync-service';
import type { UserService } from '../domain/user-service';
import { ErrorBody } from '@parley/protocol';
import { Type } from '@sinclair/typebox';

/** What route plugins are given: the domain services and the auth hook. */
export interface RouteContext {
  auth: AuthService;
  users: UserService;
  contacts: ContactService;
  conversations: ConversationService;
  messages: MessageService;
  sync: SyncService;
  authenticate: (request: FastifyRequest) => Promise<void>;
}

/** Error responses every authenticated route may give, for the OpenAPI document. */
export const authedErrors = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  422: ErrorBody,
  429: ErrorBody,
} as const;

export const NoContent = Type.Null({ description: 'No content.' });

export const bearer = [{ bearerAuth: [] }];
