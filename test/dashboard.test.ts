/**
 * The dashboard at `/`, in Debian's Chromium driven through playwright-core (never a downloaded
 * browser; scripts/ensure-chromium.sh installs it), against `fodder serve` on a free loopback
 * port after a job has run on the fixture package set. The page may reach 127.0.0.1 only.
 *
 * Coverage bars show the API's numbers; the report filters by category and by text; an
 * attribute's sources are found; a job POSTed with the token shows its stages and counts live
 * (and the feed says start, stage and finish). A screenshot is kept in test-artifacts/.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { JobInfo } from '../src/db/jobs.js';
import type { Fod } from '../src/graph/types.js';
import type { Coverage, HistoryPoint } from '../src/query/coverage.js';
import type { Report } from '../src/report/types.js';
import { ROOT, fodder, tempDir } from './helpers/cli.js';
import { startUpstream, waitPortFree, type Upstream } from './helpers/fixture-upstream.js';
import { api, startServe, waitJob, writeServiceConfig, type RunningService } from './helpers/service.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT = join(ROOT, 'test-artifacts', 'dashboard.png');

const dir = tempDir('fodder-dashboard-');
const TOKEN = 'dashboard-test-token-0123456789';
let upstream: Upstream | null = null;
let service: RunningService;
let context: BrowserContext;
let page: Page;
/** every URL the page asked for that is not on 127.0.0.1 (refused) */
const elsewhere: string[] = [];

