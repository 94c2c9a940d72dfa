/**
 * The OpenAPI document as served: @fastify/swagger writes every route's error answers out in full, the same
 * `Error` schema eight times an operation (401, 403, 429, 400, 413, 415, 500, 503), which made the document
 * 1.6 MB and gave client generators hundreds of identical error classes to emit. Here the answers that are
 * exactly the shared error body become references to one `components.responses` entry each (with and without
 * `Retry-After`), whose schema is `components.schemas.Error`. An answer a route describes its own way stays.
 */
import type { OpenAPIV3 } from 'openapi-types';

const ERROR_REF = '#/components/schemas/Error';

function stable(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
}

function firstAnswer(doc: OpenAPIV3.Document, status: string): OpenAPIV3.ResponseObject | undefined {
  for (const ops of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(ops ?? {})) {
      const r = (op as OpenAPIV3.OperationObject | undefined)?.responses?.[status];
      if (r && typeof r === 'object' && !('$ref' in r)) return r;
    }
  }
  return undefined;
}

export function withSharedErrors(doc: OpenAPIV3.Document): OpenAPIV3.Document {
  // The 500 answer is always the shared error body (errorResponses adds it to every route, and no route
  // describes its own), so it names the shapes to share.
  // The 503 answer is that body with its Retry-After header (overload, store outage: every route).
  const sample = firstAnswer(doc, '500');
  const retrySample = firstAnswer(doc, '503');
  const schema = sample?.content?.['application/json']?.schema;
  if (!sample || !schema || !retrySample?.headers) return doc;
  const plain = stable({ description: sample.description, content: sample.content });
  const retryHeaders = retrySample.headers;
  const retry = stable(retryHeaders);
  const shared: Record<string, OpenAPIV3.ResponseObject> = {
    Error: { description: sample.description, content: { 'application/json': { schema: { $ref: ERROR_REF } } } },
    ErrorRetryAfter: { description: sample.description, headers: retryHeaders, content: { 'application/json': { schema: { $ref: ERROR_REF } } } },
  };
  const paths: OpenAPIV3.PathsObject = {};
  for (const [path, ops] of Object.entries(doc.paths ?? {})) {
    const out: Record<string, unknown> = {};
    for (const [method, op] of Object.entries(ops ?? {})) {
      const o = op as OpenAPIV3.OperationObject;
      if (!o || typeof o !== 'object' || !o.responses) { out[method] = op; continue; }
      const responses: OpenAPIV3.ResponsesObject = {};
      for (const [status, r] of Object.entries(o.responses)) {
        if ('$ref' in r) { responses[status] = r; continue; }
        const { headers, ...rest } = r;
        const same = stable(rest) === plain;
        responses[status] = !same ? r : headers === undefined ? { $ref: '#/components/responses/Error' } : stable(headers) === retry ? { $ref: '#/components/responses/ErrorRetryAfter' } : r;
      }
      out[method] = { ...o, responses };
    }
    paths[path] = out as OpenAPIV3.PathItemObject;
  }
  return {
    ...doc,
    paths,
    components: {
      ...doc.components,
      schemas: { ...doc.components?.schemas, Error: schema as OpenAPIV3.SchemaObject },
      responses: { ...doc.components?.responses, ...shared },
    },
  };
}
