import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GatewayEnvSchema } from '@parley/gateway';
import { EnvSchema } from '@parley/message-service';
import { ErrorCatalogue } from '@parley/protocol';
import { StandaloneEnvSchema } from '@parley/standalone';

const root = join(__dirname, '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

// The docs are written by hand; these keep them from drifting from the code.
describe('documentation matches the code', () => {
  test('docs/errors.md lists every error code with its HTTP status', () => {
    const doc = read('docs/errors.md');
    for (const [code, { status }] of Object.entries(ErrorCatalogue)) {
      expect(doc).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
    }
  });

  test('the README lists every environment variable of the message service and the gateway', () => {
    const readme = read('README.md');
    const [, gatewaySection = ''] = readme.split('### Gateway environment');
    for (const name of Object.keys(EnvSchema.properties)) {
      expect(readme).toContain(`| \`${name}\` |`);
    }
    for (const name of Object.keys(GatewayEnvSchema.properties)) {
      expect(gatewaySection).toContain(`| \`${name}\` |`);
    }
  });

  test('docs/running.md lists every environment variable of the single-process server, with its default', () => {
    const doc = read('docs/running.md');
    for (const [name, schema] of Object.entries(StandaloneEnvSchema.properties)) {
      const fallback = (schema as { default?: unknown }).default;
      // An empty default means "computed" or "none", which the table says in words.
      const shown = fallback === undefined || fallback === '' ? '' : ` \`${String(fallback)}\` |`;
      expect({ name, listed: doc.includes(`| \`${name}\` |${shown}`) }).toEqual({ name, listed: true });
    }
  });
});
