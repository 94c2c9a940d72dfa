// Email addresses, the destinations of the `email` channel: turn what a person typed into ONE canonical key
// per mailbox, or a typed reason why not.
//
// As with phone numbers (phone.ts), everything keyed on the destination (its send limits and cooldown, the
// failed-check lockout, block/allow lists, "verified before") is only as strong as this. `J.Doe+promo@GMail.com`,
// `jdoe@gmail.com` and `jdoe@googlemail.com` reach one mailbox; were they three keys, an attacker bombing that
// mailbox would get three budgets, and a hundred with a hundred +tags. So:
// - validator.js's `isEmail` decides the syntax (no display names, no IP-literal domains, a TLD required, an
//   ASCII local part (internationalised local parts are rare, unevenly delivered, and one more way to spell
//   one mailbox several ways), no quoted local parts (the same mailbox as many strings);
// - the domain is lower-cased and internationalised domains are written in their ASCII (punycode) form, so the
//   Unicode and the `xn--` spelling are one key;
// - `normalizeEmail` folds what the big providers document as one mailbox: Gmail's dots and +tags (and
//   googlemail.com), Outlook/Hotmail/Live and iCloud +tags; the local part is lower-cased (no provider of
//   note treats case as a different mailbox). A `+tag` elsewhere stays part of the address, but not of its
//   send limits' key (engine/limits.ts `limitKeyOf`).
// The canonical address is also where the code is delivered: each fold above reaches the same mailbox.

import validator from 'validator';
import { domainToASCII } from 'node:url';
import { createRequire } from 'node:module';

/** RFC 5321's limit for a path (254 usable characters), checked before any parsing (DoS guard). */
export const MAX_EMAIL_INPUT = 254;

export type EmailErrorReason = 'not_a_string' | 'too_long' | 'invalid_address';

export type EmailResult =
  | {
      ok: true;
      /** Canonical address: the destination's key and where the code goes, e.g. `jdoe@gmail.com`. */
      address: string;
      /** Its domain, ASCII, lower case, e.g. `gmail.com`. */
      domain: string;
    }
  | { ok: false; reason: EmailErrorReason; message: string };

const SYNTAX = {
  allow_display_name: false,
  require_display_name: false,
  allow_utf8_local_part: false,
  require_tld: true,
  allow_ip_domain: false,
  domain_specific_validation: true,
  allow_underscores: false,
} as const;

export function normalizeEmailAddress(input: unknown): EmailResult {
  if (typeof input !== 'string') return { ok: false, reason: 'not_a_string', message: 'an email address must be a string' };
  if (input.length > MAX_EMAIL_INPUT) return { ok: false, reason: 'too_long', message: `an email address has at most ${MAX_EMAIL_INPUT} characters` };
  const raw = input.trim();
  const at = raw.lastIndexOf('@');
  const invalid = { ok: false, reason: 'invalid_address', message: `"${raw.slice(0, 64)}" is not a valid email address` } as const;
  if (at <= 0 || at === raw.length - 1) return invalid;
  // '' when the domain is no valid (internationalised) domain name.
  const domain = domainToASCII(raw.slice(at + 1).toLowerCase());
  if (domain === '') return invalid;
  const local = raw.slice(0, at);
  // A dot-atom only: a quoted local part (`"d\\ave"@x`, `" dave"@x`) names the same mailbox as many strings
  // (a review got six budgets for one mailbox and passed an `email` block entry), and mail systems strip the
  // quotes anyway.
  if (!DOT_ATOM.test(local)) return invalid;
  const candidate = `${local}@${domain}`;
  if (!validator.isEmail(candidate, SYNTAX)) return invalid;
  const address = validator.normalizeEmail(candidate, FOLDS);
  if (address === false || !validator.isEmail(address, SYNTAX)) return invalid;
  return { ok: true, address, domain: address.slice(address.lastIndexOf('@') + 1) };
}

/** RFC 5322 dot-atom: atext runs separated by single dots. */
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/**
 * validator.js's folds, but Yahoo's `-` kept: a Yahoo disposable address is `base-keyword@yahoo.com` where the
 * base is not the account's own name, so folding it would send the code to another person's mailbox (an email
 * review). The folds kept are the ones that reach the same mailbox: Gmail's dots and `+tags`, Outlook's and
 * iCloud's `+tags`.
 */
const FOLDS = { yahoo_remove_subaddress: false } as const;


/** Whether a destination key is an email address (phone keys are E.164: they start with `+`). */
export function isEmailKey(key: string): boolean {
  return key.includes('@');
}

/**
 * Disposable (throw-away) mailbox domains, from the `disposable-email-domains` package (MIT; ~120,000 domains,
 * and a short list of domains all of whose subdomains are disposable too). Read on first use (~50 ms): a
 * deployment without the email channel never pays its few megabytes; `context.ts` reads it at start-up when
 * the channel is on, so that no request waits for it.
 */
let disposable: { exact: Set<string>; wildcard: Set<string> } | null = null;

export function disposableDomains(): { exact: Set<string>; wildcard: Set<string> } {
  if (disposable) return disposable;
  const require = createRequire(import.meta.url);
  disposable = { exact: new Set(require('disposable-email-domains/index.json') as string[]), wildcard: new Set(require('disposable-email-domains/wildcard.json') as string[]) };
  return disposable;
}

/** The source a disposable hit reports (the facts' `sources`). */
export const DISPOSABLE_EMAIL_SOURCE = 'list:disposable-email-domains';

/** Whether the domain is listed, or is a subdomain of a domain on the wildcard list. */
export function isDisposableEmailDomain(domain: string): boolean {
  const d = disposableDomains();
  if (d.exact.has(domain) || d.wildcard.has(domain)) return true;
  for (let i = domain.indexOf('.'); i !== -1; i = domain.indexOf('.', i + 1)) if (d.wildcard.has(domain.slice(i + 1))) return true;
  return false;
}

/**
 * An address in logs, alerts and masked exports: the local part's first character and the domain
 * (`j…@gmail.com`). The domain stays, as a number's prefix does: an operator needs to see which domains
 * traffic goes to.
 */
export function maskEmail(address: string): string {
  const at = address.lastIndexOf('@');
  if (at <= 0) return '…';
  // An ellipsis, not asterisks: `j***@gmail.com` is itself a valid address, so a masked export replayed as if
  // its masked addresses were real ones, merging mailboxes (an email review); `j…@gmail.com` is refused.
  return `${address[0]}…${address.slice(at)}`;
}

/**
 * An address inside a longer text (a log message, a provider's error quoting it). The local part's `/ = ? &`
 * are left out (legal, but rare in addresses): in a URL they belong to the path and query around it
 * (`?number=dave@x.com` masks `dave@x.com`, not the path before it).
 */
export const EMAIL_IN_TEXT_RE = /[A-Za-z0-9.!#$%'*+^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+/g;
