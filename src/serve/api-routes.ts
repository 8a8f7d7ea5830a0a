/**
 * The JSON API (docs/api.md). Each answer has the shape of the command line's `--json` for the
 * same question; an error is `{ "error": { "code", "message" } }` with the HTTP status of its
 * code (see `httpStatus`). Reads are open; starting a job needs the admin token.
 */
import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServiceSettings } from '../config/settings.js';
import { chooseCrawl, crawlById, finishedCrawlIds, listCrawls } from '../db/crawls.js';
import { jobById, listJobs } from '../db/jobs.js';
import type { Db } from '../db/open.js';
import { ErrorCode, FodderError } from '../errors.js';
import { listFods } from '../query/listings.js';
import { latestAttr, sourcesOfHit } from '../query/sources.js';
import { buildReport } from '../report/build.js';
import { createAnswerCache } from './answer-cache.js';
import type { JobRunner } from './jobs.js';

/** The HTTP status of an error the API answers with (500 for any other). */
const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.USAGE]: 400,
  [ErrorCode.TOKEN_REQUIRED]: 401,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.JOB_UNKNOWN]: 404,
  [ErrorCode.ATTR_UNKNOWN]: 404,
  [ErrorCode.ATTR_NOT_CRAWLED]: 404,
  [ErrorCode.CRAWL_UNKNOWN]: 404,
  [ErrorCode.CRAWL_UNFINISHED]: 404,
  [ErrorCode.DB_EMPTY]: 404,
  [ErrorCode.ATTR_FAILED]: 422,
  [ErrorCode.DB_BUSY]: 503,
};

export function httpStatus(err: unknown): number {
  return err instanceof FodderError ? (STATUS[err.code] ?? 500) : 500;
}

type Query = Record<string, string | undefined>;

/** What the answers of `/api/sources` kept in memory may hold at most (see answer-cache.ts). */
const SOURCES_CACHE_BYTES = 64 * 2 ** 20;

/** `?crawl=N`: a positive integer, or absent. */
export function crawlParam(q: Query): number | undefined {
  if (q.crawl === undefined) return undefined;
  const n = Number(q.crawl);
  if (!Number.isInteger(n) || n <= 0) throw new FodderError(ErrorCode.USAGE, `crawl must be a positive integer, got "${q.crawl}"`, { crawl: q.crawl });
  return n;
}

/**
 * The admin token, read from `service.tokenFile` (at each request: it may be replaced while the
 * service runs). The service checks it can be read when it starts (`readToken`).
 */
export function readToken(s: ServiceSettings): string | null {
  if (s.tokenFile === null) return null;
  let token: string;
  try {
    token = readFileSync(s.tokenFile, 'utf8').trim();
  } catch (err) {
    throw new FodderError(ErrorCode.CONFIG_INVALID, `${s.tokenFrom}: cannot read ${s.tokenFile}: ${(err as Error).message}`, { file: s.tokenFile });
  }
  if (token.length < 16 || /\s/.test(token)) {
    throw new FodderError(ErrorCode.CONFIG_INVALID, `${s.tokenFrom}: ${s.tokenFile} must hold one token of at least 16 characters, without spaces`, {
      file: s.tokenFile,
    });
  }
  return token;
}

function requireToken(req: FastifyRequest, service: ServiceSettings): void {
  const token = readToken(service);
  if (token === null) throw new FodderError(ErrorCode.TOKEN_REQUIRED, 'no admin token is configured (service.tokenFile): jobs start only on the schedule');
  const given = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new FodderError(ErrorCode.TOKEN_REQUIRED, 'this needs the admin token: Authorization: Bearer TOKEN');
  }
}

export interface ApiRoutesOptions {
  db: Db;
  jobs: JobRunner;
  service: ServiceSettings;
}

export function registerApiRoutes(app: FastifyInstance, o: ApiRoutesOptions): void {
  const { db } = o;

  // the answers of finished crawls, which never change (a crawl is `done` for good)
  const sources = createAnswerCache(SOURCES_CACHE_BYTES);
  const finished = new Set<number>();
  const isFinished = (crawl: number) => {
    if (!finished.has(crawl) && crawlById(db, crawl)?.status === 'done') finished.add(crawl);
    return finished.has(crawl);
  };

  app.get<{ Params: { attr: string }; Querystring: Query }>('/api/sources/:attr', async (req, reply) => {
    const q = req.query;
    const n = { system: q.system, variant: q.variant, crawl: crawlParam(q) };
    // a question about a finished crawl is answered from memory without a look at the database;
    // without ?crawl=, which crawl answers is looked up first (a newer one may have finished)
    const asked = n.crawl !== undefined && finished.has(n.crawl) ? JSON.stringify(['asked', n.crawl, n.system, n.variant, req.params.attr]) : null;
    let body = asked === null ? undefined : sources.get(asked);
    if (body === undefined) {
      const hit = latestAttr(db, req.params.attr, n);
      if (!isFinished(hit.crawl_id)) return sourcesOfHit(db, hit);
      const key = JSON.stringify([hit.crawl_id, hit.system, hit.variant, hit.path]);
      body = sources.get(key);
      if (body === undefined) {
        body = Buffer.from(JSON.stringify(sourcesOfHit(db, hit)));
        sources.set(key, body);
      }
      if (asked !== null) sources.set(asked, body);
    }
    return reply.type('application/json; charset=utf-8').send(body);
  });

  app.get<{ Querystring: Query }>('/api/fods', async (req) => {
    const q = req.query;
    const asked = crawlParam(q);
    const crawls = asked !== undefined ? [chooseCrawl(db, asked).id] : finishedCrawlIds(db);
    if (crawls.length === 0) chooseCrawl(db); // says why there is nothing to read
    return listFods(db, crawls, { kind: q.kind, status: q.status, system: q.system, variant: q.variant });
  });

  app.get<{ Querystring: Query }>('/api/report', async (req) => buildReport(db, { save: false, crawl: crawlParam(req.query) }));

  app.get('/api/crawls', async () => listCrawls(db));

  app.get('/api/jobs', async () => listJobs(db));

  app.post('/api/jobs', async (req, reply) => {
    requireToken(req, o.service);
    const id = o.jobs.request('request');
    return reply.code(202).header('location', `/api/jobs/${id}`).send({ id });
  });

  app.get<{ Params: { id: string } }>('/api/jobs/:id', async (req) => {
    const id = Number(req.params.id);
    const job = Number.isInteger(id) && id > 0 ? jobById(db, id) : null;
    if (!job) throw new FodderError(ErrorCode.JOB_UNKNOWN, `there is no job ${JSON.stringify(req.params.id)}`, { job: req.params.id });
    return job;
  });
}
