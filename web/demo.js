/*
 * Demo sign-in page logic (served at /demo.js; no inline scripts so the page runs under a strict CSP).
 *
 * Backend-for-frontend contract, implemented by the server's demo routes:
 *   POST /demo/api/send  { to, client }  → 2xx when a code was sent (or silently withheld);
 *                                          non-2xx with an error body otherwise.
 *   POST /demo/api/check { to, code }    → 2xx with { status: 'approved' } (or { approved: true } /
 *                                          { valid: true }) when the code is right; anything else is shown.
 * Error bodies may be { error: { code, message } }, { error: 'code', message }, { code, message } or
 * { reason }; the status line shows the code (and message) so a test can assert on it.
 */
'use strict';
(function () {
  var phone = document.getElementById('phone');
  var code = document.getElementById('code');
  var sendBtn = document.getElementById('send');
  var verifyBtn = document.getElementById('verify');
  var status = document.getElementById('status');
  var form = document.getElementById('signin');

  function show(text, kind) {
    status.textContent = text;
    status.setAttribute('data-kind', kind || '');
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
    return { ok: res.ok, status: res.status, data: data || {} };
  }

  function errorText(r) {
    var d = r.data;
    var err = d.error;
    var codeText = (err && typeof err === 'object' && err.code) || (typeof err === 'string' && err) || d.code || d.reason || null;
    var message = (err && typeof err === 'object' && err.message) || d.message || null;
    if (codeText && message && message !== codeText) return codeText + ': ' + message;
    return codeText || message || 'HTTP ' + r.status;
  }

  async function guarded(button, fn) {
    button.disabled = true;
    try {
      await fn();
    } catch (err) {
      show('network_error: ' + ((err && err.message) || err), 'error');
    } finally {
      button.disabled = false;
    }
  }

  sendBtn.addEventListener('click', function () {
    guarded(sendBtn, async function () {
      var to = phone.value.trim();
      if (!to) return show('Enter a phone number', 'error');
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
        show('Checking your browser…', '');
        client = await s.collect({ challenge: err.challenge });
        r = await post('/demo/api/send', { to: to, client: client });
      }
      if (r.ok) {
        show('Code sent', 'ok');
        code.focus();
      } else show(errorText(r), 'error');
    });
  });

  verifyBtn.addEventListener('click', function () {
    guarded(verifyBtn, async function () {
      var to = phone.value.trim();
      var value = code.value.trim();
      if (!to || !value) return show('Enter the phone number and the code', 'error');
      show('Checking…', '');
      var r = await post('/demo/api/check', { to: to, code: value });
      var d = r.data;
      if (r.ok && (d.status === 'approved' || d.approved === true || d.valid === true)) show('Approved', 'ok');
      else if (r.ok) show(d.status ? 'Not approved (' + d.status + ')' : errorText(r), 'error');
      else show(errorText(r), 'error');
    });
  });

  // Enter in a field must not navigate away: the buttons drive everything.
  form.addEventListener('submit', function (event) {
    event.preventDefault();
  });
})();
