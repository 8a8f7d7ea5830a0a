/**
 * `fodder serve` under load: many concurrent downloads of the mirror's files and API calls while
 * a job crawls and fetches into the same mirror and database. The job's package set is files
 * served slowly on loopback (test/helpers/loopback-set.ts), so many downloads are half done
 * in the mirror's temporary directory while the files are asked for. Every answer must be one
 * the question allows (200, 206 or 304, or a 404 for what is not there yet), never a 5xx or a
 * reset connection, and nothing half-written is ever served: every 200 of `/tarballs/` hashes
 * to its name, every 206 is those bytes of the file, and every narinfo's NAR hashes to its
 * FileHash.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { encodeNix32 } from '../src/nix-formats/hash.js';
import { fodStorePath, parseStorePath } from '../src/nix-formats/store-path.js';
import { fodder, tempDir } from './helpers/cli.js';
import { writeLoopbackSet, type LoopbackFile } from './helpers/loopback-set.js';
import { startHttp, type Running } from './helpers/servers.js';
import { api, startServe, waitJob, type RunningService } from './helpers/service.js';

const FILES = 60;
const CLIENTS = 48;
const TOKEN = 'serve-load-token-0123456789';
const dir = tempDir('fodder-serve-load-');
const www = join(dir, 'www');

let upstream: (Running & { close(): Promise<void> }) | null = null;
let service: RunningService | null = null;

/** Serves `www` a chunk of 32 KiB every 10 ms, so a file of a few MiB takes a while to download. */
async function slowServer(): Promise<Running> {
  return startHttp(async (req, res) => {
    let body: Buffer;
    try {
      body = readFileSync(join(www, new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/+/, '').replace(/\.\./g, '')));
    } catch {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length });
    for (let at = 0; at < body.length && !res.destroyed; at += 32 << 10) {
      res.write(body.subarray(at, at + (32 << 10)));
      await new Promise((r) => setTimeout(r, 10));
    }
    res.end();
  });
}

