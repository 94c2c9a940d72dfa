/**
 * The OpenAPI document must list every status a route can answer, or generated clients treat the rest as
 * undeclared. Some come from layers every route of a kind shares (API-key checks, schema validation, the body
 * parser), so each route would have to repeat them by hand, and forgets: this hook adds them to every
 * documented route as it is registered (before @fastify/swagger reads the schemas when the document is built).
 */
import type { FastifyInstance } from 'fastify';
import { errorResponses, implicitErrorStatuses } from './schemas.ts';

const SCOPE_NOTES: Record<string, string> = {
  verify: 'API key scope: `verify`.',
  admin: 'API key scope: `admin`.',
  read: 'API key scope: `read` (an `admin` key has it too).',
  metrics: 'API key scope: `metrics` (a `read` or `admin` key has it too).',
};

export function installDeclaredErrors(app: FastifyInstance): void {
  app.addHook('onRoute', (r) => {
    const schema = r.schema as (Record<string, unknown> & { hide?: boolean; response?: Record<string, unknown> }) | undefined;
    if (!schema || schema.hide) return;
    const methods = (Array.isArray(r.method) ? r.method : [r.method]).map((m) => m.toUpperCase());
    const statuses = implicitErrorStatuses({
      authenticated: typeof (r.config as { scope?: unknown } | undefined)?.scope === 'string',
      body: schema.body !== undefined || methods.some((m) => m === 'POST' || m === 'PUT' || m === 'PATCH'),
      params: schema.params !== undefined,
      query: schema.querystring !== undefined,
    });
    // A route without an API key says so (`security: []`), or generators and linters take it for an omission;
    // the dashboard's session routes and the signed receipts declare their own.
    if (schema.security === undefined && typeof (r.config as { scope?: unknown } | undefined)?.scope !== 'string') schema.security = [];
    // The key a route needs, in its description: a bearer scheme has no scopes in OpenAPI 3.0.
    const scope = (r.config as { scope?: unknown } | undefined)?.scope;
    // Once: a GET's automatic HEAD route shares its schema object, and the hook sees both.
    const note = typeof scope === 'string' ? SCOPE_NOTES[scope] : undefined;
    if (note && !(typeof schema.description === 'string' && schema.description.includes(note))) schema.description = [schema.description, note].filter(Boolean).join('\n\n');
    const declared = errorResponses(...statuses);
    // What the route declares itself wins (its own description or headers for that status).
    schema.response = { ...declared, ...(schema.response ?? {}) };
  });
}
