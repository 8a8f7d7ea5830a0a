/**
 * `fodder report`: the JSON contract, attributes needing a source (direct and total, on a
 * 40k-derivation graph read once; bench/report.ts times it), "new since the previous report", and the Markdown and HTML renderings.
 */
import { describe, expect, test } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { createFetchStore } from '../src/db/fetch-store.js';
import { buildReport } from '../src/report/build.js';
import { renderHtml } from '../src/report/render-html.js';
import { MARKDOWN_LIMIT, renderMarkdown } from '../src/report/render-markdown.js';
import { renderText } from '../src/report/render-text.js';
import { createTestCrawl, type TestCrawl } from './helpers/fetch-db.js';
import { addReportGraph, attrsNeeding } from './helpers/report-graph.js';

const hashSchema = z.object({
  algo: z.enum(['md5', 'sha1', 'sha256', 'sha512']),
  hex: z.string().regex(/^[0-9a-f]+$/),
  sri: z.string().regex(/^(md5|sha1|sha256|sha512)-[A-Za-z0-9+/]+=*$/),
});
const fodSchema = z
  .object({
    drvPath: z.string(),
    outPath: z.string(),
    name: z.string(),
    kind: z.string(),
    hash: z.object({ algo: z.string(), mode: z.enum(['flat', 'recursive']), hex: z.string(), sri: z.string() }),
    urls: z.array(z.string()),
    resolvedUrls: z.array(z.string()),
    git: z.unknown().nullable(),
    postFetch: z.boolean(),
  })
  .strict();
const attrsSchema = z.object({ direct: z.array(z.string()), total: z.number().int(), indirect: z.array(z.string()), indirectTruncated: z.boolean() });
const urlSchema = z.object({ url: z.string(), outcome: z.string(), httpStatus: z.number().nullable(), message: z.string().nullable() });
const entry = { fod: fodSchema, attrs: attrsSchema, since: z.string(), lastTried: z.string(), new: z.boolean() };
const reportSchema = z
  .object({
    crawl: z.object({ id: z.number(), nixpkgs: z.string(), status: z.string(), startedAt: z.string(), finishedAt: z.string().nullable() }),
    generatedAt: z.string(),
    previousReport: z.object({ id: z.number(), createdAt: z.string() }).nullable(),
    summary: z
      .object({
        fods: z.number(),
        mirrored: z.number(),
        brokenHash: z.number(),
        dead: z.number(),
        rotting: z.number(),
        unfetched: z.number(),
        unverifiable: z.number(),
        evalErrors: z.number(),
      })
      .strict(),
    brokenHashes: z.array(z.object({ ...entry, url: z.string(), expected: hashSchema, actual: hashSchema, urls: z.array(urlSchema) }).strict()),
    dead: z.array(z.object({ ...entry, urls: z.array(urlSchema) }).strict()),
    rotting: z.array(z.object({ ...entry, url: z.string(), urlIndex: z.number(), failing: z.array(urlSchema) }).strict()),
    unverifiable: z.array(z.object({ ...entry, reason: z.string(), message: z.string(), plugin: z.string().nullable() }).strict()),
    evalErrors: z.array(
      z.object({ attr: z.string(), system: z.string(), variant: z.string(), message: z.string(), kind: z.string().nullable(), new: z.boolean() }).strict(),
    ),
  })
  .strict();

