import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { onEveryStore } from '../helpers/every-store.ts';

const A = '+6281234567001';
const B = '+6281334567002';
const client = (ip: string, extra: Record<string, unknown> = {}) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400, ...extra });

describe('GET /v1/admin/events', () => {
  let t: TestApp;
  const codes: string[] = [];
  let startedAt = 0;
  before(async () => {
    t = await startTestApp();
    startedAt = t.clock();
    // A: sent, one wrong check, approved. B: sent from another IP and device, then a honeypot bot to B.
    const a = await t.request('POST', '/v1/verifications', { to: A, client: client('36.72.10.5', { deviceId: 'dev-a' }) });
    assert.equal(a.status, 201, a.text);
    codes.push(t.lastCode(A)!);
    t.clock.advance(10_000);
    await t.request('POST', '/v1/verifications/check', { id: a.body.id, code: codes[0] === '000000' ? '111111' : '000000' });
    t.clock.advance(10_000);
    const ok = await t.request('POST', '/v1/verifications/check', { id: a.body.id, code: codes[0] });
    assert.equal(ok.body.status, 'approved');
    t.clock.advance(60_000);
    const b = await t.request('POST', '/v1/verifications', { to: B, client: client('36.72.99.1', { deviceId: 'dev-b' }) });
    assert.equal(b.status, 201, b.text);
    codes.push(t.lastCode(B)!);
    t.clock.advance(60_000);
    await t.request('POST', '/v1/verifications', { to: '+6281334567003', client: client('36.72.99.2', { honeypot: 'x' }) });
  });
  after(async () => t.close());

  const get = (qs: string, key?: string | null) => t.request('GET', `/v1/admin/events${qs}`, undefined, { key: key === undefined ? t.adminKey : key });

  it('needs an admin key', async () => {
    assert.equal((await get('', null)).status, 401);
    assert.equal((await get('', t.verifyKey)).status, 403);
    assert.equal((await get('')).status, 200);
  });

  it('lists events newest first, masked by default, never with a code', async () => {
    const res = await get('');
    assert.equal(res.status, 200, res.text);
    const ev = res.body.events as any[];
    assert.ok(ev.length >= 5, `got ${ev.length}`);
    for (let i = 1; i < ev.length; i++) assert.ok(ev[i - 1].seq > ev[i].seq, 'newest first');
    const numbers = ev.map((e) => e.to).filter(Boolean);
    assert.ok(numbers.length > 0);
    for (const n of numbers) assert.match(n, /\*/, 'numbers are masked by default (privacy.maskNumbersInLogs)');
    for (const c of codes) assert.ok(!res.text.includes(c), 'no code in the audit log');
    const unmasked = await get('?mask=false');
    assert.ok(unmasked.body.events.some((e: any) => e.to === A));
  });

  it('records a read in full (mask=false) as a data.read event naming the key and the filters, the number masked', async () => {
    const reads = async () => (await get('?type=data.read&mask=false')).body.events as any[];
    const before = (await reads()).length;
    await get('?type=send'); // masked: not recorded
    assert.equal((await reads()).length, before + 1, 'only the listing above, itself in full, was recorded');
    const r = await get(`?mask=false&number=${encodeURIComponent('+62 812-3456-7001')}&decision=allow`);
    assert.equal(r.body.events.length, 1);
    const [ev] = await reads();
    assert.deepEqual(ev.data, { by: t.adminKey.split('_')[1], what: 'events', count: 1, filters: { number: '+62812*****001', decision: 'allow' } });
    assert.equal(ev.to, null);
    // A prefix filter as long as a number is masked like one; a real prefix is not.
    await get(`?mask=false&prefix=${encodeURIComponent(A)}`);
    assert.deepEqual((await reads())[0].data.filters, { prefix: '+62812*****001' });
    await get(`?mask=false&prefix=${encodeURIComponent('+62812')}`);
    assert.deepEqual((await reads())[0].data.filters, { prefix: '+62812' });
  });

  it('filters by number (any format), prefix, IP, device, decision, reason, type and time', async () => {
    const byNumber = (await get(`?mask=false&number=${encodeURIComponent('+62 812-3456-7001')}`)).body.events as any[];
    assert.deepEqual(byNumber.map((e) => e.type).sort(), ['check', 'check', 'send']);
    assert.ok(byNumber.every((e) => e.to === A));

    const byPrefix = (await get(`?mask=false&prefix=${encodeURIComponent('+62813')}`)).body.events as any[];
    assert.ok(byPrefix.length >= 2 && byPrefix.every((e) => e.prefix === '+62813' && e.to.startsWith('+62813')));
    // Any length: a shorter prefix takes in both ranges, a longer one a block of one of them.
    const wider = (await get(`?mask=false&prefix=${encodeURIComponent('+6281')}`)).body.events as any[];
    assert.ok(wider.some((e) => e.to.startsWith('+62812')) && wider.some((e) => e.to.startsWith('+62813')), JSON.stringify(wider.map((e) => e.to)));
    const block = (await get(`?mask=false&prefix=${encodeURIComponent(A.slice(0, 10))}`)).body.events as any[];
    assert.ok(block.length >= 1 && block.every((e) => e.to.startsWith(A.slice(0, 10))), JSON.stringify(block.map((e) => e.to)));

    const byIp = (await get('?ip=36.72.99.1')).body.events as any[];
    assert.equal(byIp.length, 1);
    assert.equal(byIp[0].ip, '36.72.99.1');

    const byDevice = (await get('?device=dev-a')).body.events as any[];
    assert.ok(byDevice.length >= 1 && byDevice.every((e) => e.deviceId === 'dev-a'));

    const approved = (await get('?decision=approved')).body.events as any[];
    assert.equal(approved.length, 1);
    assert.equal(approved[0].type, 'check');

    const honeypot = (await get('?reason=honeypot')).body.events as any[];
    assert.equal(honeypot.length, 1);
    assert.equal(honeypot[0].decision, 'tarpit');

    const checks = (await get('?type=check')).body.events as any[];
    assert.equal(checks.length, 2);

    const early = (await get(`?to=${encodeURIComponent(new Date(startedAt + 30_000).toISOString())}`)).body.events as any[];
    assert.ok(early.length === 3 && early.every((e) => Date.parse(e.at) < startedAt + 30_000), JSON.stringify(early.map((e) => e.at)));
    const late = (await get(`?from=${encodeURIComponent(new Date(startedAt + 30_000).toISOString())}`)).body.events as any[];
    // Epoch milliseconds mean the same, as in /v1/admin/stats.
    assert.deepEqual(((await get(`?from=${startedAt + 30_000}`)).body.events as any[]).map((e) => e.id), late.map((e) => e.id));
    assert.ok(late.length >= 2 && late.every((e) => Date.parse(e.at) >= startedAt + 30_000));
  });

  it('pages with a cursor: every event exactly once, in order', async () => {
    const all = (await get('?limit=1000')).body.events as any[];
    const seen: number[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 50; i++) {
      const res = await get(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(res.status, 200);
      seen.push(...res.body.events.map((e: any) => e.seq));
      cursor = res.body.nextCursor;
      if (!cursor) break;
    }
    assert.deepEqual(seen, all.map((e) => e.seq));
  });

  it('rejects bad filters with 400', async () => {
    const inverted = `?from=${encodeURIComponent('2027-01-01T00:00:00Z')}&to=${encodeURIComponent('2020-01-01T00:00:00Z')}`;
    const leapSecond = `?to=${encodeURIComponent('2026-11-27T23:59:60Z')}`;
    for (const qs of ['?limit=0', '?limit=5000', '?from=yesterday', '?number=abc', '?cursor=-1', '?prefix=62812', '?unknown=1', inverted, leapSecond, '?ip=zzz', '?ip=1.2.3.4.5']) {
      const res = await get(qs);
      assert.equal(res.status, 400, `${qs}: ${res.text}`);
      assert.equal(res.body.error.code, 'invalid_request');
    }
  });

  it('matches an IP filter in any spelling of the address (events keep the canonical form)', async () => {
    const r = await t.request('POST', '/v1/verifications', { to: '+6281334567099', client: client('2001:db8::5', { deviceId: 'dev-v6' }) });
    assert.equal(r.status, 201, r.text);
    for (const spelling of ['2001:db8::5', '2001:DB8:0:0:0:0:0:5', '2001:0db8::0005']) {
      const events = (await get(`?ip=${encodeURIComponent(spelling)}`)).body.events as any[];
      assert.equal(events.length, 1, spelling);
      assert.equal(events[0].ip, '2001:db8::5');
    }
  });
});

// Every store's cursors page (a chaos review found the Redis store's 16-digit seqs refused as cursors: its audit
// log could not be read past the first page).
await onEveryStore('GET /v1/admin/events paging', (name, makeStore, dispose) => {
  it(`${name}: every event exactly once through nextCursor`, async () => {
    const made = await makeStore();
    const t = await startTestApp(made ? { store: made } : {});
    try {
      for (let i = 0; i < 5; i++) {
        assert.equal((await t.request('POST', '/v1/verifications', { to: `+628123450070${i}`, client: client(`36.72.70.${i}`) })).status, 201);
        t.clock.advance(1_000);
      }
      const get = (qs: string) => t.request('GET', `/v1/admin/events${qs}`, undefined, { key: t.adminKey });
      const all = ((await get('?limit=1000')).body.events as { seq: number }[]).map((e) => e.seq);
      assert.ok(all.length >= 5);
      const seen: number[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < 50; i++) {
        const res = await get(`?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(res.status, 200, res.text);
        seen.push(...res.body.events.map((e: { seq: number }) => e.seq));
        cursor = res.body.nextCursor;
        if (!cursor) break;
      }
      assert.deepEqual(seen, all);
      assert.equal((await get('?cursor=9999999999999999')).status, 400, 'past Number.MAX_SAFE_INTEGER');
    } finally {
      await t.close();
      await dispose(made);
    }
  });
});
