/*
 * OTP Shield browser widget, served at /widget.js. Plain script, no build step, no dependencies.
 *
 *   <script src="https://otp.example.com/widget.js" data-form="#signup" async></script>
 *
 * What it does, all invisible to the user:
 * 1. POSTs `<script origin>/v1/challenges` for a signed one-time form token and a proof-of-work challenge.
 * 2. Solves the proof of work in a Web Worker (`/widget-worker.js`; on a page of another origin, through a
 *    blob: worker that imports it, where the page's CSP allows blob: workers; otherwise on the main thread,
 *    in slices of about 10 ms so the page stays responsive). `OTPShield.lastSolve` says where and how long.
 * 3. Collects signals: navigator.webdriver, headless / automation markers, time since the token was
 *    received, navigator.languages, and a device id from FingerprintJS (`/fp.js`, loaded with
 *    `monitoring: false` so nothing is sent anywhere but our own server).
 * 4. With `data-form`, adds hidden inputs (otps_form_token, otps_pow, otps_device_id, otps_elapsed_ms,
 *    otps_automation) and a visually hidden honeypot input (otps_hp) to the form, and fills them right
 *    before the form submits. The customer's backend forwards them as the `client` block.
 *
 * JavaScript API (for single-page apps that post with fetch instead of a form):
 *   window.OTPShield.ready      Promise<void>, settles once the first evidence is prepared (never rejects)
 *   window.OTPShield.collect()  Promise<object>, the `client` block of POST /v1/verifications
 *   window.OTPShield.collect({ challenge })  the same, answering the `challenge` of a challenge_required error
 *   window.OTPShield.lastSolve  { where: 'worker' | 'page', ms, maxnumber } of the last proof of work, or null
 * Tokens are single use: every collect() spends the current token and a fresh one is prepared.
 *
 * CSP: works under `default-src 'self'; worker-src 'self'` when served from the page's origin (no eval,
 * no inline scripts, no style attributes: styles are set through the CSSOM, which CSP allows). When served
 * from another origin, that origin must be allowed in script-src and connect-src, and /v1/challenges must
 * answer CORS.
 */