/** A crawl with fetch results written the way `fodder fetch` writes them. */
function fixture(): { c: TestCrawl; drv: Record<string, string> } {
  const c = createTestCrawl(join(mkdtempSync(join(tmpdir(), 'fodder-report-')), 'fodder.db'));
  const drv: Record<string, string> = {};
  drv.broken = c.addFod({ name: 'broken-1.0.tar.gz', urls: ['https://example.org/broken-1.0.tar.gz'], content: 'expected' });
  drv.dead = c.addFod({
    name: 'dead <b>1</b>.tar.gz',
    urls: ['mirror://gnu/dead.tar.gz'],
    resolvedUrls: ['https://a.example/dead.tar.gz', 'ftp://b.example/dead.tar.gz'],
    content: 'x',
  });
  drv.rotting = c.addFod({ name: 'rotting.tar.gz', urls: ['https://old.example/r.tar.gz', 'https://new.example/r.tar.gz'], content: 'r' });
  drv.fine = c.addFod({ name: 'fine.tar.gz', urls: ['https://example.org/fine.tar.gz'], content: 'f' });
  drv.never = c.addFod({ name: 'never-fetched.tar.gz', urls: ['https://example.org/never.tar.gz'], content: 'n' });
  drv.custom = c.addFod({ name: 'custom-source', urls: ['https://example.org/custom.zip'], content: 'c', kind: 'archive', mode: 'recursive' });
  const lib = c.addDrv('libfoo', [drv.broken, drv.rotting], 'libfoo');
  c.addDrv('app', [lib, drv.dead], 'app');
  c.addDrv('suite', [lib], 'tools.suite');
  c.addEvalError('bad.attr', 'error: attribute missing\n  at line 3');
  const store = createFetchStore(c.db);
  const run = store.beginRun(c.crawlId, '/m', {});
  const at = (url: string, urlIndex: number, outcome: string, httpStatus: number | null, actual: string | null = null) => ({
    url,
    urlIndex,
    try: 1,
    finalUrl: url,
    outcome: outcome as 'ok',
    httpStatus,
    ftpReply: null,
    bytes: 0,
    resumedFrom: null,
    durationMs: 1,
    actual: actual ? { algo: 'sha256' as const, hex: actual } : null,
    message: null,
  });
  store.attempt(run, drv.broken, at('https://example.org/broken-1.0.tar.gz', 0, 'hash-mismatch', 200, 'ab'.repeat(32)));
  store.result(run, {
    drvPath: drv.broken,
    verdict: 'broken-hash',
    url: 'https://example.org/broken-1.0.tar.gz',
    urlIndex: 0,
    actual: { algo: 'sha256', hex: 'ab'.repeat(32) },
  });
  store.attempt(run, drv.dead, at('https://a.example/dead.tar.gz', 0, 'http-404', 404));
  store.attempt(run, drv.dead, at('ftp://b.example/dead.tar.gz', 1, 'dns', null));
  store.result(run, { drvPath: drv.dead, verdict: 'dead', url: null, urlIndex: null, actual: null });
  store.attempt(run, drv.rotting, at('https://old.example/r.tar.gz', 0, 'http-5xx', 503));
  store.attempt(run, drv.rotting, at('https://new.example/r.tar.gz', 1, 'ok', 200));
  store.result(run, { drvPath: drv.rotting, verdict: 'ok', url: 'https://new.example/r.tar.gz', urlIndex: 1, actual: null });
  store.mirrored(run, '/m', {
    drvPath: drv.rotting,
    path: 'tarballs/sha256/x',
    algo: 'sha256',
    hex: 'x',
    size: 1,
    url: 'https://new.example/r.tar.gz',
    urlIndex: 1,
  });
  store.attempt(run, drv.fine, at('https://example.org/fine.tar.gz', 0, 'ok', 200));
  store.result(run, { drvPath: drv.fine, verdict: 'ok', url: 'https://example.org/fine.tar.gz', urlIndex: 0, actual: null });
  store.mirrored(run, '/m', {
    drvPath: drv.fine,
    path: 'tarballs/sha256/y',
    algo: 'sha256',
    hex: 'y',
    size: 1,
    url: 'https://example.org/fine.tar.gz',
    urlIndex: 0,
  });
  store.result(run, {
    drvPath: drv.custom,
    verdict: 'unverifiable',
    reason: 'custom-postFetch',
    message: 'archive: fetchzip with a custom postFetch',
    plugin: null,
    url: null,
    urlIndex: null,
    actual: null,
  });
  store.finishRun(run, 'done', {});
  return { c, drv };
}