interface Tally {
  requests: number;
  byStatus: Map<string, number>;
  /** answers the question does not allow, and failed requests */
  wrong: string[];
  tarballs200: number;
  ranges206: number;
  narsChecked: number;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();

let files: LoopbackFile[] = [];
let narinfoNames: string[] = [];
let jobId = 0;
const tally: Tally = { requests: 0, byStatus: new Map(), wrong: [], tarballs200: 0, ranges206: 0, narsChecked: 0 };

async function get(base: string, dispatcher: Agent, path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const r = await request(base + path, { method, headers, dispatcher });
  const body = Buffer.from(await r.body.arrayBuffer());
  tally.requests++;
  const what = path.endsWith('.narinfo') ? 'narinfo' : path.split('/')[1];
  const key = `${method} ${what} ${r.statusCode}`;
  tally.byStatus.set(key, (tally.byStatus.get(key) ?? 0) + 1);
  return { status: r.statusCode, headers: r.headers, body };
}

/** One question, picked by `i`, and the check of its answer. */
async function ask(base: string, dispatcher: Agent, i: number): Promise<void> {
  const f = files[i % files.length];
  const wrong = (what: string) => tally.wrong.push(what);
  const oneOf = (status: number, allowed: number[], path: string) => {
    if (!allowed.includes(status)) wrong(`${path}: ${status}`);
  };
  switch (i % 7) {
    case 0:
    case 1: {
      // by the name Nix asks for, and by the one the file is stored under (the others are links to it)
      const algo = i % 7 === 0 ? 'sha256' : 'sha512';
      const path = `/tarballs/${algo}/${f[algo]}`;
      const r = await get(base, dispatcher, path);
      oneOf(r.status, [200, 404], path);
      if (r.status === 200) {
        tally.tarballs200++;
        if (createHash(algo).update(r.body).digest('hex') !== f[algo]) wrong(`${path}: a body of ${r.body.length} bytes that hashes to something else`);
      }
      break;
    }
    case 2: {
      const path = `/tarballs/sha512/${f.sha512}`;
      const from = (i * 7919) % f.bytes;
      const r = await get(base, dispatcher, path, { range: `bytes=${from}-${from + 999}` });
      oneOf(r.status, [206, 404], `${path} (range)`);
      if (r.status === 206) {
        tally.ranges206++;
        if (!r.body.equals(readFileSync(join(www, f.path)).subarray(from, from + 1000))) wrong(`${path}: range ${from} is not the file's bytes`);
      }
      break;
    }
    case 3: {
      const path = `/tarballs/sha256/${f.sha256}`;
      const r = await get(base, dispatcher, path, {}, 'HEAD');
      oneOf(r.status, [200, 404], `HEAD ${path}`);
      if (r.status === 200 && Number(r.headers['content-length']) !== f.bytes) wrong(`HEAD ${path}: content-length ${String(r.headers['content-length'])}`);
      break;
    }
    case 4: {
      const path = `/${narinfoNames[i % narinfoNames.length]}.narinfo`;
      const r = await get(base, dispatcher, path);
      oneOf(r.status, [200, 404], path);
      if (r.status !== 200) break;
      const text = r.body.toString();
      const url = /^URL: (\S+)$/m.exec(text)?.[1];
      const fileHash = /^FileHash: sha256:(\S+)$/m.exec(text)?.[1];
      if (!url || !fileHash) {
        wrong(`${path}: no URL or FileHash in ${JSON.stringify(text)}`);
        break;
      }
      const nar = await get(base, dispatcher, `/${url}`);
      oneOf(nar.status, [200], `/${url} (of ${path})`);
      if (nar.status === 200) {
        tally.narsChecked++;
        if (encodeNix32(sha256(nar.body)) !== fileHash) wrong(`/${url}: does not hash to the FileHash of ${path}`);
      }
      break;
    }
    case 5: {
      const path = ['/api/jobs', `/api/jobs/${jobId}`, '/api/crawls', '/metrics', '/nix-cache-info'][i % 5];
      oneOf((await get(base, dispatcher, path)).status, [200], path);
      break;
    }
    default: {
      // before the job's crawl has finished, there is nothing to answer from
      const path = [`/api/sources/set0.p${i % FILES}`, '/api/fods?status=mirrored', '/api/report', '/api/coverage'][i % 4];
      oneOf((await get(base, dispatcher, path)).status, [200, 404], path);
    }
  }
}

beforeAll(async () => {
  upstream = await slowServer();
  // 64 KiB to 4 MiB: at 3.2 MB/s a download, the larger ones take a second or more
  files = writeLoopbackSet({
    dir: join(dir, 'set'),
    www,
    base: upstream.url(''),
    files: FILES,
    bytes: (i) => (64 << 10) + ((i * 977_231) % (4 << 20)),
    perSet: 30,
  });
  narinfoNames = files.map((f, i) => parseStorePath(fodStorePath({ algo: 'sha256', mode: 'flat', hex: f.sha256 }, `file-${i}.bin`)).hashPart);
  await fodder(['keygen', 'fodder-load-1', '--out', join(dir, 'keys'), '--json']);
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  writeFileSync(
    join(dir, 'fodder.yaml'),
    `nixpkgs: ${join(dir, 'set')}
systems: [x86_64-linux]
variants: { default: {} }
db: fodder.db
fetch:
  mirror: mirror
  kinds: [url]
  concurrency: 8
  retries: 0
  cache:
    flat: true
    secretKeyFile: keys/fodder-load-1.secret
service:
  listen: 127.0.0.1:0
  tokenFile: token
`,
  );
  service = await startServe(join(dir, 'fodder.yaml'), '--no-schedule');
}, 60_000);

afterAll(async () => {
  service?.proc.kill('SIGKILL');
  await upstream?.close();
});

test('many downloads and API calls while a job writes the mirror and the database: no failure, nothing half-written', async () => {
  const base = service!.url;
  const dispatcher = new Agent({ connections: CLIENTS });
  const posted = await api<{ id: number }>(base, '/api/jobs', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  expect(posted.status).toBe(202);
  jobId = posted.body.id;
  let running = true;
  const job = waitJob(base, jobId, (j) => j.status !== 'queued' && j.status !== 'running', 50_000).finally(() => {
    running = false;
  });
  let next = 0;
  const client = async () => {
    while (running) {
      const i = next++;
      try {
        await ask(base, dispatcher, i);
      } catch (err) {
        tally.wrong.push(`question ${i}: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  const done = await job;
  // once the job is done, everything is there
  for (let i = 0; i < FILES * 7; i++) await ask(base, dispatcher, i);
  await dispatcher.close();

  expect(done).toMatchObject({ status: 'done', error: null });
  expect(tally.wrong).toEqual([]);
  // the load overlapped the fetch: files were asked for both before and after they arrived
  expect(tally.byStatus.get('GET tarballs 404') ?? 0).toBeGreaterThan(0);
  expect(tally.tarballs200).toBeGreaterThan(FILES);
  expect(tally.ranges206).toBeGreaterThan(0);
  expect(tally.narsChecked).toBeGreaterThanOrEqual(FILES);
  expect(tally.requests).toBeGreaterThan(1000);
}, 90_000);
