import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AccessTokenSigner, AccessTokenVerifier, CachingTokenVerifier } from '@parley/auth';
import type { Bus } from '@parley/bus';
import { sql, type Database, type Kysely } from '@parley/db';
import { ParleyError } from '@parley/protocol';
import Fastify, { type FastifyBaseLogger, type FastifyPluginAsync } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { FAULT_EXIT_CODE, type Config } from './config';
import { AuthService } from './domain/auth-service';
import { ContactService } from './domain/contact-service';
import { ConversationService } from './domain/conversation-service';
import { EventPublisher } from './domain/event-publisher';
import { MessageService } from './domain/message-service';
import { SyncService } from './domain/sync-service';
import { UserService } from './domain/user-service';
import { makeAuthenticate } from './http/authenticate';
import { installErrorHandlers } from './http/error-handler';
import { ServiceMetrics } from './http/metrics';
import { createValidatorCompiler } from './http/validation';
import { authRoutes } from './routes/auth-routes';
import { contactRoutes } from './routes/contact-routes';
import { conversationRoutes } from './routes/conversation-routes';
import { healthRoutes } from './routes/health-routes';
import { internalRoutes } from './routes/internal-routes';
import { messageRoutes } from './routes/message-routes';
import type { RouteContext } from './routes/route-context';
import { userRoutes } from './routes/user-routes';

export type AppConfig = Pick<
  Config,
  | 'signingKey'
  | 'jwks'
  | 'issuer'
  | 'audience'
  | 'accessTokenTtlSeconds'
  | 'refreshTokenTtlSeconds'
  | 'refreshReuseGraceSeconds'
  | 'loginRateLimit'
  | 'loginRateLimitPerIp'
  | 'registerRateLimit'
  | 'trustProxy'
  | 'corsOrigins'
  | 'bodyLimitBytes'
  | 'busPrefix'
> &
  Partial<Pick<Config, 'faultExitAfterCommit'>>;

export interface AppDeps {
  config: AppConfig;
  db: Kysely<Database>;
  /**
   * Keeps rate-limit counters shared by every replica, and is checked by readiness;
   * create it with `enableOfflineQueue: false`. `null` runs without Redis (one process:
   * the embedded mode): counters then live in this process's memory.
   */
  redis: Redis | null;
  bus: Bus;
  logger: Logger;
  /** Reports whether the process is shutting down (readiness turns false). */
  isDraining?: () => boolean;
  /**
   * Routes served beside the API (the single-process server's web client), registered
   * after it, so they take only the paths the API leaves free; the API's error and
   * not-found handlers cover them too.
   */
  extraRoutes?: FastifyPluginAsync;
  /**
   * Send transactions (group commits) in flight at once (default 4), each holding a pooled
   * connection: keep it well under the pool size. An embedded database runs one
   * transaction at a time: give it 1.
   */
  sendBatchesInFlight?: number;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the message service. It does not listen: server.ts does, tests use `inject()`. */
export async function buildApp(deps: AppDeps) {
  const { config, db, redis, bus, logger } = deps;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    // Keep nginx's request id when it sends a sane one, so one id follows a request across hops.
    genReqId: (request) => {
      const incoming = request.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(createValidatorCompiler());
  // JSON only: a text/plain body is refused with 415 rather than parsed as a string.
  app.removeContentTypeParser('text/plain');
  installErrorHandlers(app);
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  const metrics = new ServiceMetrics();
  metrics.install(app);

  await app.register(helmet, { contentSecurityPolicy: false });
  await app.register(cors, { origin: config.corsOrigins.length > 0 ? config.corsOrigins : false });
  await app.register(rateLimit, {
    global: false,
    ...(redis ? { redis, nameSpace: `${config.busPrefix}ratelimit:` } : {}),
    // If Redis is down, let requests through rather than take logins down with it.
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new ParleyError('RATE_LIMITED', `Too many requests; retry in ${context.after}.`),
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Parley message service',
        version: '1',
        description: 'REST API of Parley. Errors are `{ error: { code, message } }`; codes in docs/errors.md.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });

  const publisher = new EventPublisher(bus, logger, metrics);
  if (redis) {
    // Redis is back: if publishes failed meanwhile, have the fleet resync its clients.
    const onRedisReady = () => publisher.announceRecovery();
    redis.on('ready', onRedisReady);
    app.addHook('onClose', async () => {
      redis.off('ready', onRedisReady);
    });
  }
  const auth = new AuthService(
    db,
    new AccessTokenSigner(config.signingKey, config, config.accessTokenTtlSeconds),
    new CachingTokenVerifier(new AccessTokenVerifier(config.jwks, config)),
    publisher,
    config.refreshTokenTtlSeconds,
    config.refreshReuseGraceSeconds,
  );
  const context: RouteContext = {
    auth,
    users: new UserService(db),
    contacts: new ContactService(db, publisher),
    conversations: new ConversationService(db, publisher),
    messages: new MessageService(db, publisher, {
      onMessageStored: () => {
        metrics.messagesStored.inc();
        // Test-only fault (FAULT_EXIT_AFTER_COMMIT, refused outside NODE_ENV=test): the send
        // has committed and nobody has been told. A retry must find the original.
        if (config.faultExitAfterCommit) process.exit(FAULT_EXIT_CODE);
      },
      sendBatching: {
        ...(deps.sendBatchesInFlight ? { maxConcurrent: deps.sendBatchesInFlight } : {}),
        onBatch: (size) => metrics.sendBatchSize.observe(size),
      },
    }),
    sync: new SyncService(db),
    authenticate: makeAuthenticate(auth),
  };

  app.get('/.well-known/jwks.json', { schema: { hide: true } }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return config.jwks;
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(healthRoutes, {
    checks: {
      postgres: () => sql`select 1`.execute(db),
      ...(redis ? { redis: () => redis.ping() } : {}),
    },
    isDraining: deps.isDraining ?? (() => false),
    timeoutMs: 2000,
  });
  await app.register(authRoutes, {
    context,
    loginRateLimit: config.loginRateLimit,
    loginRateLimitPerIp: config.loginRateLimitPerIp,
    registerRateLimit: config.registerRateLimit,
  });
  await app.register(userRoutes, { context });
  await app.register(contactRoutes, { context });
  await app.register(conversationRoutes, { context });
  await app.register(messageRoutes, { context });
  await app.register(internalRoutes, { context });
  if (deps.extraRoutes) await app.register(deps.extraRoutes);

  await app.ready();
  return app;
}

export type MessageApp = Awaited<ReturnType<typeof buildApp>>;