beforeAll(async () => {
  await waitPortFree(18662); // the fixture's dead mirror must stay dead
  const k = await fodder(['keygen', 'fodder-serve-1', '--out', join(dir, 'keys'), '--json']);
  expect(k.code, k.stderr).toBe(0);
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  upstream = await startUpstream({ port: 18661 });
  service = await startServe(writeServiceConfig(dir, 'fodder.yaml'), '--no-schedule');
  const posted = await api<{ id: number }>(service.url, '/api/jobs', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  const done = await waitJob(service.url, posted.body.id, (j) => j.status !== 'queued' && j.status !== 'running');
  expect(done.status, JSON.stringify(done)).toBe('done');

  context = await chromium.launchPersistentContext(tempDir('fodder-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
  await context.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    elsewhere.push(url.href);
    return route.abort();
  });
  page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${service.url}/`);
  await page.waitForSelector('body[data-loaded]');
}, 120_000);

afterAll(async () => {
  await context?.close();
  service?.proc.kill('SIGTERM');
  await service?.proc;
  await upstream?.close();
});

describe('the dashboard', () => {
  test('GET / is the page; its files are served by name only', async () => {
    const r = await fetch(`${service.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    expect((await fetch(`${service.url}/dashboard/dashboard.js`)).headers.get('content-type')).toMatch(/javascript/);
    for (const path of ['/dashboard/index.html', '/dashboard/..%2F..%2Fpackage.json', '/dashboard/nope.js']) {
      expect((await fetch(`${service.url}${path}`)).status, path).toBe(404);
    }
    expect((await fetch(`${service.url}/nix-cache-info`)).status).toBe(200); // the binary cache keeps its paths
  });

  test('coverage bars show the numbers of /api/coverage', async () => {
    const { body: cov } = await api<Coverage>(service.url, '/api/coverage');
    expect(cov.targets).toHaveLength(1);
    const [t] = cov.targets;
    expect(t).toMatchObject({ system: 'x86_64-linux', variant: 'default' });
    expect(t.mirrored).toBeGreaterThan(0);
    const fods = (await api<Fod[]>(service.url, '/api/fods')).body;
    expect(t.total).toBe(fods.length);
    const target = page.locator(`.target[data-system="${t.system}"][data-variant="${t.variant}"]`);
    await expect.poll(() => target.locator('.kind-row[data-kind="all"] .count').textContent()).toBe(`${t.mirrored} / ${t.total}`);
    expect(t.kinds.length).toBeGreaterThanOrEqual(2);
    for (const k of t.kinds) {
      const row = target.locator(`.kind-row[data-kind="${k.kind}"]`);
      expect(await row.locator('.count').textContent(), k.kind).toBe(`${k.mirrored} / ${k.total}`);
      const width = await row.locator('.bar > span').evaluate((el) => (el as HTMLElement).style.width);
      expect(parseFloat(width)).toBeCloseTo((100 * k.mirrored) / k.total, 1);
    }
  });

  test('the report filters by category and by text', async () => {
    const { body: report } = await api<Report>(service.url, '/api/report');
    const rows = page.locator('#report-table tbody tr');
    const all = report.brokenHashes.length + report.dead.length + report.rotting.length + report.unverifiable.length + report.evalErrors.length;
    await expect.poll(() => rows.count()).toBe(Math.min(all, 500));

    await page.click('#report-filters .chip[data-category="dead"]');
    expect(await rows.count()).toBe(report.dead.length);
    expect(await rows.evaluateAll((trs) => trs.every((tr) => (tr as HTMLElement).dataset.category === 'dead'))).toBe(true);
    expect(await rows.first().textContent()).toContain('dead-source-1.0.tar.gz');

    await page.click('#report-filters .chip[data-category="broken"]');
    expect(await rows.count()).toBe(report.brokenHashes.length);
    expect(await rows.first().textContent()).toContain(report.brokenHashes[0].actual.sri);

    await page.click('#report-filters .chip[data-category="all"]');
    await page.fill('#report-search', 'dead-source');
    expect(await rows.count()).toBe(1);
    await page.fill('#report-search', 'no such source anywhere');
    expect(await rows.count()).toBe(0);
    await page.fill('#report-search', '');
    expect(await rows.count()).toBe(Math.min(all, 500));
  });

  test('an attribute search shows the sources of /api/sources/hello', async () => {
    await page.fill('#attr-input', 'no-such-thing');
    await page.click('#attr-form button');
    await expect.poll(() => page.locator('#attr-result [data-error]').getAttribute('data-error')).toBe('ATTR_NOT_CRAWLED');

    const { body } = await api<{ sources: Fod[] }>(service.url, '/api/sources/hello');
    await page.fill('#attr-input', 'hello');
    await page.click('#attr-form button');
    const names = page.locator('#sources-table tbody tr td:first-child');
    await expect.poll(() => names.allTextContents()).toEqual(body.sources.map((f) => f.name));
    expect(body.sources.map((f) => f.name)).toContain('hello-2.12.tar.gz');
  });

  test('crawl history: one point per finished crawl, charted', async () => {
    const { body: history } = await api<HistoryPoint[]>(service.url, '/api/history');
    expect(history).toHaveLength(1);
    expect(history[0].total).toBe((await api<Fod[]>(service.url, '/api/fods')).body.length);
    expect(await page.locator('#history-chart svg polyline, #history-chart svg circle').count()).toBeGreaterThan(0);
    expect(await page.locator('#crawls-table tbody tr').count()).toBe(1);
    expect((await api(service.url, '/api/history?limit=0')).status).toBe(400);
  });

  test('a job POSTed with the token shows its progress live, and the feed says start, stage and finish', async () => {
    const events: { event: string; data: { change?: string; stage?: string; done?: number; job?: unknown } }[] = [];
    const feed = new AbortController();
    const stream = await fetch(`${service.url}/api/jobs/events`, { signal: feed.signal });
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reading = (async () => {
      const decoder = new TextDecoder();
      let text = '';
      try {
        for await (const chunk of stream.body!) {
          text += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = text.indexOf('\n\n')) >= 0) {
            const block = text.slice(0, end);
            text = text.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data) events.push({ event, data: JSON.parse(data) });
          }
        }
      } catch {
        /* aborted */
      }
    })();

    // what the page shows, recorded at every change: a job of the test set can run its stages in
    // a fraction of a second, faster than a test could look at the page in turn
    await page.evaluate(() => {
      const w = window as unknown as { seen: { status: string; progress: string; fetchActive: boolean; crawlPast: boolean }[] };
      w.seen = [];
      const record = () =>
        w.seen.push({
          status: document.querySelector('#job-status')?.textContent ?? '',
          progress: document.querySelector('#job-progress')?.textContent ?? '',
          fetchActive: document.querySelector('#job-stages li[data-stage="fetch"]')?.classList.contains('active') ?? false,
          crawlPast: document.querySelector('#job-stages li[data-stage="crawl"]')?.classList.contains('past') ?? false,
        });
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    const posted = await api<{ id: number }>(service.url, '/api/jobs', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(posted.status).toBe(202);
    const id = posted.body.id;
    await page.waitForFunction((id) => document.querySelector('#job-status')?.textContent?.startsWith(`#${id} done`), id, { timeout: 60_000 });
    const seen = await page.evaluate(
      () => (window as unknown as { seen: { status: string; progress: string; fetchActive: boolean; crawlPast: boolean }[] }).seen,
    );
    // it showed the job running, the counts moving (a progress line of the crawl or the fetch), then the fetch stage lit
    const running = seen.findIndex((v) => v.status.startsWith(`#${id} running`));
    expect(running, JSON.stringify(seen.slice(-5))).toBeGreaterThanOrEqual(0);
    expect(seen.slice(running).some((v) => /\d+ \/ \d+ (attributes|sources)/.test(v.progress))).toBe(true);
    expect(seen.slice(running).some((v) => v.fetchActive || v.crawlPast)).toBe(true);
    expect(await page.locator('#job-stages li.past').count()).toBe(3);
    expect(await page.locator('#live').getAttribute('data-state')).toBe('live');

    const job = await waitJob(service.url, id, (j: JobInfo) => j.status === 'done');
    feed.abort();
    await reading;
    expect(events[0].event).toBe('snapshot');
    const changes = events.filter((e) => e.event === 'job').map((e) => `${e.data.change}:${(e.data.job as JobInfo).stage}`);
    expect(changes).toEqual(['start:crawl', 'stage:fetch', 'stage:report', 'finish:report']);
    const progress = events.filter((e) => e.event === 'progress');
    expect(progress.some((e) => e.data.stage === 'crawl' && (e.data.done ?? 0) > 0)).toBe(true);
    expect(progress.some((e) => e.data.stage === 'fetch')).toBe(true);
    expect(job.crawl).not.toBeNull();

    // the page took in the new crawl when the job finished
    await expect.poll(() => page.locator('#crawls-table tbody tr').count()).toBe(2);
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  test('the page asked nothing of any address but 127.0.0.1', () => {
    expect(elsewhere).toEqual([]);
  });
});
