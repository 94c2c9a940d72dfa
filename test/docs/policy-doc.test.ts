/**
 * docs/policy.md promises that its "A complete policy" listing has every key with its default value. A
 * listing written by hand drifts (it once showed a device limit 12× lower than the code's, and users who
 * sent it as told cut their limits without knowing): this test holds it to the code.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parsePolicy } from '../../src/engine/policy.ts';

function completePolicyListing(): unknown {
  const md = readFileSync(new URL('../../docs/policy.md', import.meta.url), 'utf8');
  const section = md.slice(md.indexOf('## A complete policy'));
  const m = /```yaml\n([\s\S]*?)```/.exec(section);
  assert.ok(m, 'docs/policy.md has a yaml block under "A complete policy"');
  return parse(m[1]!);
}

/** Every key path of a JSON value; arrays are values (a list is set whole). */
function paths(v: unknown, at = ''): string[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return [at];
  const out: string[] = [];
  for (const [k, x] of Object.entries(v)) out.push(...paths(x, `${at}/${k}`));
  return out.length ? out : [at];
}

it('the complete policy in docs/policy.md is valid and equal to the defaults', () => {
  const doc = completePolicyListing();
  const parsed = parsePolicy(doc);
  const defaults = parsePolicy({});
  assert.ok(parsed.ok, JSON.stringify(!parsed.ok && parsed.errors));
  assert.ok(defaults.ok);
  assert.deepEqual(parsed.policy, defaults.policy);
});

it('the complete policy in docs/policy.md names every key of the defaults, and no other', () => {
  const defaults = parsePolicy({});
  assert.ok(defaults.ok);
  assert.deepEqual(paths(completePolicyListing()).sort(), paths(JSON.parse(JSON.stringify(defaults.policy))).sort());
});
