/**
 * The SMTP sender against a real SMTP server on 127.0.0.1 (the `smtp-server` package, started by the test):
 * the message, the typed failures, the code scrubbed from reasons, and the whole flow over HTTP.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { createSmtpSender, DEFAULT_SUBJECT } from '../../src/delivery/smtp.ts';
import { SenderConfigError } from '../../src/delivery/sender.ts';
import { buildSenders } from '../../src/delivery/build.ts';
import { startTestApp, outcome } from '../helpers/app.ts';

interface Received {
  from: string;
  to: string[];
  raw: string;
  user: string | null;
}

/** An SMTP server on 127.0.0.1 without TLS; `reject` answers RCPT TO (or DATA) with an error. */
async function startSmtp(o: { reject?: { at: 'rcpt' | 'data'; code: number; message: (raw: string) => string }; auth?: { user: string; pass: string } } = {}) {
  const received: Received[] = [];
  const opts: SMTPServerOptions = {
    disabledCommands: o.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    allowInsecureAuth: true,
    authOptional: !o.auth,
    logger: false,
    onAuth(auth, _session, cb) {
      if (o.auth && auth.username === o.auth.user && auth.password === o.auth.pass) cb(null, { user: auth.username });
      else cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onRcptTo(address, _session, cb) {
      if (o.reject?.at === 'rcpt') cb(Object.assign(new Error(o.reject.message('')), { responseCode: o.reject.code }));
      else cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        if (o.reject?.at === 'data') return cb(Object.assign(new Error(o.reject.message(raw)), { responseCode: o.reject.code }));
        received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw, user: (session.user as string | undefined) ?? null });
        cb();
      });
    },
  };
  const server = new SMTPServer(opts);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;
  // Idempotent: a test closes a server early and its finally closes it again (an assertion failing in between
  // must not leave it listening and the test process alive).
  const close = () => (closed ??= new Promise<void>((resolve) => server.close(() => resolve())));
  return { port, received, close };
}

const msg = (code = '482913') => ({ verificationId: 'vf_1', to: 'ann@example.com', channel: 'email' as const, locale: 'en', code, text: `Your code is ${code}` });

