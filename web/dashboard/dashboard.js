// fodder's dashboard: reads the JSON API (docs/api.md) and the jobs' live feed; no framework.
'use strict';

const $ = (sel) => document.querySelector(sel);
const fmt = new Intl.NumberFormat('en');
const n = (x) => fmt.format(x);

/** An element with attributes (`class`, `data-*`, properties) and children (strings are text, never HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** GET a JSON answer; an API error becomes an Error with its code. */
async function getJson(path) {
  const r = await fetch(path, { headers: { accept: 'application/json' } });
  const body = await r.json();
  if (!r.ok) throw Object.assign(new Error(body.error?.message ?? `HTTP ${r.status}`), { code: body.error?.code, status: r.status });
  return body;
}

const day = (iso) => (iso ? iso.slice(0, 10) : '');
const dateTime = (iso) => (iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '');
function duration(seconds) {
  if (seconds === null || seconds === undefined) return '';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
function bytes(b) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024;
    i++;
  }
  return `${b.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
const pct = (part, whole) => (whole > 0 ? Math.min(100, (100 * part) / whole) : 0);
function bar(part, whole) {
  return h('div', { class: `bar${whole > 0 && part >= whole ? ' full' : ''}` }, h('span', { style: `width:${pct(part, whole).toFixed(1)}%` }));
}
const empty = (text) => h('p', { class: 'empty' }, text);

// ---- coverage ----------------------------------------------------------------------------------

async function loadCoverage() {
  const body = $('#coverage-body');
  let cov;
  try {
    cov = await getJson('/api/coverage');
  } catch (e) {
    body.replaceChildren(empty(e.code === 'DB_EMPTY' ? 'No finished crawl yet.' : e.message));
    return;
  }
  $('#crawl-line').textContent = `crawl ${cov.crawl.id} · ${day(cov.crawl.finishedAt)} · ${cov.crawl.nixpkgs}`;
  body.replaceChildren(
    ...cov.targets.map((t) =>
      h(
        'div',
        { class: 'target', 'data-system': t.system, 'data-variant': t.variant },
        h(
          'h3',
          {},
          h('span', {}, t.system, h('span', { class: 'muted' }, ` · ${t.variant}`)),
          h('span', { class: 'muted' }, `${pct(t.mirrored, t.total).toFixed(1)} %`),
        ),
        h(
          'div',
          { class: 'kind-row total', 'data-kind': 'all' },
          h('span', {}, 'all'),
          bar(t.mirrored, t.total),
          h('span', { class: 'count' }, `${n(t.mirrored)} / ${n(t.total)}`),
        ),
        t.kinds.map((k) =>
          h(
            'div',
            { class: 'kind-row', 'data-kind': k.kind, title: statusTitle(k.statuses) },
            h('span', {}, k.kind),
            bar(k.mirrored, k.total),
            h('span', { class: 'count' }, `${n(k.mirrored)} / ${n(k.total)}`),
          ),
        ),
      ),
    ),
  );
  if (cov.targets.length === 0) body.replaceChildren(empty('The latest crawl found no sources.'));
  const select = $('#attr-target');
  const chosen = select.value;
  select.replaceChildren(...cov.targets.map((t) => h('option', { value: `${t.system}\n${t.variant}` }, `${t.system} · ${t.variant}`)));
  if (chosen) select.value = chosen;
}
const statusTitle = (s) =>
  Object.entries(s)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k}: ${n(v)}`)
    .join(', ');

// ---- report ------------------------------------------------------------------------------------

const CATEGORIES = [
  { id: 'broken', label: 'broken hash', key: 'brokenHashes', count: 'brokenHash' },
  { id: 'dead', label: 'dead', key: 'dead', count: 'dead' },
  { id: 'rotting', label: 'rotting', key: 'rotting', count: 'rotting' },
  { id: 'unverifiable', label: 'unverifiable', key: 'unverifiable', count: 'unverifiable' },
  { id: 'eval', label: 'evaluation error', key: 'evalErrors', count: 'evalErrors' },
];
let rows = [];
let category = 'all';

