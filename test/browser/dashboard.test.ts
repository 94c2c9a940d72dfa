/**
 * The dashboard in headless Chromium: sign in with an admin key (HttpOnly, SameSite=Strict cookie), see
 * the numbers and charts change as traffic arrives, add and remove a blocklist entry through the page,
 * all under the strict CSP without a single console error; then a day of heavy traffic stays readable,
 * and a screenshot is taken — saved as the README's docs/dashboard.png only with OTPSHIELD_UPDATE_SCREENSHOT=1,
 * so that running the suite leaves the checkout as it was.
 */
import { before, after, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { describeWithBrowser, launchBrowser } from '../helpers/browser.ts';
import { StatsAggregator } from '../../src/monitoring/aggregate.ts';
import { DEFAULT_MONITORING_POLICY } from '../../src/monitoring/config.ts';
import { priceMicros } from '../../src/monitoring/prices.ts';
import type { MonitorFact } from '../../src/monitoring/facts.ts';
import { monitoringOf } from '../../src/monitoring/monitor.ts';

const UI_TIMEOUT_MS = 15_000;
const HOUR = 3_600_000;

const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (Linux; Android 14) Chrome/130', acceptLanguage: 'id-ID', elapsedMs: 5400 });

describeWithBrowser(
  'dashboard in Chromium',
  () => {
    let t: TestApp;
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    const consoleErrors: string[] = [];
    const failedResponses: string[] = [];
    let seq = 0;

    /** Real traffic over the API: sends (some verified), a rate-limited resend, and list blocks. */
    async function traffic(n: number): Promise<void> {
      const numbers = ['+62812', '+62813', '+44740', '+1202555', '+234803'];
      for (let i = 0; i < n; i++) {
        seq++;
        const base = numbers[seq % numbers.length]!;
        const to = base + String(1000000 + seq).slice(-(base.startsWith('+1') ? 4 : base.startsWith('+44') ? 6 : 7));
        const ip = `36.72.${60 + Math.floor(seq / 200)}.${seq % 200}`;
        const s = await t.request('POST', '/v1/verifications', { to, client: client(ip) });
        if (s.status === 201 && seq % 3 !== 0) await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: t.lastCode(s.body.to) });
        if (s.status === 201 && seq % 4 === 0) await t.request('POST', '/v1/verifications', { to, client: client(ip) }); // 429
      }
    }
    const admin = (method: string, path: string, body?: unknown) => t.request(method, path, body, { key: t.adminKey });
    const updates = () => page.locator('#updated').getAttribute('data-updated').then(Number);
    async function refreshed(): Promise<void> {
      const before_ = await updates();
      await page.locator('#refresh').click();
      await page.waitForFunction((n) => Number(document.getElementById('updated')!.dataset.updated) > n, before_, { timeout: UI_TIMEOUT_MS });
    }
    const chartImage = (id: string) => page.evaluate((sel) => (document.querySelector(sel) as HTMLCanvasElement).toDataURL(), `#${id} canvas`);

    before(async () => {
      t = await startTestApp();
      // Block Nigerian numbers so the page has a block reason to show.
      await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'prefix', value: '+234', note: 'pumping seen in 2026-11' });
      await traffic(12);
      t.clock.advance(HOUR);
      await traffic(16);
      browser = await launchBrowser();
      context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
      page = await context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error') consoleErrors.push(m.text());
      });
      page.on('pageerror', (e) => consoleErrors.push(String(e)));
      page.on('response', (r) => {
        if (r.status() >= 400) failedResponses.push(`${r.status()} ${new URL(r.url()).pathname}`);
      });
    });
    after(async () => {
      await browser?.close();
      await t?.close();
    });

    it('signs in with an admin key into an HttpOnly, SameSite=Strict session', async () => {
      const res = await page.goto(`${t.url}/dashboard`);
      assert.match(res?.headers()['content-security-policy'] ?? '', /script-src 'self'; style-src 'self'/);
      await page.locator('#login-key').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      await page.locator('#login-key').fill(t.verifyKey);
      await page.locator('#login-submit').click();
      await page.locator('#login-error').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      assert.match(await page.locator('#login-error').innerText(), /admin or a read key/);

      await page.locator('#login-key').fill(t.adminKey);
      await page.locator('#login-submit').click();
      await page.locator('#app').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      await page.waitForFunction(() => Number(document.getElementById('updated')!.dataset.updated) >= 1, undefined, { timeout: UI_TIMEOUT_MS });

      assert.equal(await page.evaluate(() => document.activeElement?.id), 'app-title', 'after sign-in the focus is at the top of the page, not on nothing');
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === 'otps_session');
      assert.ok(session, 'session cookie set');
      assert.equal(session.httpOnly, true);
      assert.equal(session.sameSite, 'Strict');
      assert.notEqual(session.value, t.adminKey, 'a session key, not the typed key');
      assert.equal(await page.evaluate(() => document.cookie), '', 'page scripts cannot read it');
    });

    it('shows the numbers of the API and redraws charts when traffic arrives', async () => {
      const stats = async () => (await admin('GET', '/v1/admin/stats')).body.totals;
      const first = await stats();
      assert.equal(await page.locator('#kpi-requests').innerText(), String(first.requests));
      assert.equal(await page.locator('#kpi-sends').innerText(), String(first.sends));
      assert.ok(await page.locator('#chart-traffic canvas').count() >= 1, 'uPlot drew a canvas');
      assert.ok(await page.locator('#chart-spend canvas').count() >= 1);
      const sumBefore = Number(await page.locator('#chart-traffic').getAttribute('data-sum'));
      const imageBefore = await chartImage('chart-traffic');
      assert.ok(sumBefore > 0);
      assert.ok((await page.locator('#table-countries tbody tr').count()) >= 3);
      assert.ok((await page.locator('#table-reasons tbody').innerText()).includes('list.block'));

      await traffic(10);
      await refreshed();
      const second = await stats();
      assert.ok(second.requests > first.requests);
      assert.equal(await page.locator('#kpi-requests').innerText(), String(second.requests), 'the number changed to the new total');
      assert.equal(await page.locator('#kpi-sends').innerText(), String(second.sends));
      assert.ok(Number(await page.locator('#chart-traffic').getAttribute('data-sum')) > sumBefore, 'the chart has the new data');
      assert.notEqual(await chartImage('chart-traffic'), imageBefore, 'and was redrawn');
    });

    it('adds and removes a blocklist entry', async () => {
      const form = page.locator('#list-form');
      await form.locator('select[name=list]').selectOption('block');
      await form.locator('select[name=kind]').selectOption('number');
      await form.locator('input[name=value]').fill('+62 812-9999-0000');
      await form.locator('input[name=note]').fill('added from the dashboard');
      await form.locator('button[type=submit]').click();
      const row = page.locator('#table-lists tbody tr', { hasText: '+6281299990000' });
      await row.waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      const listed = (await admin('GET', '/v1/admin/lists')).body.entries as { value: string; note: string | null }[];
      assert.ok(listed.some((e) => e.value === '+6281299990000' && e.note === 'added from the dashboard'), 'saved through the admin API');
      const blocked = await t.request('POST', '/v1/verifications', { to: '+6281299990000', client: client('36.72.99.1') });
      assert.equal(blocked.status, 403, 'and enforced');

      await row.locator('button', { hasText: 'Remove' }).click();
      await row.waitFor({ state: 'detached', timeout: UI_TIMEOUT_MS });
      const after_ = (await admin('GET', '/v1/admin/lists')).body.entries as { value: string }[];
      assert.ok(!after_.some((e) => e.value === '+6281299990000'));
      const events = await t.ctx.store.queryEvents({ limit: 20 });
      assert.ok(events.some((e) => e.type === 'list.remove'), 'the removal is an audit event');
    });

    it('the charts have a text alternative with their totals', async () => {
      const traffic_ = page.locator('#chart-traffic');
      assert.equal(await traffic_.getAttribute('role'), 'img');
      const label = (await traffic_.getAttribute('aria-label')) ?? '';
      const requests = await page.locator('#kpi-requests').innerText();
      assert.ok(Number(requests) > 0);
      assert.ok(label.startsWith(`Traffic, last 24 hours by hour: requests ${requests} (most at `), `${label} (KPI ${requests})`);
      assert.match((await page.locator('#chart-spend').getAttribute('aria-label')) ?? '', /^Spend, .*spend \d/);
    });

    it('opens each chart\'s values as a table from the keyboard, one row an hour, kept open across a refresh', async () => {
      const summary = page.locator('#chart-traffic-data summary');
      await summary.focus();
      await page.keyboard.press('Enter');
      assert.equal(await page.locator('#chart-traffic-data').getAttribute('open'), '');
      const table = page.locator('#chart-traffic-data table');
      assert.deepEqual(await table.locator('thead th').allInnerTexts(), ['hour (UTC)', 'requests', 'sends', 'blocked', 'challenged']);
      const columnSum = async () => (await table.locator('tbody tr td:nth-of-type(1)').allInnerTexts()).reduce((a, v) => a + (v === '–' ? 0 : Number(v)), 0);
      assert.equal(await table.locator('tbody tr').count(), 24);
      assert.match(await table.locator('tbody tr th').first().innerText(), /^\d\d:00Z$/);
      assert.equal(await columnSum(), Number(await page.locator('#kpi-requests').innerText()), 'the requests column adds up to the KPI');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement?.className), 'chart-data-scroll', 'the table scrolls from the keyboard');

      await traffic(3);
      await refreshed();
      assert.equal(await page.locator('#chart-traffic-data').getAttribute('open'), '', 'still open');
      assert.equal(await columnSum(), Number(await page.locator('#kpi-requests').innerText()), 'with the new values');
      assert.equal(await page.locator('#chart-spend-data table tbody tr').count(), 24);
      assert.equal(await page.locator('#chart-blocks-data table tbody tr').count(), 24);
      await page.locator('#chart-traffic-data summary').click();
    });

    it('keeps the keyboard focus on a row button across a refresh, and lifts a quarantine', async () => {
      assert.equal((await admin('POST', '/v1/admin/pause', { country: 'NG', note: 'focus test' })).status, 200);
      assert.equal((await admin('POST', '/v1/admin/quarantines', { scope: 'prefix:+62813', minutes: 60, reason: 'dashboard test' })).status, 201);
      await refreshed();
      const resume = page.getByRole('button', { name: 'Resume country:NG' });
      await resume.focus();
      // A refresh that does not move the focus itself (the auto-refresh does the same every 15 s).
      const before_ = await updates();
      await page.evaluate(() => document.getElementById('range')!.dispatchEvent(new Event('change')));
      await page.waitForFunction((n) => Number(document.getElementById('updated')!.dataset.updated) > n, before_, { timeout: UI_TIMEOUT_MS });
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Resume country:NG', 'the re-rendered button has the focus again');
      await page.keyboard.press('Enter');
      await page.locator('#pause-msg', { hasText: 'Resumed country:NG.' }).waitFor({ timeout: UI_TIMEOUT_MS });
      await page.waitForFunction(() => document.activeElement?.tagName === 'H2', undefined, { timeout: UI_TIMEOUT_MS });
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Protection state', 'its row is gone: the focus is on the section heading');

      await page.getByRole('button', { name: 'Lift quarantine prefix:+62813' }).click();
      await page.locator('#pause-msg', { hasText: 'Lifted the quarantine of prefix:+62813' }).waitFor({ timeout: UI_TIMEOUT_MS });
      assert.deepEqual((await admin('GET', '/v1/admin/quarantines')).body.quarantines, [], 'lifted through the admin API');
    });

    it('asks before pausing everything, without a time limit, and Cancel pauses nothing', async () => {
      await page.locator('#pause-all').click();
      await page.locator('#pause-all-yes').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'pause-all-yes');
      assert.match(await page.locator('#pause-msg').innerText(), /Pause ALL sends\?/);
      await page.waitForTimeout(5500); // the old confirmation lapsed after 5 s
      assert.ok(await page.locator('#pause-all-yes').isVisible(), 'still asking');
      await page.locator('#pause-all-no').click();
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'pause-all');
      assert.deepEqual((await admin('GET', '/v1/admin/monitoring/state')).body.pauses, []);
    });

    it('undoes the removal of a list entry', async () => {
      assert.equal((await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: '+6281299990001', note: 'to be restored' })).status, 201);
      await refreshed();
      await page.getByRole('button', { name: 'Remove block number +6281299990001' }).click();
      await page.locator('#list-undo').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
      await page.locator('#list-undo').click();
      await page.locator('#list-msg', { hasText: 'Added back block number +6281299990001.' }).waitFor({ timeout: UI_TIMEOUT_MS });
      const listed = (await admin('GET', '/v1/admin/lists')).body.entries as { value: string; note: string | null }[];
      assert.ok(listed.some((e) => e.value === '+6281299990001' && e.note === 'to be restored'), 'back, with its note');
    });

    it('stays readable with a day of heavy traffic, and saves the README screenshot', async () => {
      // A day of heavy traffic straight into the hourly aggregates (what the layer writes), ~200k requests
      // over 40 countries and 1,500 prefixes, so the page has far more groups than it shows.
      const prices = DEFAULT_MONITORING_POLICY.prices;
      const agg = new StatsAggregator({ instanceId: 'loadtest', maxPrefixes: () => 2000, retentionMs: () => 8 * 86_400_000 });
      const countries = ['ID', 'IN', 'BR', 'US', 'GB', 'NG', 'PK', 'VN', 'PH', 'MX', 'DE', 'FR', 'EG', 'TR', 'RU', ...Array.from({ length: 25 }, (_, i) => String.fromCharCode(65 + (i % 26), 66 + ((i * 7) % 24)))];
      const reasons = ['rate_limited.number', 'rate_limited.ip', 'list.block', 'country.number', 'paused', 'escalation.block', 'line_type', 'quarantine.block', 'honeypot'];
      let r = 7;
      const rnd = () => ((r = (r * 1103515245 + 12345) % 2147483648) / 2147483648);
      const now = t.clock();
      for (let h = 23; h >= 0; h--) {
        const at = now - h * HOUR - 1;
        const surge = h >= 3 && h <= 6 ? 4 : 1; // a pumping wave a few hours ago
        const n = 4000 * surge + Math.floor(rnd() * 1500);
        for (let i = 0; i < n; i += 50) {
          // Facts in batches of 50 keep this fast; counts are what matter to the page.
          const country = countries[Math.floor(Math.pow(rnd(), 2) * countries.length)]!;
          const prefix = `+${country.charCodeAt(0)}${Math.floor(rnd() * 40)}`;
          const price = priceMicros(prices, country, 'sms');
          const decision = rnd() < (surge > 1 ? 0.55 : 0.12) ? 'block' : 'allow';
          for (let k = 0; k < 50; k++) {
            const f: MonitorFact = { kind: 'request', at, country, prefix, channel: 'sms', number: null, ip: null, ipCountry: null, decision, reasons: decision === 'block' ? [reasons[Math.floor(rnd() * reasons.length)]!] : [], priceMicros: price };
            agg.apply(f);
            if (decision === 'allow') {
              agg.apply({ kind: 'sent', at, country, prefix, channel: 'sms', sender: 'twilio', first: true, priceMicros: price });
              if (rnd() < (surge > 1 ? 0.35 : 0.8)) agg.apply({ kind: 'approved', at, country, prefix, channel: 'sms', spendMicros: price });
              if (rnd() < 0.9) agg.apply({ kind: 'receipt', at, country, prefix, channel: 'sms', sender: 'twilio', status: rnd() < 0.95 ? 'delivered' : 'undelivered' });
            }
          }
        }
      }
      await agg.flush(t.ctx.store, now);
      // Alerts like the ones that wave would raise, through the real alert path (event + sinks).
      const mon = monitoringOf(t.ctx)!;
      await mon.emit({ rule: 'conversion_drop', scope: 'country:ID', key: 'conversion_drop:country:ID', severity: 'critical', message: 'Conversion for country:ID fell to 31% in the last 60 min from 79% over the previous 24 h: codes are being sent that nobody enters (SMS pumping?).', value: 0.31, threshold: 0.395, at: now - 5 * HOUR });
      await mon.emit({ rule: 'request_spike', scope: 'prefix:+7330', key: 'request_spike:prefix:+7330', severity: 'critical', message: '1840 send requests for prefix +7330 in the last 10 min (threshold 300).', value: 1840, threshold: 300, at: now - 6 * HOUR });
      await refreshed();

      const total = (await admin('GET', '/v1/admin/stats')).body.totals;
      assert.ok(total.requests > 100_000, `a heavy day: ${total.requests}`);
      assert.match(await page.locator('#kpi-requests').innerText(), /^\d+(\.\d)?K$/, 'big numbers are compact');
      assert.ok((await page.locator('#table-countries tbody tr').count()) <= 15, 'top countries only');
      assert.ok((await page.locator('#table-prefixes tbody tr').count()) <= 15, 'top prefixes only');
      const legend = await page.locator('#chart-blocks .u-legend .u-series').count();
      assert.ok(legend <= 7, `blocks chart: at most 5 reasons + other (+ the x series), got ${legend}`);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 1440, `no horizontal overflow (${width}px)`);

      assert.equal(await page.locator('#table-alerts tbody tr').count(), 2);
      // Full-page screenshots keep a sticky header where the page was scrolled to: start from the top.
      await page.evaluate(() => window.scrollTo(0, 0));
      const shot = await page.screenshot({ fullPage: true });
      assert.ok(shot.length > 10_000, 'a screenshot of the page');
      if (process.env.OTPSHIELD_UPDATE_SCREENSHOT === '1') {
        mkdirSync('docs', { recursive: true });
        writeFileSync('docs/dashboard.png', shot);
      }
      // The only refusals: the session probe before signing in, and the sign-in with a non-admin key.
      assert.deepEqual(failedResponses, ['401 /dashboard/api/session', '403 /dashboard/api/login']);
      const unexpected = consoleErrors.filter((m) => !m.startsWith('Failed to load resource'));
      assert.deepEqual(unexpected, [], 'no script errors and no CSP violations');
    });

    it('a read key signs in to a read-only dashboard: the same numbers, masked, and no control that changes anything', async () => {
      const { createApiKey } = await import('../../src/service/api-keys.ts');
      const read = (await createApiKey(t.ctx.store, { scopes: ['read'], name: 'support', now: t.clock() })).key;
      await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'number', value: '+6281299990002', note: 'read-only check' });
      await admin('POST', '/v1/admin/pause', { scope: 'country:NG', note: 'read-only check' });
      const ro = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
      const p = await ro.newPage();
      const refused: string[] = [];
      const errors: string[] = [];
      p.on('response', (r) => {
        if (r.status() >= 400) refused.push(`${r.status()} ${new URL(r.url()).pathname}`);
      });
      p.on('pageerror', (e) => errors.push(String(e)));
      try {
        await p.goto(`${t.url}/dashboard`);
        await p.locator('#login-key').fill(read);
        await p.locator('#login-submit').click();
        await p.locator('#app').waitFor({ state: 'visible', timeout: UI_TIMEOUT_MS });
        await p.waitForFunction(() => Number(document.getElementById('updated')!.dataset.updated) >= 1, undefined, { timeout: UI_TIMEOUT_MS });
        await p.locator('#table-lists tbody tr', { hasText: 'read-only check' }).waitFor({ timeout: UI_TIMEOUT_MS });
        assert.equal(await p.locator('#read-only').isVisible(), true, 'says it is read-only');
        for (const sel of ['#emergency', '#list-form', '#policy-save', '#policy-note']) assert.equal(await p.locator(sel).isVisible(), false, `${sel} is not there`);
        assert.equal(await p.locator('#policy-validate').isVisible(), true, 'a policy can still be validated');
        assert.equal(await p.locator('#table-lists button, #table-pauses button, #table-quarantines button').count(), 0, 'no Remove, Resume or Lift');
        const row = await p.locator('#table-lists tbody tr', { hasText: 'read-only check' }).innerText();
        assert.doesNotMatch(row, /6281299990002/, 'the number is masked');
        assert.match(row, /\+62812\*+002/);
        assert.match(await p.locator('#kpi-requests').innerText(), /^[1-9][0-9.]*K?$/, 'the numbers are there');
        assert.ok((await p.locator('#table-events tbody tr').count()) > 1, 'and the events');
        assert.deepEqual(refused.filter((r) => r !== '401 /dashboard/api/session'), [], 'no request of the page is refused');
        assert.deepEqual(errors, []);
        // The session itself is read-only: the API refuses its changes, whatever the page shows.
        const cookie = (await ro.cookies()).find((c) => c.name === 'otps_session')!.value;
        const change = await fetch(`${t.url}/v1/admin/lists`, { method: 'POST', headers: { cookie: `otps_session=${cookie}`, 'x-otpshield-dashboard': '1', 'content-type': 'application/json' }, body: JSON.stringify({ list: 'block', kind: 'ip', value: '203.0.113.9' }) });
        assert.equal(change.status, 403);
      } finally {
        await ro.close();
      }
    });
  },
  { timeout: 180_000 },
);
