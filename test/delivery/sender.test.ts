import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scrubCode } from '../../src/delivery/sender.ts';

test('scrubCode masks the code, spaced or dotted, and a start of it cut off by a clip', () => {
  assert.equal(scrubCode('code is 482913.', '482913'), 'code is ******.');
  assert.equal(scrubCode('code is 482 913 and 48-29-13', '482913'), 'code is ****** and ******');
  // A custom sender that clips before it scrubs: the digits before the … are the code's first ones.
  assert.equal(scrubCode('your code is 48291…', '482913'), 'your code is *****…');
  assert.equal(scrubCode('your code is 4 8…', '482913'), 'your code is **…');
  // Not at a cut, or not the code's start: untouched.
  assert.equal(scrubCode('error 48291', '482913'), 'error 48291');
  assert.equal(scrubCode('status 503…', '482913'), 'status 503…');
});
