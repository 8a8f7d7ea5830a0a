/**
 * A service following a git branch (`service.nixpkgs: { git: file://…, branch }`, real Nix):
 * the first job crawls the branch head and records its commit; a commit that replaces one
 * source of the package set with another makes the next job crawl the new revision (a new
 * crawl), fetch the new source, and, with `service.keep: 1`, remove from the mirror what only
 * the old revision needed.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { CrawlInfo } from '../src/db/crawls.js';
import type { JobInfo } from '../src/db/jobs.js';
import { CLI, FIXTURE, tempDir } from './helpers/cli.js';
import { startStrings, type Running } from './helpers/servers.js';

const dir = tempDir('fodder-follow-');
const repo = join(dir, 'nixpkgs');
const mirror = join(dir, 'mirror');
const TOKEN = 'follow-test-token-0123456789';
const content = { old: 'a source only the first revision has\n'.repeat(20), new: 'a source the second revision adds\n'.repeat(30) };
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

let upstream: Running;
let proc: ResultPromise | null = null;
let base = '';
let log = '';

const git = (...args: string[]) =>
  execFileSync('git', ['-C', repo, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: dir, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' },
  }).trim();

/** Commits the package set with one extra top-level source, `followed`, fetched from the test upstream. */
function commitWith(name: keyof typeof content): string {
  const file = join(repo, 'pkgs', 'top-level', 'all-packages.nix');
  const original = readFileSync(join(FIXTURE, 'pkgs', 'top-level', 'all-packages.nix'), 'utf8');
  const followed = `  followed = fetchurl { url = "${upstream.url(`/${name}.txt`)}"; sha256 = "${sha256(content[name])}"; };\n\n`;
  writeFileSync(file, original.replace('  ### ordinary packages\n', `${followed}  ### ordinary packages\n`));
  git('add', '-A');
  git('-c', 'user.name=fodder', '-c', 'user.email=dev@fodder.invalid', 'commit', '--quiet', '-m', `followed: ${name}`);
  return git('rev-parse', 'HEAD');
}

async function api<T>(path: string, init?: RequestInit): Promise<T> {
  const r = await fetch(base + path, init);
  return (await r.json()) as T;
}

async function runJob(): Promise<JobInfo> {
  const { id } = await api<{ id: number }>('/api/jobs', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  const end = Date.now() + 80_000;
  for (;;) {
    const job = await api<JobInfo>(`/api/jobs/${id}`);
    if (job.status === 'done' || job.status === 'failed') return job;
    if (Date.now() > end) throw new Error(`job ${id} still ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  upstream = await startStrings((path) => content[path.replace(/^\/|\.txt$/g, '') as keyof typeof content]);
  cpSync(FIXTURE, repo, { recursive: true });
  git('init', '--quiet', '--initial-branch', 'main');
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  writeFileSync(
    join(dir, 'fodder.yaml'),
    `systems: [x86_64-linux]
variants: { default: {} }
db: fodder.db
fetch:
  mirror: mirror
  kinds: [url]
  concurrency: 4
  retries: 0
  connectTimeoutSec: 2
  cache: { flat: true }
service:
  listen: 127.0.0.1:0
  tokenFile: token
  schedule: null
  keep: 1
  nixpkgs: { git: "file://${repo}", branch: main }
`,
  );
});

afterAll(async () => {
  if (proc) {
    proc.kill('SIGTERM');
    await proc;
  }
  await upstream?.close();
});

describe('a service following a git branch', () => {
  let first = '';
  let firstCrawl = 0;

  test('the service starts and its first job crawls the branch head, recording the commit', async () => {
    first = commitWith('old');
    proc = execa('node', [CLI, 'serve', '--config', join(dir, 'fodder.yaml')], { reject: false, env: { CI: '1' }, stdin: 'ignore', buffer: false });
    proc.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
    });
    base = await new Promise<string>((resolve, reject) => {
      let out = '';
      proc!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      void proc!.then((r) => reject(new Error(`fodder serve exited ${r.exitCode}: ${log}`)));
    });
    const job = await runJob();
    expect(job.status, log).toBe('done');
    const [crawl] = await api<CrawlInfo[]>('/api/crawls');
    expect(crawl).toMatchObject({ id: job.crawl, revision: first, status: 'done', nixpkgs: join(dir, 'nixpkgs-git') });
    firstCrawl = crawl.id;
    expect(existsSync(join(mirror, 'tarballs', 'sha256', sha256(content.old)))).toBe(true);
    expect((await fetch(`${base}/tarballs/sha256/${sha256(content.old)}`)).status).toBe(200);
  }, 90_000);

  test('a new commit: the next job crawls the new revision, fetches its new source, and gc removes the old one', async () => {
    const second = commitWith('new');
    const job = await runJob();
    expect(job.status, log).toBe('done');
    const crawls = await api<CrawlInfo[]>('/api/crawls');
    expect(crawls.map((c) => [c.id, c.revision])).toEqual([
      [job.crawl, second],
      [firstCrawl, first],
    ]);
    expect(job.crawl).not.toBe(firstCrawl);
    expect((await fetch(`${base}/tarballs/sha256/${sha256(content.new)}`)).status).toBe(200);
    // keep: 1 — what only the first revision needed is gone, from the disk and from the service
    expect(existsSync(join(mirror, 'tarballs', 'sha256', sha256(content.old)))).toBe(false);
    expect((await fetch(`${base}/tarballs/sha256/${sha256(content.old)}`)).status).toBe(404);
    // the tarball; its NAR copy (cache.flat) with its narinfo; and the narinfo of its NAR made on the fly
    expect(log).toMatch(new RegExp(`job ${job.id}: gc freed 4 files, .* \\(1 tarballs, 2 narinfos, 1 NARs\\)`));
  }, 90_000);

  test('the same commit again: a new crawl of the same revision, and gc keeps both', async () => {
    const before = await api<CrawlInfo[]>('/api/crawls');
    const job = await runJob();
    expect(job.status, log).toBe('done');
    const after = await api<CrawlInfo[]>('/api/crawls');
    expect(after[0].revision).toBe(before[0].revision);
    // gc keeps both crawls of the newest revision: nothing of it is removed
    expect(existsSync(join(mirror, 'tarballs', 'sha256', sha256(content.new)))).toBe(true);
  }, 90_000);
});
