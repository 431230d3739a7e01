import { banner } from './banner';
import type { RunningStandalone } from './standalone';

const base: RunningStandalone = {
  url: 'http://127.0.0.1:3000',
  port: 3000,
  mode: 'embedded',
  database: '/srv/parley/.parley/data/postgres',
  webRoot: '/srv/parley/packages/web/dist',
  webClientBuilt: true,
  stop: async () => {},
};

describe('banner', () => {
  test('embedded: the URL, the data directory (relative when under the working directory), the socket', () => {
    const text = banner(base, '/srv/parley');
    expect(text).toContain('Parley is running at http://127.0.0.1:3000');
    expect(text).toContain('data     embedded PostgreSQL in .parley/data/postgres');
    expect(text).toContain('events   in-process bus');
    expect(text).toContain('web      packages/web/dist');
    expect(text).toContain('socket ws://127.0.0.1:3000/ws');
    expect(text).toContain('everything is kept for the next start');
  });

  test('real servers, and a web client that was not built', () => {
    const text = banner(
      {
        ...base,
        mode: 'servers',
        database: 'postgres://parley@db:5432/parley',
        redisUrl: 'redis://cache:6379',
        webClientBuilt: false,
      },
      '/elsewhere',
    );
    expect(text).toContain('data     PostgreSQL at postgres://parley@db:5432/parley');
    expect(text).toContain('events   Redis at redis://cache:6379');
    expect(text).toContain('not built: run `npm run build` (no index.html in /srv/parley/packages/web/dist)');
    expect(text).not.toContain('kept for the next start');
  });
});
