import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClientFrame, CloseCodes, ServerFrame } from '@parley/protocol';

// docs/protocol.md is written by hand; this keeps it from drifting from ws.ts.
const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'protocol.md'), 'utf8');


describe('docs/protocol.md matches ws.ts', () => {
  test('the close-code table lists every close code with its name', () => {
    for (const [name, { code }] of Object.entries(CloseCodes)) {
      expect(doc).toMatch(new RegExp(`\\| ${code} \\| \`${name}\` \\|`));
    }
  });

  test('every client frame type has its own example', () => {
    for (const type of ClientFrame.anyOf.map((schema) => schema.properties.type.const)) {
      expect(doc).toContain(`{ "type": "${type}", "id": `);
    }
  });

  test('every server frame type is documented with an example', () => {
    for (const type of ServerFrame.anyOf.map((schema) => schema.properties.type.const)) {
      expect(doc).toContain(`{ "type": "${type}"`);
    }
  });
});
