import assert from 'node:assert/strict';

/**
 * Wait until the journal is empty (at most 10 s): an entry's deletion is best-effort and not awaited by the
 * request, and on PostgreSQL it runs on another pooled connection than the test's read (a fixed 50 ms raced it).
 */
export async function emptied(journal: () => Promise<unknown[]>): Promise<void> {
  let left = await journal();
  for (let i = 0; i < 200 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = await journal();
  }
  assert.deepEqual(left, []);
}