describe('report', () => {
  test('JSON follows the contract', () => {
    const { c } = fixture();
    const r = JSON.parse(JSON.stringify(buildReport(c.db)));
    expect(() => reportSchema.parse(r)).not.toThrow();
    expect(r.summary).toEqual({ fods: 6, mirrored: 2, brokenHash: 1, dead: 1, rotting: 1, unfetched: 1, unverifiable: 1, evalErrors: 1 });
    expect(r.unverifiable).toEqual([
      expect.objectContaining({ reason: 'custom-postFetch', plugin: null, message: 'archive: fetchzip with a custom postFetch', new: true }),
    ]);
    expect(r.brokenHashes[0]).toMatchObject({
      url: 'https://example.org/broken-1.0.tar.gz',
      actual: { algo: 'sha256', hex: 'ab'.repeat(32), sri: `sha256-${Buffer.from('ab'.repeat(32), 'hex').toString('base64')}` },
    });
    expect(r.dead[0].urls.map((u: { outcome: string }) => u.outcome)).toEqual(['http-404', 'dns']);
    expect(r.rotting[0]).toMatchObject({ url: 'https://new.example/r.tar.gz', urlIndex: 1, failing: [{ outcome: 'http-5xx', httpStatus: 503 }] });
    c.close();
  });

  test('a source fodder cannot judge is listed as such, never as broken, whatever an earlier run said', () => {
    const { c, drv } = fixture();
    const store = createFetchStore(c.db);
    const run = store.beginRun(c.crawlId, '/m', {});
    store.result(run, {
      drvPath: drv.broken,
      verdict: 'unverifiable',
      reason: 'nix-failed',
      message: 'nix-store --realise: builder failed',
      plugin: 'nix',
      url: null,
      urlIndex: null,
      actual: null,
    });
    store.finishRun(run, 'done', {});
    const r = buildReport(c.db, { save: false });
    expect(r.brokenHashes).toEqual([]);
    expect(r.unverifiable.map((e) => [e.fod.name, e.reason, e.plugin])).toEqual([
      ['custom-source', 'custom-postFetch', null],
      ['broken-1.0.tar.gz', 'nix-failed', 'nix'],
    ]);
    expect(r.summary).toMatchObject({ brokenHash: 0, unverifiable: 2 });
    expect(renderText(r)).toMatch(/NOT JUDGED BY FODDER \(2; not a verdict on the source\)/);
    c.close();
  });

  test('attributes needing a source: its direct users and everything above them', () => {
    const { c } = fixture();
    const r = buildReport(c.db);
    const { indirect, ...rest } = r.brokenHashes[0].attrs;
    expect(rest).toEqual({ direct: ['libfoo'], total: 3, indirectTruncated: false });
    expect([...indirect].sort()).toEqual(['app', 'tools.suite']);
    expect(r.dead[0].attrs).toEqual({ direct: ['app'], total: 1, indirect: [], indirectTruncated: false });
    c.close();
  });

  test('"new" is relative to the previous report; a third report sees nothing new', () => {
    const { c, drv } = fixture();
    const first = buildReport(c.db);
    expect([first.brokenHashes[0].new, first.dead[0].new, first.rotting[0].new, first.evalErrors[0].new]).toEqual([true, true, true, true]);
    // a new broken source appears between the reports
    const store = createFetchStore(c.db);
    const run = store.beginRun(c.crawlId, '/m', {});
    store.result(run, {
      drvPath: drv.never,
      verdict: 'broken-hash',
      url: 'https://example.org/never.tar.gz',
      urlIndex: 0,
      actual: { algo: 'sha256', hex: 'cd'.repeat(32) },
    });
    store.finishRun(run, 'done', {});
    const second = buildReport(c.db);
    expect(second.previousReport?.id).toBe(1);
    expect(second.brokenHashes.map((e) => [e.fod.name, e.new])).toEqual([
      ['broken-1.0.tar.gz', false],
      ['never-fetched.tar.gz', true],
    ]);
    expect(second.dead[0].new).toBe(false);
    const third = buildReport(c.db, { save: false });
    expect(third.brokenHashes.every((e) => !e.new)).toBe(true);
    c.close();
  });

  test('markdown fits a GitHub issue, even with thousands of entries', () => {
    const { c } = fixture();
    const md = renderMarkdown(buildReport(c.db));
    expect(md).toMatch(/^## fodder report: crawl 1/);
    expect(md).toContain('| sources | mirrored | broken hash | dead | rotting | not judged | unfetched | eval errors |');
    expect(md).toContain('| `custom-postFetch` | 1 | `custom-source` |');
    expect(md).toContain('### Broken hashes (1)');
    expect(md).toContain('https://a.example/dead.tar.gz (http-404)<br>ftp://b.example/dead.tar.gz (dns)');
    const big = buildReport(c.db, { save: false });
    big.dead = Array.from({ length: 5000 }, (_, i) => ({ ...big.dead[0], fod: { ...big.dead[0].fod, name: `dead-${i}|x.tar.gz` } }));
    const long = renderMarkdown(big);
    expect(long.length).toBeLessThanOrEqual(MARKDOWN_LIMIT);
    expect(long).toMatch(/…and \d+ more/);
    expect(long).toContain('dead-0\\|x.tar.gz');
    c.close();
  });

  test('HTML is one self-contained page with counts and sortable tables, and escapes what it shows', () => {
    const { c } = fixture();
    const html = renderHtml(buildReport(c.db));
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|@import|url\(/);
    expect(html).toContain('dead &lt;b&gt;1&lt;/b&gt;.tar.gz');
    expect(html).not.toContain('dead <b>1</b>');
    expect(html).toMatch(/<a class="card [a-z]*" href="#dead"><b>1<\/b><span>dead<\/span>/);
    expect(html).toContain("th.addEventListener('click'");
    expect(renderText(buildReport(c.db, { save: false }))).toMatch(/BROKEN HASHES \(1\)[\s\S]*DEAD \(1\)[\s\S]*ROTTING \(1\)[\s\S]*EVALUATION ERRORS \(1\)/);
    c.close();
  });

  test('on a 40,000-derivation graph with hundreds of failing sources, reads the graph once and counts the attributes needing each', () => {
    const c = createTestCrawl(join(mkdtempSync(join(tmpdir(), 'fodder-report-big-')), 'fodder.db'));
    const g = addReportGraph(c);
    // every statement the report prepares, by its SQL: one walk per failing source must not mean one read of the graph per source
    const prepared: string[] = [];
    const prepare = c.db.prepare.bind(c.db);
    c.db.prepare = (sql: string) => {
      prepared.push(sql);
      return prepare(sql);
    };
    const r = buildReport(c.db);
    expect(r.dead.length + r.brokenHashes.length).toBe(400);
    expect(prepared.filter((sql) => /\bdrv_inputs\b/.test(sql))).toHaveLength(1);
    expect(prepared.length).toBeLessThan(20);
    // the counts, against a plain walk of the graph (for every 16th failing source: the plain walk is slow)
    const totals = new Map([...r.dead, ...r.brokenHashes].map((e) => [e.fod.drvPath, e.attrs.total]));
    const sample = g.failing.filter((_, i) => i % 16 === 0);
    expect(sample.map((f) => totals.get(f))).toEqual(sample.map((f) => attrsNeeding(g, f)));
    expect(r.dead[0].attrs.total).toBeGreaterThan(100);
    c.close();
  }, 60_000);
});
