/**
 * Policy versions under concurrent saves: two admins saving at the same moment on two instances once got the
 * same version number, and the instances kept different policies under it forever (the head was a
 * read-then-write counter plus a separate document). Now every save gets its own number, every instance
 * converges on the one document in force, and a save that another overtook says so (PolicySaveConflict).
 * Run on the memory store and on a real Redis through two connections (two instances).
 */
import { it, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, type Policy } from '../../src/engine/policy.ts';
import { PolicySaveConflict, policyHistory, refreshPolicy, savePolicy } from '../../src/service/policy-store.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { RedisStore } from '../../src/store/redis.ts';
import type { Store } from '../../src/store/interface.ts';
import { describeWithService, randomTag } from '../helpers/services.ts';
import { dropRedisPrefix } from '../helpers/every-store.ts';

const policyNamed = (name: string): Policy => {
  const r = parsePolicy({ name });
  assert.ok(r.ok);
  return r.policy;
};

async function concurrentSaves(a: Store, b: Store): Promise<void> {
  const now = Date.parse('2026-11-27T00:00:00Z');
  const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => savePolicy(i % 2 ? a : b, policyNamed(`p${i}`), { now, by: null, note: `save ${i}` })));
  for (const o of outcomes) if (o.status === 'rejected') assert.ok(o.reason instanceof PolicySaveConflict, String(o.reason));
  const ok = outcomes.filter((o) => o.status === 'fulfilled').map((o) => (o as PromiseFulfilledResult<{ version: number }>).value.version);
  assert.ok(ok.length >= 1, 'at least one save took effect');

  // Every save has its own number, and the history holds all 20.
  const history = await policyHistory(a);
  const versions = history.map((v) => v.version);
  assert.equal(new Set(versions).size, 20, versions.join(','));
  assert.deepEqual(new Set(history.map((v) => v.note)).size, 20);

  // Both instances converge on one document, whose number is its own, and it is one that reported success.
  const [ra, rb] = await Promise.all([refreshPolicy(a, 0), refreshPolicy(b, 0)]);
  assert.ok(ra && rb && ra.policy && rb.policy);
  assert.equal(ra.version, rb.version);
  assert.equal(ra.policy.name, rb.policy.name);
  assert.equal(history.find((v) => v.version === ra.version)?.policy.name, ra.policy.name, 'the version in force names its own document');
  assert.ok(ok.includes(ra.version), `in force ${ra.version}, succeeded ${ok.join(',')}`);
}

describe('policy versions', () => {
  it('concurrent saves on one store (memory): unique versions, one policy in force everywhere', async () => {
    const store = new MemoryStore();
    await concurrentSaves(store, store);
  });

  it('follows a save made by an instance of the previous version (legacy keys only) during a rolling upgrade', async () => {
    const store = new MemoryStore();
    const now = Date.now();
    await savePolicy(store, policyNamed('new-instance'), { now, by: null, note: null });
    // What an older instance writes on save.
    await store.putSetting('policy:current', policyNamed('old-instance'));
    await store.putSetting('policy:version', 2);
    const r = await refreshPolicy(store, 1);
    assert.equal(r?.version, 2);
    assert.equal(r?.policy?.name, 'old-instance');
    // And the next save continues above it.
    assert.equal((await savePolicy(store, policyNamed('next'), { now, by: null, note: null })).version, 3);
    assert.equal((await refreshPolicy(store, 2))?.policy?.name, 'next');
  });

  it('a document saved by a newer version (keys this one does not know) loads without them, not as the defaults', async () => {
    const store = new MemoryStore();
    const saved = policyNamed('from-the-future') as unknown as Record<string, any>;
    saved.numbers.denyCountries = ['UZ'];
    saved.monitoring.alerts.somethingNew = { enabled: true };
    saved.brandNewSection = { x: 1 };
    await store.putSetting('policy:head', { version: 4, policy: saved });
    const r = await refreshPolicy(store, 0);
    assert.ok(r?.policy, JSON.stringify(r));
    assert.equal(r.policy.name, 'from-the-future');
    assert.deepEqual(r.policy.numbers.denyCountries, ['UZ'], 'the operator\'s settings are kept');
    assert.deepEqual(r.warnings.map((w) => [w.path, w.message.split(':')[0]]).sort(), [['/brandNewSection', 'ignored'], ['/monitoring/alerts/somethingNew', 'ignored']]);
    assert.equal('somethingNew' in (r.policy.monitoring.alerts as object), false);
    // Many of them (the parser names a limited number per pass), and a rule this version does not have.
    for (let i = 0; i < 30; i++) saved.monitoring.alerts[`future${i}`] = { enabled: true };
    saved.risk.rules['rule.from_the_future'] = { action: 'block' };
    await store.putSetting('policy:head', { version: 5, policy: saved });
    const many = await refreshPolicy(store, 4);
    assert.ok(many?.policy, JSON.stringify(many));
    assert.deepEqual(many.policy.numbers.denyCountries, ['UZ']);
    assert.equal(many.warnings.filter((w) => w.message.startsWith('ignored')).length, 33);
    assert.ok(many.warnings.some((w) => w.path === '/risk/rules/rule.from_the_future'));
    // A wrong value is still an error, reported as itself, also behind unknown keys.
    await store.putSetting('policy:head', { version: 6, policy: { ...saved, risk: { ...saved.risk, blockAt: 'high' } } });
    const bad = await refreshPolicy(store, 5);
    assert.equal(bad?.policy, null);
    assert.ok(bad && bad.policy === null && bad.errors.some((e) => e.path === '/risk/blockAt'), JSON.stringify(bad));
  });
});

await describeWithService('redis', 'policy versions on Redis, two instances', (redisUrl) => {
  const prefix = `otps-test:${randomTag()}:`;
  const a = new RedisStore(redisUrl, { prefix });
  const b = new RedisStore(redisUrl, { prefix });
  after(async () => {
    await a.close();
    await b.close();
    await dropRedisPrefix(redisUrl, prefix);
  });

  it('concurrent saves through two connections: unique versions, one policy in force everywhere', async () => {
    await concurrentSaves(a, b);
  });
});
