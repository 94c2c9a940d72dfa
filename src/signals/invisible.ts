/**
 * Invisible bot signals: cheap, pure checks on what the request and the widget report. None of them is
 * proof on its own (everything here except the form token's `issuedAt` is client-controlled and can be
 * faked); they raise the cost of the lazy majority of bots and feed the risk score. Weights live in the
 * engine, not here: this module only names what it saw.
 *
 * Signal names (stable, used in audit events and the replay format):
 * - `honeypot_filled`         the visually hidden `otps_hp` field has a value.
 * - `too_fast`                submitted sooner after the form token was issued than a human can type a number.
 * - `webdriver`               `navigator.webdriver` is true (Selenium, Playwright, Puppeteer set it).
 * - `headless`                the widget saw headless hints.
 * - `automation_marker`       the widget found a framework marker (detail: which one).
 * - `headless_user_agent`     the User-Agent says HeadlessChrome / PhantomJS / ...
 * - `script_user_agent`       the User-Agent is an HTTP library or CLI tool (detail: which).
 * - `missing_user_agent`      no User-Agent at all (every browser sends one).
 * - `missing_accept_language` no Accept-Language (every browser sends one; most scripts do not).
 */

export interface Signal {
  signal: string;
  detail?: string;
}

export const DEFAULT_MIN_HUMAN_MS = 1_500;

/**
 * HTTP libraries and CLI tools. Matched case-insensitively anywhere in the UA.
 * Deliberately NOT listed:
 * - `okhttp`: the default UA of Android's most common HTTP client, so legitimate native apps calling the
 *   customer's backend send it. Flagging it would punish real Android users; it is left to allow/deny lists.
 * - `Dalvik`, `CFNetwork`: same problem for Android/iOS system stacks.
 * - bare `node` (Node's fetch default) is matched exactly, not as a substring, because "node" occurs in
 *   unrelated words.
 */
const SCRIPT_UA_PATTERNS: ReadonlyArray<readonly [name: string, re: RegExp]> = [
  ['curl', /\bcurl\//i],
  ['wget', /\bwget\//i],
  ['python-requests', /python-requests/i],
  ['python-urllib', /python-urllib/i],
  ['httpx', /python-httpx|\bhttpx\//i],
  ['aiohttp', /aiohttp/i],
  ['scrapy', /scrapy/i],
  ['go-http-client', /go-http-client/i],
  ['java', /^java\/|\bjava\/\d/i],
  ['apache-httpclient', /apache-httpclient/i],
  ['libwww-perl', /libwww-perl|\blwp::/i],
  ['node-fetch', /node-fetch/i],
  ['axios', /\baxios\//i],
  ['undici', /\bundici\b/i],
  ['node', /^node$/i],
  ['httpie', /\bhttpie\//i],
  ['postman', /postmanruntime/i],
  ['guzzle', /guzzlehttp/i],
  ['ruby', /^ruby$|\bfaraday\b/i],
  ['powershell', /windowspowershell/i],
];

const HEADLESS_UA_PATTERNS: ReadonlyArray<readonly [name: string, re: RegExp]> = [
  ['HeadlessChrome', /headlesschrome/i],
  ['PhantomJS', /phantomjs/i],
  ['SlimerJS', /slimerjs/i],
];

/**
 * Automation markers the widget reports in `automation.flags`. Only these count as `automation_marker`;
 * anything else a client sends is kept in details but ignored (the list is attacker-writable).
 */
export const AUTOMATION_MARKERS: ReadonlySet<string> = new Set([
  'phantom', // window.callPhantom / window._phantom
  'selenium', // document attributes / window.domAutomation / $cdc_ keys of chromedriver
  'webdriver_attr', // documentElement has a webdriver/driver attribute
  'nightmare', // window.__nightmare
  'playwright', // window.__playwright* / __pwInitScripts
  'puppeteer', // __puppeteer_evaluation_script__ frames
  'cdp', // stack traces showing a Runtime.evaluate source
  'headless_brand', // navigator.userAgentData brands contain HeadlessChrome
]);

export function classifyUserAgent(ua: string | null | undefined): { script: string | null; headless: string | null } {
  const value = (ua ?? '').trim();
  const script = SCRIPT_UA_PATTERNS.find(([, re]) => re.test(value))?.[0] ?? null;
  const headless = HEADLESS_UA_PATTERNS.find(([, re]) => re.test(value))?.[0] ?? null;
  return { script, headless };
}

/**
 * Time from form-token issue to submit. Two measures exist: the widget's (client-reported, fakeable upward)
 * and the server's `now - issuedAt` (signed issue time; can only be made larger by actually waiting).
 * Both measure the same interval, so the smaller one is used: lying upward gains a bot nothing.
 * Returns null when neither is available.
 */
export function effectiveElapsedMs(elapsedMs: number | null | undefined, issuedAt: number | null | undefined, now: number): number | null {
  const client = typeof elapsedMs === 'number' && Number.isFinite(elapsedMs) && elapsedMs >= 0 ? elapsedMs : null;
  const server = typeof issuedAt === 'number' && Number.isFinite(issuedAt) ? Math.max(0, now - issuedAt) : null;
  if (client === null) return server;
  if (server === null) return client;
  return Math.min(client, server);
}

export interface InvisibleInput {
  now: number;
  honeypot?: string | boolean | null;
  elapsedMs?: number | null;
  /** Signed issue time of a form token whose MAC verified (see VerifiedFormToken.issuedAt). */
  formTokenIssuedAt?: number | null;
  minHumanMs?: number;
  automation?: { webdriver?: boolean; headless?: boolean; flags?: readonly string[] } | null;
  userAgent?: string | null;
  acceptLanguage?: string | null;
}

export function invisibleSignals(input: InvisibleInput): Signal[] {
  const out: Signal[] = [];

  if (input.honeypot === true || (typeof input.honeypot === 'string' && input.honeypot.length > 0)) out.push({ signal: 'honeypot_filled' });

  const elapsed = effectiveElapsedMs(input.elapsedMs, input.formTokenIssuedAt, input.now);
  const minHumanMs = input.minHumanMs ?? DEFAULT_MIN_HUMAN_MS;
  if (elapsed !== null && elapsed < minHumanMs) out.push({ signal: 'too_fast', detail: `${Math.round(elapsed)}ms` });

  const a = input.automation ?? {};
  if (a.webdriver === true) out.push({ signal: 'webdriver' });
  if (a.headless === true) out.push({ signal: 'headless' });
  for (const flag of new Set(a.flags ?? [])) {
    if (AUTOMATION_MARKERS.has(flag)) out.push({ signal: 'automation_marker', detail: flag });
  }

  const ua = classifyUserAgent(input.userAgent);
  if (ua.headless) out.push({ signal: 'headless_user_agent', detail: ua.headless });
  if (ua.script) out.push({ signal: 'script_user_agent', detail: ua.script });
  if ((input.userAgent ?? '').trim() === '') out.push({ signal: 'missing_user_agent' });

  if ((input.acceptLanguage ?? '').trim() === '') out.push({ signal: 'missing_accept_language' });

  return out;
}

/** True when any signal says "a browser driven by automation" (folded into VerifiedEvidence.headless). */
export function isHeadless(signals: readonly Signal[]): boolean {
  return signals.some((s) => s.signal === 'webdriver' || s.signal === 'headless' || s.signal === 'automation_marker' || s.signal === 'headless_user_agent');
}
