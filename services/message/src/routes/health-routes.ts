import type { FastifyPluginAsync } from 'fastify';

export interface HealthOptions {
  /** Each check resolves when its dependency answers and rejects when it does not. */
  checks: Record<string, () => Promise<unknown>>;
  isDraining: () => boolean;
  timeoutMs: number;
}

function withTimeout(check: () => Promise<unknown>, ms: number): Promise<'ok' | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`timeout after ${ms} ms`), ms);
  });
  const run = check().then(
    () => 'ok' as const,
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
  return Promise.race([run, timeout]).finally(() => clearTimeout(timer));
}

/** `/healthz`: the process is alive. `/readyz`: it can serve (dependencies answer, not draining). */
export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, options) => {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const names = Object.keys(options.checks);
    const results = await Promise.all(names.map((name) => withTimeout(options.checks[name]!, options.timeoutMs)));
    const checks = Object.fromEntries(names.map((name, index) => [name, results[index]]));
    const draining = options.isDraining();
    const ready = !draining && results.every((result) => result === 'ok');
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : draining ? 'draining' : 'not ready', checks });
  });
};
