import type { AttrNeeds } from './dependents.js';
import type { Report, UrlOutcome } from './types.js';
import { day, outcomeText } from './render-text.js';
import { nixErrorHeadline } from '../graph/nix-error.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function link(url: string): string {
  return /^(https?|ftp):\/\//.test(url) ? `<a href="${esc(url)}" rel="noreferrer">${esc(url)}</a>` : esc(url);
}

function attrsCell(a: AttrNeeds): string {
  const direct = a.direct.map((x) => `<code>${esc(x)}</code>`).join(' ');
  const more =
    a.total > a.direct.length
      ? `<details><summary>${a.total} in total</summary>${a.indirect.map((x) => `<code>${esc(x)}</code>`).join(' ')}${a.indirectTruncated ? ' …' : ''}</details>`
      : '';
  return `<td data-sort="${a.total}">${direct || (more ? '' : '<span class="muted">none</span>')}${more}</td>`;
}

function urlsCell(urls: UrlOutcome[]): string {
  return `<td>${urls.map((u) => `<div class="url"><span class="oc oc-${esc(u.outcome)}" title="${esc(u.message ?? '')}">${esc(outcomeText(u))}</span> ${link(u.url)}</div>`).join('')}</td>`;
}

const nameCell = (name: string, isNew: boolean, drv: string) =>
  `<td data-sort="${esc(name)}"><span class="name" title="${esc(drv)}">${esc(name)}</span>${isNew ? ' <span class="new">new</span>' : ''}</td>`;
const dateCell = (iso: string) => `<td class="date" data-sort="${esc(iso)}" title="${esc(iso)}">${esc(day(iso))}</td>`;

