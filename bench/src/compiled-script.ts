import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The compiled JavaScript of a script that is forked as a child process. Children always
 * run compiled code, also when their parent runs from the TypeScript sources under jest
 * (`bench/src/<dir>/x.ts` forks `bench/dist/<dir>/x.js`), like the services a topology starts.
 */
export function compiledScript(moduleDir: string, file: string): string {
  const here = path.join(moduleDir, file);
  if (existsSync(here)) return here;
  const built = path.resolve(moduleDir, '../../dist', path.basename(moduleDir), file);
  if (existsSync(built)) return built;
  throw new Error(`${built} not found: run \`npm run build\` (or \`npx tsc -b bench\`) first`);
}
