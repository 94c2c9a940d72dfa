/*
 * OTP Shield dashboard. Plain browser JavaScript, no build step, no inline code (strict CSP).
 *
 * Every number comes from the admin API (/v1/admin/...), called with the HttpOnly session cookie and the
 * X-OTPShield-Dashboard header (see src/http/routes/dashboard.ts). Data is written into the page with
 * textContent only, never as HTML, so an event field cannot inject markup.
 */
(function () {
  'use strict';

  var $ = function (id) { return document.getElementById(id); };
  // canChange: the session is an admin's; a read key's session sees the same numbers and changes nothing.
  var state = { hours: 24, charts: {}, eventsCursor: null, currency: 'USD', refreshing: null, canChange: true };
  // At least 3:1 against the white card (WCAG 1.4.11); each series also has its own dash (chart lines are
  // told apart by more than colour, 1.4.1).
  var COLORS = ['#2563eb', '#15803d', '#dc2626', '#b45309', '#7c3aed', '#0e7490', '#be185d', '#475569'];
  var DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [12, 6], [1, 4], [6, 2]];

  // ------------------------------------------------------------------ API

  function api(path, opts) {
    opts = opts || {};
    var headers = { 'x-otpshield-dashboard': '1', accept: 'application/json' };
    var init = { method: opts.method || 'GET', credentials: 'same-origin', headers: headers };
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    return fetch(path, init).then(function (res) {
      return res.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        if (res.status === 401 && path.indexOf('/dashboard/api/login') !== 0) {
          showLogin('Your session has ended. Sign in again.');
        }
        if (!res.ok) {
          var err = new Error((body && body.error && body.error.message) || ('HTTP ' + res.status));
          err.status = res.status;
          err.body = body;
          throw err;
        }
        return body;
      });
    });
  }

  // ------------------------------------------------------------------ formatting

  var compact = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });
  function num(n) {
    if (n === null || n === undefined) return '–';
    return Math.abs(n) >= 10000 ? compact.format(n) : String(Math.round(n * 100) / 100);
  }
  function money(n) {
    if (n === null || n === undefined) return '–';
    var abs = Math.abs(n);
    var s = abs >= 10000 ? compact.format(n) : n.toFixed(abs < 10 ? 2 : 0);
    return s + ' ' + state.currency;
  }
  function pct(r) { return r === null || r === undefined ? '–' : (Math.round(r * 1000) / 10) + '%'; }
  function time(iso) {
    if (!iso) return '–';
    var d = new Date(iso);
    return d.toISOString().replace('T', ' ').slice(0, 16) + 'Z';
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  /**
   * Re-rendering a table replaces its buttons: a keyboard user's focus on one would fall to the page (WCAG
   * 2.4.3). Each action button carries a data-focus key; after the re-render the button with the same key gets
   * the focus back, or, when its row is gone, the table's section heading.
   */
  function fillTable(id, rows, cells, empty) {
    var table = $(id);
    var active = document.activeElement;
    var focusKey = active && table.contains(active) ? active.getAttribute('data-focus') || '' : null;
    renderRows(table, rows, cells, empty);
    if (focusKey === null) return;
    var again = focusKey ? table.querySelector('[data-focus="' + cssEscape(focusKey) + '"]') : null;
    if (again) again.focus();
    else focusHeading(table);
  }
  function cssEscape(v) { return window.CSS && CSS.escape ? CSS.escape(v) : v.replace(/["\\]/g, '\\$&'); }
  function focusHeading(node) {
    var section = node.closest('section');
    var h = section && section.querySelector('h2');
    if (!h) return;
    h.tabIndex = -1;
    h.focus();
  }
  function renderRows(table, rows, cells, empty) {
    var tbody = table.querySelector('tbody');
    tbody.replaceChildren();
    if (rows.length === 0) {
      var tr = el('tr');
      var td = el('td', empty || 'none', 'muted');
      td.colSpan = table.querySelectorAll('thead th').length || 1;
      tr.appendChild(td);
      tbody.appendChild(tr);
      return;
    }
    rows.forEach(function (r) {
      var tr = el('tr');
      cells(r).forEach(function (c) {
        if (c instanceof Node) {
          var td = el('td');
          td.appendChild(c);
          tr.appendChild(td);
        } else if (c && typeof c === 'object') {
          tr.appendChild(el('td', c.text, c.cls));
        } else tr.appendChild(el('td', c));
      });
      tbody.appendChild(tr);
    });
  }
  /** An action button of a table row; `label` names what it acts on (the visible text alone says only "Remove"). */
  function button(text, onClick, cls, label) {
    var b = el('button', text, cls);
    b.type = 'button';
    b.addEventListener('click', onClick);
    if (label) {
      b.setAttribute('aria-label', label);
      b.setAttribute('data-focus', label);
    }
    return b;
  }
  function showError(err) {
    var p = $('global-error');
    if (!err) { p.hidden = true; return; }
    announce(p, err.message || String(err));
    p.hidden = false;
  }
  /** Sets an alert's text so that it is announced again even when it is the same text as before. */
  function announce(node, text) {
    if (node.textContent !== text) { node.textContent = text; return; }
    node.textContent = '';
    setTimeout(function () { node.textContent = text; }, 50);
  }

  // ------------------------------------------------------------------ sign-in

  function showLogin(message) {
    stopAutoRefresh();
    $('app').hidden = true;
    $('login').hidden = false;
    var e = $('login-error');
    announce(e, message || '');
    e.hidden = !message;
    $('login-key').focus();
  }

  $('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var key = $('login-key').value.trim();
    api('/dashboard/api/login', { method: 'POST', body: { key: key } }).then(function () {
      $('login-key').value = '';
      boot();
    }, function (err) {
      showLogin(err.status === 401 ? 'That key is not valid.' : err.message);
    });
  });

  $('logout').addEventListener('click', function () {
    api('/dashboard/api/logout', { method: 'POST', body: {} }).then(function () { showLogin('Signed out.'); });
  });

  function boot() {
    api('/dashboard/api/session').then(function (s) {
      $('app-name').textContent = s.app && s.app !== 'OTP Shield' ? '· ' + s.app : '';
      state.canChange = !s.scopes || s.scopes.indexOf('admin') !== -1;
      document.body.classList.toggle('read-only', !state.canChange);
      $('read-only').hidden = state.canChange;
      $('login').hidden = true;
      $('app').hidden = false;
      // The focus was on the sign-in form, now hidden: put it at the top of the page, not on nothing.
      $('app-title').focus();
      refresh();
      loadPolicy();
      searchEvents(false);
      startAutoRefresh();
    }, function () { showLogin(); });
  }

  // ------------------------------------------------------------------ charts (uPlot)

  function chartWidth(div) { return Math.max(280, div.clientWidth - 8); }

  function drawChart(id, xs, series, opts) {
    var div = $(id);
    var data = [xs].concat(series.map(function (s) { return s.values; }));
    var sum = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { sum += v || 0; }); });
    div.dataset.sum = String(Math.round(sum * 10000) / 10000);
    var fmt = opts && opts.money ? money : num;
    describeChart(div, xs, series, fmt);
    tabulateChart(div, xs, series, fmt);
    var existing = state.charts[id];
    var sameShape = existing && existing.series.length === series.length + 1 &&
      series.every(function (s, i) { return existing.series[i + 1].label === s.label; });
    if (sameShape) {
      existing.setData(data);
      return;
    }
    if (existing) existing.destroy();
    state.charts[id] = new uPlot({
      width: chartWidth(div),
      height: 220,
      // UTC, like every table of the page (their times end in Z).
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'); },
      scales: { x: { time: true } },
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      series: [{}].concat(series.map(function (s, i) {
        return {
          label: s.label,
          stroke: s.color || COLORS[i % COLORS.length],
          dash: DASHES[i % DASHES.length],
          width: 2,
          fill: s.fill ? (s.color || COLORS[i % COLORS.length]) + '22' : undefined,
          value: function (u, v) { return v === null || v === undefined ? '–' : fmt(v); },
        };
      })),
      axes: [{}, { size: 60, values: function (u, vals) { return vals.map(function (v) { return opts && opts.money ? axisMoney(v) : num(v); }); } }],
    }, data, div);
  }

  /** Money on an axis: cents where the values are small (0.01–0.03 all read "0" with one compact decimal). */
  function axisMoney(v) { return Math.abs(v) >= 10000 ? compact.format(v) : Math.abs(v) < 10 ? v.toFixed(2) : String(Math.round(v)); }

  /**
   * A chart is a canvas: screen readers get its text alternative (role img, WCAG 1.1.1): each series' total
   * over the range and its busiest hour.
   */
  function describeChart(div, xs, series, fmt) {
    var title = div.closest('section').querySelector('h2').textContent;
    var parts = series.map(function (s) {
      var total = 0, peak = -1, peakAt = null;
      s.values.forEach(function (v, i) { total += v || 0; if ((v || 0) > peak) { peak = v || 0; peakAt = xs[i]; } });
      var text = s.label + ' ' + fmt(Math.round(total * 100) / 100);
      if (peak > 0 && peakAt !== null) text += ' (most at ' + new Date(peakAt * 1000).toISOString().slice(11, 16) + 'Z: ' + fmt(peak) + ')';
      return text;
    });
    div.setAttribute('role', 'img');
    div.setAttribute('aria-label', title + ', last ' + state.hours + ' hours by hour: ' + parts.join('; ') + '.');
  }

  /**
   * The chart's values as a table, in a disclosure under it: a keyboard or screen-reader user can read any
   * single hour's value (the canvas shows them only under a mouse pointer). Rewritten on every refresh; the
   * disclosure stays open or closed as the user left it.
   */
  function tabulateChart(div, xs, series, fmt) {
    var details = $(div.id + '-data');
    if (!details) return;
    var table = details.querySelector('table');
    var head = el('tr');
    var corner = el('th', 'hour (UTC)');
    corner.scope = 'col';
    head.appendChild(corner);
    series.forEach(function (s) { var th = el('th', s.label, 'num'); th.scope = 'col'; head.appendChild(th); });
    table.tHead.replaceChildren(head);
    var days = state.hours > 24;
    var rows = xs.map(function (x, i) {
      var tr = el('tr');
      var iso = new Date(x * 1000).toISOString();
      var th = el('th', days ? iso.slice(0, 10) + ' ' + iso.slice(11, 16) + 'Z' : iso.slice(11, 16) + 'Z');
      th.scope = 'row';
      tr.appendChild(th);
      series.forEach(function (s) { var v = s.values[i]; tr.appendChild(el('td', v === null || v === undefined ? '–' : fmt(v), 'num')); });
      return tr;
    });
    table.tBodies[0].replaceChildren.apply(table.tBodies[0], rows);
  }

  window.addEventListener('resize', function () {
    Object.keys(state.charts).forEach(function (id) {
      state.charts[id].setSize({ width: chartWidth($(id)), height: 220 });
    });
  });

  // ------------------------------------------------------------------ data

  function statsUrl(extra) {
    return '/v1/admin/stats?from=' + encodeURIComponent(String(rangeFrom())) + '&to=' + encodeURIComponent(String(rangeTo())) + extra;
  }
  // The server's clock decides "now" (it may differ from this browser's): the range ends at the server's
  // current hour, which /v1/admin/monitoring/state reports.
  var serverNow = null;
  function rangeTo() { var h = 3600000; var now = serverNow === null ? Date.now() : serverNow; return Math.floor(now / h) * h + h; }
  function rangeFrom() { return rangeTo() - state.hours * 3600000; }

  function loadState() {
    return api('/v1/admin/monitoring/state').then(function (s) {
      serverNow = Date.parse(s.now);
      state.currency = s.spendToday.currency;
      fillTable('table-pauses', s.pauses, function (p) {
        return [p.scope, time(p.since), p.until ? time(p.until) : 'until resumed', p.by || '–', p.note || '', state.canChange ? button('Resume', function () { resume(p.scope); }, '', 'Resume ' + p.scope) : ''];
      }, 'no pauses: sends are on');
      var banner = $('paused-banner');
      banner.hidden = s.pauses.length === 0;
      banner.textContent = s.pauses.length ? 'Sends are paused for: ' + s.pauses.map(function (p) { return p.scope; }).join(', ') : '';
      fillTable('table-quarantines', s.quarantines, function (q) {
        // A prefix of another length than the sends' own applies to none of them (stored by an older version).
        var reason = q.inEffect === false ? q.reason + ' (not in effect: lift it)' : q.reason;
        return [q.scope, q.mode, reason, time(q.until), state.canChange ? button('Lift', function () { lift(q.scope); }, 'secondary', 'Lift quarantine ' + q.scope) : ''];
      });
      fillTable('table-throttles', s.throttles, function (t) { return [t.scope, time(t.tightenedSince), { text: num(t.baseline), cls: 'num' }]; });
      $('spend-today').textContent = s.spendToday.day + ': ' + money(s.spendToday.total) +
        (s.spendToday.dailyBudget !== null ? ' of ' + money(s.spendToday.dailyBudget) : ' (no daily budget)') +
        (s.spendToday.circuitBreaker ? ' · circuit breaker on' : ' · circuit breaker off');
      fillTable('table-budgets', s.spendToday.countries, function (c) { return [c.country, { text: money(c.spend), cls: 'num' }, { text: money(c.budget), cls: 'num' }]; }, 'no country budgets');
    });
  }

  function kpi(label, value, hint, id) {
    var d = el('div', null, 'kpi');
    d.appendChild(el('div', label, 'kpi-label'));
    var v = el('div', value, 'kpi-value');
    v.id = 'kpi-' + id;
    d.appendChild(v);
    if (hint) d.appendChild(el('div', hint, 'kpi-hint'));
    return d;
  }

  function loadStats() {
    return Promise.all([
      api(statsUrl('&groupBy=hour')),
      api(statsUrl('&groupBy=country&limit=15')),
      api(statsUrl('&groupBy=prefix&limit=15')),
      api(statsUrl('&groupBy=reason&limit=15')),
    ]).then(function (r) {
      var hourly = r[0], countries = r[1], prefixes = r[2], reasons = r[3];
      var t = hourly.totals;
      state.currency = hourly.currency;
      $('kpis').replaceChildren(
        kpi('Requests', num(t.requests), num(t.allowed) + ' allowed · ' + num(t.challenged) + ' challenged', 'requests'),
        kpi('Sends', num(t.sends), num(t.verifications) + ' verifications', 'sends'),
        kpi('Blocked', num(t.blocked + t.tarpitted), num(t.tarpitted) + ' tarpitted', 'blocked'),
        kpi('Conversion', pct(t.conversion), num(t.approved) + ' approved', 'conversion'),
        kpi('Delivery rate', pct(t.deliveryRate), num(t.receipts.delivered + t.receipts.undelivered + t.receipts.failed) + ' receipts', 'delivery'),
        kpi('Spend', money(t.spend), money(t.unverifiedSpend) + ' never verified', 'spend'),
        kpi('Saved', money(t.savings), 'blocked × price', 'savings')
      );

      var xs = hourly.rows.map(function (row) { return Date.parse(row.key) / 1000; });
      var col = function (f) { return hourly.rows.map(f); };
      drawChart('chart-traffic', xs, [
        { label: 'requests', values: col(function (x) { return x.requests; }) },
        { label: 'sends', values: col(function (x) { return x.sends; }) },
        { label: 'blocked', values: col(function (x) { return x.blocked + x.tarpitted; }) },
        { label: 'challenged', values: col(function (x) { return x.challenged; }) },
      ]);
      // The five biggest reasons of the range get a line each; the rest are summed, so the legend stays short.
      var top = Object.keys(t.blocksByReason).sort(function (a, b) { return t.blocksByReason[b] - t.blocksByReason[a]; });
      var shown = top.slice(0, 5);
      var blockSeries = shown.map(function (reason) {
        return { label: reason, values: col(function (x) { return (x.blocksByReason && x.blocksByReason[reason]) || 0; }) };
      });
      if (top.length > 5) {
        blockSeries.push({ label: 'other', values: col(function (x) {
          var n = 0;
          Object.keys(x.blocksByReason || {}).forEach(function (k) { if (shown.indexOf(k) < 0) n += x.blocksByReason[k]; });
          return n;
        }) });
      }
      if (blockSeries.length === 0) blockSeries.push({ label: 'blocked', values: col(function () { return 0; }) });
      drawChart('chart-blocks', xs, blockSeries);
      drawChart('chart-spend', xs, [
        { label: 'spend', values: col(function (x) { return x.spend; }), fill: true },
        { label: 'never verified', values: col(function (x) { return x.unverifiedSpend; }) },
        { label: 'saved', values: col(function (x) { return x.savings; }) },
      ], { money: true });

      var groupHead = function (id, first) {
        var tr = el('tr');
        [first, 'requests', 'sends', 'blocked', 'conversion', 'delivery', 'spend', 'never verified'].forEach(function (h, i) { tr.appendChild(el('th', h, i ? 'num' : '')); });
        $(id).querySelector('thead').replaceChildren(tr);
      };
      var groupRow = function (g) {
        return [g.key, { text: num(g.requests), cls: 'num' }, { text: num(g.sends), cls: 'num' }, { text: num(g.blocked + g.tarpitted), cls: 'num' },
          { text: pct(g.conversion), cls: 'num' }, { text: pct(g.deliveryRate), cls: 'num' }, { text: money(g.spend), cls: 'num' }, { text: money(g.unverifiedSpend), cls: 'num' }];
      };
      groupHead('table-countries', 'country');
      fillTable('table-countries', countries.rows, groupRow, 'no traffic');
      groupHead('table-prefixes', 'prefix');
      fillTable('table-prefixes', prefixes.rows, groupRow, 'no traffic');
      fillTable('table-reasons', reasons.rows, function (g) {
        return [g.key, { text: num(g.blocked + g.tarpitted), cls: 'num' }, { text: num(g.challenged), cls: 'num' }, { text: money(g.savings), cls: 'num' }];
      }, 'nothing blocked');
    });
  }

  function loadAlerts() {
    return api('/v1/admin/monitoring/alerts?limit=20').then(function (r) {
      fillTable('table-alerts', r.alerts, function (a) {
        return [time(a.at), { text: a.severity, cls: 'sev-' + a.severity }, a.rule, a.scope, a.message];
      }, 'no alerts');
    });
  }

  function loadLists() {
    return api('/v1/admin/lists').then(function (r) {
      fillTable('table-lists', r.entries, function (e) {
        return [{ text: e.list, cls: 'list-' + e.list }, e.kind, e.value, e.note || '', e.expiresAt ? time(e.expiresAt) : 'never',
          state.canChange ? button('Remove', function () { removeEntry(e); }, 'secondary', 'Remove ' + e.list + ' ' + e.kind + ' ' + e.value) : ''];
      }, 'no entries');
    });
  }

  function refresh() {
    if (state.refreshing) return state.refreshing;
    var btn = $('refresh');
    // aria-disabled, not disabled: a disabled button loses the keyboard focus.
    btn.setAttribute('aria-disabled', 'true');
    // State first: it carries the server's clock, which the stats range follows.
    state.refreshing = loadState()
      .then(function () { return Promise.all([loadStats(), loadAlerts(), loadLists()]); })
      .then(function () {
        showError(null);
        var u = $('updated');
        u.textContent = 'updated ' + new Date().toLocaleTimeString();
        u.dataset.updated = String(Number(u.dataset.updated || '0') + 1);
      }, function (err) { if (err.status !== 401) showError(err); })
      .then(function () { btn.removeAttribute('aria-disabled'); state.refreshing = null; });
    return state.refreshing;
  }

  var timer = null;
  function startAutoRefresh() {
    stopAutoRefresh();
    if (!$('auto-refresh').checked) return;
    timer = setInterval(function () { if (!document.hidden) refresh(); }, 15000);
  }
  function stopAutoRefresh() { if (timer) clearInterval(timer); timer = null; }

  $('refresh').addEventListener('click', function () { refresh(); });
  // Moving content that updates by itself can be stopped (WCAG 2.2.2).
  $('auto-refresh').addEventListener('change', function () {
    if ($('auto-refresh').checked) startAutoRefresh();
    else stopAutoRefresh();
  });
  $('range').addEventListener('change', function () { state.hours = Number($('range').value); refresh(); });

  // ------------------------------------------------------------------ emergency switch

  function scopeBody(scope) {
    if (scope === 'all') return { all: true };
    var i = scope.indexOf(':');
    var kind = scope.slice(0, i), value = scope.slice(i + 1);
    var b = {};
    b[kind] = value;
    return b;
  }
  function say(id, text, isError) {
    var e = $(id);
    e.textContent = text;
    e.className = isError ? 'error' : 'muted';
  }
  function resume(scope) {
    api('/v1/admin/resume', { method: 'POST', body: scopeBody(scope) }).then(function (r) {
      say('pause-msg', r.resumed ? 'Resumed ' + r.scope + '.' : r.scope + ' was not paused.');
      refresh();
    }, function (err) { say('pause-msg', err.message, true); });
  }
  function lift(scope) {
    api('/v1/admin/quarantines/' + encodeURIComponent(scope), { method: 'DELETE' }).then(function (r) {
      say('pause-msg', 'Lifted the quarantine of ' + scope + (r.graceUntil ? '; the detector leaves it alone until ' + time(r.graceUntil) + '.' : '.'));
      refresh();
    }, function (err) { say('pause-msg', err.message, true); });
  }
  function pause(body) {
    api('/v1/admin/pause', { method: 'POST', body: body }).then(function (r) {
      say('pause-msg', 'Paused ' + r.scope + '.');
      refresh();
    }, function (err) { say('pause-msg', err.message, true); });
  }
  // Pausing everything asks for a confirmation: an accidental click must not stop all sign-ins. It has no
  // time limit and is announced (a screen-reader user hears the question; WCAG 2.2.1, 4.1.3).
  function confirmPauseAll(show) {
    $('pause-all-confirm').hidden = !show;
    $('pause-all').setAttribute('aria-expanded', show ? 'true' : 'false');
  }
  $('pause-all').addEventListener('click', function () {
    confirmPauseAll(true);
    say('pause-msg', 'Pause ALL sends? No code will be sent to anyone until you resume.');
    $('pause-all-yes').focus();
  });
  $('pause-all-yes').addEventListener('click', function () {
    confirmPauseAll(false);
    $('pause-all').focus();
    pause({ all: true });
  });
  $('pause-all-no').addEventListener('click', function () {
    confirmPauseAll(false);
    say('pause-msg', 'Nothing paused.');
    $('pause-all').focus();
  });
  function oneScope() {
    var body = {};
    body[$('pause-kind').value] = $('pause-value').value.trim();
    return body;
  }
  $('pause-one').addEventListener('click', function () { pause(oneScope()); });
  $('resume-one').addEventListener('click', function () {
    var b = oneScope();
    api('/v1/admin/resume', { method: 'POST', body: b }).then(function (r) {
      say('pause-msg', r.resumed ? 'Resumed ' + r.scope + '.' : r.scope + ' was not paused.');
      refresh();
    }, function (err) { say('pause-msg', err.message, true); });
  });

  // ------------------------------------------------------------------ events

  function searchEvents(more) {
    var form = $('events-form');
    var q = [];
    ['type', 'number', 'prefix', 'ip', 'decision', 'reason'].forEach(function (k) {
      var v = form.elements[k].value.trim();
      if (v) q.push(k + '=' + encodeURIComponent(v));
    });
    q.push('limit=25');
    if (more && state.eventsCursor) q.push('cursor=' + encodeURIComponent(state.eventsCursor));
    say('events-msg', 'searching…');
    return api('/v1/admin/events?' + q.join('&')).then(function (r) {
      var tbody = $('table-events').querySelector('tbody');
      if (!more) tbody.replaceChildren();
      var rows = r.events.map(function (e) {
        return [time(e.at), e.type, e.decision || '', (e.reasons || []).join(', '), e.to || '', e.country || '', e.ip || ''];
      });
      if (!more) fillTable('table-events', rows, function (x) { return x; }, 'no matching events');
      else rows.forEach(function (cells) {
        var tr = el('tr');
        cells.forEach(function (c) { tr.appendChild(el('td', c)); });
        tbody.appendChild(tr);
      });
      state.eventsCursor = r.nextCursor;
      $('events-more').hidden = !r.nextCursor;
      say('events-msg', (more ? 'more: ' : '') + r.events.length + ' events');
    }, function (err) { say('events-msg', err.message, true); });
  }
  $('events-form').addEventListener('submit', function (ev) { ev.preventDefault(); searchEvents(false); });
  $('events-more').addEventListener('click', function () { searchEvents(true); });

  // ------------------------------------------------------------------ lists

  $('list-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var f = ev.target;
    var body = { list: f.elements.list.value, kind: f.elements.kind.value, value: f.elements.value.value.trim() };
    if (f.elements.note.value.trim()) body.note = f.elements.note.value.trim();
    if (f.elements.ttlHours.value) body.ttlSeconds = Math.round(Number(f.elements.ttlHours.value) * 3600);
    api('/v1/admin/lists', { method: 'POST', body: body }).then(function (e) {
      say('list-msg', 'Added ' + e.list + ' ' + e.kind + ' ' + e.value + '.');
      f.elements.value.value = '';
      f.elements.note.value = '';
      return loadLists();
    }, function (err) { say('list-msg', err.message, true); });
  });
  // A removal says what it removed and offers to put it back (the entry is added again with its note and the
  // time it had left).
  var lastRemoved = null;
  function removeEntry(e) {
    api('/v1/admin/lists/' + encodeURIComponent(e.id), { method: 'DELETE' }).then(function () {
      lastRemoved = e;
      say('list-msg', 'Removed ' + e.list + ' ' + e.kind + ' ' + e.value + '.');
      $('list-undo').hidden = false;
      return loadLists();
    }, function (err) { say('list-msg', err.message, true); });
  }
  $('list-undo').addEventListener('click', function () {
    var e = lastRemoved;
    if (!e) return;
    var body = { list: e.list, kind: e.kind, value: e.value };
    if (e.note) body.note = e.note;
    // Its own expiry, judged by the server's clock (this browser's may be off).
    if (e.expiresAt) body.expiresAt = e.expiresAt;
    api('/v1/admin/lists', { method: 'POST', body: body }).then(function () {
      lastRemoved = null;
      $('list-undo').hidden = true;
      say('list-msg', 'Added back ' + e.list + ' ' + e.kind + ' ' + e.value + '.');
      return loadLists();
    }, function (err) { say('list-msg', err.message, true); });
  });

  // ------------------------------------------------------------------ policy

  function loadPolicy() {
    return Promise.all([api('/v1/admin/policy'), api('/v1/admin/policy/versions')]).then(function (r) {
      $('policy-text').value = JSON.stringify(r[0].policy, null, 2);
      $('policy-version').textContent = 'version ' + r[0].version;
      fillTable('table-versions', r[1].versions, function (v) {
        return [v.version, time(v.savedAt), v.savedBy || '–', v.note || '', button('Load', function () {
          $('policy-text').value = JSON.stringify(v.policy, null, 2);
          $('policy-msg').textContent = 'Loaded version ' + v.version + ' into the editor (not saved).';
        }, 'secondary', 'Load policy version ' + v.version + ' into the editor')];
      }, 'only the built-in defaults so far');
    }, function (err) { $('policy-msg').textContent = err.message; });
  }
  function policyDoc() {
    try {
      return JSON.parse($('policy-text').value);
    } catch (e) {
      $('policy-msg').textContent = 'Not valid JSON: ' + e.message;
      return null;
    }
  }
  function errorsText(errs) {
    return (errs || []).map(function (e) { return (e.path || '/') + ' ' + e.message; }).join('\n');
  }
  $('policy-validate').addEventListener('click', function () {
    var doc = policyDoc();
    if (!doc) return;
    api('/v1/admin/policy/validate', { method: 'POST', body: doc }).then(function (r) {
      $('policy-msg').textContent = r.valid ? 'Valid.' : 'Not valid:\n' + errorsText(r.errors);
    }, function (err) { $('policy-msg').textContent = err.message; });
  });
  $('policy-save').addEventListener('click', function () {
    var doc = policyDoc();
    if (!doc) return;
    var note = $('policy-note').value.trim();
    if (note) doc.note = note;
    api('/v1/admin/policy', { method: 'PUT', body: doc }).then(function (r) {
      $('policy-msg').textContent = 'Saved as version ' + r.version + '.';
      $('policy-note').value = '';
      loadPolicy();
    }, function (err) {
      var details = err.body && err.body.error && err.body.error.details;
      $('policy-msg').textContent = err.message + (details ? '\n' + errorsText(details) : '');
    });
  });

  boot();
})();
