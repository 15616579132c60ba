// scraperd's dashboard: reads the daemon's JSON API and builds the pages' DOM. Every value is
// put in as text nodes or attributes (never parsed as markup), so a scraped "<script>" is text.
// No framework, no build step; the charts are SVG drawn by chart() below.
'use strict';

const POLL_MS = 2000; // live updates: polling while the page is visible (docs/operations.md)
const SVG = 'http://www.w3.org/2000/svg';

// el('td', {class: 'num'}, 'text', childNode, ...): an element with attributes and children.
function el(tag, attrs, ...children) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function fill(tbody, rows, empty, columns) {
  tbody.replaceChildren(...rows);
  if (!rows.length) tbody.append(el('tr', {}, el('td', {colspan: columns, class: 'muted'}, empty)));
}

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, method) {
  const res = await fetch(path, {method: method || 'GET', headers: {Accept: 'application/json'}});
  if (res.status === 401) {
    location.href = '/ui/login';
    throw new HttpError(401, 'not logged in');
  }
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new HttpError(res.status, (body && body.error) || ('HTTP ' + res.status));
  // The answer's headers, beside it (not enumerable: Object.entries does not see them).
  if (body && typeof body === 'object') Object.defineProperty(body, 'headers', {value: res.headers});
  return body;
}

// Times: the database's UTC "YYYY-MM-DD HH:MM:SS.SSS" (or ISO "...Z").
function parseTime(text) {
  if (!text) return null;
  const iso = /Z$/.test(text) ? text : text.replace(' ', 'T') + 'Z';
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : new Date(t);
}

// A <time>: the browser's zone shown, UTC on hover.
function timeEl(text, relative) {
  const d = parseTime(text);
  if (!d) return el('span', {class: 'muted'}, '—');
  const shown = relative ? ago(d) : d.toLocaleString();
  return el('time', {datetime: d.toISOString(), title: d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}, shown);
}

function ago(d) {
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  const abs = Math.abs(s);
  const unit = abs < 90 ? [abs, 's'] : abs < 5400 ? [Math.round(abs / 60), 'min']
    : abs < 129600 ? [Math.round(abs / 3600), 'h'] : [Math.round(abs / 86400), 'd'];
  return s >= 0 ? unit[0] + ' ' + unit[1] + ' ago' : 'in ' + unit[0] + ' ' + unit[1];
}

function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
  return Math.floor(ms / 60000) + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
}

function runDuration(run) {
  const a = parseTime(run.started_at);
  const b = parseTime(run.finished_at);
  return a && b ? b - a : null;
}

function jobLink(name) {
  return el('a', {href: '/ui/job?name=' + encodeURIComponent(name)}, name);
}

function message(text) {
  const m = document.getElementById('message');
  if (m) m.textContent = text || '';
}

// Runs `refresh` now and every POLL_MS while the page is visible; says when it last worked.
function live(refresh) {
  const status = document.getElementById('live');
  let busy = false;
  async function tick() {
    if (busy || document.visibilityState !== 'visible') return;
    busy = true;
    try {
      await refresh();
      message('');
      status.textContent = 'updated ' + new Date().toLocaleTimeString();
      status.title = 'the page reads the API every ' + POLL_MS / 1000 + ' s while it is visible';
    } catch (e) {
      if (e.status !== 401) message(e.message);
    } finally {
      busy = false;
    }
  }
  tick();
  setInterval(tick, POLL_MS);
  document.addEventListener('visibilitychange', tick);
}

// An SVG sparkline of `values` (e.g. run durations), oldest first.
function sparkline(values, label) {
  const svg = el('svg:svg', {class: 'spark', viewBox: '0 0 90 22', role: 'img', 'aria-label': label});
  if (values.length < 2) return svg;
  const max = Math.max(...values), min = Math.min(...values);
  const pts = values.map((v, i) => (i * 88 / (values.length - 1) + 1).toFixed(1) + ','
    + (21 - (max === min ? 10 : (v - min) * 20 / (max - min))).toFixed(1));
  svg.append(el('svg:polyline', {points: pts.join(' ')}), el('svg:title', {}, label));
  return svg;
}

// ---- Jobs (home) ----

function jobState(job, running) {
  if (job.state === 'paused' || job.state === 'removed' || job.state === 'never run') return job.state;
  if (running) return 'running';
  if (job.last_status === 'failed') return 'failing';
  return 'idle';
}

