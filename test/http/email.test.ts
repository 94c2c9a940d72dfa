/**
 * The email channel sends to email addresses (docs/verification.md, "Email destinations"): one canonical key
 * per mailbox for every limit, list and check; no country or prefix rules. Real HTTP server on SQLite, the
 * webhook sender pointed at a fake receiver on 127.0.0.1.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp, outcome } from '../helpers/app.ts';

const client = (ip: string) => ({ ip, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36', acceptLanguage: 'de-DE', elapsedMs: 5400 });
const MIN = 60_000;

describe('email destinations', () => {
  let t: TestApp;
  const admin = (method: string, path: string, body?: unknown) => t.request(method, path, body, { key: t.adminKey });
  before(async () => {
    // Only Indonesian numbers: the email channel has no country, so this must not refuse addresses.
    t = await startTestApp({ config: { channels: ['sms', 'email'] } });
    const put = await admin('PUT', '/v1/admin/policy', { numbers: { allowCountries: ['ID'] } });
    assert.equal(put.status, 200, put.text);
  });
  after(async () => t.close());

  it('sends to the canonical address, and checks by id or by any spelling of it', async () => {
    const res = await t.request('POST', '/v1/verifications', { to: 'John.Doe+signup@GMail.com', channel: 'email', client: client('84.17.10.1') });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.to, 'johndoe@gmail.com');
    assert.equal(res.body.channel, 'email');
    const delivered = t.receiver.requests.at(-1)!.json as { to: string; channel: string };
    assert.equal(delivered.to, 'johndoe@gmail.com');
    assert.equal(delivered.channel, 'email');
    const code = t.lastCode('johndoe@gmail.com')!;
    assert.match(code, /^\d{6}$/);
    const wrong = code === '000000' ? '111111' : '000000';
    assert.deepEqual(outcome((await t.request('POST', '/v1/verifications/check', { id: res.body.id, code: wrong })).body), { status: 'denied', attemptsLeft: 4 });
    // By `to` without a channel: an address means the email channel.
    const ok = await t.request('POST', '/v1/verifications/check', { to: 'J.O.H.N.DOE@googlemail.com', code });
    assert.deepEqual(outcome(ok.body), { status: 'approved' });

    // Recorded without a country or a prefix; the address itself is the destination.
    const [ev] = (await admin('GET', '/v1/admin/events?type=send&mask=false&limit=1')).body.events;
    assert.equal(ev.to, 'johndoe@gmail.com');
    assert.equal(ev.country, null);
    assert.equal(ev.prefix, null);
    assert.equal(ev.decision, 'allow');
    // Masked by default, like a number (the domain stays); the filter takes any spelling.
    const masked = (await admin('GET', `/v1/admin/events?type=send&number=${encodeURIComponent('John.Doe@gmail.com')}`)).body.events;
    assert.equal(masked.length, 1);
    assert.equal(masked[0].to, 'j…@gmail.com');

    // Stats by channel: the address is in the email row (and in no country row).
    const byChannel = (await admin('GET', '/v1/admin/stats?groupBy=channel')).body;
    const email = byChannel.rows.find((r: { key: string }) => r.key === 'email');
    assert.deepEqual([email.requests, email.sends, email.verifications, email.approved, email.conversion], [1, 1, 1, 1, 1]);
    const byCountry = (await admin('GET', '/v1/admin/stats?groupBy=country')).body;
    assert.deepEqual(byCountry.rows, []);
  });

  it('refuses what is not an address on the email channel, and an address on the others, with a clear error', async () => {
    for (const [to, channel, code] of [
      ['not-an-address', 'email', 'invalid_email_address'],
      ['+6281234567890', 'email', 'invalid_email_address'],
      ['ann@example.com', 'sms', 'invalid_phone_number'],
    ] as const) {
      const r = await t.request('POST', '/v1/verifications', { to, channel, client: client('84.17.10.2') });
      assert.equal(r.status, 422, `${to} on ${channel}: ${r.text}`);
      assert.equal(r.body.error.code, code);
      assert.equal(typeof r.body.error.message, 'string');
    }
    const check = await t.request('POST', '/v1/verifications/check', { to: 'nobody', channel: 'email', code: '123456' });
    assert.equal(check.status, 422);
    assert.equal(check.body.error.code, 'invalid_email_address');
  });

  it('one mailbox gets one budget: the cooldown and 3 per 10 minutes hold across its spellings', async () => {
    const spellings = ['mary.major@gmail.com', 'Mary.Major+a@gmail.com', 'marymajor+b@googlemail.com', 'M.A.R.Y.MAJOR@gmail.com'];
    const send = (to: string, ip: string) => t.request('POST', '/v1/verifications', { to, channel: 'email', client: client(ip) });
    const first = await send(spellings[0]!, '84.17.11.1');
    assert.equal(first.status, 201, first.text);
    // Another spelling right away is a resend of the same verification, inside its cooldown.
    const early = await send(spellings[1]!, '84.17.11.2');
    assert.equal(early.status, 429, early.text);
    const statuses: number[] = [];
    for (const [i, to] of spellings.slice(1).entries()) {
      t.clock.advance(2 * MIN + 1_000);
      const r = await send(to, `84.17.11.${10 + i}`);
      statuses.push(r.status);
      if (r.status === 201) assert.equal(r.body.id, first.body.id, 'a resend of the one verification');
    }
    assert.deepEqual(statuses, [201, 201, 429], 'the fourth message within 10 minutes is refused');
  });

  it('+tags share one budget on every domain: a tag per request buys no fresh cooldown', async () => {
    const send = (to: string) => t.request('POST', '/v1/verifications', { to, channel: 'email', client: client('84.17.14.1') });
    const first = await send('bob.smith+1@company.example');
    assert.equal(first.status, 201, first.text);
    assert.equal(first.body.to, 'bob.smith+1@company.example', 'delivered to the address as given');
    const tagged = await send('bob.smith+2@company.example');
    assert.equal(tagged.status, 429, tagged.text);
    t.clock.advance(31_000);
    assert.equal((await send('bob.smith+3@company.example')).status, 201, 'after the cooldown');
  });

  it('the failed-check lockout counts a mailbox\'s +tags together: a tag per verification buys no fresh guesses', async () => {
    const wrongs: number[] = [];
    let locked = false;
    for (let i = 0; i < 6 && !locked; i++) {
      const s = await t.request('POST', '/v1/verifications', { to: `guess.me+${i}@company.example`, channel: 'email', client: client(`84.17.15.${i}`) });
      assert.equal(s.status, 201, s.text);
      const code = t.lastCode(`guess.me+${i}@company.example`)!;
      const wrong = code === '000000' ? '111111' : '000000';
      for (let k = 0; k < 4; k++) {
        const r = await t.request('POST', '/v1/verifications/check', { id: s.body.id, code: wrong, client: { ip: `84.17.16.${i * 4 + k}` } });
        wrongs.push(r.status);
        if (r.status === 429) {
          locked = true;
          break;
        }
      }
      t.clock.advance(3 * MIN);
    }
    // The per-number budget (10 failed checks an hour) is reached across the tags.
    assert.ok(locked, wrongs.join());
    assert.equal(wrongs.filter((x) => x === 200).length, 10, wrongs.join());
  });

  it('no country or prefix rule applies to an address; a disposable-mailbox domain scores', async () => {
    // allowCountries ['ID'] refuses a US number (country.number), not an address from a US IP.
    const us = await t.request('POST', '/v1/verifications', { to: '+14155550123', client: client('84.17.12.1') });
    assert.equal(us.status, 403, us.text);
    const mail = await t.request('POST', '/v1/verifications', { to: 'ann@example.com', channel: 'email', client: client('8.8.4.4') });
    assert.equal(mail.status, 201, mail.text);
    const [ev] = (await admin('GET', '/v1/admin/events?type=send&mask=false&limit=1')).body.events;
    assert.equal(ev.to, 'ann@example.com');
    assert.ok(!ev.reasons.includes('country.number') && !ev.reasons.includes('ip.country_mismatch'), ev.reasons.join());

    const throwaway = await t.request('POST', '/v1/verifications', { to: 'zed@mailinator.com', channel: 'email', client: client('84.17.12.2') });
    const [d] = (await admin('GET', '/v1/admin/events?type=send&mask=false&limit=1')).body.events;
    assert.equal(d.to, 'zed@mailinator.com');
    assert.ok(d.reasons.includes('number.disposable'), `${throwaway.status} ${d.reasons.join()}`);
    assert.deepEqual(d.data.number.sources, ['list:disposable-email-domains']);
  });

  it('lists block an address (any spelling) or a domain and its subdomains', async () => {
    const add = async (kind: string, value: string) => {
      const r = await admin('POST', '/v1/admin/lists', { list: 'block', kind, value });
      assert.equal(r.status, 201, r.text);
      return r.body;
    };
    assert.equal((await add('email', 'Blocked.User+x@GMail.com')).value, 'blockeduser@gmail.com');
    assert.equal((await add('domain', '@Spam-Farm.example')).value, 'spam-farm.example');
    const bad = await admin('POST', '/v1/admin/lists', { list: 'block', kind: 'email', value: 'not an address' });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.error.code, 'invalid_request');
    const send = (to: string) => t.request('POST', '/v1/verifications', { to, channel: 'email', client: client('84.17.13.1') });
    for (const to of ['blocked.user@googlemail.com', 'x@spam-farm.example', 'y@mx.spam-farm.example']) {
      await send(to);
      const [ev] = (await admin('GET', '/v1/admin/events?type=send&mask=false&limit=1')).body.events;
      assert.equal(ev.decision, 'block', to);
      assert.ok(ev.reasons.includes('list.block'), `${to}: ${ev.reasons.join()}`);
    }
    // An address's entry also holds its +tags (the same mailbox): a tag must not slip past a block.
    await add('email', 'erin.ng@company.example');
    await send('erin.ng+x@company.example');
    const [tagged] = (await admin('GET', '/v1/admin/events?type=send&mask=false&limit=1')).body.events;
    assert.equal(tagged.to, 'erin.ng+x@company.example');
    assert.ok(tagged.reasons.includes('list.block'), tagged.reasons.join());
    // A domain entry matches the domain, not a longer name ending in it.
    await send('z@not-spam-farm.example');
    const [ok] = (await admin('GET', '/v1/admin/events?type=send&mask=false&limit=1')).body.events;
    assert.ok(!ok.reasons.includes('list.block'), ok.reasons.join());
  });
});
