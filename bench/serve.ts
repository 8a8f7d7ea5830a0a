/**
 * `npm run bench:serve -- --nixpkgs PATH`: the service under load, on loopback.
 *
 *   1. Download throughput of a 1 GiB file of the hashed mirror (`/tarballs/sha256/<hex>`) from
 *      `fodder serve` against nginx serving the same file, the same client (curl to /dev/null)
 *      for both, `runs` alternating runs each: MB/s each and the ratio of the medians
 *      (target >= 0.9).
 *   2. `/api/sources/<attr>?crawl=N` latency at 64 connections (undici), cycling through a fixed
 *      sample of the derivation attributes of a crawl of the real package set at PATH
 *      (x86_64-linux): p50, p99, max and errors, first with the service idle, then `rounds`
 *      times while a job of the same service fetches (target p99 < 20 ms, no errors). The job's
 *      package set is a generated one whose every source is a file served by nginx on 127.0.0.1
 *      (test/helpers/loopback-set.ts), so nothing of the real package set is ever fetched.
 *
 * Options: --big-mib 1024 --runs 3 --files 20000 --file-kib 16 --attrs 300 --seconds 10
 * --rounds 2 --connections 64, --only download|latency. The machine's load average is printed beside each figure.
 */
import { execa } from 'execa';
import Database from 'better-sqlite3';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { JobInfo } from '../src/db/jobs.js';
import { CLI } from '../test/helpers/cli.js';
import { writeLoopbackSet } from '../test/helpers/loopback-set.js';
import { startNginx } from '../test/helpers/servers.js';
import { api, startServe, type RunningService } from '../test/helpers/service.js';
import { crawlArgs, realTreeArgs } from './real-args.js';
import { median } from './timed.js';

const { opt, nixpkgs } = realTreeArgs(
  'npm run bench:serve -- --nixpkgs PATH [--big-mib 1024] [--runs 3] [--files 20000] [--file-kib 16] [--attrs 300] [--seconds 10] [--rounds 2] [--connections 64] [--only download|latency]',
);
const BIG = Number(opt('big-mib', '1024')) * 2 ** 20;
const RUNS = Number(opt('runs', '3'));
const FILES = Number(opt('files', '20000'));
const FILE_BYTES = Number(opt('file-kib', '16')) * 1024;
const ATTRS = Number(opt('attrs', '300'));
const SECONDS = Number(opt('seconds', '10'));
const ROUNDS = Number(opt('rounds', '2'));
const CONNECTIONS = Number(opt('connections', '64'));
/** `download` or `latency`: only that part (default: both) */
const ONLY = opt('only', '');
const TOKEN = 'bench-serve-token-0123456789';
const SYSTEM = 'x86_64-linux';

const load = () => `load ${loadavg()[0].toFixed(2)}`;

/** Random bytes under the hashed mirror's name for them; returns that name (sha256, hex). */
function writeBigFile(mirror: string): string {
  const dir = join(mirror, 'tarballs', 'sha256');
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, '.big');
  const hash = createHash('sha256');
  const fd = openSync(tmp, 'w');
  const chunk = Buffer.allocUnsafe(1 << 24);
  for (let left = BIG; left > 0; left -= chunk.length) {
    const part = randomFillSync(chunk).subarray(0, Math.min(left, chunk.length));
    hash.update(part);
    writeSync(fd, part);
  }
  closeSync(fd);
  const hex = hash.digest('hex');
  renameSync(tmp, join(dir, hex));
  return hex;
}

/** CPU milliseconds process `pid` has used (its threads included). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** One download with curl to /dev/null: MB/s (10^6 bytes a second) and the server's CPU ms. */
async function download(url: string, serverPid: number): Promise<{ rate: number; cpu: number }> {
  const c0 = cpuMs(serverPid);
  const r = await execa('curl', ['-sf', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url]);
  const cpu = cpuMs(serverPid) - c0;
  const [size, seconds] = r.stdout.trim().split(' ').map(Number);
  if (size !== BIG) throw new Error(`${url}: ${size} bytes, not ${BIG}`);
  return { rate: size / seconds / 1e6, cpu };
}

interface Server {
  url: string;
  pid: number;
}

