import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedSerializer } from '../../src/lib/keyed-serializer.ts';

const tick = () => new Promise((r) => setImmediate(r));

test('tasks sharing a key run one at a time, in arrival order; others run alongside; keys are forgotten', async () => {
  const q = new KeyedSerializer();
  const log: string[] = [];
  const task = (name: string, keys: string[]) =>
    q.run(keys, async () => {
      log.push(`${name}+`);
      await tick();
      await tick();
      log.push(`${name}-`);
      return name;
    });
  const results = await Promise.all([task('a', ['ip:1', 'n:1']), task('b', ['ip:1', 'n:2']), task('c', ['ip:2', 'n:3']), task('d', ['ip:3', 'n:1'])]);
  assert.deepEqual(results, ['a', 'b', 'c', 'd']);
  // a and c start at once; b (shares ip:1) and d (shares n:1) wait for a.
  assert.deepEqual(log.slice(0, 2), ['a+', 'c+']);
  assert.ok(log.indexOf('b+') > log.indexOf('a-'));
  assert.ok(log.indexOf('d+') > log.indexOf('a-'));
  assert.equal(q.size, 0);
});

test('a task that throws releases its keys', async () => {
  const q = new KeyedSerializer();
  await assert.rejects(q.run(['k'], async () => {
    throw new Error('boom');
  }));
  assert.equal(await q.run(['k'], async () => 42), 42);
  assert.equal(q.size, 0);
});

test('read-then-write under the same key is exact with 100 parallel tasks', async () => {
  const q = new KeyedSerializer();
  let counter = 0;
  await Promise.all(
    Array.from({ length: 100 }, () =>
      q.run(['same'], async () => {
        const seen = counter;
        await tick();
        counter = seen + 1;
      }),
    ),
  );
  assert.equal(counter, 100);
});
