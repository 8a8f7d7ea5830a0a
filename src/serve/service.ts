/**
 * `fodder serve`: one process that serves the mirror and the answers over HTTP and runs the
 * pipeline's jobs, on a schedule and on request. See docs/api.md.
 */
import { Cron } from 'croner';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Settings } from '../config/settings.js';
import { ensureFetchSchema } from '../db/fetch-schema.js';
import { ensureJobSchema, type JobInfo, type JobStage } from '../db/jobs.js';
import { openDb, type Db } from '../db/open.js';
import { ErrorCode, FodderError, systemError } from '../errors.js';
import type { GcResult } from '../mirror/gc.js';
import { httpStatus, readToken, registerApiRoutes } from './api-routes.js';
import { registerDashboardRoutes } from './dashboard-routes.js';
import { createJobFeed, type JobFeed } from './job-feed.js';
import { fodCounts } from './job-run.js';
import { createJobRunner, type JobEvents } from './jobs.js';
import { createServiceMetrics, type ServiceMetrics } from './metrics.js';
import { registerMirrorRoutes } from './mirror-routes.js';

/** What the service tells whoever started it (the command line prints it). */
export interface ServiceEvents {
  jobStage?(job: number, stage: JobStage): void;
  jobFinished?(job: JobInfo): void;
  /** `fodder gc` ran after a job (`service.keep`) */
  jobCollected?(job: number, result: GcResult): void;
  /** a scheduled job could not be queued, or something else went wrong outside a request */
  problem?(message: string): void;
}

export interface ServiceOptions {
  settings: Settings;
  /** the command that runs one job in a process of its own (`node .../main.js job`, see jobs.ts) */
  jobCommand: [string, ...string[]];
  events?: ServiceEvents;
}

export interface Service {
  /** the address listened on (the port chosen, when 0 was asked) */
  readonly url: string;
  /** the jobs taken up from a service that was stopped or killed */
  readonly resumed: number[];
  /** the next scheduled job, or null */
  nextRun(): Date | null;
  /** stops the schedule, the running job (marked interrupted) and the server, then closes the database */
  stop(reason: string): Promise<void>;
}

/** Longest URL answered (a hash of sha512 in base16 is 128 characters): longer is a 404. */
const MAX_PARAM_LENGTH = 256;

function createApp(settings: Settings, db: Db, metrics: ServiceMetrics, jobs: ReturnType<typeof createJobRunner>, feed: JobFeed): FastifyInstance {
  const app = Fastify({
    logger: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    return503OnClosing: true,
    forceCloseConnections: true,
    // a path segment past MAX_PARAM_LENGTH names nothing the service has (fastify's own answer is a 414)
    frameworkErrors: (err, req, reply) => {
      const long = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      void (reply as FastifyReply)
        .code(long ? 404 : 400)
        .send({ error: { code: long ? ErrorCode.NOT_FOUND : ErrorCode.USAGE, message: long ? `nothing at ${req.url.slice(0, 200)}…` : err.message } });
    },
  });

  const started = new WeakMap<object, bigint>();
  app.addHook('onRequest', async (req) => {
    started.set(req, process.hrtime.bigint());
  });
  app.addHook('onResponse', async (req, reply) => {
    const t0 = started.get(req);
    const seconds = t0 === undefined ? 0 : Number(process.hrtime.bigint() - t0) / 1e9;
    const sent = req.method === 'GET' && (reply.statusCode === 200 || reply.statusCode === 206);
    const bytes = sent ? Number(reply.getHeader('content-length') ?? 0) : 0;
    metrics.request(req.routeOptions.url ?? 'unmatched', req.method, reply.statusCode, seconds, bytes);
  });
  app.setErrorHandler(async (err, _req, reply) => {
    const status = err instanceof FodderError ? httpStatus(err) : ((err as { statusCode?: number }).statusCode ?? 500);
    const code = err instanceof FodderError ? err.code : status < 500 ? ErrorCode.USAGE : ErrorCode.BUG;
    return reply.code(status).send({ error: { code, message: (err as Error).message } });
  });
  app.setNotFoundHandler(async (req, reply) =>
    reply.code(404).send({ error: { code: ErrorCode.NOT_FOUND, message: `nothing at ${req.method} ${req.url.slice(0, 200)}` } }),
  );

  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  registerApiRoutes(app, { db, jobs, service: settings.service });
  registerDashboardRoutes(app, { db, feed });
  registerMirrorRoutes(app, { mirror: settings.mirror, priority: settings.fetch.cache.priority });
  return app;
}

/** Opens the database, takes up interrupted jobs, listens, and starts the schedule. */
export async function startService(o: ServiceOptions): Promise<Service> {
  const { settings, events = {} } = o;
  readToken(settings.service); // an unreadable token file is a config error now, not at the first request
  const db = openDb(settings.db, { create: true });
  ensureFetchSchema(db);
  ensureJobSchema(db);
  const metrics = createServiceMetrics();
  metrics.setFods(fodCounts(db));

  const feed = createJobFeed(db);
  const jobEvents: JobEvents = {
    stage: (id, stage) => {
      events.jobStage?.(id, stage);
      feed.stage(id, stage);
    },
    progress: (id, p) => feed.progress(id, p),
    stageDone: (_id, stage, seconds) => metrics.stageSeconds(stage, seconds),
    // counted by the job's process: 20,000 FODs' statuses are a second of SQL
    reported: (_id, fods) => metrics.setFods(fods),
    collected: (id, result) => events.jobCollected?.(id, result),
    finished: (job) => {
      metrics.jobEnded(job.status);
      events.jobFinished?.(job);
      feed.finished(job);
    },
  };
  const jobs = createJobRunner({ db, settings, command: o.jobCommand, events: jobEvents });
  const app = createApp(settings, db, metrics, jobs, feed);

  const { host, port } = settings.service;
  try {
    await app.listen({ host, port });
  } catch (err) {
    db.close();
    const e = err as NodeJS.ErrnoException;
    throw new FodderError(ErrorCode.SERVE_LISTEN, `cannot listen on ${host}:${port}: ${systemError(err)?.message ?? e.message}`, {
      host,
      port,
      errno: e.code ?? null,
    });
  }
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;

  const resumed = jobs.resume();
  const cron =
    settings.service.schedule === null
      ? null
      : new Cron(settings.service.schedule, { protect: true }, () => {
          try {
            jobs.request('schedule');
          } catch (err) {
            events.problem?.(`the scheduled job could not be queued: ${(err as Error).message}`);
          }
        });

  let stopping: Promise<void> | null = null;
  return {
    url,
    resumed,
    nextRun: () => cron?.nextRun() ?? null,
    stop(reason) {
      return (stopping ??= (async () => {
        cron?.stop();
        await Promise.all([jobs.stop(reason), app.close()]);
        db.close();
      })());
    },
  };
}