const PAGE = 100; // jobs a page of the jobs list asks the server for
const CHART_POINTS = 400; // at most a line of a chart (~200 time spans of ~3.6 px)

async function jobsPage() {
  const tbody = document.querySelector('#jobs tbody');
  const text = document.getElementById('filter-text');
  const state = document.getElementById('filter-state');
  const prev = document.getElementById('prev');
  const next = document.getElementById('next');
  let total = 0;
  let offset = 0;
  let asked = ''; // the query of the rows shown: a late answer to an older one is dropped

  const params = new URLSearchParams(location.search);
  text.value = params.get('q') || '';
  state.value = params.get('state') || '';
  offset = Math.max(0, parseInt(params.get('offset'), 10) || 0);
  const per = Math.min(1000, Math.max(1, parseInt(params.get('per'), 10) || PAGE)); // ?per=: rows a page

  // The server filters (name or URL, state) and pages; the page shows what it answers.
  function query() {
    const p = new URLSearchParams({limit: per, offset: offset, recent: 30});
    if (text.value.trim()) p.set('q', text.value.trim());
    if (state.value) p.set('state', state.value);
    return p.toString();
  }

  function render(rows) {
    const focused = document.activeElement && document.activeElement.dataset.key;
    const filtered = text.value.trim() || state.value;
    fill(tbody, rows.map(row), filtered ? 'No job matches the filter.' : 'No jobs.', 11);
    if (focused) {
      const again = tbody.querySelector('[data-key="' + CSS.escape(focused) + '"]');
      if (again) again.focus();
    }
    const first = rows.length ? offset + 1 : 0;
    document.getElementById('count').textContent = (rows.length ? first + '–' + (offset + rows.length) : '0')
      + ' of ' + total.toLocaleString('en') + (filtered ? ' matching' : '') + ' jobs';
    prev.disabled = offset === 0;
    next.disabled = offset + rows.length >= total;
  }

  function row(r) {
    const j = r.job;
    const stateCell = el('td', {}, el('span', {class: 'state state-' + r.state.replace(' ', '-')}, r.state));
    if (r.running) {
      const urls = r.running.urls || 0;
      stateCell.append(el('progress', {max: Math.max(urls, 1), value: r.running.done || 0,
        'aria-label': 'progress of ' + j.job}),
      el('span', {class: 'muted progress-text'}, (r.running.done || 0) + ' / ' + urls));
    }
    const last = r.job.last_duration_ms === null || r.job.last_duration_ms === undefined ? null : r.job;
    const actions = el('td', {class: 'actions'});
    if (j.state !== 'removed') {
      actions.append(button('Run now', 'run', j.job, r.state === 'paused' || r.state === 'running'));
      actions.append(r.state === 'paused' ? button('Resume', 'resume', j.job) : button('Pause', 'pause', j.job));
    }
    return el('tr', {'data-job': j.job, 'data-state': r.state},
      el('th', {scope: 'row'}, jobLink(j.job)),
      el('td', {}, j.schedule || '—'),
      stateCell,
      el('td', {}, timeEl(j.last_run, true), j.last_status ? ' ' : null,
        j.last_status ? el('span', {class: 'status-' + j.last_status}, j.last_status) : null),
      el('td', {class: 'num'}, last ? duration(last.last_duration_ms) : '—'),
      el('td', {class: 'num'}, last ? el('span', {}, el('span', {class: 'ok'}, last.last_ok), ' / ',
        el('span', {class: last.last_failed ? 'bad' : ''}, last.last_failed)) : '—'),
      el('td', {}, r.state === 'paused' || r.state === 'removed' ? '—' : timeEl(j.next_due, true)),
      el('td', {class: 'num'}, j.ok_pct_24h === null || j.ok_pct_24h === undefined ? '—' : j.ok_pct_24h + ' %'),
      el('td', {}, sparkline(r.durations, 'durations of the last ' + r.durations.length + ' runs of ' + j.job)),
      el('td', {}, timeEl(r.lastChange, true)),
      actions);
  }

  function button(label, action, job, disabled) {
    const b = el('button', {type: 'button', 'data-action': action, 'data-job': job,
      'data-key': action + ':' + job, disabled: !!disabled}, label);
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await api('/api/jobs/' + encodeURIComponent(job) + '/' + action, 'POST');
        message('');
        await refresh();
      } catch (e) {
        message(label + ' ' + job + ': ' + e.message);
        b.disabled = false;
      }
    });
    return b;
  }

  async function refresh() {
    const q = query();
    asked = q;
    const [jobs, status] = await Promise.all([api('/api/jobs?' + q), api('/api/status')]);
    if (q !== asked) return;
    total = Number(jobs.headers.get('X-Total-Count')) || 0;
    if (offset > 0 && offset >= total) { // the page emptied (jobs removed): back to the last one
      offset = Math.max(0, Math.floor((total - 1) / per) * per);
      remember();
      return refresh();
    }
    const running = new Map(status.running.map((r) => [r.job, r]));
    render(jobs.map((j) => ({
      job: j,
      state: jobState(j, running.get(j.job)),
      running: running.get(j.job),
      durations: j.durations_ms || [],
      lastChange: j.last_change,
    })));
  }

  function remember() {
    const p = new URLSearchParams();
    if (text.value) p.set('q', text.value);
    if (state.value) p.set('state', state.value);
    if (offset) p.set('offset', offset);
    if (per !== PAGE) p.set('per', per);
    history.replaceState(null, '', p.toString() ? '?' + p : location.pathname);
  }
  let typing = null;
  function changed() { // a new filter: its first page, asked once the typing pauses
    offset = 0;
    remember();
    clearTimeout(typing);
    typing = setTimeout(() => refresh().catch((e) => message(e.message)), 200);
  }
  text.addEventListener('input', changed);
  state.addEventListener('change', changed);
  document.getElementById('filter').addEventListener('submit', (e) => e.preventDefault());
  for (const [b, step] of [[prev, -per], [next, per]]) {
    b.addEventListener('click', () => {
      offset = Math.max(0, offset + step);
      remember();
      refresh().catch((e) => message(e.message));
    });
  }

  const reload = document.getElementById('reload');
  reload.addEventListener('click', async () => {
    const out = document.getElementById('reload-outcome');
    reload.disabled = true;
    try {
      const res = await fetch('/api/reload', {method: 'POST', headers: {Accept: 'application/json'}});
      const body = await res.json().catch(() => ({}));
      if (res.ok && body.ok) {
        out.replaceChildren(el('p', {class: 'ok'}, 'Reloaded at ' + new Date().toLocaleTimeString() + '.'));
      } else if (body.errors) {
        out.replaceChildren(el('p', {class: 'bad'}, 'Reload refused; the old jobs keep running:'),
          el('pre', {class: 'errors'}, body.errors.join('\n')));
      } else {
        out.replaceChildren(el('p', {class: 'bad'}, 'Reload: ' + (body.error || 'HTTP ' + res.status)));
      }
      await refresh();
    } catch (e) {
      out.replaceChildren(el('p', {class: 'bad'}, 'Reload: ' + e.message));
    } finally {
      reload.disabled = false;
    }
  });

  live(refresh);
}

