/*
 * OTP Shield proof-of-work worker, served at /widget-worker.js.
 *
 * Solves one ALTCHA v1 challenge: find n in [start, max] with SHA-256(salt + n) === challenge (hex).
 * It is a separate file (not a Blob URL) because `worker-src 'self'` CSPs block blob: workers.
 *
 * Message in:  { challenge, salt, algorithm: 'SHA-256', max, start? }
 * Message out: { type: 'solved', number, took } | { type: 'not_found' } | { type: 'error', message }
 */
'use strict';

var encoder = new TextEncoder();
// Digests are started in batches: each crypto.subtle call has fixed async overhead, and overlapping
// them roughly doubles throughput compared with awaiting one at a time.
var BATCH = 256;

function hexToBytes(hex) {
  var out = new Uint8Array(hex.length / 2);
  for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function sameBytes(buf, target) {
  var a = new Uint8Array(buf);
  if (a.length !== target.length) return false;
  for (var i = 0; i < a.length; i++) if (a[i] !== target[i]) return false;
  return true;
}

async function solve(job) {
  if (job.algorithm !== 'SHA-256') throw new Error('unsupported algorithm');
  if (typeof job.challenge !== 'string' || !/^[0-9a-f]{64}$/.test(job.challenge)) throw new Error('bad challenge');
  var target = hexToBytes(job.challenge);
  var max = Number(job.max);
  var t0 = Date.now();
  for (var n = Number(job.start) || 0; n <= max; n += BATCH) {
    var end = Math.min(max, n + BATCH - 1);
    var jobs = [];
    for (var i = n; i <= end; i++) jobs.push(crypto.subtle.digest('SHA-256', encoder.encode(job.salt + i)));
    var digests = await Promise.all(jobs);
    for (var k = 0; k < digests.length; k++) {
      if (sameBytes(digests[k], target)) return { type: 'solved', number: n + k, took: Date.now() - t0 };
    }
  }
  return { type: 'not_found' };
}

self.onmessage = function (event) {
  solve(event.data || {}).then(
    function (result) {
      self.postMessage(result);
    },
    function (err) {
      self.postMessage({ type: 'error', message: String((err && err.message) || err) });
    },
  );
};
