import type { AttrNeeds } from './dependents.js';
import type { Report, UrlOutcome } from './types.js';
import { nixErrorHeadline } from '../graph/nix-error.js';

/** "hello, foo (+3 more; 12 in total)" */
export function attrsSummary(a: AttrNeeds, show = 3): string {
  const direct = a.direct.slice(0, show).join(', ');
  const more = a.direct.length > show ? ` +${a.direct.length - show} more` : '';
  const total = a.total > a.direct.length ? `${direct || more ? '; ' : ''}${a.total} in total` : '';
  return `${direct}${more}${total}` || 'no attribute';
}

export function outcomeText(u: UrlOutcome): string {
  return u.httpStatus && !u.outcome.startsWith('http-') ? `${u.outcome} (${u.httpStatus})` : u.outcome;
}

export const day = (iso: string) => iso.slice(0, 10);

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.min(60, Math.max(...rows.map((r) => r[i].length))));
  return rows.map((r) => '  ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

/** The unverifiable sources grouped by reason, most first: [reason, names]. */
export function unverifiableByReason(r: Report): [string, string[]][] {
  const by = new Map<string, string[]>();
  for (const e of r.unverifiable) by.set(e.reason, [...(by.get(e.reason) ?? []), e.fod.name]);
  return [...by.entries()].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]));
}

/** The report for a terminal. */
export function renderText(r: Report): string {
  const s = r.summary;
  const out: string[] = [];
  const state = r.crawl.status === 'done' ? `finished ${r.crawl.finishedAt ?? ''}`.trimEnd() : `${r.crawl.status.toUpperCase()}: partial records`;
  out.push(`fodder report: crawl ${r.crawl.id} of ${r.crawl.nixpkgs} (${state}, started ${r.crawl.startedAt})`);
  out.push(
    `  sources ${s.fods}  mirrored ${s.mirrored}  broken hash ${s.brokenHash}  dead ${s.dead}  rotting ${s.rotting}  not judged ${s.unverifiable}  unfetched ${s.unfetched}  eval errors ${s.evalErrors}`,
  );
  out.push(r.previousReport ? `  "new" is relative to report ${r.previousReport.id} of ${r.previousReport.createdAt}` : '  first report: everything is new');
  const mark = (isNew: boolean) => (isNew ? 'NEW' : '');
  if (r.brokenHashes.length) {
    out.push('', `BROKEN HASHES (${r.brokenHashes.length})`);
    out.push(
      table([
        ['source', 'url', 'expected', 'actual', 'needed by', 'since', ''],
        ...r.brokenHashes.map((e) => [e.fod.name, e.url, e.expected.sri, e.actual.sri, attrsSummary(e.attrs), day(e.since), mark(e.new)]),
      ]),
    );
  }
  if (r.dead.length) {
    out.push('', `DEAD (${r.dead.length})`);
    out.push(
      table([
        ['source', 'urls', 'needed by', 'since', ''],
        ...r.dead.map((e) => [e.fod.name, e.urls.map((u) => `${u.url} ${outcomeText(u)}`).join(' | '), attrsSummary(e.attrs), day(e.since), mark(e.new)]),
      ]),
    );
  }
  if (r.rotting.length) {
    out.push('', `ROTTING (${r.rotting.length})`);
    out.push(
      table([
        ['source', 'mirrored from', 'failing', 'needed by', 'since', ''],
        ...r.rotting.map((e) => [
          e.fod.name,
          e.url,
          e.failing.map((u) => `${u.url} ${outcomeText(u)}`).join(' | '),
          attrsSummary(e.attrs),
          day(e.since),
          mark(e.new),
        ]),
      ]),
    );
  }
  if (r.unverifiable.length) {
    out.push('', `NOT JUDGED BY FODDER (${r.unverifiable.length}; not a verdict on the source)`);
    out.push(
      table([
        ['reason', 'sources', 'for example'],
        ...unverifiableByReason(r).map(([reason, names]) => [reason, String(names.length), names.slice(0, 4).join(', ') + (names.length > 4 ? ', …' : '')]),
      ]),
    );
  }
  if (r.evalErrors.length) {
    out.push('', `EVALUATION ERRORS (${r.evalErrors.length})`);
    out.push(
      table([
        ['attribute', 'system', 'variant', 'message', ''],
        ...r.evalErrors.map((e) => [e.attr, e.system, e.variant, nixErrorHeadline(e.message).slice(0, 120), mark(e.new)]),
      ]),
    );
  }
  return out.join('\n') + '\n';
}