function section(id: string, title: string, count: number, head: string[], rows: string[]): string {
  if (!count) return `<section id="${id}"><h2>${title} <span class="count">0</span></h2><p class="muted">None.</p></section>`;
  return `<section id="${id}"><h2>${title} <span class="count">${count}</span></h2>
<input class="filter" type="search" placeholder="filter ${title.toLowerCase()}…" data-table="${id}-t">
<table id="${id}-t"><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead>
<tbody>${rows.join('\n')}</tbody></table></section>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header{background:#24292f;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:20px}header p{margin:0;color:#c9d1d9;font-size:13px}
main{padding:20px 28px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:24px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 16px;min-width:110px;text-decoration:none;color:inherit}
.card b{display:block;font-size:26px;line-height:1.1}.card span{color:#57606a;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card.bad b{color:#cf222e}.card.warn b{color:#9a6700}.card.good b{color:#1a7f37}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:14px 18px;margin-bottom:20px;overflow-x:auto}
h2{font-size:17px;margin:0 0 10px}.count{background:#eaeef2;border-radius:10px;padding:1px 9px;font-size:13px;font-weight:600}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid #eaeef2}
th{cursor:pointer;user-select:none;white-space:nowrap;background:#f6f8fa;position:sticky;top:0}
th:after{content:" \\2195";color:#8c959f;font-size:11px}th.asc:after{content:" \\25B2"}th.desc:after{content:" \\25BC"}
td code,.hash{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;border-radius:4px;padding:0 3px;word-break:break-all}
td.date{white-space:nowrap}.name{font-weight:600}.new{background:#ddf4ff;color:#0969da;border-radius:8px;padding:0 6px;font-size:11px;font-weight:600}
.url{white-space:nowrap}.url a{color:#0969da}.oc{display:inline-block;min-width:70px;font:11px ui-monospace,monospace;background:#ffebe9;color:#cf222e;border-radius:4px;padding:1px 4px}
.oc-ok{background:#dafbe1;color:#1a7f37}.muted{color:#8c959f}details summary{cursor:pointer;color:#57606a}
.filter{margin:0 0 8px;padding:5px 8px;border:1px solid #d0d7de;border-radius:6px;width:260px}
`;

const JS = `
document.querySelectorAll('table').forEach(function (t) {
  t.querySelectorAll('th').forEach(function (th, i) {
    th.addEventListener('click', function () {
      var asc = !th.classList.contains('asc');
      t.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      var rows = Array.prototype.slice.call(t.tBodies[0].rows);
      var key = function (r) { var c = r.cells[i]; var v = c.getAttribute('data-sort'); return v !== null ? v : c.textContent.trim(); };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        var d = (!isNaN(nx) && !isNaN(ny) && /^[-0-9.]+$/.test(x) && /^[-0-9.]+$/.test(y)) ? nx - ny : x.localeCompare(y);
        return asc ? d : -d;
      });
      rows.forEach(function (r) { t.tBodies[0].appendChild(r); });
    });
  });
});
document.querySelectorAll('input.filter').forEach(function (input) {
  input.addEventListener('input', function () {
    var q = input.value.toLowerCase();
    var t = document.getElementById(input.getAttribute('data-table'));
    Array.prototype.forEach.call(t.tBodies[0].rows, function (r) { r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none'; });
  });
});
`;

/** The report as one self-contained HTML page: counts first, then sortable, filterable tables. */
export function renderHtml(r: Report): string {
  const s = r.summary;
  const card = (n: number, label: string, cls: string, href: string) => `<a class="card ${n ? cls : ''}" href="${href}"><b>${n}</b><span>${label}</span></a>`;
  const broken = r.brokenHashes.map(
    (e) => `<tr>${nameCell(e.fod.name, e.new, e.fod.drvPath)}<td>${link(e.url)}</td>
<td><span class="hash">${esc(e.expected.sri)}</span></td><td><span class="hash">${esc(e.actual.sri)}</span></td>${attrsCell(e.attrs)}${dateCell(e.since)}</tr>`,
  );
  const dead = r.dead.map((e) => `<tr>${nameCell(e.fod.name, e.new, e.fod.drvPath)}${urlsCell(e.urls)}${attrsCell(e.attrs)}${dateCell(e.since)}</tr>`);
  const rotting = r.rotting.map(
    (e) => `<tr>${nameCell(e.fod.name, e.new, e.fod.drvPath)}<td>${link(e.url)}</td>${urlsCell(e.failing)}${attrsCell(e.attrs)}${dateCell(e.since)}</tr>`,
  );
  const unverifiable = r.unverifiable.map(
    (e) => `<tr>${nameCell(e.fod.name, e.new, e.fod.drvPath)}<td>${esc(e.fod.kind)}</td>
<td><code>${esc(e.reason)}</code></td><td>${esc(e.plugin ?? '')}</td><td>${esc(nixErrorHeadline(e.message).slice(0, 300))}</td>${attrsCell(e.attrs)}${dateCell(e.since)}</tr>`,
  );
  const evalErrors = r.evalErrors.map(
    (e) => `<tr><td data-sort="${esc(e.attr)}"><code>${esc(e.attr)}</code>${e.new ? ' <span class="new">new</span>' : ''}</td>
<td>${esc(e.system)}</td><td>${esc(e.variant)}</td><td>${esc(nixErrorHeadline(e.message).slice(0, 300))}</td></tr>`,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>fodder report: crawl ${r.crawl.id}</title><style>${CSS}</style></head>
<body><header><h1>fodder report: crawl ${r.crawl.id}</h1>
<p>${esc(r.crawl.nixpkgs)} · crawl ${esc(r.crawl.status)} ${esc(day(r.crawl.startedAt))} · generated ${esc(r.generatedAt)} · ${r.previousReport ? `“new” = not in report ${r.previousReport.id} (${esc(day(r.previousReport.createdAt))})` : 'first report: everything is new'}</p></header>
<main><div class="cards">
${card(s.fods, 'sources', '', '#')}${card(s.mirrored, 'mirrored', 'good', '#')}${card(s.brokenHash, 'broken hash', 'bad', '#broken')}
${card(s.dead, 'dead', 'bad', '#dead')}${card(s.rotting, 'rotting', 'warn', '#rotting')}${card(s.unverifiable, 'not judged', '', '#unverifiable')}
${card(s.unfetched, 'unfetched', '', '#')}
${card(s.evalErrors, 'eval errors', 'warn', '#eval')}
</div>
${section('broken', 'Broken hashes', broken.length, ['source', 'URL', 'expected', 'actual', 'needed by', 'since'], broken)}
${section('dead', 'Dead sources', dead.length, ['source', 'URLs tried', 'needed by', 'since'], dead)}
${section('rotting', 'Rotting sources', rotting.length, ['source', 'mirrored from', 'failing URLs', 'needed by', 'since'], rotting)}
${section('unverifiable', 'Not judged by fodder (not a verdict on the source)', unverifiable.length, ['source', 'kind', 'reason', 'plug-in', 'message', 'needed by', 'since'], unverifiable)}
${section('eval', 'Evaluation errors', evalErrors.length, ['attribute', 'system', 'variant', 'message'], evalErrors)}
</main><script>${JS}</script></body></html>
`;
}