async function throughput(fodder: Server, nginx: Server): Promise<void> {
  await download(nginx.url, nginx.pid); // the page cache warm for both
  const f: number[] = [];
  const n: number[] = [];
  console.log(`1. a ${BIG >> 20} MiB file of the hashed mirror, curl to /dev/null, ${RUNS} runs each, alternating (server CPU time in brackets)`);
  for (let i = 0; i < RUNS; i++) {
    const a = await download(fodder.url, fodder.pid);
    const b = await download(nginx.url, nginx.pid);
    f.push(a.rate);
    n.push(b.rate);
    console.log(
      `   run ${i + 1}: fodder serve ${a.rate.toFixed(0)} MB/s (${a.cpu} ms), nginx ${b.rate.toFixed(0)} MB/s (${b.cpu} ms), ratio ${(a.rate / b.rate).toFixed(2)} (${load()})`,
    );
  }
  const ratio = median(f) / median(n);
  console.log(
    `   median: fodder serve ${median(f).toFixed(0)} MB/s, nginx ${median(n).toFixed(0)} MB/s, ratio ${ratio.toFixed(2)} (target >= 0.9)${ratio >= 0.9 ? '' : '  MISSED'}`,
  );
}

interface Latency {
  requests: number;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  firstError: string | null;
}

/** `connections` clients, each asking the next path as soon as it has its answer, for `seconds`. */
async function latency(base: string, paths: string[], seconds: number): Promise<Latency> {
  const pool = new Pool(base, { connections: CONNECTIONS, pipelining: 1 });
  const ms: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let next = 0;
  const end = performance.now() + seconds * 1000;
  const client = async () => {
    while (performance.now() < end) {
      const path = paths[next++ % paths.length];
      const t0 = performance.now();
      try {
        const r = await pool.request({ path, method: 'GET' });
        const body = Buffer.from(await r.body.arrayBuffer());
        if (r.statusCode !== 200) {
          errors++;
          firstError ??= `${r.statusCode} ${path}: ${body.subarray(0, 200).toString()}`;
        }
      } catch (err) {
        errors++;
        firstError ??= `${path}: ${(err as Error).message}`;
      }
      ms.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, client));
  await pool.close();
  ms.sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))];
  return { requests: ms.length, p50: at(0.5), p99: at(0.99), max: ms[ms.length - 1], errors, firstError };
}

const show = (l: Latency, seconds = SECONDS) =>
  `${l.requests} requests (${(l.requests / seconds).toFixed(0)}/s), p50 ${l.p50.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms, max ${l.max.toFixed(1)} ms, ` +
  `${l.errors} errors${l.firstError ? ` (first: ${l.firstError})` : ''}`;

/** A fixed sample of `n` derivation attributes of the crawl, spread over them in path order. */
function sampleAttrs(db: string, crawl: number, n: number): string[] {
  const d = new Database(db, { readonly: true });
  try {
    const rows = d
      .prepare(`SELECT DISTINCT path FROM attrs WHERE crawl_id = ? AND system = ? AND variant = 'default' AND status = 'drv' ORDER BY path`)
      .pluck()
      .all(crawl, SYSTEM) as string[];
    const step = Math.max(1, Math.floor(rows.length / n));
    return rows.filter((_, i) => i % step === 0).slice(0, n);
  } finally {
    d.close();
  }
}

async function jobNow(base: string, id: number): Promise<JobInfo> {
  return (await api<JobInfo>(base, `/api/jobs/${id}`)).body;
}

/** The service on `dir` (its config's package set at `dir/set`, the database and mirror in `dir`). */
async function serveIn(dir: string): Promise<RunningService> {
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  writeFileSync(
    join(dir, 'fodder.yaml'),
    `nixpkgs: ${join(dir, 'set')}
systems: [${SYSTEM}]
variants: { default: {} }
db: fodder.db
fetch:
  mirror: mirror
  kinds: [url]
service:
  listen: 127.0.0.1:0
  tokenFile: token
`,
  );
  return startServe(join(dir, 'fodder.yaml'), '--no-schedule');
}

async function stopService(service: RunningService): Promise<void> {
  service.proc.kill('SIGTERM');
  await service.proc;
}

