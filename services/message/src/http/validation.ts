import Ajv, { type AnySchema } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

function makeAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({
    // Unknown fields are an error, not silently dropped (Fastify's default strips them).
    removeAdditional: false,
    useDefaults: true,
    coerceTypes,
    allErrors: false,
    // TypeBox schemas carry `kind` markers Ajv does not know.
    strict: false,
    // maxLength counts UTF-16 code units, as documented in Limits (not code points).
    // Ajv marks the option deprecated and would print that to the console at every start.
    unicode: false,
    logger: false,
  });
  addFormats(ajv);
  // ajv-formats' uuid also accepts `urn:uuid:…`, which PostgreSQL's uuid type rejects.
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  return ajv;
}

/**
 * Bodies are JSON and must have the right types: `"5"` is not a number. Query strings
 * and path params are text by nature, so they are coerced (`?limit=20` is a number).
 */
export function createValidatorCompiler(): FastifySchemaCompiler<AnySchema> {
  const strict = makeAjv(false);
  const coercing = makeAjv(true);
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema);
}
