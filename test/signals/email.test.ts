import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isDisposableEmailDomain, maskEmail, MAX_EMAIL_INPUT, normalizeEmailAddress } from '../../src/signals/email.ts';
import { maskNumbersInText } from '../../src/service/log-privacy.ts';
import { limitKeyOf } from '../../src/engine/limits.ts';
import { numberMasker } from '../../src/service/audit-export.ts';

const key = (s: unknown) => {
  const r = normalizeEmailAddress(s);
  return r.ok ? r.address : `!${r.reason}`;
};

describe('email addresses (the email channel\'s destinations)', () => {
  it('folds the spellings of one mailbox into one key', () => {
    // Gmail: dots, +tags, case and googlemail.com are one mailbox.
    for (const s of ['John.Doe+promo@GMail.com', 'johndoe@googlemail.com', ' j.o.h.n.d.o.e@gmail.com ', 'JOHNDOE@GMAIL.COM']) assert.equal(key(s), 'johndoe@gmail.com', s);
    // Outlook and iCloud +tags.
    assert.equal(key('Ann+shop@Outlook.com'), 'ann@outlook.com');
    assert.equal(key('ann+shop@icloud.com'), 'ann@icloud.com');
    // Not Yahoo's -tags: the base of a Yahoo disposable address is not the account's name (another person's
    // mailbox, an email review).
    assert.equal(key('shopper-acme@yahoo.com'), 'shopper-acme@yahoo.com');
    // Elsewhere a +tag may be a different mailbox: kept (only the case is folded).
    assert.equal(key('Ann+Shop@Example.COM'), 'ann+shop@example.com');
    // An internationalised domain and its ASCII form are one key.
    assert.equal(key('bob@münchen.de'), 'bob@xn--mnchen-3ya.de');
    assert.equal(key('bob@XN--MNCHEN-3YA.de'), 'bob@xn--mnchen-3ya.de');
  });

  it('refuses what is no deliverable address, with a typed reason', () => {
    // Quoted local parts: one mailbox as many strings (a review got six budgets for one mailbox).
    for (const s of ['"dave.lee"@company.com', '"\\dave.lee"@company.com', '" dave.lee"@company.com', '"attacker@evil.test"@company.com', 'a..b@example.com', '.a@example.com'])
      assert.equal(key(s), '!invalid_address', s);
    for (const s of ['a@b', 'a@1.2.3.4', 'a@[1.2.3.4]', 'Bob <b@example.com>', 'ü@example.com', 'a@@example.com', '@example.com', 'a@', 'a@example.com.', 'a b@example.com', 'a@exa_mple.com', '+6281234567890', ''])
      assert.equal(key(s), '!invalid_address', s);
    assert.equal(key(42), '!not_a_string');
    assert.equal(key(`${'a'.repeat(MAX_EMAIL_INPUT)}@example.com`), '!too_long');
  });

  it('keys an address\'s limits without its +tag on every domain (and Yahoo\'s -keyword); a number is its own key', () => {
    assert.equal(limitKeyOf('bob.smith+1@company.com'), 'bob.smith@company.com');
    assert.equal(limitKeyOf('bob.smith@company.com'), 'bob.smith@company.com');
    assert.equal(limitKeyOf('+x@company.com'), '+x@company.com', 'a local part that is only a tag stays');
    assert.equal(limitKeyOf('shopper-acme@yahoo.com'), 'shopper@yahoo.com');
    assert.equal(limitKeyOf('jean-luc@example.com'), 'jean-luc@example.com', 'a dash elsewhere is part of the name');
    assert.equal(limitKeyOf('+6281234567890'), '+6281234567890');
  });

  it('knows disposable-mailbox domains (and the subdomains of the wildcard ones)', () => {
    assert.equal(isDisposableEmailDomain('mailinator.com'), true);
    assert.equal(isDisposableEmailDomain('gmail.com'), false);
    assert.equal(isDisposableEmailDomain('example.com'), false);
    assert.equal(isDisposableEmailDomain('anything.33mail.com'), true, '33mail.com is on the wildcard list');
  });

  it('is masked in logs and exports like a number: the domain stays', () => {
    assert.equal(maskEmail('johndoe@gmail.com'), 'j…@gmail.com');
    assert.equal(maskNumbersInText('sent to johndoe@gmail.com and +6281234567890'), 'sent to j…@gmail.com and +62812*****890');
    assert.equal(numberMasker('mask')('johndoe@gmail.com'), 'j…@gmail.com');
    const pseudo = numberMasker('pseudonymize', 'k'.repeat(32));
    const p = pseudo('johndoe@gmail.com');
    assert.match(p, /^u[0-9a-f]{12}@gmail\.com$/);
    assert.equal(pseudo('johndoe@gmail.com'), p, 'stable under one key');
    assert.notEqual(pseudo('janedoe@gmail.com'), p);
    assert.equal(key(p), p, 'a pseudonym is a valid address, so a pseudonymised export replays');
    assert.equal(key(maskEmail('johndoe@gmail.com')), '!invalid_address', 'a masked address is none: a masked export cannot replay as real mailboxes');
    // Request lines: the personal query parameters' values, however encoded.
    const line = '{"url":"/v1/admin/events?number=alice.smith%40posteo.de&ip=91.66.1.77&type=send","x":"?number=%2B49%20151%2023456789"}';
    assert.equal(maskNumbersInText(line), '{"url":"/v1/admin/events?number=[redacted]&ip=[redacted]&type=send","x":"?number=[redacted]"}');
    assert.equal(maskNumbersInText('/v1/admin/events?type=send&q=dave.lee@company.com'), '/v1/admin/events?type=send&q=d…@company.com', 'the path stays');
  });
});
