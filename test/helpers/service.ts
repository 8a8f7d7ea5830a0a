/**
 * `fodder serve` as a site runs it, for the tests that talk to it over HTTP: the built CLI
 * started with a config on a free loopback port, its JSON API, and waiting for a job.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { JobInfo } from '../../src/db/jobs.js';
import { CLI, FIXTURE } from './cli.js';
import { procStat } from '../../src/db/owner.js';

export interface RunningService {
  proc: ResultPromise;
  url: string;
  stderr: () => string;
}

/** Starts `fodder serve` and waits for the line that names its address. */
export async function startServe(config: string, ...args: string[]): Promise<RunningService> {
  const proc = execa('node', [CLI, 'serve', '--config', config, ...args], { reject: false, env: { CI: '1' }, stdin: 'ignore', buffer: false });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    void proc.then((r) => reject(new Error(`fodder serve exited ${r.exitCode}: ${err}`)));
  });
  return { proc, url, stderr: () => err };
}

/**
 * A service config in `dir`: the fixture package set for x86_64-linux, its url and archive
 * sources fetched into `dir/mirror` and published (signed with `keys/fodder-serve-1.secret`; flat
 * sources with no NAR copy, their NARs made from tarballs/ by the service),
 * any free loopback port, the admin token in `dir/token`; `service` adds lines under `service:`.
 */
export function writeServiceConfig(dir: string, name: string, service = ''): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    `nixpkgs: ${FIXTURE}
systems: [x86_64-linux]
variants: { default: {} }
db: fodder.db
fetch:
  mirror: mirror
  kinds: [url, archive]
  concurrency: 4
  retries: 0
  connectTimeoutSec: 2
  cache:
    secretKeyFile: keys/fodder-serve-1.secret
service:
  listen: 127.0.0.1:0
  tokenFile: token
${service}`,
  );
  return file;
}

export const api = async <T>(base: string, path: string, init?: RequestInit): Promise<{ status: number; body: T }> => {
  const r = await fetch(base + path, init);
  return { status: r.status, body: (await r.json()) as T };
};

/** Polls `GET /api/jobs/<id>` until `until` holds (fails after `ms`). */
export async function waitJob(base: string, id: number, until: (j: JobInfo) => boolean, ms = 90_000, every = 200): Promise<JobInfo> {
  const end = Date.now() + ms;
  for (;;) {
    const { body } = await api<JobInfo>(base, `/api/jobs/${id}`);
    if (until(body)) return body;
    if (Date.now() > end) throw new Error(`job ${id} still ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** The job process (`fodder job`) a service started and that still runs, or null (read from /proc). */
export function jobProcessOf(servicePid: number): number | null {
  let children: string[];
  try {
    children = readFileSync(`/proc/${servicePid}/task/${servicePid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return null;
  }
  for (const pid of children) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.includes('job') && argv.includes('--id')) return Number(pid);
    } catch {
      // it ended meanwhile
    }
  }
  return null;
}

/** Whether process `pid` has ended (a zombie has too) within `ms`. */
export async function processEnds(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    const state = procStat(pid)?.[0];
    if (state === undefined || state === 'Z' || state === 'X') return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
