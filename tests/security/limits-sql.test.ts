// No SQL is built from strings. Queries go through Kysely, whose `sql` template turns
// every `${…}` into a bind parameter; what would splice text into SQL is Kysely's
// sql.raw / sql.lit / sql.id / sql.ref / sql.table and CompiledQuery.raw, or a driver
// `.query()` given a template with `${…}` or a concatenated string. None of those may
// appear in the server code (tests excluded).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const SOURCE_DIRS = ['services', 'packages', 'migrations'];

function sources(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry === 'dist' || entry === 'test') continue;
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) found.push(...sources(full));
    else if (full.endsWith('.ts') && !full.endsWith('.test.ts') && full.split(path.sep).includes('src')) found.push(full);
  }
  return found;
}

const FORBIDDEN: Array<[string, RegExp]> = [
  ['Kysely sql.raw/lit/id/ref/table (splices text)', /\bsql\s*\.\s*(raw|lit|id|ref|table)\s*\(/],
  ['CompiledQuery.raw', /CompiledQuery\s*\.\s*raw\s*\(/],
  ['.query() with an interpolated template', /\.query\s*\(\s*`[^`]*\$\{/],
  ['.query() with a concatenated string', /\.query\s*\(\s*(['"`][^'"`]*['"`]|\w+)\s*\+/],
  ['pg-format / escapeLiteral', /\b(escapeLiteral|pgFormat|format\s*\(\s*['"`][^'"`]*%[LIs])/],
];

test('server code builds no SQL from strings', () => {
  const files = SOURCE_DIRS.flatMap((dir) => sources(path.join(ROOT, dir)));
  // The scan sees the code that talks to PostgreSQL (a guard against an empty scan).
  expect(files.some((file) => file.endsWith(path.join('repositories', 'conversations-repository.ts')))).toBe(true);
  const hits: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const [what, pattern] of FORBIDDEN) {
      if (pattern.test(text)) hits.push(`${path.relative(ROOT, file)}: ${what}`);
    }
  }
  expect(hits).toEqual([]);
});

test('the patterns catch what they are meant to', () => {
  const samples = [
    'sql.raw(`select ${name}`)',
    "db.executeQuery(CompiledQuery.raw('select ' + x))",
    'client.query(`select * from t where id = ${id}`)',
    "client.query('select * from t where id = ' + id)",
    'sql.lit(value)',
  ];
  for (const sample of samples) expect({ sample, caught: FORBIDDEN.some(([, pattern]) => pattern.test(sample)) }).toEqual({ sample, caught: true });
  // A parameterized Kysely template is fine.
  expect(FORBIDDEN.some(([, pattern]) => pattern.test('sql<number>`least(${seq}::bigint, c.last_seq)`'))).toBe(false);
});