function needs(a) {
  if (!a) return '';
  const shown = a.direct.slice(0, 3).join(', ');
  return a.total > 3 ? `${shown} +${n(a.total - Math.min(3, a.direct.length))}` : shown;
}
const outcome = (u) => `${u.url} → ${u.httpStatus ?? u.outcome}`;

/** One table row per entry, with the text the search looks in. */
function reportRows(r) {
  const out = [];
  const add = (cat, e, source, detail) =>
    out.push({ cat, e, source, detail, text: [source, detail, needs(e.attrs), ...(e.fod?.urls ?? [])].join(' ').toLowerCase() });
  for (const e of r.brokenHashes) add('broken', e, e.fod.name, `expected ${e.expected.sri}, got ${e.actual.sri} from ${e.url}`);
  for (const e of r.dead) add('dead', e, e.fod.name, e.urls.map(outcome).join('; '));
  for (const e of r.rotting) add('rotting', e, e.fod.name, `mirrored from URL ${e.urlIndex + 1} (${e.url}); failing: ${e.failing.map(outcome).join('; ')}`);
  for (const e of r.unverifiable) add('unverifiable', e, e.fod.name, `${e.reason}: ${e.message}`);
  for (const e of r.evalErrors) add('eval', e, `${e.attr} (${e.system} · ${e.variant})`, e.message);
  return out;
}

async function loadReport() {
  let r;
  try {
    r = await getJson('/api/report');
  } catch (e) {
    $('#report-meta').textContent = e.code === 'DB_EMPTY' ? 'No finished crawl yet.' : e.message;
    rows = [];
    drawReport();
    return;
  }
  $('#report-meta').textContent =
    `crawl ${r.crawl.id} · ${n(r.summary.fods)} sources · ${n(r.summary.mirrored)} mirrored · ${n(r.summary.unfetched)} unfetched`;
  rows = reportRows(r);
  const total = CATEGORIES.reduce((s, c) => s + r.summary[c.count], 0);
  const chip = (id, label, count) =>
    h(
      'button',
      {
        class: 'chip',
        type: 'button',
        'data-category': id,
        'aria-pressed': String(category === id),
        onclick: () => {
          category = id;
          for (const b of document.querySelectorAll('#report-filters .chip')) b.setAttribute('aria-pressed', String(b.dataset.category === id));
          drawReport();
        },
      },
      label,
      h('span', { class: 'n' }, n(count)),
    );
  $('#report-filters').replaceChildren(chip('all', 'all', total), ...CATEGORIES.map((c) => chip(c.id, c.label, r.summary[c.count])));
  drawReport();
}

function drawReport() {
  const q = $('#report-search').value.trim().toLowerCase();
  const shown = rows.filter((x) => (category === 'all' || x.cat === category) && (!q || x.text.includes(q)));
  const label = Object.fromEntries(CATEGORIES.map((c) => [c.id, c.label]));
  $('#report-table tbody').replaceChildren(
    ...shown
      .slice(0, 500)
      .map((x) =>
        h(
          'tr',
          { 'data-category': x.cat },
          h('td', {}, h('span', { class: `cat cat-${x.cat}` }, label[x.cat])),
          h('td', {}, x.source, x.e.new ? h('span', { class: 'badge new' }, 'new') : null),
          h('td', {}, needs(x.e.attrs)),
          h('td', { class: 'detail' }, x.detail),
          h('td', { class: 'muted' }, day(x.e.since)),
        ),
      ),
  );
  $('#report-count').textContent =
    rows.length === 0 ? 'Nothing to report.' : `${n(shown.length)} of ${n(rows.length)} entries${shown.length > 500 ? ' (the first 500 shown)' : ''}`;
}

// ---- attribute search --------------------------------------------------------------------------

