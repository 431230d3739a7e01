// fast-check generators of client frames for the gateway fuzz test: valid frames,
// near-valid ones (a field removed, added or replaced by something hostile, huge or
// odd numbers, long strings, unknown types), deep nesting, garbage text, binary frames,
// and the rare frame that must close the socket (invalid UTF-8, one byte over the size).
import fc from 'fast-check';

export interface FuzzFrame {
  kind: 'text' | 'binary';
  data: string | Buffer;
  /** Close codes this frame must end its socket with; undefined: it must get exactly one reply. */
  closesWith?: readonly number[];
  /** For the tally: which generator made it. */
  family: string;
}

const requestId = fc.string({ minLength: 1, maxLength: 64 });

/** Values an attacker might put anywhere. */
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.double(),
  fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, -0, 2 ** 64, 4e-320),
  fc.integer(),
  fc.string({ maxLength: 64 }),
  fc.string({ minLength: 1000, maxLength: 5000, unit: 'binary-ascii' }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 20 }),
  fc.anything({ maxDepth: 3, maxKeys: 5, withNullPrototype: true }),
  fc.constant({ toString: 'boom', valueOf: 1, __proto__: { type: 'ping' } }),
);

/** Number literals JSON.stringify would never write (so they are spliced in as text). */
const oddNumber = fc.constantFrom(
  '1e999',
  '-1e999',
  '9007199254740993',
  '1' + '0'.repeat(400),
  '-0',
  '0.000000000000000000001',
  '1.5',
  '1e-400',
  '123456789012345678901234567890e-20',
  '4294967296',
  '2147483648',
);

export function frameArbitrary(conversationId: string): fc.Arbitrary<FuzzFrame> {
  const conversation = fc.oneof({ weight: 4, arbitrary: fc.constant(conversationId) }, { weight: 1, arbitrary: fc.uuid() });
  const cheapValid: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ type: fc.constant('ping'), id: requestId }) },
    { weight: 3, arbitrary: fc.record({ type: fc.constant('typing'), id: requestId, conversationId: conversation }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('auth'), id: requestId, token: fc.string({ minLength: 1, maxLength: 300 }) }) },
  );
  // Sends and reads reach PostgreSQL: kept to about one frame in a hundred.
  const storingValid: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
    fc.record({
      type: fc.constant('send'),
      id: requestId,
      conversationId: conversation,
      clientMessageId: fc.uuid(),
      body: fc.string({ minLength: 1, maxLength: 200 }),
    }),
    fc.record({ type: fc.constant('read'), id: requestId, conversationId: conversation, seq: fc.nat() }),
  );
  const text = (family: string) => (data: string): FuzzFrame => ({ kind: 'text', data, family });

  const nearValid = fc
    .tuple(
      fc.oneof(cheapValid, storingValid),
      fc.constantFrom('drop', 'replace', 'extra', 'type', 'id'),
      fc.nat(),
      hostile,
      fc.string({ maxLength: 30 }),
    )
    .map(([frame, how, index, value, name]) => {
      const copy: Record<string, unknown> = { ...frame };
      const keys = Object.keys(copy);
      const key = keys[index % keys.length]!;
      if (how === 'drop') delete copy[key];
      else if (how === 'replace') copy[key] = value;
      else if (how === 'extra') copy[name || 'extra'] = value;
      else if (how === 'type') copy['type'] = typeof value === 'string' ? value : name;
      else copy['id'] = typeof value === 'string' && value.length > 0 ? value.repeat(2).padEnd(65, 'x') : value;
      return JSON.stringify(copy) ?? 'undefined';
    })
    .map(text('near-valid'));

  const oddNumbers = fc
    .tuple(fc.constantFrom('read', 'send', 'ping', 'typing'), fc.constantFrom('seq', 'id', 'conversationId', 'body'), oddNumber)
    .map(
      ([type, field, number]) =>
        `{"type":"${type}","id":"n","conversationId":"${conversationId}","seq":1,"body":"b","clientMessageId":"c"`.replace(
          new RegExp(`"${field}":("[^"]*"|\\d+)`),
          `"${field}":${number}`,
        ) + '}',
    )
    .map(text('odd-number'));

  const deep = fc
    // At most 5,000 levels: the deepest (6 bytes a level) stays under the 32 KiB frame limit.
    .tuple(fc.integer({ min: 1, max: 5000 }), fc.constantFrom('array', 'object', 'in-body', 'unbalanced'))
    .map(([depth, shape]) => {
      if (shape === 'array') return '['.repeat(depth) + ']'.repeat(depth);
      if (shape === 'object') return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
      if (shape === 'in-body') return `{"type":"send","id":"d","body":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      return '{"type":"ping","id":"u","x":' + '['.repeat(depth);
    })
    .map(text('deep'));

  const garbage = fc
    .oneof(
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.string({ unit: 'grapheme', maxLength: 300 }),
      fc.json({ maxDepth: 4 }),
      fc.constantFrom(
        '',
        ' ',
        'null',
        'true',
        '"ping"',
        '[]',
        '{}',
        '{"type":null}',
        '{"__proto__":{"type":"ping","id":"p"}}',
        '{"type":"ping","id":"a","__proto__":{"x":1}}',
        '{"type":"constructor","id":"c"}',
        '{"type":"__proto__","id":"c"}',
        '{"type":"toString","id":"c"}',
        '{"type":"hasOwnProperty","id":"c"}',
        '{"type":"ping","id":"dup","id":"dup2"}',
        '\uFEFF{"type":"ping","id":"bom"}',
        '{"type":"ping","id":"\\ud800"}',
      ),
    )
    .map(text('garbage'));

  const binary = fc
    .oneof(
      fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
      cheapValid.map((frame) => Buffer.from(JSON.stringify(frame))),
    )
    .map((data): FuzzFrame => ({ kind: 'binary', data, family: 'binary' }));

  // Invalid UTF-8 in a text frame, and one byte over the size limit: both end the socket.
  const invalidUtf8 = fc
    .tuple(fc.uint8Array({ maxLength: 100 }), fc.constantFrom([0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]))
    .map(([bytes, bad]): FuzzFrame => ({
      kind: 'text',
      data: Buffer.concat([Buffer.from(bytes), Buffer.from(bad)]),
      closesWith: [1007],
      family: 'invalid-utf8',
    }));

  return fc.oneof(
    { weight: 250, arbitrary: cheapValid.map((frame) => JSON.stringify(frame)).map(text('valid')) },
    { weight: 20, arbitrary: storingValid.map((frame) => JSON.stringify(frame)).map(text('valid-stored')) },
    { weight: 300, arbitrary: nearValid },
    { weight: 60, arbitrary: oddNumbers },
    { weight: 40, arbitrary: deep },
    { weight: 200, arbitrary: garbage },
    { weight: 120, arbitrary: binary },
    { weight: 1, arbitrary: invalidUtf8 },
  );
}

/** One byte over `maxFrameBytes`: a valid ping padded with whitespace. */
export function oversizedFrame(maxFrameBytes: number): FuzzFrame {
  const text = JSON.stringify({ type: 'ping', id: 'too-big' });
  return { kind: 'text', data: text + ' '.repeat(maxFrameBytes + 1 - text.length), closesWith: [1009], family: 'oversized' };
}
