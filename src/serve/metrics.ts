/**
 * `GET /metrics`, in Prometheus' text format (prom-client, on a registry of the service's own):
 * the FODs of the latest finished crawl by status (as of the latest report, or the service's
 * start), how long the last job's stages took, jobs by how they ended, bytes of the mirror
 * served, and request latencies by route.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { JobStage, JobStatus } from '../db/jobs.js';
import { FOD_STATUSES, type FodStatus } from '../query/listings.js';

export interface ServiceMetrics {
  readonly registry: Registry;
  /** the FODs of the latest finished crawl by status */
  setFods(counts: Record<FodStatus, number>): void;
  stageSeconds(stage: JobStage, seconds: number): void;
  jobEnded(status: JobStatus): void;
  /** one answered request: its route (the pattern, not the path), method, status, seconds and body bytes */
  request(route: string, method: string, status: number, seconds: number, bytes: number): void;
}

export function createServiceMetrics(): ServiceMetrics {
  const registry = new Registry();
  const fods = new Gauge({
    name: 'fodder_fods',
    help: 'FODs of the latest finished crawl by status, as of the latest report',
    labelNames: ['status'],
    registers: [registry],
  });
  const stage = new Gauge({
    name: 'fodder_job_stage_seconds',
    help: 'How long the stage took in the last job that ran it (crawl, fetch, report)',
    labelNames: ['stage'],
    registers: [registry],
  });
  const jobs = new Counter({
    name: 'fodder_jobs_total',
    help: 'Jobs ended since the service started, by status',
    labelNames: ['status'],
    registers: [registry],
  });
  const served = new Counter({
    name: 'fodder_served_bytes_total',
    help: 'Bytes of the mirror served (response bodies of tarballs, narinfo, NAR files)',
    labelNames: ['route'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'fodder_http_request_duration_seconds',
    help: 'Time to answer a request, by route',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  return {
    registry,
    setFods(counts) {
      for (const s of FOD_STATUSES) fods.set({ status: s }, counts[s]);
    },
    stageSeconds(s, seconds) {
      stage.set({ stage: s }, seconds);
    },
    jobEnded(status) {
      jobs.inc({ status });
    },
    request(route, method, status, seconds, bytes) {
      latency.observe({ route, method, status: String(status) }, seconds);
      if (bytes > 0 && !route.startsWith('/api/') && route !== '/metrics') served.inc({ route }, bytes);
    },
  };
}
