/**
 * The dashboard at `/` (docs/api.md): one HTML page, its stylesheet and script (web/dashboard/,
 * read once when the service starts: a request names one of them, never a file), the two read
 * endpoints it draws from besides the JSON API (`/api/coverage`, `/api/history`), and the jobs'
 * live feed (`/api/jobs/events`, server-sent events).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { packageRoot } from '../config/defaults.js';
import type { Db } from '../db/open.js';
import { ErrorCode, FodderError } from '../errors.js';
import { coverageOf, crawlHistory } from '../query/coverage.js';
import { crawlParam } from './api-routes.js';
import type { FeedMessage, JobFeed } from './job-feed.js';

export interface DashboardRoutesOptions {
  db: Db;
  feed: JobFeed;
}

/** The dashboard's files: request name -> file under web/dashboard/ and its type. */
const ASSETS: Record<string, { file: string; type: string }> = {
  'dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  'dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
};

/** A comment line sent this often keeps an idle event stream open through proxies. */
const KEEPALIVE_MS = 15_000;

/** The dashboard's own files, from the package root (the same from src/ under vitest and from dist/). */
export function dashboardDir(): string {
  return join(packageRoot(), 'web', 'dashboard');
}

export function registerDashboardRoutes(app: FastifyInstance, o: DashboardRoutesOptions): void {
  const { db, feed } = o;
  const dir = dashboardDir();
  const page = readFileSync(join(dir, 'index.html'));
  const assets = new Map(Object.entries(ASSETS).map(([name, a]) => [name, { type: a.type, body: readFileSync(join(dir, a.file)) }]));

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page));

  app.get<{ Params: { file: string } }>('/dashboard/:file', async (req, reply) => {
    const asset = assets.get(req.params.file);
    if (!asset) throw new FodderError(ErrorCode.NOT_FOUND, `the dashboard has no ${JSON.stringify(req.params.file.slice(0, 100))}`);
    return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
  });

  app.get<{ Querystring: Record<string, string | undefined> }>('/api/coverage', async (req) => coverageOf(db, crawlParam(req.query)));

  app.get<{ Querystring: Record<string, string | undefined> }>('/api/history', async (req) => {
    const { limit } = req.query;
    const n = limit === undefined ? 50 : Number(limit);
    if (!Number.isInteger(n) || n <= 0 || n > 1000) {
      throw new FodderError(ErrorCode.USAGE, `limit must be an integer from 1 to 1000, got "${limit}"`, { limit: limit ?? null });
    }
    return crawlHistory(db, n);
  });

  app.get('/api/jobs/events', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    const write = (m: FeedMessage | { event: 'snapshot'; data: unknown }) => res.write(`event: ${m.event}\ndata: ${JSON.stringify(m.data)}\n\n`);
    write({ event: 'snapshot', data: feed.snapshot() });
    const stop = feed.subscribe(write);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    req.raw.on('close', () => {
      stop();
      clearInterval(keepalive);
    });
  });
}
