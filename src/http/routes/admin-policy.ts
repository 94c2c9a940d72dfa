import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../../service/context.ts';
import { captchaOnlyRules, parsePolicy, DEFAULT_POLICY, type Policy } from '../../engine/policy.ts';
import { PolicySaveConflict, policyHistory, savePolicy } from '../../service/policy-store.ts';
import { recordedStep } from '../../service/journal.ts';
import { ApiError } from '../../service/errors.ts';
import { authenticate } from '../auth.ts';
import { errorResponses, Loose, NoQuery } from '../schemas.ts';

const PolicyDoc = Loose('A policy document: every section with its values (docs/policy.md)');
const NullableInt = Type.Union([Type.Integer(), Type.Null()]);
const NotEnforced = Type.Array(Type.Object({ rule: Type.String(), reason: Type.String() }), { description: 'Rules of this policy that this deployment does not enforce as written, and why' });
const PolicyInForce = Type.Object({ version: NullableInt, policy: PolicyDoc, defaults: PolicyDoc, notEnforced: NotEnforced });
const PolicySaved = Type.Object({ version: Type.Integer(), policy: PolicyDoc, notEnforced: NotEnforced });
const Validation = Type.Object({
  valid: Type.Boolean(),
  policy: Type.Optional(PolicyDoc),
  errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
});
const Versions = Type.Object({
  versions: Type.Array(
    Type.Object({ version: Type.Integer(), savedAt: Type.String({ format: 'date-time' }), savedBy: Type.Union([Type.String(), Type.Null()]), note: Type.Union([Type.String(), Type.Null()]), policy: PolicyDoc }),
  ),
});

/** View, validate, replace and list versions of the policy document. */
export function adminPolicyRoutes(ctx: AppContext): FastifyPluginAsync {
  return async function adminPolicy(app) {
    app.addHook('preHandler', authenticate(ctx));
    const common = { config: { scope: 'admin' as const } };
    // Reads need the `read` scope (admin keys have it: service/api-keys.ts grants).
    const reading = { config: { scope: 'read' as const } };
    const security = [{ apiKey: [] }];
    const Doc = Type.Record(Type.String(), Type.Unknown(), { description: 'A policy document (docs/policy.md). Missing sections take the defaults.' });

    /**
     * Rules of `p` this deployment does not enforce as written: the ones only a CAPTCHA clears run in shadow
     * (or, for `quarantine.captcha`, as a block) where no CAPTCHA provider is configured (docs/policy.md).
     */
    const notEnforced = (p: Policy) => (ctx.config.captcha ? [] : captchaOnlyRules(p).map((rule) => ({ rule, reason: 'no CAPTCHA provider configured' })));

    app.get('/v1/admin/policy', { ...reading, schema: { operationId: 'getPolicy', tags: ['admin'], summary: 'Current policy', security, querystring: NoQuery, response: { 200: PolicyInForce, ...errorResponses(401, 403) } } }, async () => {
      // The shared state refreshes lazily, on the send path: an instance that takes no sends (an admin port,
      // a quiet replica) would otherwise show the version it last saw, not the one a PUT elsewhere saved.
      await ctx.state.fresh();
      return { version: ctx.policyVersion(), policy: ctx.policy(), defaults: DEFAULT_POLICY, notEnforced: notEnforced(ctx.policy()) };
    });

    app.post(
      '/v1/admin/policy/validate',
      { ...reading, schema: { operationId: 'validatePolicy', tags: ['admin'], summary: 'Validate a policy without saving it', security, body: Doc, response: { 200: Validation, ...errorResponses(400, 401, 403) } } },
      async (req) => {
        // What PUT accepts: a `note` for the history beside the policy.
        const { note: _note, ...doc } = req.body as { note?: unknown };
        const res = parsePolicy(doc);
        return res.ok ? { valid: true, policy: res.policy } : { valid: false, errors: res.errors };
      },
    );

    app.put<{ Body: Record<string, unknown> }>(
      '/v1/admin/policy',
      { ...common, schema: { operationId: 'savePolicy', tags: ['admin'], summary: 'Replace the policy (new version)', security, body: Doc, response: { 200: PolicySaved, ...errorResponses(400, 401, 403, 409) } } },
      async (req) => {
        if (ctx.config.policyFile) {
          throw new ApiError('invalid_request', { message: `The policy is pinned to ${ctx.config.policyFile} (policyFile); change that file instead.` });
        }
        const { note, ...doc } = req.body as { note?: unknown };
        const res = parsePolicy(doc);
        if (!res.ok) throw new ApiError('invalid_request', { message: 'The policy is not valid.', extra: { details: res.errors } });
        const now = ctx.clock();
        let saved;
        try {
          // Recorded (policy.update, journaled ahead: service/journal.ts recordedStep) with the version it got.
          const by = req.apiKey?.id ?? null;
          saved = await recordedStep(
            ctx.store,
            { id: `ev_${req.id}`, at: now, type: 'policy.update', data: { version: null, by } },
            async () => {
              const s = await savePolicy(ctx.store, res.policy, { now, by, note: typeof note === 'string' ? note.slice(0, 500) : null });
              // In force here at once, even should its event fail next (the other instances adopt it from the store).
              ctx.setPolicy(res.policy, s.version);
              return s;
            },
            (s, e) => ({ ...e, data: { version: s.version, by: s.savedBy } }),
          );
        } catch (err) {
          if (!(err instanceof PolicySaveConflict)) throw err;
          // Two saves at once: the other one is in force on every instance (this one adopts it at its next
          // refresh); this one is in the history. The caller decides whether to save again.
          ctx.state.invalidate();
          throw new ApiError('conflict', { message: `Another policy save took effect at the same moment: version ${err.inForce} is in force; this document was kept in the history as version ${err.saved}. Read the policy and save again if it should replace it.`, extra: { version: err.saved, inForce: err.inForce } });
        }
        return { version: saved.version, policy: res.policy, notEnforced: notEnforced(res.policy) };
      },
    );

    app.get('/v1/admin/policy/versions', { ...reading, schema: { operationId: 'listPolicyVersions', tags: ['admin'], summary: 'Policy version history', security, querystring: NoQuery, response: { 200: Versions, ...errorResponses(401, 403) } } }, async () => ({
      versions: (await policyHistory(ctx.store)).map((v) => ({ version: v.version, savedAt: new Date(v.savedAt).toISOString(), savedBy: v.savedBy, note: v.note, policy: v.policy })),
    }));
  };
}