describe('SMTP sender', () => {
  it('delivers the rendered message to the address, from the configured sender, with the auto-reply headers', async () => {
    const smtp = await startSmtp({ auth: { user: 'otp', pass: 'relay-password' } });
    try {
      const s = createSmtpSender({ host: '127.0.0.1', port: smtp.port, requireTls: false, user: 'otp', password: 'relay-password', from: '"Example" <no-reply@example.com>', env: 'test' });
      assert.deepEqual([...s.channels], ['email']);
      const r = await s.send(msg());
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal(smtp.received.length, 1);
      const m = smtp.received[0]!;
      assert.deepEqual(m.to, ['ann@example.com']);
      assert.equal(m.from, 'no-reply@example.com');
      assert.equal(m.user, 'otp');
      assert.match(m.raw, /Your code is 482913/);
      assert.match(m.raw, new RegExp(`^Subject: ${DEFAULT_SUBJECT}`, 'm'));
      assert.match(m.raw, /^Auto-Submitted: auto-generated/m);
      assert.match(m.raw, /^Content-Language: en/m);
    } finally {
      await smtp.close();
    }
  });

  it('types its failures: 4xx and network retryable, 5xx not; the code never in a reason', async () => {
    const perm = await startSmtp({ reject: { at: 'rcpt', code: 550, message: () => 'No such user here' } });
    const temp = await startSmtp({ reject: { at: 'data', code: 451, message: (raw) => `Greylisted, try later: ${/code is (\d+)/.exec(raw)?.[1] ?? ''}` } });
    try {
      const send = (port: number) => createSmtpSender({ host: '127.0.0.1', port, requireTls: false, from: 'no-reply@example.com', env: 'test', timeoutMs: 2_000 }).send(msg('482913'));
      const p = await send(perm.port);
      assert.equal(p.ok, false);
      assert.ok(!p.ok && !p.retryable && p.status === 550 && p.reason.startsWith('smtp:550'), JSON.stringify(p));
      const t = await send(temp.port);
      assert.ok(!t.ok && t.retryable && t.status === 451, JSON.stringify(t));
      assert.ok(!t.ok && !t.reason.includes('482913') && t.reason.includes('******'), `scrubbed: ${!t.ok && t.reason}`);
      // Nobody listens on the closed server's port.
      const closedPort = perm.port;
      await perm.close();
      const n = await send(closedPort);
      assert.ok(!n.ok && n.retryable && n.reason.startsWith('smtp:'), JSON.stringify(n));
    } finally {
      await Promise.all([perm.close(), temp.close()]);
    }
  });

  it('requires TLS unless told otherwise, and production refuses plaintext to anything but this machine', async () => {
    const smtp = await startSmtp();
    try {
      // The test server offers no STARTTLS: the default sender refuses to send the code in clear.
      const r = await createSmtpSender({ host: '127.0.0.1', port: smtp.port, from: 'no-reply@example.com', env: 'test', timeoutMs: 2_000 }).send(msg());
      assert.equal(r.ok, false, JSON.stringify(r));
      assert.equal(smtp.received.length, 0);
    } finally {
      await smtp.close();
    }
    assert.throws(() => createSmtpSender({ host: 'smtp.example.com', requireTls: false, from: 'no-reply@example.com', env: 'production' }), SenderConfigError);
    assert.doesNotThrow(() => createSmtpSender({ host: '127.0.0.1', requireTls: false, from: 'no-reply@example.com', env: 'production' }));
    assert.throws(() => createSmtpSender({ host: 'smtp.example.com', user: 'u', from: 'no-reply@example.com', env: 'test' }), /user and password go together/);
    assert.throws(() => buildSenders([{ type: 'smtp', host: 'h', from: 'nobody' }], 'test'), /from must be one address/);
    // A second address, or a header after a line break, would change the envelope sender.
    for (const from of ['no-reply@example.com\r\nBcc: a@evil.test', 'a@example.com, b@evil.test'])
      assert.throws(() => createSmtpSender({ host: '127.0.0.1', from, env: 'test' }), /from must be one address/, JSON.stringify(from));
    assert.doesNotThrow(() => createSmtpSender({ host: '127.0.0.1', from: '"Example Shop" <no-reply@example.com>', env: 'test' }));
  });

  it('a server that keeps answering a little at a time is cut at timeoutMs, and such a send is not retried (it may have been accepted)', { timeout: 30_000 }, async () => {
    // Minimal SMTP by hand: after the message it sends a continuation line every 200 ms and never the final
    // reply, so nodemailer's idle timeouts never fire (an email review held a send for minutes this way).
    const sockets = new Set<net.Socket>();
    const server = net.createServer((c) => {
      sockets.add(c);
      c.on('error', () => {});
      c.write('220 drip ESMTP\r\n');
      let inData = false;
      let buf = '';
      c.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        let i: number;
        while ((i = buf.indexOf('\r\n')) !== -1) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (inData) {
            if (line === '.') {
              inData = false;
              const drip = setInterval(() => (c.destroyed ? clearInterval(drip) : c.write('250-still thinking\r\n')), 200);
              c.on('close', () => clearInterval(drip));
            }
          } else if (/^EHLO/i.test(line)) c.write('250 drip\r\n');
          else if (/^DATA/i.test(line)) {
            inData = true;
            c.write('354 go on\r\n');
          } else c.write('250 ok\r\n');
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as AddressInfo).port;
      const r = await createSmtpSender({ host: '127.0.0.1', port, requireTls: false, from: 'no-reply@example.com', env: 'test', timeoutMs: 1_000 }).send(msg());
      assert.ok(!r.ok && !r.retryable && r.reason.startsWith('smtp:deadline'), JSON.stringify(r));
      // The cut conversation's connection is closed, not left open for the server to finish it later (a review
      // found every cut send leaving one behind).
      for (let i = 0; i < 100 && [...sockets].some((c) => !c.destroyed); i++) await new Promise((res) => setTimeout(res, 50));
      assert.ok([...sockets].every((c) => c.destroyed), 'the connection was closed');
      // The dispatcher's abort ends a send as well.
      const ac = new AbortController();
      const pending = createSmtpSender({ host: '127.0.0.1', port, requireTls: false, from: 'no-reply@example.com', env: 'test', timeoutMs: 60_000 }).send(msg(), ac.signal);
      setTimeout(() => ac.abort(), 300);
      const aborted = await pending;
      assert.ok(!aborted.ok && aborted.reason === 'smtp:aborted', JSON.stringify(aborted));
    } finally {
      for (const c of sockets) c.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('a server that never greets is cut at timeoutMs and retried or handed on: nothing was sent', { timeout: 30_000 }, async () => {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((c) => {
      sockets.add(c);
      c.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as AddressInfo).port;
      const r = await createSmtpSender({ host: '127.0.0.1', port, requireTls: false, from: 'no-reply@example.com', env: 'test', timeoutMs: 500 }).send(msg());
      assert.ok(!r.ok && r.retryable, JSON.stringify(r));
    } finally {
      for (const c of sockets) c.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('over HTTP: an email verification arrives by SMTP and its code approves it', async () => {
    const smtp = await startSmtp();
    const t = await startTestApp({ config: { channels: ['sms', 'email'], senders: [{ type: 'smtp', host: '127.0.0.1', port: smtp.port, requireTls: false, from: 'no-reply@example.com' }] } });
    try {
      const res = await t.request('POST', '/v1/verifications', { to: 'Ann.Lee@Example.com', channel: 'email', locale: 'de', client: { ip: '84.17.20.1', userAgent: 'Mozilla/5.0 Chrome/130.0', acceptLanguage: 'de-DE', elapsedMs: 5000 } });
      assert.equal(res.status, 201, res.text);
      assert.equal(smtp.received.length, 1);
      assert.deepEqual(smtp.received[0]!.to, ['ann.lee@example.com']);
      const body = smtp.received[0]!.raw;
      const code = /(\d{6})/.exec(body.slice(body.indexOf('\r\n\r\n')))?.[1];
      assert.ok(code, body);
      const ok = await t.request('POST', '/v1/verifications/check', { id: res.body.id, code });
      assert.deepEqual(outcome(ok.body), { status: 'approved' });
      const [ev] = (await t.request('GET', '/v1/admin/events?type=send&limit=1', undefined, { key: t.adminKey })).body.events;
      assert.equal(ev.data.delivery.sender, 'smtp');
    } finally {
      await t.close();
      await smtp.close();
    }
  });
});
