/**
 * `fodder serve` end to end: the built CLI started as a site runs it, on a free loopback port,
 * with a config pointing at the fixture package set (whose upstream is served on 127.0.0.1:18661
 * while jobs run), real Nix for the crawl and for the offline realisation.
 *
 * 1. A job asked for over HTTP (401 without the token) is killed with -9 in its fetch; the
 *    service started again takes it up from its fetch and finishes it. The job runs in a process
 *    of its own (`fodder job`), which ends by itself once its service is gone.
 * 2. The answers: `/api/sources/hello` is `fodder sources hello --json`; the other endpoints.
 * 3. The mirror: tarballs in hex, nix32 and base64 with HEAD, Range and caching headers;
 *    paths that try to leave the mirror are refused.
 * 4. With the upstream gone, a fresh chroot store whose only substituter is the service
 *    (signed, key trusted) realises every mirrored url and archive FOD.
 * 5. A job whose process is killed with -9 is marked failed; the next request's job runs.
 * 6. The schedule starts a job; SIGTERM stops the service cleanly, the job marked interrupted.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { jobById, type JobInfo } from '../src/db/jobs.js';
import { openDb } from '../src/db/open.js';
import type { Fod } from '../src/graph/types.js';
import { encodeNix32 } from '../src/nix-formats/hash.js';
import { FIXTURE, fodder, tempDir } from './helpers/cli.js';
import { startUpstream, waitPortFree, type Upstream } from './helpers/fixture-upstream.js';
import { api, jobProcessOf, processEnds, startServe, waitJob, writeServiceConfig, type RunningService } from './helpers/service.js';
import { realiseIn } from './helpers/nix.js';

const dir = tempDir('fodder-serve-');
const db = join(dir, 'fodder.db');
const mirror = join(dir, 'mirror');
const TOKEN = 'serve-test-token-0123456789';
let publicKey = '';
let upstream: Upstream | null = null;

const running: RunningService[] = [];

/** Starts `fodder serve` (stopped after the tests). */
async function serve(config: string, ...args: string[]): Promise<RunningService> {
  const r = await startServe(config, ...args);
  running.push(r);
  return r;
}

const writeConfig = (name: string, service: string) => writeServiceConfig(dir, name, service);

