/**
 * The OpenAPI document is a contract generated clients trust: every operation declares its success answer, and
 * every status the service can answer for it — including those of the layers every route of a kind shares (API
 * keys, schema validation, the body parser; src/http/declared-errors.ts). Checked on the document, and against
 * what real requests answer.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';

type Op = { security?: unknown[]; requestBody?: unknown; parameters?: { in: string }[]; responses: Record<string, unknown> };

describe('the OpenAPI document', () => {
  let t: TestApp;
  let doc: { paths: Record<string, Record<string, Op>> };
  before(async () => {
    t = await startTestApp({ config: { web: { demo: true, dashboard: true } } });
    doc = (await t.request('GET', '/openapi.json', undefined, { key: null })).body;
  });
  after(async () => t.close());

  const operations = () => Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, op })));
  const declares = (op: Op, status: number) => Object.hasOwn(op.responses, String(status));

  it('every operation declares a success answer, 500 and 503', () => {
    assert.ok(operations().length > 30, 'the document lists the routes');
    const missing = operations().filter(({ op }) => !Object.keys(op.responses).some((s) => s.startsWith('2')) || !declares(op, 500) || !declares(op, 503));
    assert.deepEqual(missing.map((o) => o.name), []);
  });

  it("a verification's status is one of its documented values", () => {
    const status = (doc as any).paths['/v1/verifications/{id}'].get.responses['200'].content['application/json'].schema.properties.status;
    assert.deepEqual(status.anyOf.map((s: { enum?: string[]; const?: string }) => s.const ?? s.enum?.[0]).sort(), ['approved', 'canceled', 'expired', 'failed', 'locked', 'pending']);
  });

  it('operations with an API key declare 401, 403 and 429; operations with a body 400, 413 and 415; with parameters 400', () => {
    const missing: string[] = [];
    for (const { name, op } of operations()) {
      const need = [...(op.security?.some((r) => Object.hasOwn(r as object, 'apiKey')) ? [401, 403, 429] : []), ...(op.requestBody ? [400, 413, 415] : []), ...(op.parameters?.length ? [400] : [])];
      for (const s of need) if (!declares(op, s)) missing.push(`${name} ${s}`);
    }
    assert.deepEqual(missing, []);
  });

  it('every operation has its own operationId, and says whether it takes an API key', () => {
    const ids = operations().map(({ name, op }) => [name, (op as { operationId?: string }).operationId] as const);
    assert.deepEqual(ids.filter(([, id]) => typeof id !== 'string' || !/^[a-z][A-Za-z0-9]+$/.test(id)), []);
    assert.equal(new Set(ids.map(([, id]) => id)).size, ids.length, 'unique');
    assert.equal((doc as any).paths['/v1/verifications'].post.operationId, 'createVerification');
    assert.deepEqual(operations().filter(({ op }) => !Array.isArray(op.security)).map((o) => o.name), [], 'security: [] where no key is needed');
    assert.deepEqual((doc as any).paths['/healthz'].get.security, []);
  });

  it('error answers are one shared component, and every reference resolves', () => {
    const send = (doc as any).paths['/v1/verifications'].post.responses;
    assert.deepEqual(send['400'], { $ref: '#/components/responses/Error' });
    assert.deepEqual(send['429'], { $ref: '#/components/responses/ErrorRetryAfter' });
    const components = (doc as any).components;
    assert.deepEqual(components.responses.ErrorRetryAfter.content['application/json'].schema, { $ref: '#/components/schemas/Error' });
    assert.ok(components.responses.ErrorRetryAfter.headers['Retry-After']);
    assert.ok(components.schemas.Error.properties.error.properties.code.enum.includes('rate_limited'));
    // Written out in full, the same error schema eight times an operation made the document 1.6 MB.
    const size = JSON.stringify(doc).length;
    assert.ok(size < 400_000, `${size} bytes`);
    const unresolved: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) return v.forEach(walk);
      if (!v || typeof v !== 'object') return;
      const ref = (v as { $ref?: unknown }).$ref;
      if (typeof ref === 'string') {
        const target = ref.replace(/^#\//, '').split('/').reduce<any>((node, k) => node?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
        if (!ref.startsWith('#/') || target === undefined) unresolved.push(ref);
      }
      Object.values(v).forEach(walk);
    };
    walk(doc);
    assert.deepEqual(unresolved, []);
  });

  it('what real requests answer is declared for their operation', async () => {
    const op = (method: string, path: string) => doc.paths[path]![method.toLowerCase()]!;
    const observed: [string, string, number][] = [];
    const call = async (method: string, url: string, template: string, body?: unknown, opts?: Parameters<TestApp['request']>[3]) => {
      const r = await t.request(method, url, body, opts);
      observed.push([method, template, r.status]);
      return r;
    };
    await call('GET', `/v1/verifications/${'a'.repeat(70)}`, '/v1/verifications/{id}');
    await call('GET', '/v1/admin/policy?x=1', '/v1/admin/policy', undefined, { key: t.adminKey });
    await call('POST', '/v1/verifications', '/v1/verifications', 'to=+6281234500001', { headers: { 'content-type': 'text/plain' } });
    await call('POST', '/v1/admin/lists', '/v1/admin/lists', { list: 'block', kind: 'ip', value: 'x'.repeat(2_000_000) }, { key: t.adminKey });
    await call('POST', '/v1/admin/policy/validate', '/v1/admin/policy/validate', {}, { key: t.adminKey });
    await call('POST', '/v1/receipts/webhook/nobody', '/v1/receipts/webhook/{sender}', {});
    // The API-key lockout: after 20 failed keys from one address, its requests are refused, on every keyed route.
    for (let i = 0; i < 21; i++) await t.request('GET', '/v1/admin/policy', undefined, { key: `osk_AAAAAAAAAAAA_${'A'.repeat(43)}` });
    await call('GET', '/v1/verifications/vf_abc', '/v1/verifications/{id}');
    await call('GET', '/v1/admin/monitoring/alerts', '/v1/admin/monitoring/alerts', undefined, { key: t.adminKey });
    assert.deepEqual(observed.map((o) => o[2]), [400, 400, 415, 413, 200, 404, 429, 429], JSON.stringify(observed));
    const undeclared = observed.filter(([m, p, s]) => !declares(op(m, p), s));
    assert.deepEqual(undeclared, []);
  });
});
