/**
 * End to end in a real browser: the /demo sign-in page, the widget (form token, proof-of-work in a Web
 * Worker, FingerprintJS, automation signals), the demo backend and the verification service, with codes
 * read from the fake webhook receiver.
 *
 * Run 1 is a person: a browser context with a normal desktop Chrome User-Agent and `navigator.webdriver`
 * false, typing at human speed. Run 2 is a bot: the same browser as automation leaves it
 * (`navigator.webdriver = true`, a `HeadlessChrome` User-Agent). The person gets a code and signs in; the
 * bot is refused and nothing is sent.
 */
import { before, after, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { DEFAULT_POLICY } from '../../src/engine/policy.ts';
import type { AuditEvent } from '../../src/store/interface.ts';
import { startTestApp, type TestApp, type TestClock } from '../helpers/app.ts';
import { describeWithBrowser, launchBrowser } from '../helpers/browser.ts';

const DESKTOP_CHROME_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36';
// A string, not a function: the test runs through tsx, whose helpers would not exist in the page.
const NOT_WEBDRIVER = "Object.defineProperty(Navigator.prototype, 'webdriver', { get: () => false, configurable: true });";
const UI_TIMEOUT_MS = 60_000; // proof-of-work on a busy shared CI core can take a while

/**
 * Real time: form tokens carry their issue time and the server measures "too fast" from it, so a frozen
 * test clock would make every submit look instant.
 */
function realClock(): TestClock {
  let offset = 0;
  const fn = (() => Date.now() + offset) as TestClock;
  Object.defineProperty(fn, 'now', { get: () => Date.now() + offset });
  fn.advance = (ms: number) => {
    offset += ms;
  };
  return fn;
}

async function sendEvents(t: TestApp, e164: string): Promise<AuditEvent[]> {
  return t.ctx.store.queryEvents({ type: 'send', number: e164, limit: 10 });
}

/** Decision, reasons and evidence of the sends for a number, for failure messages. */
async function why(t: TestApp, e164: string): Promise<string> {
  const events = await sendEvents(t, e164);
  return JSON.stringify(events.map((e) => ({ decision: e.decision, reasons: e.reasons, score: e.data?.score, shadow: e.data?.shadow, evidence: e.data?.evidence })));
}

async function status(page: Page): Promise<string> {
  return (await page.locator('#status').textContent()) ?? '';
}

/** Waits until #status shows the outcome of the last click (not empty, not a progress message). */
async function settledStatus(page: Page): Promise<string> {
  await page.waitForFunction(
    () => {
      const s = document.getElementById('status')?.textContent ?? '';
      return s !== '' && !/^(Sending|Checking)…|^Checking your browser…/.test(s);
    },
    undefined,
    { timeout: UI_TIMEOUT_MS },
  );
  return status(page);
}

/** Load the demo and wait until the widget has its evidence ready, as a person would see the page. */
async function openDemo(page: Page, url: string): Promise<void> {
  await page.goto(`${url}/demo`);
  await page.waitForFunction(() => 'OTPShield' in window, undefined, { timeout: UI_TIMEOUT_MS });
  await page.evaluate(() => (window as unknown as { OTPShield: { ready: Promise<void> } }).OTPShield.ready);
}

describeWithBrowser(
  'demo sign-in page in Chromium',
  () => {
    let t: TestApp;
    let browser: Browser;

    before(async () => {
      t = await startTestApp({ clock: realClock() });
      browser = await launchBrowser();
    });
    after(async () => {
      await browser?.close();
      await t?.close();
    });

    const HUMAN = { typed: '+62 812-3456-7001', e164: '+6281234567001' };
    const BOT = { typed: '+62 812-3456-7002', e164: '+6281234567002' };

    it('run 1, a person: the code is sent, typed back and approved', async () => {
      const context = await browser.newContext({ userAgent: DESKTOP_CHROME_UA, locale: 'en-US' });
      await context.addInitScript({ content: NOT_WEBDRIVER });
      try {
        const page = await context.newPage();
        await openDemo(page, t.url);
        assert.equal(await page.evaluate(() => navigator.webdriver), false, 'the person-like context hides webdriver');

        // A person reads the page before typing: longer than the policy's "too fast" threshold.
        await page.waitForTimeout(DEFAULT_POLICY.risk.minHumanMs + 300);
        await page.locator('#phone').pressSequentially(HUMAN.typed, { delay: 60 });
        await page.locator('#send').click();
        const sent = await settledStatus(page);
        assert.match(sent, /^Code sent\. It works until \d\d:\d\d.*\. You can ask for a new code in \d+ seconds\.$/, `status "${sent}"; sends: ${await why(t, HUMAN.e164)}`);
        assert.equal(await page.evaluate(() => document.activeElement?.id), 'code', 'the focus moves to the code field');

        const code = t.lastCode(HUMAN.e164);
        assert.match(code ?? '', /^\d{6}$/, 'the receiver got the code');
        // A wrong code first: said in words with the attempts left, the field marked, the focus kept there.
        const wrong = code === '000000' ? '111111' : '000000';
        await page.locator('#code').pressSequentially(wrong, { delay: 20 });
        await page.locator('#verify').click();
        assert.equal(await settledStatus(page), 'Wrong code. 4 attempts left.');
        assert.equal(await page.evaluate(() => document.activeElement?.id), 'code', 'focus stays on the field at fault, not on the page');
        assert.equal(await page.locator('#code').getAttribute('aria-invalid'), 'true');
        await page.locator('#code').fill('');
        await page.locator('#code').pressSequentially(code!, { delay: 60 });
        await page.locator('#code').press('Enter'); // Enter in the code field verifies
        const checked = await settledStatus(page);
        assert.equal(checked, 'Approved', `status "${checked}"`);
        assert.equal(await page.locator('#code').getAttribute('aria-invalid'), null);
      } finally {
        await context.close();
      }
    });

    it("run 1's evidence was verified by the server: form token valid, proof-of-work solved, no automation", async () => {
      const [event] = await sendEvents(t, HUMAN.e164);
      assert.ok(event, 'a send event exists');
      const evidence = event.data?.evidence as { formToken: string; pow: string; headless: boolean; deviceId: string | null } | undefined;
      const detail = await why(t, HUMAN.e164);
      assert.equal(event.decision, 'allow', detail);
      assert.equal(evidence?.formToken, 'valid', `the widget's form token did not verify: ${detail}`);
      assert.equal(evidence?.pow, 'solved', `the widget's proof-of-work did not verify: ${detail}`);
      assert.equal(evidence?.headless, false, detail);
      assert.match(evidence?.deviceId ?? '', /^\S+$/, `FingerprintJS gave a device id: ${detail}`);
    });

    it('run 2, a bot (navigator.webdriver = true, HeadlessChrome): refused, nothing sent', async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await openDemo(page, t.url);
        assert.equal(await page.evaluate(() => navigator.webdriver), true, 'automation default');

        const delivered = t.receiver.requests.length;
        await page.waitForTimeout(DEFAULT_POLICY.risk.minHumanMs + 300); // not refused merely for speed
        await page.locator('#phone').pressSequentially(BOT.typed, { delay: 60 });
        await page.locator('#phone').press('Enter'); // Enter in the phone field sends
        const shown = await settledStatus(page);
        const detail = await why(t, BOT.e164);
        const code = await page.locator('#status').getAttribute('data-code');
        assert.match(code ?? '', /challenge_required|request_blocked/, `status "${shown}" (${code}); sends: ${detail}`);
        assert.doesNotMatch(shown, /_/, 'the person reads words, not an error code');
        assert.equal(await page.evaluate(() => document.activeElement?.id), 'phone', 'the focus is on the field to fix');
        assert.equal(t.lastCode(BOT.e164), null, 'no code for the bot');
        assert.equal(t.receiver.requests.length, delivered, 'no message at all');

        const [event] = await sendEvents(t, BOT.e164);
        assert.ok(event?.reasons?.includes('headless'), `refused for automation: ${detail}`);
      } finally {
        await context.close();
      }
    });

    it('a browser without TextEncoder still gets the widget: a form token and the honeypot, the puzzle left unsolved', async () => {
      const context = await browser.newContext({ userAgent: DESKTOP_CHROME_UA, locale: 'en-US' });
      await context.addInitScript({ content: `${NOT_WEBDRIVER} delete window.TextEncoder;` });
      try {
        const page = await context.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await openDemo(page, t.url);
        assert.equal(await page.evaluate(() => typeof (window as unknown as { TextEncoder?: unknown }).TextEncoder), 'undefined');
        const block = await page.evaluate(() => (window as unknown as { OTPShield: { collect(): Promise<Record<string, unknown>> } }).OTPShield.collect());
        assert.equal(typeof block.formToken, 'string', JSON.stringify(block));
        assert.ok(!block.pow, 'no proof of work without TextEncoder');
        assert.equal(await page.locator('#signin [name="otps_hp"]').count(), 1, 'the honeypot is there');
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });

    it('collect({ challenge }) answers the challenge of a challenge_required error: its token, its proof of work solved', async () => {
      const context = await browser.newContext({ userAgent: DESKTOP_CHROME_UA, locale: 'en-US' });
      await context.addInitScript({ content: NOT_WEBDRIVER });
      try {
        const page = await context.newPage();
        await openDemo(page, t.url);
        // What a backend hands the page after a 403 challenge_required: error.challenge (same shape as /v1/challenges).
        const challenge = (await (await fetch(`${t.url}/v1/challenges`, { method: 'POST', headers: { 'user-agent': DESKTOP_CHROME_UA } })).json()) as { formToken: string };
        await page.waitForTimeout(DEFAULT_POLICY.risk.minHumanMs + 300);
        const block = await page.evaluate(
          (ch) => (window as unknown as { OTPShield: { collect(o: unknown): Promise<Record<string, unknown>> } }).OTPShield.collect({ challenge: ch }),
          challenge,
        );
        assert.equal(block.formToken, challenge.formToken, 'the given token, not the prepared one');
        assert.equal(typeof block.pow, 'string');
        // The server accepts both: the token is bound to this address and user agent, which the block carries.
        const to = '+6281234567003';
        const r = await t.request('POST', '/v1/verifications', { to, client: { ...block, ip: '127.0.0.1' } });
        assert.equal(r.status, 201, `${r.text}; sends: ${await why(t, to)}`);
        const [event] = await sendEvents(t, to);
        const evidence = event?.data?.evidence as { formToken: string; pow: string } | undefined;
        assert.equal(evidence?.formToken, 'valid', await why(t, to));
        assert.equal(evidence?.pow, 'solved', await why(t, to));
      } finally {
        await context.close();
      }
    });
  },
  { timeout: 300_000 },
);
