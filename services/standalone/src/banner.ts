import { relative } from 'node:path';
import type { RunningStandalone } from './standalone';

/** What `npm start` prints once Parley serves: where to open it and where the data is. */
export function banner(running: RunningStandalone, cwd: string = process.cwd()): string {
  const shown = (path: string) => {
    const fromCwd = relative(cwd, path);
    return fromCwd && !fromCwd.startsWith('..') ? fromCwd : path;
  };
  const web = running.webClientBuilt
    ? shown(running.webRoot)
    : `not built: run \`npm run build\` (no index.html in ${shown(running.webRoot)})`;
  const lines = [
    '',
    `  Parley is running at ${running.url}`,
    '',
    running.mode === 'embedded'
      ? `  data     embedded PostgreSQL in ${shown(running.database)}`
      : `  data     PostgreSQL at ${running.database}`,
    `  events   ${running.redisUrl ? `Redis at ${running.redisUrl}` : 'in-process bus'}`,
    `  web      ${web}`,
    `  api      ${running.url}/v1   socket ${running.url.replace(/^http/, 'ws')}/ws`,
    '',
    running.mode === 'embedded'
      ? '  Ctrl-C stops it; everything is kept for the next start.'
      : '  Ctrl-C stops it.',
    '',
  ];
  return `${lines.join('\n')}\n`;
}
