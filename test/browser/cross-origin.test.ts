/**
 * The widget embedded by a page of another origin, as integrators use it (README, "Browser widget"): the page
 * may not start a worker from OTP Shield's URL, so the widget starts a blob: worker that imports it where the
 * page's CSP allows blob: workers, and otherwise solves the proof of work on the page's thread. Either way the
 * evidence is complete and the server accepts it.
 */
import { before, after, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { describeWithBrowser, launchBrowser } from '../helpers/browser.ts';

const DESKTOP_CHROME_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36';
const NOT_WEBDRIVER = "Object.defineProperty(Navigator.prototype, 'webdriver', { get: () => false, configurable: true });";

describeWithBrowser(
  'the widget on a page of another origin, in Chromium',
  () => {
    let t: TestApp;
    let browser: Browser;
    let page: http.Server;
    let pageOrigin = '';

    before(async () => {
      // The integrator's site: another origin (localhost, another port) serving a sign-in page, with the CSP
      // the path names.
      page = http.createServer((req, res) => {
        const csp: Record<string, string> = {
          '/no-csp': '',
          '/blob-workers': `default-src 'self'; script-src 'self' ${t.url}; connect-src ${t.url}; worker-src blob:`,
          '/self-workers-only': `default-src 'self'; script-src 'self' ${t.url}; connect-src ${t.url}; worker-src 'self'`,
        };
        const policy = csp[req.url ?? ''];
        if (policy === undefined) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': 'text/html', ...(policy ? { 'content-security-policy': policy } : {}) });
        res.end(`<!doctype html><title>shop</title><form id="signup"><input name="phone"></form><script src="${t.url}/widget.js" data-form="#signup" async></script>`);
      });
      await new Promise<void>((r) => page.listen(0, '127.0.0.1', () => r()));
      pageOrigin = `http://localhost:${(page.address() as AddressInfo).port}`;
      t = await startTestApp({ config: { cors: { origins: [pageOrigin] } } });
      browser = await launchBrowser();
    });
    after(async () => {
      await browser?.close();
      await t?.close();
      page?.close();
    });

    for (const [path, where] of [['/no-csp', 'worker'], ['/blob-workers', 'worker'], ['/self-workers-only', 'page']] as const) {
      it(`${path}: the proof of work is solved (${where === 'worker' ? 'in a blob: worker' : "on the page's thread"}) and the evidence is complete`, async () => {
        const context = await browser.newContext({ userAgent: DESKTOP_CHROME_UA, locale: 'en-US' });
        await context.addInitScript({ content: NOT_WEBDRIVER });
        try {
          const tab = await context.newPage();
          await tab.goto(pageOrigin + path);
          await tab.waitForFunction(() => 'OTPShield' in window, undefined, { timeout: 60_000 });
          const solved = await tab.evaluate(async () => {
            const w = (window as unknown as { OTPShield: { ready: Promise<void>; lastSolve: { where: string } | null } }).OTPShield;
            await w.ready;
            return w.lastSolve;
          });
          assert.equal(solved?.where, where, JSON.stringify(solved));
          const block = await tab.evaluate(() => (window as unknown as { OTPShield: { collect(): Promise<Record<string, unknown>> } }).OTPShield.collect());
          assert.equal(typeof block.formToken, 'string');
          assert.equal(typeof block.pow, 'string');
          assert.equal(typeof block.deviceId, 'string');
        } finally {
          await context.close();
        }
      });
    }
  },
  { timeout: 300_000 },
);
