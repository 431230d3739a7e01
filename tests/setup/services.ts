import type * as Testcontainers from 'testcontainers';

/**
 * Finds the PostgreSQL and Redis the tests run against: DATABASE_URL and REDIS_URL
 * when set, else containers started with testcontainers when a Docker engine is
 * reachable, else a failure that says how to provide them. Never a mock.
 */
export interface TestServices {
  databaseUrl: string;
  redisUrl: string;
  stop: () => Promise<void>;
}

const HOW_TO =
  'Tests need a real PostgreSQL and Redis. Either set DATABASE_URL (a role that may CREATE DATABASE) ' +
  'and REDIS_URL, e.g.\n  DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379 npm test\n' +
  'or run a Docker engine so testcontainers can start them.';

export async function resolveTestServices(): Promise<TestServices> {
  const databaseUrl = process.env['DATABASE_URL'];
  const redisUrl = process.env['REDIS_URL'];
  if (databaseUrl && redisUrl) return { databaseUrl, redisUrl, stop: async () => {} };
  if (databaseUrl || redisUrl) throw new Error(`Set both DATABASE_URL and REDIS_URL, or neither.\n${HOW_TO}`);

  let containers: typeof Testcontainers;
  try {
    containers = await import('testcontainers');
  } catch (error) {
    throw new Error(`testcontainers could not be loaded (${String(error)}).\n${HOW_TO}`);
  }
  try {
    const postgres = await new containers.GenericContainer('postgres:15-alpine')
      .withEnvironment({ POSTGRES_PASSWORD: 'parley', POSTGRES_USER: 'parley', POSTGRES_DB: 'parley' })
      .withExposedPorts(5432)
      .withWaitStrategy(containers.Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start();
    const redis = await new containers.GenericContainer('redis:7-alpine')
      .withExposedPorts(6379)
      .withWaitStrategy(containers.Wait.forLogMessage(/Ready to accept connections/))
      .start();
    return {
      databaseUrl: `postgres://parley:parley@${postgres.getHost()}:${postgres.getMappedPort(5432)}/parley`,
      redisUrl: `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`,
      stop: async () => {
        await Promise.allSettled([postgres.stop(), redis.stop()]);
      },
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (message.includes('Could not find a working container runtime strategy')) {
      throw new Error(`No DATABASE_URL/REDIS_URL and no Docker engine.\n${HOW_TO}`);
    }
    throw error;
  }
}