async function showSources(ev) {
  ev.preventDefault();
  const attr = $('#attr-input').value.trim();
  if (!attr) return;
  const [system, variant] = ($('#attr-target').value || '\n').split('\n');
  const q = new URLSearchParams();
  if (system) q.set('system', system);
  if (variant) q.set('variant', variant);
  const out = $('#attr-result');
  out.replaceChildren(empty('Looking…'));
  let a;
  try {
    a = await getJson(`/api/sources/${encodeURIComponent(attr)}?${q}`);
  } catch (e) {
    out.replaceChildren(h('p', { class: 'empty', 'data-error': e.code ?? '' }, e.message));
    return;
  }
  out.replaceChildren(
    h(
      'p',
      { class: 'small' },
      h('strong', {}, a.attr),
      h('span', { class: 'muted' }, ` · ${a.system} · ${a.variant} · crawl ${a.crawl} · ${n(a.sources.length)} sources · `),
      h('code', {}, a.drvPath),
    ),
    h(
      'div',
      { class: 'table-wrap scroll' },
      h(
        'table',
        { id: 'sources-table' },
        h('thead', {}, h('tr', {}, h('th', {}, 'source'), h('th', {}, 'kind'), h('th', {}, 'hash'), h('th', {}, 'from'))),
        h(
          'tbody',
          {},
          a.sources.map((f) =>
            h(
              'tr',
              { 'data-kind': f.kind },
              h('td', {}, f.name),
              h('td', {}, f.kind),
              h('td', {}, h('code', {}, f.hash.sri)),
              h('td', { class: 'detail' }, f.git ? `${f.git.url} @ ${f.git.rev}` : (f.resolvedUrls[0] ?? f.urls[0] ?? '—')),
            ),
          ),
        ),
      ),
    ),
  );
}

// ---- history -----------------------------------------------------------------------------------

const SERIES = [
  { id: 'total', label: 'sources', value: (p) => p.total },
  { id: 'mirrored', label: 'mirrored', value: (p) => p.statuses.mirrored },
  { id: 'problems', label: 'dead or broken', value: (p) => p.statuses.dead + p.statuses['broken-hash'] },
  { id: 'unverifiable', label: 'unverifiable', value: (p) => p.statuses.unverifiable },
];

function chart(points) {
  const W = 760,
    H = 220,
    L = 48,
    R = 14,
    T = 12,
    B = 28;
  const NS = 'http://www.w3.org/2000/svg';
  const s = (tag, attrs, ...kids) => {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    el.append(...kids);
    return el;
  };
  const max = Math.max(1, ...points.flatMap((p) => SERIES.map((x) => x.value(p))));
  const x = (i) => (points.length === 1 ? (L + W - R) / 2 : L + (i * (W - L - R)) / (points.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'sources per crawl' });
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((max * i) / 4);
    svg.append(
      s('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }),
      s('text', { class: 'axis', x: L - 8, y: y(v) + 4, 'text-anchor': 'end' }, n(v)),
    );
  }
  const every = Math.max(1, Math.ceil(points.length / 8));
  const anchor = (i) => (points.length === 1 ? 'middle' : i === 0 ? 'start' : i === points.length - 1 ? 'end' : 'middle');
  points.forEach((p, i) => {
    if (i % every === 0 || i === points.length - 1)
      svg.append(s('text', { class: 'axis', x: x(i), y: H - 8, 'text-anchor': anchor(i) }, `#${p.crawl.id} ${day(p.crawl.finishedAt).slice(5)}`));
  });
  for (const ser of SERIES) {
    const pts = points.map((p, i) => `${x(i).toFixed(1)},${y(ser.value(p)).toFixed(1)}`);
    if (points.length > 1) svg.append(s('polyline', { class: `line s-${ser.id}`, points: pts.join(' ') }));
    points.forEach((p, i) =>
      svg.append(
        s(
          'circle',
          { class: `s-${ser.id}`, cx: x(i), cy: y(ser.value(p)), r: 3.2, fill: 'currentColor', style: 'fill: var(--card); stroke-width: 2' },
          s('title', {}, `crawl ${p.crawl.id}: ${n(ser.value(p))} ${ser.label}`),
        ),
      ),
    );
  }
  return svg;
}

async function loadHistory() {
  const [points, crawls] = await Promise.all([getJson('/api/history'), getJson('/api/crawls')]);
  $('#history-chart').replaceChildren(
    points.length === 0 ? empty('No finished crawl yet.') : chart(points),
    h(
      'div',
      { class: 'legend' },
      SERIES.map((x) => h('span', {}, h('i', { class: `s-${x.id}` }), x.label)),
    ),
  );
  const took = new Map(points.map((p) => [p.crawl.id, p.seconds]));
  $('#crawls-table tbody').replaceChildren(
    ...crawls
      .slice(0, 20)
      .map((c) =>
        h(
          'tr',
          {},
          h('td', {}, `#${c.id}`),
          h('td', {}, h('span', { class: `badge ${c.status === 'done' ? 'done' : c.status}` }, c.status)),
          h('td', {}, dateTime(c.startedAt)),
          h('td', {}, duration(took.get(c.id))),
          h('td', { class: 'detail' }, c.nixpkgs),
        ),
      ),
  );
}

