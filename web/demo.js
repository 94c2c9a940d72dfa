/*
 * Demo sign-in page logic (served at /demo.js; no inline scripts so the page runs under a strict CSP).
 *
 * Backend-for-frontend contract, implemented by the server's demo routes:
 *   POST /demo/api/send  { to, client }  → 2xx when a code was sent (or silently withheld), with
 *                                          { resendAfter, expiresAt } when known; non-2xx with an error body.
 *   POST /demo/api/check { to, code }    → 2xx with { status: 'approved' } (or { approved: true } /
 *                                          { valid: true }) when the code is right, { status: 'denied',
 *                                          attemptsLeft } when not; anything else is shown.
 * Error bodies may be { error: { code, message } }, { error: 'code', message }, { code, message } or
 * { reason }. The status line says what happened in plain words; the error code is in its `data-code`
 * attribute (for tests and for a developer reading the page).
 *
 * Accessibility: the status line is a live region; a field at fault gets aria-invalid and focus (its
 * aria-describedby is the status line); buttons are never `disabled` while busy (that would drop the
 * keyboard focus to the page), only aria-disabled; Enter in the phone field sends, in the code field verifies.
 */
'use strict';
(function () {
  var phone = document.getElementById('phone');
  var code = document.getElementById('code');
  var sendBtn = document.getElementById('send');
  var verifyBtn = document.getElementById('verify');
  var status = document.getElementById('status');
  var form = document.getElementById('signin');

  function show(text, kind, errorCode) {
    status.textContent = text;
    status.setAttribute('data-kind', kind || '');
    if (errorCode) status.setAttribute('data-code', errorCode);
    else status.removeAttribute('data-code');
  }

  /** Marks the field at fault (or none) and moves the focus to it, so a keyboard user lands where to fix. */
  function fault(field) {
    [phone, code].forEach(function (f) {
      if (f === field) f.setAttribute('aria-invalid', 'true');
      else f.removeAttribute('aria-invalid');
    });
    if (field) field.focus();
  }

  /** The widget script is async; wait briefly for it rather than sending without evidence. */
  async function shield() {
    for (var i = 0; i < 100 && !window.OTPShield; i++) {
      await new Promise(function (r) {
        setTimeout(r, 50);
      });
    }
    return window.OTPShield || null;
  }

  async function post(path, body) {
    var res = await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    });
    var data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    var retry = Number(res.headers.get('retry-after'));
    return { ok: res.ok, status: res.status, data: data || {}, retryAfter: retry > 0 ? retry : null };
  }

  function errorCode(r) {
    var d = r.data;
    var err = d.error;
    return (err && typeof err === 'object' && err.code) || (typeof err === 'string' && err) || d.code || d.reason || 'http_' + r.status;
  }

  function waitText(seconds) {
    if (seconds === null) return 'Please try again in a few minutes.';
    if (seconds < 90) return 'Please try again in ' + seconds + ' seconds.';
    return 'Please try again in ' + Math.ceil(seconds / 60) + ' minutes.';
  }

  /** What the person reads for an error: plain words, never the code alone (it is in data-code). */
  function errorText(r, during) {
    var c = errorCode(r);
    var reasons = (r.data.error && r.data.error.reasons) || [];
    switch (c) {
      case 'invalid_phone_number':
        return 'That phone number does not look right. Check it, with its country code, and try again.';
      case 'rate_limited':
        if (reasons.indexOf('cooldown') >= 0) return 'A code was sent a moment ago. ' + waitText(r.retryAfter);
        return 'Too many requests. ' + waitText(r.retryAfter);
      case 'challenge_required':
        return 'We could not confirm that a person is using this page, so no code was sent. Reload the page and try again, or contact support.';
      case 'request_blocked':
        return 'We cannot send a code to this number. Contact support if you think this is a mistake.';
      case 'delivery_failed':
        return 'The code could not be sent. Please try again.';
      case 'invalid_code':
        return 'Enter the digits of the code from the message.';
      case 'verification_not_found':
      case 'verification_expired':
      case 'verification_locked':
      case 'verification_not_pending':
        return 'That code is wrong or has expired. Ask for a new code.';
      case 'unavailable':
        return 'The service is busy. ' + waitText(r.retryAfter);
      default:
        return during === 'send' ? 'The code could not be sent (' + c + ').' : 'The code could not be checked (' + c + ').';
    }
  }

  function clock(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? null : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function sentText(d) {
    var parts = ['Code sent.'];
    var until = d.expiresAt && clock(d.expiresAt);
    if (until) parts.push('It works until ' + until + '.');
    var wait = d.resendAfter ? Math.max(0, Math.round((Date.parse(d.resendAfter) - Date.now()) / 1000)) : null;
    if (wait !== null && !isNaN(wait)) parts.push(wait > 0 ? 'You can ask for a new code in ' + wait + ' seconds.' : 'You can ask for a new code now.');
    return parts.join(' ');
  }

  var busy = false;
  async function guarded(button, fn) {
    if (busy) return;
    busy = true;
    button.setAttribute('aria-disabled', 'true');
    try {
      await fn();
    } catch (err) {
      show('Network error: check your connection and try again.', 'error', 'network_error');
    } finally {
      busy = false;
      button.removeAttribute('aria-disabled');
    }
  }

  function send() {
    guarded(sendBtn, async function () {
      var to = phone.value.trim();
      if (!to) {
        show('Enter a phone number.', 'error', 'missing_phone');
        return fault(phone);
      }
      show('Sending…', '');
      var s = await shield();
      var client = {};
      if (s) {
        await s.ready;
        client = await s.collect();
      }
      var r = await post('/demo/api/send', { to: to, client: client });
      // challenge_required carries a challenge: solve it (it may be a bigger puzzle) and send once more.
      var err = r.data && r.data.error;
      if (!r.ok && s && err && err.code === 'challenge_required' && err.challenge) {
        show('Checking your browser… this can take a few seconds.', '');
        client = await s.collect({ challenge: err.challenge });
        r = await post('/demo/api/send', { to: to, client: client });
      }
      if (r.ok) {
        show(sentText(r.data), 'ok');
        sendBtn.textContent = 'Send a new code';
        fault(null);
        code.focus();
      } else {
        show(errorText(r, 'send'), 'error', errorCode(r));
        fault(phone);
      }
    });
  }

  function verify() {
    guarded(verifyBtn, async function () {
      var to = phone.value.trim();
      var value = code.value.trim();
      if (!to || !value) {
        show('Enter the phone number and the code.', 'error', 'missing_code');
        return fault(to ? code : phone);
      }
      show('Checking…', '');
      var r = await post('/demo/api/check', { to: to, code: value });
      var d = r.data;
      if (r.ok && (d.status === 'approved' || d.approved === true || d.valid === true)) {
        show('Approved', 'ok');
        fault(null);
      } else if (r.ok) {
        var left = typeof d.attemptsLeft === 'number' ? d.attemptsLeft : null;
        var text = left === null ? 'Wrong code.' : left === 0 ? 'Wrong code, and no attempts are left. Ask for a new code.' : 'Wrong code. ' + left + (left === 1 ? ' attempt' : ' attempts') + ' left.';
        show(text, 'error', d.status || 'denied');
        fault(code);
      } else {
        show(errorText(r, 'check'), 'error', errorCode(r));
        fault(code);
      }
    });
  }

  sendBtn.addEventListener('click', send);
  // Enter in a field submits the form, which the browser does by clicking its submit button (Verify) with
  // event.detail 0: from the phone field that means "send". A pointer's click (detail ≥ 1) always verifies,
  // even where the click leaves the focus in the phone field (Safari).
  verifyBtn.addEventListener('click', function (event) {
    event.preventDefault();
    if (event.detail === 0 && document.activeElement === phone) send();
    else verify();
  });
  // A form submitted without a click (requestSubmit by an autofill): the same rule.
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    if (document.activeElement === phone) send();
    else verify();
  });
})();