/** A GET with the path exactly as given (no normalisation of `..` or escapes, as fetch() does). */
function rawGet(base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET', headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString('latin1');
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

let service: RunningService;
let jobId = 0;
const killed = {} as { before: JobInfo; atKill: JobInfo | null; after: JobInfo; jobProcess: number | null; jobProcessEnded: boolean };

beforeAll(async () => {
  await waitPortFree(18662); // the fixture's dead mirror must stay dead
  const k = await fodder(['keygen', 'fodder-serve-1', '--out', join(dir, 'keys'), '--json']);
  publicKey = (JSON.parse(k.stdout) as { publicKey: string }).publicKey;
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  const config = writeConfig('fodder.yaml', '');
  upstream = await startUpstream({ port: 18661 });

  service = await serve(config, '--no-schedule');
  expect((await api(service.url, '/api/jobs', { method: 'POST' })).status).toBe(401);
  expect((await api(service.url, '/api/jobs', { method: 'POST', headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
  const posted = await api<{ id: number }>(service.url, '/api/jobs', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  expect(posted.status).toBe(202);
  jobId = posted.body.id;
  // kill -9 while it fetches (a few seconds: its stage is polled every 25 ms)
  killed.before = await waitJob(service.url, jobId, (j) => j.stage === 'fetch' || (j.status !== 'queued' && j.status !== 'running'), 60_000, 25);
  killed.jobProcess = jobProcessOf(service.proc.pid!);
  service.proc.kill('SIGKILL');
  await service.proc;
  // its job process sees the IPC channel close, marks the job interrupted and ends
  killed.jobProcessEnded = killed.jobProcess !== null && (await processEnds(killed.jobProcess, 10_000));
  const d = openDb(db, { readonly: true });
  try {
    killed.atKill = jobById(d, jobId);
  } finally {
    d.close();
  }

  service = await serve(config, '--no-schedule');
  killed.after = await waitJob(service.url, jobId, (j) => j.status === 'done' || j.status === 'failed');
}, 180_000);

afterAll(async () => {
  for (const r of running) r.proc.kill('SIGKILL');
  await upstream?.close();
});

describe('jobs', () => {
  test('a job killed with -9 in its fetch is shown interrupted, then taken up from its fetch and finished', () => {
    expect(killed.before).toMatchObject({ id: jobId, status: 'running', stage: 'fetch', trigger: 'request' });
    expect(killed.atKill).toMatchObject({ id: jobId, status: 'interrupted', stage: 'fetch' });
    expect(killed.after).toMatchObject({ id: jobId, status: 'done', stage: 'report', error: null, crawl: killed.before.crawl });
    expect(killed.after.stages).toEqual({ crawl: expect.any(Number), fetch: expect.any(Number), report: expect.any(Number) });
    expect(service.stderr()).toMatch(new RegExp(`taking up interrupted job ${jobId}\\b`));
  });

  test('the job ran in a process of its own, which ended soon after its service was killed with -9', () => {
    expect(killed.jobProcess).toEqual(expect.any(Number));
    expect(killed.jobProcess).not.toBe(service.proc.pid);
    expect(killed.jobProcessEnded).toBe(true);
    expect(killed.atKill).toMatchObject({ errorCode: 'INTERRUPTED' });
  });

  test('GET /api/jobs lists it once; an unknown job is a 404', async () => {
    const { body } = await api<JobInfo[]>(service.url, '/api/jobs');
    expect(body.map((j) => j.id)).toEqual([jobId]);
    expect((await api(service.url, '/api/jobs/999')).status).toBe(404);
    expect((await api(service.url, '/api/jobs/x')).status).toBe(404);
  });
});

describe('the answers', () => {
  test('GET /api/sources/hello is `fodder sources hello --json`', async () => {
    const cli = await fodder(['sources', 'hello', '--db', db, '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    const { status, body } = await api(service.url, '/api/sources/hello');
    expect(status).toBe(200);
    expect(body).toEqual(JSON.parse(cli.stdout));
    // asked again (the answer kept for the finished crawl), and through ?crawl=, the same answer and type
    const again = await fetch(`${service.url}/api/sources/hello?crawl=${killed.after.crawl}`);
    expect(again.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await again.json()).toEqual(body);
    const missing = await api<{ error: { code: string } }>(service.url, '/api/sources/no-such-thing');
    expect(missing).toMatchObject({ status: 404, body: { error: { code: 'ATTR_NOT_CRAWLED' } } });
  });

  test('GET /api/fods with kind and status; GET /api/report, /api/crawls, /metrics', async () => {
    const all = (await api<Fod[]>(service.url, '/api/fods')).body;
    const cli = await fodder(['fods', '--db', db, '--json']);
    expect(all).toEqual(JSON.parse(cli.stdout));
    const mirrored = (await api<Fod[]>(service.url, '/api/fods?kind=archive&status=mirrored')).body;
    expect(mirrored.length).toBeGreaterThan(0);
    expect(mirrored.every((f) => f.kind === 'archive')).toBe(true);
    const dead = (await api<Fod[]>(service.url, '/api/fods?status=dead')).body;
    expect(dead.map((f) => f.name)).toEqual(['dead-source-1.0.tar.gz']);
    expect((await api(service.url, '/api/fods?status=rotten')).status).toBe(400);

    const report = (await api<{ crawl: { id: number }; summary: { dead: number; brokenHash: number } }>(service.url, '/api/report')).body;
    expect(report.crawl.id).toBe(killed.after.crawl);
    expect(report.summary).toMatchObject({ dead: 1, brokenHash: 1 });
    const crawls = (await api<{ id: number; status: string }[]>(service.url, '/api/crawls')).body;
    expect(crawls).toEqual([expect.objectContaining({ id: killed.after.crawl, status: 'done' })]);

    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toMatch(/^fodder_fods\{status="mirrored"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^fodder_fods\{status="dead"\} 1$/m);
    expect(metrics).toMatch(/^fodder_job_stage_seconds\{stage="(fetch|report)"\} /m);
    expect(metrics).toMatch(/^fodder_http_request_duration_seconds_count\{route="\/api\/fods",method="GET",status="200"\} \d+$/m);
  });
});

describe('the mirror over HTTP', () => {
  let file: { algo: string; hex: string; bytes: Buffer };
  beforeAll(async () => {
    // a flat source whose base64 spelling holds a slash
    const flat = (await api<Fod[]>(service.url, '/api/fods?kind=url&status=mirrored')).body.find(
      (f) => f.hash.algo === 'sha256' && Buffer.from(f.hash.hex, 'hex').toString('base64').includes('/'),
    )!;
    const stored = join(mirror, 'tarballs', flat.hash.algo, flat.hash.hex);
    file = { algo: flat.hash.algo, hex: flat.hash.hex, bytes: readFileSync(stored) };
  });

  test('a tarball in hex, nix32 and base64 (and base64url): GET, HEAD, Range, caching headers', async () => {
    const raw = Buffer.from(file.hex, 'hex');
    const spellings = [file.hex, file.hex.toUpperCase(), encodeNix32(raw), encodeURIComponent(raw.toString('base64')), raw.toString('base64url')];
    for (const name of spellings) {
      const url = `${service.url}/tarballs/${file.algo}/${name}`;
      const get = await fetch(url);
      expect(get.status, name).toBe(200);
      expect(get.headers.get('content-length')).toBe(String(file.bytes.length));
      expect(get.headers.get('cache-control')).toMatch(/immutable/);
      expect(get.headers.get('accept-ranges')).toBe('bytes');
      expect(Buffer.from(await get.arrayBuffer()).equals(file.bytes)).toBe(true);

      const head = await fetch(url, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(file.bytes.length));
      expect((await head.arrayBuffer()).byteLength).toBe(0);

      const range = await fetch(url, { headers: { range: 'bytes=10-109' } });
      expect(range.status).toBe(206);
      expect(range.headers.get('content-range')).toBe(`bytes 10-109/${file.bytes.length}`);
      expect(Buffer.from(await range.arrayBuffer()).equals(file.bytes.subarray(10, 110))).toBe(true);

      // (fetch() adds `Cache-Control: no-cache` to a conditional request, which a server must not answer from its copy)
      const etag = get.headers.get('etag')!;
      expect(etag).toBe(`"${file.algo}-${file.hex}"`); // the name says the content: a strong ETag
      expect((await rawGet(service.url, url.slice(service.url.length), { 'if-none-match': etag })).status).toBe(304);
    }
    const base64 = raw.toString('base64'); // asked for with its slash as it is, too
    expect((await rawGet(service.url, `/tarballs/${file.algo}/${base64}`)).status).toBe(200);
    const sha = createHash(file.algo).update(file.bytes).digest('hex');
    expect(sha).toBe(file.hex);
    expect((await fetch(`${service.url}/tarballs/${file.algo}/${'0'.repeat(file.hex.length)}`)).status).toBe(404);
  });

  test('a file of many chunks: whole, ranges across chunks, conditionals, 416; a download abandoned midway releases its file', async () => {
    const bytes = randomBytes(32 * 2 ** 20 + 12345); // more than the socket buffers of both ends hold
    const hex = createHash('sha256').update(bytes).digest('hex');
    const path = join(mirror, 'tarballs', 'sha256', hex);
    writeFileSync(path, bytes);
    try {
      const url = `${service.url}/tarballs/sha256/${hex}`;
      const whole = await fetch(url);
      expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);
      const etag = whole.headers.get('etag')!;
      const lastModified = whole.headers.get('last-modified')!;
      for (const [a, b] of [
        [0, 262143],
        [262143, 262144],
        [100, 3 * 2 ** 20],
        [bytes.length - 300000, bytes.length - 1],
      ]) {
        const r = await fetch(url, { headers: { range: `bytes=${a}-${b}` } });
        expect(r.status).toBe(206);
        expect(r.headers.get('content-range')).toBe(`bytes ${a}-${b}/${bytes.length}`);
        expect(Buffer.from(await r.arrayBuffer()).equals(bytes.subarray(a, b + 1)), `${a}-${b}`).toBe(true);
      }
      expect((await rawGet(service.url, `/tarballs/sha256/${hex}`, { 'if-modified-since': lastModified })).status).toBe(304);
      expect((await rawGet(service.url, `/tarballs/sha256/${hex}`, { 'if-none-match': `"other", ${etag}` })).status).toBe(304);
      const kept = await fetch(url, { headers: { range: 'bytes=0-9', 'if-range': etag } });
      expect(kept.status).toBe(206);
      const stale = await fetch(url, { headers: { range: 'bytes=0-9', 'if-range': '"other"' } });
      expect(stale.status).toBe(200);
      expect(Number(stale.headers.get('content-length'))).toBe(bytes.length);
      await stale.arrayBuffer();
      const past = await fetch(url, { headers: { range: `bytes=${bytes.length}-` } });
      expect(past.status).toBe(416);
      expect(past.headers.get('content-range')).toBe(`bytes */${bytes.length}`);

      // the client goes after its first bytes: the service stops reading and closes the file
      const opened = () =>
        readdirSync(`/proc/${service.proc.pid}/fd`).filter((fd) => {
          try {
            return readlinkSync(`/proc/${service.proc.pid}/fd/${fd}`) === path;
          } catch {
            return false; // closed meanwhile
          }
        }).length;
      const { hostname, port } = new URL(service.url);
      const during = await new Promise<number>((resolve, reject) => {
        const req = request({ host: hostname, port, path: `/tarballs/sha256/${hex}` }, (res) => {
          res.once('data', () => {
            const n = opened();
            req.destroy();
            resolve(n);
          });
        });
        req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
        req.end();
      });
      expect(during).toBe(1);
      for (let i = 0; i < 100 && opened() > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(opened()).toBe(0);
      const again = await fetch(url, { headers: { range: 'bytes=-5' } });
      expect(Buffer.from(await again.arrayBuffer()).equals(bytes.subarray(-5))).toBe(true);
    } finally {
      rmSync(path, { force: true });
    }
  });

  test('the binary cache: nix-cache-info, a narinfo, its NAR', async () => {
    const info = await fetch(`${service.url}/nix-cache-info`);
    expect(await info.text()).toMatch(/^StoreDir: \/nix\/store$/m);
    const hello = (await api<{ sources: Fod[] }>(service.url, '/api/sources/hello')).body.sources.find((f) => f.name === 'hello-2.12.tar.gz')!;
    const hashPart = hello.outPath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    const narinfoRes = await fetch(`${service.url}/${hashPart}.narinfo`);
    // a narinfo may be signed again: a weak ETag of its size and time, kept a minute
    expect(narinfoRes.headers.get('etag')).toMatch(/^W\/"[0-9a-f]+-[0-9a-f]+"$/);
    expect(narinfoRes.headers.get('cache-control')).toBe('public, max-age=60');
    const narinfo = await narinfoRes.text();
    expect(narinfo).toContain(`StorePath: ${hello.outPath}`);
    expect(narinfo).toMatch(/^Sig: fodder-serve-1:/m);
    const narUrl = /^URL: (\S+)$/m.exec(narinfo)![1];
    const narSize = Number(/^FileSize: (\d+)$/m.exec(narinfo)![1]);
    // a flat source: its NAR is made from its tarball, and no copy of it is on disk
    expect(narUrl).toBe(`nar/flat/${encodeNix32(Buffer.from(hello.hash.hex, 'hex'))}.nar`);
    expect(existsSync(join(mirror, 'cache', narUrl))).toBe(false);
    const nar = await fetch(`${service.url}/${narUrl}`, { method: 'HEAD' });
    expect(nar.status).toBe(200);
    expect(Number(nar.headers.get('content-length'))).toBe(narSize);
  });

  test('paths that would leave the mirror are refused with 400 or 404, and serve nothing', async () => {
    const passwd = readFileSync('/etc/passwd', 'latin1').split('\n')[0];
    const tries = [
      '/tarballs/../../../../etc/passwd',
      '/tarballs/sha256/../../../../etc/passwd',
      '/tarballs/sha256/..%2F..%2F..%2F..%2Fetc%2Fpasswd',
      '/tarballs/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/tarballs/sha256%2F..%2F..%2Fcache/nix-cache-info',
      '/nar/..%2Fnix-cache-info',
      '/nar/../../../../etc/passwd',
      '/..%2F..%2F..%2Fetc%2Fpasswd',
      '/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/cache/nix-cache-info',
      '/tarballs/sha256/%00',
      `/tarballs/sha256/${'a'.repeat(4000)}`,
      `/nar/${'a'.repeat(4000)}.nar`,
      `/api/sources/${'a'.repeat(4000)}`,
      '/tarballs/sha256/' + encodeURIComponent(`${mirror}/tarballs/sha256/${file.hex}`),
      '/lock',
      '/tmp',
    ];
    for (const path of tries) {
      const r = await rawGet(service.url, path);
      expect([400, 404], `${path}: ${r.status} ${r.body.slice(0, 100)}`).toContain(r.status);
      expect(r.body).not.toContain(passwd);
    }
  });
});

describe('a fresh chroot store with no network substitutes from the service alone', () => {
  test('every mirrored url (flat, NARs made from tarballs/) and archive FOD is realised through substituters = the service alone (signed, key trusted)', async () => {
    await upstream?.close();
    upstream = null;
    const fods = [
      ...(await api<Fod[]>(service.url, '/api/fods?kind=url&status=mirrored')).body,
      ...(await api<Fod[]>(service.url, '/api/fods?kind=archive&status=mirrored')).body,
    ];
    const hello = (await api<{ sources: Fod[] }>(service.url, '/api/sources/hello')).body.sources;
    const outs = [...new Set(fods.map((f) => f.outPath))];
    expect(fods.filter((f) => f.kind === 'archive').length).toBeGreaterThanOrEqual(8);
    const flat = fods.filter((f) => f.hash.mode === 'flat');
    expect(flat.length).toBeGreaterThan(40);
    // no flat source has a NAR copy: each is substituted from its tarball
    for (const f of flat) expect(existsSync(join(mirror, 'cache', `${f.outPath.slice(11, 43)}.narinfo`)), f.name).toBe(false);
    for (const f of hello.filter((h) => h.kind === 'url')) expect(outs).toContain(f.outPath);
    const store = join(dir, 'store');
    const r = realiseIn(store, outs, { substituters: service.url, 'require-sigs': 'true', 'trusted-public-keys': publicKey, 'hashed-mirrors': '' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual([...outs].sort());
    const v = spawnSync('nix-store', ['--store', store, '--verify-path', ...outs], { encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
  });
});

describe("a job's process killed with -9", () => {
  test('its job is marked failed with what happened; the next request runs a new job to its end', async () => {
    const auth = { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } };
    const first = (await api<{ id: number }>(service.url, '/api/jobs', auth)).body.id;
    await waitJob(service.url, first, (j) => j.status === 'running' && j.stage !== null, 60_000, 25);
    const child = jobProcessOf(service.proc.pid!);
    expect(child).toEqual(expect.any(Number));
    process.kill(child!, 'SIGKILL');
    // (until the service has seen its process end, the row reads `interrupted`: running, in a process that is gone)
    const failed = await waitJob(service.url, first, (j) => j.status === 'failed' || j.status === 'done');
    expect(failed).toMatchObject({ status: 'failed', errorCode: 'BUG' });
    expect(failed.error).toContain("the job's process was killed by SIGKILL");
    expect(service.stderr()).toContain(`job ${first}: failed [BUG]: the job's process was killed by SIGKILL`);

    const next = (await api<{ id: number }>(service.url, '/api/jobs', auth)).body.id;
    expect(next).toBeGreaterThan(first);
    expect(await waitJob(service.url, next, (j) => j.status !== 'running' && j.status !== 'queued')).toMatchObject({ status: 'done', error: null });
  }, 120_000);
});

describe('the schedule and a clean stop', () => {
  test('a scheduled job starts; SIGTERM ends the service with 0 and marks the job interrupted', async () => {
    for (const r of running.splice(0)) {
      r.proc.kill('SIGTERM');
      await r.proc;
    }
    const config = writeConfig('scheduled.yaml', '  schedule: "* * * * * *"\n');
    const s = await serve(config);
    const { body: jobs } = await api<JobInfo[]>(s.url, '/api/jobs');
    const waitScheduled = async () => {
      for (let i = 0; i < 100; i++) {
        const list = (await api<JobInfo[]>(s.url, '/api/jobs')).body;
        const j = list.find((x) => x.trigger === 'schedule' && x.status === 'running');
        if (j) return j;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('no scheduled job started');
    };
    const scheduled = await waitScheduled();
    expect(jobs.every((j) => j.id <= scheduled.id)).toBe(true);
    s.proc.kill('SIGTERM');
    const exit = await s.proc;
    expect(exit.exitCode, s.stderr()).toBe(0);
    const d = openDb(db, { readonly: true });
    try {
      expect(jobById(d, scheduled.id)).toMatchObject({ status: 'interrupted', errorCode: 'INTERRUPTED' });
    } finally {
      d.close();
    }
  });
});

describe('configuration errors name the file and the key', () => {
  test.each([
    ['service:\n  listen: everywhere\n', 'service.listen'],
    ['service:\n  schedule: "every day"\n', 'service.schedule'],
    ['service:\n  keep: 0\n', 'service.keep'],
    ['service:\n  tokenFile: no-such-token\n', 'service.tokenFile'],
  ])('%j', async (yaml, key) => {
    const file = join(tempDir('fodder-serve-config-'), 'bad.yaml');
    writeFileSync(file, `nixpkgs: ${FIXTURE}\n${yaml}`);
    const r = await fodder(['serve', '--config', file, '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[CONFIG_INVALID]');
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain(key);
  });

  test('--listen that is not HOST:PORT is a usage error', async () => {
    const r = await fodder(['serve', '--listen', 'nowhere', '--no-schedule']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--listen');
  });
});