// ---- the running job ---------------------------------------------------------------------------

const STAGES = ['crawl', 'fetch', 'report'];
let job = null;

function drawJob(progress) {
  const status = $('#job-status');
  if (!job) return;
  status.textContent = `#${job.id} ${job.status}${job.trigger === 'schedule' ? ' · scheduled' : ''}`;
  status.className = `badge ${job.status}`;
  const running = job.status === 'running';
  for (const li of document.querySelectorAll('#job-stages li')) {
    const s = li.dataset.stage;
    li.classList.toggle('active', running && job.stage === s);
    li.classList.toggle('past', job.stages[s] !== undefined || (job.status === 'done' && STAGES.includes(s)));
  }
  const live = $('#live');
  if (running) {
    live.dataset.state = 'running';
    live.textContent = `job ${job.id}: ${job.stage ?? 'starting'}`;
  } else if (live.dataset.state !== 'down') {
    live.dataset.state = 'live';
    live.textContent = 'live';
  }
  const barEl = $('#job-bar');
  if (progress && running) {
    barEl.style.width = `${pct(progress.done, progress.total).toFixed(1)}%`;
    const c = progress.counts;
    $('#job-progress').textContent =
      progress.stage === 'crawl' ? `${n(progress.done)} / ${n(progress.total)} attributes` : `${n(progress.done)} / ${n(progress.total)} sources`;
    $('#job-counts').textContent =
      progress.stage === 'crawl'
        ? `${n(c.drvs)} derivations · ${n(c.fods)} sources found`
        : `${n(c.ok)} ok · ${n(c.dead)} dead · ${n(c['broken-hash'])} broken · ${n(c.unverifiable)} unverifiable · ${bytes(c.bytes)}`;
  } else if (!running) {
    barEl.style.width = job.status === 'done' ? '100%' : '0%';
    const took = Object.entries(job.stages)
      .map(([s, t]) => `${s} ${duration(t)}`)
      .join(' · ');
    $('#job-progress').textContent = job.status === 'done' ? `finished ${dateTime(job.finishedAt)}` : (job.error ?? job.status);
    $('#job-counts').textContent = took;
  } else {
    $('#job-progress').textContent = `${job.stage ?? 'starting'}…`;
    $('#job-counts').textContent = '';
  }
}

function listen() {
  const es = new EventSource('/api/jobs/events');
  es.addEventListener('snapshot', (m) => {
    const d = JSON.parse(m.data);
    job = d.job;
    drawJob(d.progress);
    if (!job) $('#live').textContent = 'live';
    $('#live').dataset.state = job?.status === 'running' ? 'running' : 'live';
  });
  es.addEventListener('job', (m) => {
    const d = JSON.parse(m.data);
    job = d.job;
    drawJob(null);
    if (d.change === 'finish') void refresh();
  });
  es.addEventListener('progress', (m) => {
    const p = JSON.parse(m.data);
    if (job && job.id === p.job) {
      job.stage = p.stage;
      drawJob(p);
    }
  });
  es.onerror = () => {
    $('#live').dataset.state = 'down';
    $('#live').textContent = 'reconnecting…';
  };
  es.onopen = () => {
    if ($('#live').dataset.state === 'down') {
      $('#live').dataset.state = 'live';
      $('#live').textContent = 'live';
    }
  };
}

// ---- start -------------------------------------------------------------------------------------

async function refresh() {
  await Promise.all([loadCoverage(), loadReport(), loadHistory().catch((e) => $('#history-chart').replaceChildren(empty(e.message)))]);
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded ?? 0) + 1);
}

$('#report-search').addEventListener('input', drawReport);
$('#attr-form').addEventListener('submit', (ev) => void showSources(ev));
listen();
void refresh();