(function () {
  'use strict';

  if (window.OTPShield) return; // loaded twice: keep the first instance

  var FIELDS = {
    formToken: 'otps_form_token',
    pow: 'otps_pow',
    deviceId: 'otps_device_id',
    elapsedMs: 'otps_elapsed_ms',
    automation: 'otps_automation',
    honeypot: 'otps_hp',
  };
  var SUBMIT_WAIT_MS = 8000; // longest we hold a form submit waiting for evidence
  var DEVICE_WAIT_MS = 4000; // FingerprintJS normally needs well under a second
  var POW_MAX_MS = 60000; // give up on a proof of work after this
  var REFRESH_AT = 0.8; // refresh an unused token after 80% of its lifetime
  var STALE_MARGIN_MS = 15000; // never hand out a token this close to expiry

  var script = document.currentScript || findOwnScript();
  var scriptUrl = new URL(script ? script.src : '/widget.js', location.href);
  var origin = scriptUrl.origin;
  var formSelector = script ? script.getAttribute('data-form') : null;

  function findOwnScript() {
    var all = document.getElementsByTagName('script');
    for (var i = all.length - 1; i >= 0; i--) {
      if (/\/widget\.js(\?|$)/.test(all[i].src)) return all[i];
    }
    return null;
  }

  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  /** Resolves to the promise's value, or to `fallback` after `ms` (never rejects). */
  function within(promise, ms, fallback) {
    return Promise.race([
      Promise.resolve(promise).catch(function () {
        return fallback;
      }),
      sleep(ms).then(function () {
        return fallback;
      }),
    ]);
  }

  // ---------------------------------------------------------------- proof of work

  // Null in a browser without TextEncoder: the puzzle is then left unsolved (solvePow), not the whole widget
  // broken; the form token, the honeypot and the rest still work.
  var encoder = typeof TextEncoder === 'function' ? new TextEncoder() : null;

  function hexToBytes(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }

  /** Where and how fast the last proof of work was solved (`OTPShield.lastSolve`). */
  var lastSolve = null;

  /**
   * Same search as widget-worker.js, on this thread. It yields to the page every ~10 ms of work, not after every
   * batch: a setTimeout(0) waits at least 4 ms once nested, which after every 128 digests made the search spend
   * most of its time asleep (2.4 s against 0.5 s in a worker for the same puzzle).
   */
  async function solveHere(ch) {
    var target = hexToBytes(ch.challenge);
    var sliceStart = Date.now();
    for (var n = 0; n <= ch.maxnumber; n += 256) {
      var end = Math.min(ch.maxnumber, n + 255);
      var jobs = [];
      for (var i = n; i <= end; i++) jobs.push(crypto.subtle.digest('SHA-256', encoder.encode(ch.salt + i)));
      var digests = await Promise.all(jobs);
      for (var k = 0; k < digests.length; k++) {
        var d = new Uint8Array(digests[k]);
        var same = d.length === target.length;
        for (var j = 0; same && j < d.length; j++) same = d[j] === target[j];
        if (same) return n + k;
      }
      if (Date.now() - sliceStart >= 10) {
        await sleep(0);
        sliceStart = Date.now();
      }
    }
    return null;
  }

  /**
   * The worker: from its URL when the page is on OTP Shield's origin; from another origin a page may not start
   * a worker from our URL, so a blob: worker of the page's own origin imports it (classic workers may import
   * scripts from anywhere the page's CSP allows). A CSP without blob: in worker-src refuses that one too, and
   * the search runs on the main thread.
   */
  function startWorker() {
    var url = origin + '/widget-worker.js';
    if (origin === location.origin) return new Worker(url);
    var shim = URL.createObjectURL(new Blob(['importScripts(' + JSON.stringify(url) + ');'], { type: 'text/javascript' }));
    try {
      return new Worker(shim);
    } finally {
      // The worker has fetched its script by the time it runs a message; the URL itself is not needed.
      setTimeout(function () {
        URL.revokeObjectURL(shim);
      }, 60000);
    }
  }

  function solveInWorker(ch) {
    return new Promise(function (resolve, reject) {
      var worker;
      try {
        // A worker URL the page may not use throws here; CSP refusals arrive as an 'error' event below.
        worker = startWorker();
      } catch (err) {
        reject(err);
        return;
      }
      worker.onmessage = function (event) {
        worker.terminate();
        var msg = event.data || {};
        if (msg.type === 'solved') resolve(msg.number);
        else if (msg.type === 'not_found') resolve(null);
        else reject(new Error(msg.message || 'worker failed'));
      };
      worker.onerror = function (event) {
        if (event && event.preventDefault) event.preventDefault();
        worker.terminate();
        reject(new Error('worker unavailable'));
      };
      worker.postMessage({ challenge: ch.challenge, salt: ch.salt, algorithm: ch.algorithm, max: ch.maxnumber, start: 0 });
    });
  }

  /** Returns the ALTCHA payload (base64 JSON) or null. */
  async function solvePow(ch) {
    if (!ch || ch.algorithm !== 'SHA-256' || !window.crypto || !crypto.subtle || !encoder) return null;
    var number;
    var started = Date.now();
    var where = 'worker';
    try {
      number = await solveInWorker(ch);
    } catch (_) {
      where = 'page';
      number = await solveHere(ch);
    }
    lastSolve = Object.freeze({ where: where, ms: Date.now() - started, maxnumber: ch.maxnumber });
    if (number === null || number === undefined) return null;
    return btoa(
      JSON.stringify({ algorithm: ch.algorithm, challenge: ch.challenge, number: number, salt: ch.salt, signature: ch.signature }),
    );
  }

  // ---------------------------------------------------------------- sessions (token + solved PoW)

  /**
   * A session is one /v1/challenges answer plus its solved proof of work. Only one unspent session is
   * kept; collect() takes it and the next one is prepared lazily.
   */
  var sessionPromise = null;
  var refreshTimer = null;

  async function fetchChallenge() {
    for (var attempt = 0; attempt < 2; attempt++) {
      try {
        var res = await fetch(origin + '/v1/challenges', {
          method: 'POST',
          credentials: 'omit',
          cache: 'no-store',
          headers: { accept: 'application/json' },
        });
        if (res.ok) {
          var body = await res.json();
          if (body && typeof body.formToken === 'string') return body;
        }
      } catch (_) {
        /* network error: retry once */
      }
      await sleep(1500);
    }
    return null;
  }

  async function startSession() {
    var body = await fetchChallenge();
    if (!body) {
      // Usually CORS: this page's origin is not in the server's cors.origins. Sends then carry no token and
      // no proof of work, and score for it; say so where the integrator looks.
      if (!warnedUnreachable && typeof console !== 'undefined') {
        warnedUnreachable = true;
        console.warn('OTP Shield: no challenge from ' + origin + '/v1/challenges; sends will carry no form token or proof of work. From another origin, list this page\'s origin in the server\'s cors.origins (OTPSHIELD_CORS_ORIGINS).');
      }
      return null;
    }
    return sessionFrom(body);
  }

  var warnedUnreachable = false;

  /** A session from a /v1/challenges answer, or from the `challenge` of a challenge_required error. */
  async function sessionFrom(body) {
    var session = {
      formToken: body.formToken,
      receivedAt: performance.now(),
      // Lifetime from the server's own numbers, so the client clock does not matter.
      ttlMs: typeof body.expiresAt === 'number' && typeof body.issuedAt === 'number' ? body.expiresAt - body.issuedAt : 600000,
      pow: null,
    };
    session.pow = await within(solvePow(body.pow), POW_MAX_MS, null);
    return session;
  }

  function isFresh(s) {
    return s && performance.now() - s.receivedAt < s.ttlMs - STALE_MARGIN_MS;
  }

  function prepare() {
    var p = startSession();
    sessionPromise = p;
    p.then(function (s) {
      if (sessionPromise !== p) return;
      if (s) prefill(p, s);
      clearTimeout(refreshTimer);
      // Replace a token nobody used before it expires (long-open tabs).
      refreshTimer = setTimeout(
        function () {
          if (sessionPromise === p) prepare();
        },
        s ? s.ttlMs * REFRESH_AT : 30000,
      );
    });
    return p;
  }

  /** Hands out the current session exactly once (synchronously, so concurrent callers never share one). */
  function takeSession() {
    var p = sessionPromise || startSession();
    sessionPromise = null;
    clearTimeout(refreshTimer);
    // Prepare the next one a moment later: a page that navigates away after submitting won't waste it.
    refreshTimer = setTimeout(function () {
      if (!sessionPromise) prepare();
    }, 1000);
    return p.then(function (s) {
      return isFresh(s) ? s : startSession();
    });
  }

  // ---------------------------------------------------------------- signals

  function detectAutomation() {
    var flags = [];
    var nav = navigator;
    var ua = nav.userAgent || '';
    var headless = /HeadlessChrome|PhantomJS/i.test(ua);
    var brands = nav.userAgentData && nav.userAgentData.brands;
    if (brands && brands.some && brands.some(function (b) { return /headless/i.test(b.brand || ''); })) {
      headless = true;
      flags.push('headless_brand');
    }
    var w = window;
    if (w.callPhantom || w._phantom || w.phantom) flags.push('phantom');
    if (w.__nightmare) flags.push('nightmare');
    if (w.__playwright__binding__ || w.__pwInitScripts) flags.push('playwright');
    var selenium = !!(w.domAutomation || w.domAutomationController || w._selenium || w.callSelenium || w._Selenium_IDE_Recorder);
    try {
      // chromedriver injects `$cdc_...` / `cdc_...` keys; older drivers used `$wdc_`.
      var keys = Object.keys(document).concat(Object.keys(w));
      for (var i = 0; !selenium && i < keys.length; i++) selenium = /^\$?(cdc|wdc)_/.test(keys[i]);
    } catch (_) {
      /* exotic environments: ignore */
    }
    if (selenium) flags.push('selenium');
    var de = document.documentElement;
    if (de && (de.getAttribute('webdriver') !== null || de.getAttribute('selenium') !== null || de.getAttribute('driver') !== null)) {
      flags.push('webdriver_attr');
    }
    return { webdriver: nav.webdriver === true, headless: headless, flags: flags.slice(0, 16) };
  }

  function acceptLanguage() {
    var langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ''];
    return Array.prototype.join.call(langs, ',').slice(0, 256);
  }

  /** FingerprintJS (open-source, v5) loaded as a classic script from our server: no CORS needed. */
  function loadDeviceId() {
    return new Promise(function (resolve) {
      var previous = window.FingerprintJS;
      var el = document.createElement('script');
      el.src = origin + '/fp.js';
      el.async = true;
      el.onload = function () {
        var fp = window.FingerprintJS;
        // Put back whatever the page had under that name; we keep our own reference.
        if (previous === undefined) {
          try {
            delete window.FingerprintJS;
          } catch (_) {
            window.FingerprintJS = undefined;
          }
        } else window.FingerprintJS = previous;
        if (!fp || typeof fp.load !== 'function') return resolve(null);
        fp.load({ monitoring: false })
          .then(function (agent) {
            return agent.get();
          })
          .then(
            function (result) {
              resolve(result && typeof result.visitorId === 'string' ? result.visitorId.slice(0, 128) : null);
            },
            function () {
              resolve(null);
            },
          );
      };
      el.onerror = function () {
        resolve(null);
      };
      (document.head || document.documentElement).appendChild(el);
    });
  }

  var devicePromise = loadDeviceId();

  // ---------------------------------------------------------------- collect

  function honeypotValue() {
    var form = boundForm;
    var input = form && form.elements.namedItem(FIELDS.honeypot);
    return input && typeof input.value === 'string' ? input.value.slice(0, 1024) : '';
  }

  /**
   * collect()             the `client` block with the prepared token and proof of work;
   * collect({challenge})  the same for the `challenge` a challenge_required answer carried (error.challenge):
   *                       its token, its proof of work solved here (it may be harder: waits up to POW_MAX_MS).
   */
  async function collect(opts) {
    var given = opts && opts.challenge && typeof opts.challenge.formToken === 'string' ? opts.challenge : null;
    var sessionP = given ? sessionFrom(given) : takeSession();
    var results = await Promise.all([within(sessionP, given ? POW_MAX_MS : SUBMIT_WAIT_MS, null), within(devicePromise, DEVICE_WAIT_MS, null)]);
    var session = results[0];
    var deviceId = results[1];
    // The schema rejects nulls: only present values are included.
    var block = {
      userAgent: (navigator.userAgent || '').slice(0, 512),
      honeypot: honeypotValue(),
      automation: detectAutomation(),
      acceptLanguage: acceptLanguage(),
    };
    if (session) {
      // Time on the form: for the answer to a challenge, since the form was started (the session the
      // challenged request spent), not since the challenge arrived, which is only the puzzle's seconds; the
      // server's token carries the same start (its `st`) and takes the smaller of the two.
      var since = given && formStartedAt !== null ? Math.min(formStartedAt, session.receivedAt) : session.receivedAt;
      block.formToken = session.formToken;
      block.elapsedMs = Math.max(0, Math.round(performance.now() - since));
      if (session.pow) block.pow = session.pow;
      if (!given) formStartedAt = session.receivedAt;
    }
    if (deviceId) block.deviceId = deviceId;
    return block;
  }

  /** When the session the last collect() spent was received: the form's start, for a challenge's answer. */
  var formStartedAt = null;

  // ---------------------------------------------------------------- form binding

  var boundForm = null;
  var passThrough = false;

  function hiddenInput(form, name) {
    var existing = form.querySelector('input[name="' + name + '"]');
    if (existing) return existing;
    var input = document.createElement('input');
    input.type = 'hidden';
    input.name = name;
    form.appendChild(input);
    return input;
  }

  /**
   * A text input people never see or reach: off-screen, out of the tab order, hidden from assistive tech,
   * no autofill. Bots that fill every field fill this one. Styled through the CSSOM, not a style attribute.
   */
  function addHoneypot(form) {
    if (form.querySelector('input[name="' + FIELDS.honeypot + '"]')) return;
    var wrap = document.createElement('div');
    wrap.setAttribute('aria-hidden', 'true');
    var s = wrap.style;
    s.position = 'absolute';
    s.left = '-10000px';
    s.top = 'auto';
    s.width = '1px';
    s.height = '1px';
    s.overflow = 'hidden';
    var label = document.createElement('label');
    label.textContent = 'Leave this field empty';
    var input = document.createElement('input');
    input.type = 'text';
    input.name = FIELDS.honeypot;
    input.tabIndex = -1;
    input.autocomplete = 'off';
    input.setAttribute('autocomplete', 'off');
    label.appendChild(input);
    wrap.appendChild(label);
    form.appendChild(wrap);
  }

  function fill(form, block) {
    hiddenInput(form, FIELDS.formToken).value = block.formToken || '';
    hiddenInput(form, FIELDS.pow).value = block.pow || '';
    hiddenInput(form, FIELDS.deviceId).value = block.deviceId || '';
    hiddenInput(form, FIELDS.elapsedMs).value = block.elapsedMs === undefined ? '' : String(block.elapsedMs);
    hiddenInput(form, FIELDS.automation).value = JSON.stringify(block.automation || {});
  }

  /**
   * Fills what is known as soon as a session is ready, for sites that call form.submit() directly (which
   * fires no submit event). Elapsed time is left empty: the server then measures it from the signed token.
   */
  function prefill(p, session) {
    if (!boundForm) return;
    within(devicePromise, DEVICE_WAIT_MS, null).then(function (deviceId) {
      // Only while this session is still the unspent one; a submit may have taken it meanwhile.
      if (!boundForm || sessionPromise !== p) return;
      fill(boundForm, {
        formToken: session.formToken,
        pow: session.pow,
        deviceId: deviceId,
        automation: detectAutomation(),
      });
    });
  }

  function onSubmit(event) {
    if (passThrough) {
      passThrough = false;
      return;
    }
    var form = event.currentTarget;
    var submitter = event.submitter && event.submitter.form === form ? event.submitter : null;
    // Hold this submit, fill fresh evidence, then submit again (that second event passes through).
    event.preventDefault();
    event.stopImmediatePropagation();
    collect()
      .then(function (block) {
        fill(form, block);
      })
      .catch(function () {
        /* submit without evidence rather than never */
      })
      .then(function () {
        // A new task, not a microtask: when the evidence is already at hand this chain settles before the
        // original submission finishes, and the HTML spec ignores a submit requested during that time.
        return sleep(0);
      })
      .then(function () {
        passThrough = true;
        try {
          if (typeof form.requestSubmit === 'function') form.requestSubmit(submitter || undefined);
          else form.submit();
        } finally {
          // requestSubmit dispatches synchronously; if validation stopped it, no event consumed the flag.
          passThrough = false;
        }
      });
  }

  function bindForm() {
    if (!formSelector || boundForm) return;
    var form = document.querySelector(formSelector);
    if (!form || form.tagName !== 'FORM') return;
    boundForm = form;
    addHoneypot(form);
    // Capture phase, so our hold runs before the page's own submit handlers.
    form.addEventListener('submit', onSubmit, true);
  }

  bindForm();
  if (!boundForm && formSelector && document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', bindForm);
  }

  // ---------------------------------------------------------------- start

  var first = prepare();
  var ready = Promise.all([first, within(devicePromise, DEVICE_WAIT_MS, null)]).then(
    function () {},
    function () {},
  );

  window.OTPShield = Object.freeze({
    ready: ready,
    collect: collect,
    /** The last proof of work: where it was solved ('worker' or 'page'), in how many ms (diagnostics). */
    get lastSolve() {
      return lastSolve;
    },
  });
})();
