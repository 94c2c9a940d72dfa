/**
 * Browser tests drive Debian's Chromium through playwright-core (never a downloaded browser).
 *
 * Policy: when /usr/bin/chromium is missing the suite is skipped with a printed notice, unless
 * OTPSHIELD_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.
 *
 *   describeWithBrowser('dashboard', () => {
 *     let browser: Browser;
 *     before(async () => { browser = await launchBrowser(); });
 *     after(async () => browser?.close());
 *     it(...);
 *   }, { timeout: 120_000 });
 */
import { existsSync } from 'node:fs';
import { describe, it, type TestOptions } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function browserAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export function browserRequired(): boolean {
  return process.env.OTPSHIELD_REQUIRE_BROWSER === '1';
}

/** Launch headless Chromium. Throws when it is not installed (use describeWithBrowser to skip instead). */
export async function launchBrowser(): Promise<Browser> {
  if (!browserAvailable()) throw new Error(`chromium not found at ${CHROMIUM_PATH} (apt-get install -y chromium)`);
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
}

/**
 * `describe` that runs only when Chromium is installed. Without it: skipped with a notice, or one failing
 * test when OTPSHIELD_REQUIRE_BROWSER=1.
 */
export function describeWithBrowser(name: string, fn: () => void, options: TestOptions = {}): void {
  if (browserAvailable()) {
    describe(name, options, fn);
    return;
  }
  if (browserRequired()) {
    describe(name, options, () => {
      it('needs chromium (OTPSHIELD_REQUIRE_BROWSER=1)', () => {
        assert.fail(`chromium not found at ${CHROMIUM_PATH}; install it with apt-get install -y chromium`);
      });
    });
    return;
  }
  process.stdout.write('# NOTICE: chromium not found, skipping browser tests\n');
  describe(name, { ...options, skip: 'chromium not found' }, fn);
}
