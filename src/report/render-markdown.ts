import type { Report } from './types.js';
import { attrsSummary, day, outcomeText, unverifiableByReason } from './render-text.js';
import { nixErrorHeadline } from '../graph/nix-error.js';

/** GitHub's limit on an issue body is 65,536 characters; stay under it. */
export const MARKDOWN_LIMIT = 60_000;

const cell = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
const code = (s: string) => (s ? `\`${s.replace(/`/g, "'")}\`` : '');
const newMark = (n: boolean) => (n ? ' **new**' : '');

function section(title: string, header: string[], rows: string[][], cap: number): string[] {
  if (!rows.length) return [];
  const shown = rows.slice(0, cap);
  const out = [
    `### ${title} (${rows.length})`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...shown.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ];
  if (rows.length > cap) out.push('', `…and ${rows.length - cap} more (see \`fodder report --format json\`).`);
  out.push('');
  return out;
}

function render(r: Report, cap: number): string {
  const s = r.summary;
  const out = [
    `## fodder report: crawl ${r.crawl.id}`,
    '',
    `Package set \`${r.crawl.nixpkgs}\`, crawl ${r.crawl.status} ${day(r.crawl.startedAt)}; report of ${r.generatedAt}.`,
    r.previousReport ? `"new" marks entries not in report ${r.previousReport.id} (${day(r.previousReport.createdAt)}).` : 'First report: every entry is new.',
    '',
    '| sources | mirrored | broken hash | dead | rotting | not judged | unfetched | eval errors |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${s.fods} | ${s.mirrored} | ${s.brokenHash} | ${s.dead} | ${s.rotting} | ${s.unverifiable} | ${s.unfetched} | ${s.evalErrors} |`,
    '',
  ];
  out.push(
    ...section(
      'Broken hashes',
      ['source', 'URL', 'expected', 'actual', 'needed by', 'since'],
      r.brokenHashes.map((e) => [code(e.fod.name) + newMark(e.new), e.url, code(e.expected.sri), code(e.actual.sri), attrsSummary(e.attrs), day(e.since)]),
      cap,
    ),
  );
  out.push(
    ...section(
      'Dead sources',
      ['source', 'URLs tried', 'needed by', 'since'],
      r.dead.map((e) => [
        code(e.fod.name) + newMark(e.new),
        e.urls.map((u) => `${u.url} (${outcomeText(u)})`).join('<br>'),
        attrsSummary(e.attrs),
        day(e.since),
      ]),
      cap,
    ),
  );
  out.push(
    ...section(
      'Rotting sources',
      ['source', 'mirrored from', 'failing URLs', 'needed by', 'since'],
      r.rotting.map((e) => [
        code(e.fod.name) + newMark(e.new),
        e.url,
        e.failing.map((u) => `${u.url} (${outcomeText(u)})`).join('<br>'),
        attrsSummary(e.attrs),
        day(e.since),
      ]),
      cap,
    ),
  );
  out.push(
    ...section(
      'Not judged by fodder (not a verdict on the source)',
      ['reason', 'sources', 'for example'],
      unverifiableByReason(r).map(([reason, names]) => [
        code(reason),
        String(names.length),
        names.slice(0, 5).map(code).join(', ') + (names.length > 5 ? ', …' : ''),
      ]),
      cap,
    ),
  );
  out.push(
    ...section(
      'Evaluation errors',
      ['attribute', 'system', 'variant', 'message'],
      r.evalErrors.map((e) => [code(e.attr) + newMark(e.new), e.system, e.variant, nixErrorHeadline(e.message).slice(0, 200)]),
      cap,
    ),
  );
  return out.join('\n');
}

/** The report as Markdown for a GitHub issue: long sections are cut to fit its size limit. */
export function renderMarkdown(r: Report): string {
  for (let cap = 200; ; cap = Math.floor(cap / 2)) {
    const text = render(r, cap);
    if (text.length <= MARKDOWN_LIMIT || cap <= 5) return text;
  }
}