// ---- Job page ----

// A line chart of {url: [[time ms, value], ...]} (/api/jobs/NAME/series): one line per URL,
// a circle per value (up to 2000), axes with the range. data-points: how many values it drew.
function chart(field, byUrl) {
  const W = 800, H = 240, L = 56, R = 10, T = 10, B = 28;
  const all = Object.values(byUrl).flat();
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (x0 === x1) { x0 -= 60000; x1 += 60000; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const X = (x) => L + (x - x0) * (W - L - R) / (x1 - x0);
  const Y = (y) => H - B - (y - y0) * (H - T - B) / (y1 - y0);
  const svg = el('svg:svg', {class: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img',
    'aria-label': field + ' over time, ' + all.length + ' values', 'data-field': field,
    'data-points': all.length});
  svg.append(el('svg:line', {class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B}),
    el('svg:line', {class: 'axis', x1: L, y1: T, x2: L, y2: H - B}),
    el('svg:text', {x: L - 4, y: T + 10, 'text-anchor': 'end'}, fmtNum(y1)),
    el('svg:text', {x: L - 4, y: H - B, 'text-anchor': 'end'}, fmtNum(y0)),
    el('svg:text', {x: L, y: H - 8}, new Date(x0).toLocaleString()),
    el('svg:text', {x: W - R, y: H - 8, 'text-anchor': 'end'}, new Date(x1).toLocaleString()));
  const legend = el('ul', {class: 'legend'});
  const dots = all.length <= 2000;
  Object.entries(byUrl).forEach(([url, pts], i) => {
    const cls = 's' + (i % 6);
    svg.append(el('svg:polyline', {class: cls, points: pts.map((p) => X(p[0]).toFixed(1) + ',' + Y(p[1]).toFixed(1)).join(' ')}));
    if (dots) {
      for (const p of pts) {
        svg.append(el('svg:circle', {class: cls + ' point', cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: 3},
          el('svg:title', {}, url + '\n' + new Date(p[0]).toLocaleString() + ': ' + p[1])));
      }
    }
    legend.append(el('li', {class: cls}, url));
  });
  return el('figure', {class: 'chart'}, el('figcaption', {}, field), svg, legend);
}

function fmtNum(v) {
  return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : v.toPrecision(4);
}

function show(v) {
  if (v === undefined) return el('span', {class: 'muted'}, '—');
  return typeof v === 'string' ? v : JSON.stringify(v);
}

// Old and new text side by side, the part that differs marked (common prefix and suffix kept).
function diffCells(a, b) {
  const s = typeof a === 'string' ? a : JSON.stringify(a);
  const t = typeof b === 'string' ? b : JSON.stringify(b);
  if (s === undefined || t === undefined) return [el('td', {}, show(a)), el('td', {}, show(b))];
  let p = 0;
  while (p < s.length && p < t.length && s[p] === t[p]) p++;
  let q = 0;
  while (q < s.length - p && q < t.length - p && s[s.length - 1 - q] === t[t.length - 1 - q]) q++;
  return [el('td', {}, s.slice(0, p), el('del', {}, s.slice(p, s.length - q)), s.slice(s.length - q)),
    el('td', {}, t.slice(0, p), el('ins', {}, t.slice(p, t.length - q)), t.slice(t.length - q))];
}

async function jobPage() {
  const name = new URLSearchParams(location.search).get('name') || '';
  const enc = encodeURIComponent(name);
  document.getElementById('title').textContent = name;
  document.title = name + ' · scraperd';
  let drawn = '';

  async function refresh() {
    const known = (e) => (e.status === 404 ? null : Promise.reject(e)); // never run: no rows
    const [info, runs, results, changed, series, groups, status] = await Promise.all([
      api('/api/jobs/' + enc), api('/api/runs?limit=50&job=' + enc),
      api('/api/jobs/' + enc + '/results?latest=1&limit=200').catch(known).then((r) => r || []),
      api('/api/jobs/' + enc + '/results?changed=1&previous=1&limit=50').catch(known).then((r) => r || []),
      api('/api/jobs/' + enc + '/series?points=' + CHART_POINTS).catch(known).then((r) => r || {}),
      api('/api/errors/groups?job=' + enc), api('/api/status')]);
    const j = info.job;
    const running = status.running.find((r) => r.job === name);
    const state = jobState(j, running);
    document.getElementById('summary').replaceChildren(
      el('span', {class: 'state state-' + state.replace(' ', '-'), id: 'state'}, state), ' · ',
      j.schedule || '', ' · ', String(j.urls || 0), ' URLs · next due ', timeEl(j.next_due, true),
      ...(running ? [' ', el('progress', {max: Math.max(running.urls, 1), value: running.done, 'aria-label': 'progress'})] : []));
    const actions = document.getElementById('actions');
    if (j.state !== 'removed') {
      const act = async (what) => {
        try { await api('/api/jobs/' + enc + '/' + what, 'POST'); await refresh(); } catch (e) { message(what + ': ' + e.message); }
      };
      const run = el('button', {type: 'button', 'data-action': 'run', disabled: state === 'paused' || state === 'running'}, 'Run now');
      run.addEventListener('click', () => act('run'));
      const pr = el('button', {type: 'button', 'data-action': state === 'paused' ? 'resume' : 'pause'}, state === 'paused' ? 'Resume' : 'Pause');
      pr.addEventListener('click', () => act(state === 'paused' ? 'resume' : 'pause'));
      actions.replaceChildren(run, pr);
    }

    fill(document.querySelector('#runs tbody'), runs.map((r) => el('tr', {},
      el('td', {}, timeEl(r.started_at)),
      el('td', {class: 'status-' + r.status}, r.status),
      el('td', {class: 'num'}, duration(r.lag_ms)),
      el('td', {class: 'num'}, duration(runDuration(r))),
      el('td', {class: 'num'}, r.urls), el('td', {class: 'num'}, r.ok), el('td', {class: 'num'}, r.failed))),
    'No runs yet.', 7);

    // Charts are redrawn only when the values changed.
    const key = JSON.stringify(Object.entries(series).map(([f, byUrl]) =>
      [f, Object.values(byUrl).reduce((n, pts) => n + pts.length, 0), Object.values(byUrl).map((pts) => pts[pts.length - 1][0])]));
    if (key !== drawn) {
      drawn = key;
      const charts = Object.entries(series).map(([f, byUrl]) => chart(f, byUrl));
      // Beyond CHART_POINTS values a line, the server sends the lowest and highest of each time span.
      const total = Number(series.headers && series.headers.get('X-Values-Total'));
      const shown = Number(series.headers && series.headers.get('X-Values-Shown'));
      if (charts.length && total > shown) {
        charts.unshift(el('p', {class: 'muted', id: 'downsampled'}, total.toLocaleString('en') + ' values, ' +
          shown.toLocaleString('en') + ' shown (the lowest and highest of each time span)'));
      }
      document.getElementById('charts').replaceChildren(...(charts.length ? charts
        : [el('p', {class: 'muted'}, 'No numeric field stored (extract one with type: number).')]));
    }

    const latest = new Map();
    for (const r of results) if (!latest.has(r.url)) latest.set(r.url, r);
    fill(document.querySelector('#latest tbody'), [...latest.values()].map((r) => el('tr', {},
      el('td', {class: 'url'}, r.url), el('td', {}, timeEl(r.fetched_at)), el('td', {class: 'num'}, r.status),
      el('td', {}, r.data && typeof r.data === 'object'
        ? el('dl', {class: 'fields'}, ...Object.entries(r.data).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, show(v))]))
        : el('span', {class: 'muted'}, 'no fields')))), 'No results stored.', 4);

    // A change: a result marked changed, against the URL's previous stored result (the
    // server's previous_data).
    const changes = [];
    for (const r of changed) {
      if (changes.length >= 100) break;
      if (!r.previous_data) continue;
      const a = r.previous_data || {}, b = r.data || {};
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (JSON.stringify(a[k]) === JSON.stringify(b[k])) continue;
        changes.push(el('tr', {}, el('td', {}, timeEl(r.fetched_at)), el('td', {class: 'url'}, r.url),
          el('td', {}, k), ...diffCells(a[k], b[k])));
      }
    }
    fill(document.querySelector('#changes tbody'), changes, 'No changes stored.', 5);

    const kinds = new Map(); // the groups of job, kind and host, by kind
    for (const g of groups) {
      const k = kinds.get(g.kind);
      if (!k) kinds.set(g.kind, {...g});
      else {
        k.last_24h += g.last_24h;
        if (g.last_at > k.last_at) Object.assign(k, {last_at: g.last_at, url: g.url, message: g.message});
      }
    }
    fill(document.querySelector('#errors tbody'), [...kinds.values()].map((g) => el('tr', {},
      el('td', {}, g.kind), el('td', {class: 'num'}, g.last_24h), el('td', {}, timeEl(g.last_at)),
      el('td', {class: 'url'}, g.url), el('td', {}, g.message))), 'No errors in 24 h.', 5);
  }
  live(refresh);
}

// ---- Errors ----

async function errorsPage() {
  async function refresh() {
    const groups = await api('/api/errors/groups');
    fill(document.querySelector('#groups tbody'), groups.map((g) => el('tr', {},
      el('td', {}, jobLink(g.job)), el('td', {}, g.kind), el('td', {}, g.host),
      el('td', {class: 'num'}, g.last_1h), el('td', {class: 'num'}, g.last_24h), el('td', {}, timeEl(g.last_at)),
      el('td', {}, g.message))), 'No errors in 24 h.', 7);
  }
  live(refresh);
}

function loginPage() {
  if (new URLSearchParams(location.search).has('failed')) document.getElementById('failed').hidden = false;
}

document.addEventListener('DOMContentLoaded', () => {
  const page = document.body.dataset.page;
  ({jobs: jobsPage, job: jobPage, errors: errorsPage, login: loginPage})[page]();
});
