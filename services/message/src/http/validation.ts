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
  });
  addFormats(ajv);
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