/** Part 1: the big file from the service and from nginx. */
async function downloadPart(dir: string): Promise<void> {
  const mirror = join(dir, 'mirror');
  process.stderr.write(`bench:serve in ${dir}: writing a ${BIG >> 20} MiB file\n`);
  const hex = writeBigFile(mirror);
  // a package set with nothing to fetch: this service runs no job
  writeLoopbackSet({ dir: join(dir, 'set'), www: join(dir, 'www'), base: 'http://127.0.0.1:9', files: 0, bytes: () => 0 });
  const service = await serveIn(dir);
  const nginx = await startNginx(mirror);
  try {
    await throughput(
      { url: `${service.url}/tarballs/sha256/${hex}`, pid: service.proc.pid! },
      { url: nginx.url(`/tarballs/sha256/${hex}`), pid: Number(readFileSync(join(nginx.dir, 'nginx.pid'), 'utf8')) },
    );
  } finally {
    await stopService(service);
    await nginx.close();
  }
}

/** Part 2: the latency of `/api/sources` on a real crawl, idle and while a job fetches loopback files. */
async function latencyPart(dir: string): Promise<void> {
  const db = join(dir, 'fodder.db');
  const www = join(dir, 'www');
  process.stderr.write(`bench:serve in ${dir}: writing ${FILES} files of ${FILE_BYTES >> 10} KiB\n`);
  const upstream = await startNginx(www, 'keepalive_requests 100000;');
  try {
    const files = writeLoopbackSet({ dir: join(dir, 'set'), www, base: upstream.url(''), files: FILES, bytes: () => FILE_BYTES });
    process.stderr.write(`crawling ${nixpkgs} (${SYSTEM})\n`);
    const crawled = await execa('node', [CLI, ...crawlArgs({ nixpkgs, db, workers: '2', systems: [SYSTEM], variants: ['default'] })], { env: { CI: '1' } });
    const realCrawl = (JSON.parse(crawled.stdout) as { crawl: number }).crawl;
    const attrs = sampleAttrs(db, realCrawl, ATTRS);
    const paths = attrs.map((a) => `/api/sources/${encodeURIComponent(a)}?crawl=${realCrawl}&system=${SYSTEM}&variant=default`);
    const service = await serveIn(dir);
    try {
      console.log(
        `2. /api/sources/<attr>?crawl=${realCrawl} (${nixpkgs}, ${SYSTEM}): ${attrs.length} attributes in turn, ${CONNECTIONS} connections, ${SECONDS} s a round`,
      );
      console.log(`   first pass (each answer computed once): ${show(await latency(service.url, paths, 2), 2)} (${load()})`);
      console.log(`   idle service:        ${show(await latency(service.url, paths, SECONDS))} (${load()})`);
      const posted = await api<{ id: number }>(service.url, '/api/jobs', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      const id = posted.body.id;
      for (let j = await jobNow(service.url, id); j.stage !== 'fetch' || j.status !== 'running'; j = await jobNow(service.url, id)) {
        if (j.status === 'failed' || j.status === 'done') throw new Error(`job ${id} ended before its fetch: ${JSON.stringify(j)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const fetchFrom = performance.now();
      for (let i = 0; i < ROUNDS; i++) {
        const l = await latency(service.url, paths, SECONDS);
        const j = await jobNow(service.url, id);
        const during = j.stage === 'fetch' && j.status === 'running' ? 'the fetch still running' : `THE FETCH ENDED (${j.status}, ${j.stage})`;
        console.log(`   during fetch, round ${i + 1}: ${show(l)} (${load()}; ${during})`);
        console.log(`      target p99 < 20 ms, 0 errors: ${l.p99 < 20 && l.errors === 0 ? 'met' : 'MISSED'}`);
      }
      const measured = (performance.now() - fetchFrom) / 1000;
      for (let j = await jobNow(service.url, id); j.status === 'running' || j.status === 'queued'; j = await jobNow(service.url, id)) {
        await new Promise((r) => setTimeout(r, 200));
      }
      const fetched = (await jobNow(service.url, id)).stages.fetch;
      console.log(
        `   the job's fetch: ${files.length} files of ${FILE_BYTES >> 10} KiB in ${fetched?.toFixed(1) ?? '?'} s ` +
          `(the rounds took its first ${measured.toFixed(1)} s)`,
      );
    } finally {
      await stopService(service);
    }
  } finally {
    await upstream.close();
  }
}

async function main(): Promise<void> {
  console.log(`bench:serve: node ${process.version}, ${cpus().length} cores`);
  for (const [part, run] of [
    ['download', downloadPart],
    ['latency', latencyPart],
  ] as const) {
    if (ONLY !== '' && ONLY !== part) continue;
    const dir = mkdtempSync(join(tmpdir(), `fodder-bench-serve-${part}-`));
    try {
      await run(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

await main();
