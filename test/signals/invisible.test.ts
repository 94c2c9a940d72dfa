import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AUTOMATION_MARKERS,
  DEFAULT_MIN_HUMAN_MS,
  classifyUserAgent,
  effectiveElapsedMs,
  invisibleSignals,
  isHeadless,
  type InvisibleInput,
} from '../../src/signals/invisible.ts';

const NOW = 1_750_000_000_000;
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';
/** A request that looks like an ordinary person in a browser. */
const HUMAN: InvisibleInput = { now: NOW, honeypot: '', elapsedMs: 8_000, userAgent: CHROME, acceptLanguage: 'en-US,en;q=0.9', automation: { webdriver: false, headless: false, flags: [] } };

const names = (input: InvisibleInput) => invisibleSignals(input).map((s) => s.signal);

test('an ordinary browser request raises no signal', () => {
  assert.deepEqual(invisibleSignals(HUMAN), []);
});

test('honeypot: any non-empty value counts, empty does not', () => {
  assert.deepEqual(names({ ...HUMAN, honeypot: 'http://spam.example' }), ['honeypot_filled']);
  assert.deepEqual(names({ ...HUMAN, honeypot: ' ' }), ['honeypot_filled']);
  assert.deepEqual(names({ ...HUMAN, honeypot: '' }), []);
  assert.deepEqual(names({ ...HUMAN, honeypot: null }), []);
  // A backend that maps the field to a boolean itself.
  assert.deepEqual(names({ ...HUMAN, honeypot: true }), ['honeypot_filled']);
  assert.deepEqual(names({ ...HUMAN, honeypot: false }), []);
});

test('too fast: below minHumanMs, default 1500, threshold configurable', () => {
  assert.equal(DEFAULT_MIN_HUMAN_MS, 1_500);
  assert.deepEqual(invisibleSignals({ ...HUMAN, elapsedMs: 400 }), [{ signal: 'too_fast', detail: '400ms' }]);
  assert.deepEqual(names({ ...HUMAN, elapsedMs: 1_499 }), ['too_fast']);
  assert.deepEqual(names({ ...HUMAN, elapsedMs: 1_500 }), []);
  assert.deepEqual(names({ ...HUMAN, elapsedMs: 2_500, minHumanMs: 3_000 }), ['too_fast']);
});

test('too fast from the signed issue time when the client reports nothing', () => {
  const { elapsedMs: _omit, ...noElapsed } = HUMAN;
  assert.deepEqual(invisibleSignals({ ...noElapsed, formTokenIssuedAt: NOW - 300 }), [{ signal: 'too_fast', detail: '300ms' }]);
  assert.deepEqual(names({ ...noElapsed, formTokenIssuedAt: NOW - 30_000 }), []);
  // Neither measure: nothing to judge.
  assert.deepEqual(names({ ...noElapsed }), []);
});

test('a client claiming to be slow cannot hide a fast server-measured submit', () => {
  assert.deepEqual(names({ ...HUMAN, elapsedMs: 60_000, formTokenIssuedAt: NOW - 200 }), ['too_fast']);
  assert.equal(effectiveElapsedMs(60_000, NOW - 200, NOW), 200);
  assert.equal(effectiveElapsedMs(900, NOW - 5_000, NOW), 900);
  assert.equal(effectiveElapsedMs(undefined, NOW - 5_000, NOW), 5_000);
  assert.equal(effectiveElapsedMs(700, undefined, NOW), 700);
  assert.equal(effectiveElapsedMs(-5, undefined, NOW), null);
  assert.equal(effectiveElapsedMs(Number.NaN, null, NOW), null);
  // Issue time slightly in the future (clock skew between instances) clamps to 0 rather than going negative.
  assert.equal(effectiveElapsedMs(undefined, NOW + 500, NOW), 0);
});

test('automation flags from the widget', () => {
  assert.deepEqual(names({ ...HUMAN, automation: { webdriver: true } }), ['webdriver']);
  assert.deepEqual(names({ ...HUMAN, automation: { headless: true } }), ['headless']);
  assert.deepEqual(invisibleSignals({ ...HUMAN, automation: { flags: ['selenium', 'phantom', 'selenium', 'made_up'] } }), [
    { signal: 'automation_marker', detail: 'selenium' },
    { signal: 'automation_marker', detail: 'phantom' },
  ]);
  for (const m of AUTOMATION_MARKERS) assert.ok(isHeadless(invisibleSignals({ ...HUMAN, automation: { flags: [m] } })), m);
  assert.equal(isHeadless(invisibleSignals({ ...HUMAN, automation: { flags: ['made_up'] } })), false);
  assert.equal(isHeadless(invisibleSignals(HUMAN)), false);
});

test('script user agents are recognised; browsers and okhttp are not', () => {
  const scripts: Array<[string, string]> = [
    ['curl/8.5.0', 'curl'],
    ['Wget/1.21.4', 'wget'],
    ['python-requests/2.32.3', 'python-requests'],
    ['Python-urllib/3.12', 'python-urllib'],
    ['python-httpx/0.27.0', 'httpx'],
    ['Go-http-client/1.1', 'go-http-client'],
    ['Go-http-client/2.0', 'go-http-client'],
    ['Java/17.0.2', 'java'],
    ['Apache-HttpClient/4.5.14 (Java/17.0.2)', 'java'],
    ['libwww-perl/6.72', 'libwww-perl'],
    ['node-fetch/1.0 (+https://github.com/bitinn/node-fetch)', 'node-fetch'],
    ['axios/1.7.2', 'axios'],
    ['undici', 'undici'],
    ['node', 'node'],
    ['PostmanRuntime/7.39.0', 'postman'],
  ];
  for (const [ua, name] of scripts) {
    assert.equal(classifyUserAgent(ua).script, name, ua);
    assert.ok(names({ ...HUMAN, userAgent: ua }).includes('script_user_agent'), ua);
  }
  for (const ua of [
    CHROME,
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
    'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
    'okhttp/4.12.0',
    'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36 nodeapp',
  ]) {
    assert.equal(classifyUserAgent(ua).script, null, ua);
  }
});

test('headless user agents', () => {
  const headless = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36';
  assert.deepEqual(invisibleSignals({ ...HUMAN, userAgent: headless }), [{ signal: 'headless_user_agent', detail: 'HeadlessChrome' }]);
  assert.equal(classifyUserAgent('Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1').headless, 'PhantomJS');
  assert.ok(isHeadless(invisibleSignals({ ...HUMAN, userAgent: headless })));
  assert.equal(classifyUserAgent(CHROME).headless, null);
});

test('missing User-Agent and Accept-Language', () => {
  assert.deepEqual(names({ ...HUMAN, userAgent: '' }), ['missing_user_agent']);
  assert.deepEqual(names({ ...HUMAN, userAgent: undefined }), ['missing_user_agent']);
  assert.deepEqual(names({ ...HUMAN, acceptLanguage: '  ' }), ['missing_accept_language']);
  assert.deepEqual(names({ ...HUMAN, acceptLanguage: null }), ['missing_accept_language']);
});

test('a typical script trips several signals at once', () => {
  const s = names({ now: NOW, honeypot: 'x', elapsedMs: 20, userAgent: 'python-requests/2.31.0', automation: null });
  assert.deepEqual(s.sort(), ['honeypot_filled', 'missing_accept_language', 'script_user_agent', 'too_fast']);
});
