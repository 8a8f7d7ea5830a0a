/**
 * The fixture package set's upstream (test/fixtures/upstream) served on loopback, its crawl,
 * and the glue to run fetch plug-ins on its FODs:
 * - a copy of the upstream tree with the git repositories restored from their bundles
 *   (make-git.sh), served by a static Node server: files, archives, and git over the dumb
 *   HTTP protocol. The fixture's URLs name 127.0.0.1:18661; a test either listens there or
 *   rewrites the URLs to its ephemeral port;
 * - FODs of a crawl with their whole .drv environment;
 * - a plug-in context with the real shared Network.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, createReadStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { openDb } from '../../src/db/open.js';
import type { Fod } from '../../src/graph/types.js';
import { createHashPool } from '../../src/mirror/hashing.js';
import { createNetwork, NETWORK_DEFAULTS, type NetworkHandle } from '../../src/fetch/network.js';
import type { AttemptRecord, FetchContext, FodEnv } from '../../src/fetch/types.js';
import { FOD_COLUMNS, fodFromRow, type FodRow } from '../../src/db/fod-row.js';
import { FIXTURE, ROOT, fodder, tempDir } from './cli.js';
import { startHttp, type Running } from './servers.js';

export const UPSTREAM = join(ROOT, 'test', 'fixtures', 'upstream');
export const FIXTURE_HOST = '127.0.0.1:18661';

/** The names of the test package set's archive FODs, sorted. */
export const FIXTURE_ARCHIVES = [
  'appledouble-1.1-source',
  'flatpack-1.0-source',
  'oldflat-1.0-source',
  'oldgh-v0.9-src',
  'source',
  'tl-alpha-1.0',
  'tl-beta-2.1',
  'trimmed-2.0-source',
  'unzipme-0.3-source',
];

/** `hashes.txt`: key -> field -> value. */
export function fixtureHashes(): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const line of readFileSync(join(UPSTREAM, 'hashes.txt'), 'utf8').split('\n')) {
    const [key, field, value] = line.split(' ');
    if (!value) continue;
    out.set(key, { ...(out.get(key) ?? {}), [field]: value });
  }
  return out;
}

export interface Upstream extends Running {
  /** the served copy of the upstream tree */
  dir: string;
  /** requests served, by path */
  hits: Map<string, number>;
}

/**
 * Copies the upstream tree, restores the git repositories into `<copy>/git/<name>.git` and
 * serves the copy (port 0: an ephemeral one). `edit` may change the copy before serving.
 */
export async function startUpstream(opts: { port?: number; edit?: (dir: string) => void } = {}): Promise<Upstream> {
  const dir = join(tempDir('fodder-upstream-'), 'upstream');
  cpSync(UPSTREAM, dir, { recursive: true });
  execFileSync('bash', [join(UPSTREAM, 'make-git.sh'), join(dir, 'git')], { stdio: 'ignore', env: { ...process.env, HOME: dir } });
  // Mercurial reads a repository from a plain HTTP server (static-http://)
  execFileSync('bash', [join(UPSTREAM, 'make-hg.sh'), join(dir, 'hg')], { stdio: 'ignore', env: { ...process.env, HOME: dir } });
  opts.edit?.(dir);
  const hits = new Map<string, number>();
  const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const file = normalize(join(dir, path));
    if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404);
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': statSync(file).size, 'content-type': 'application/octet-stream' });
    createReadStream(file).pipe(res);
  };
  const server = opts.port ? await listenOn(opts.port, handler) : await startHttp(handler);
  if (opts.port !== FIXTURE_SVN_PORT - 2) return { ...server, dir, hits };
  // on the fixture's own port, the fixture's svn:// URLs (127.0.0.1:18663) are served too
  const svn = join(dir, '..', 'svn');
  await waitPortFree(FIXTURE_SVN_PORT);
  execFileSync('bash', [join(UPSTREAM, 'make-svn.sh'), svn, '--serve'], { stdio: 'ignore', env: { ...process.env, HOME: dir } });
  const close = async () => {
    try {
      process.kill(Number(readFileSync(join(svn, 'svnserve.pid'), 'utf8').trim()));
    } catch {
      /* already gone */
    }
    await server.close();
  };
  return { ...server, close, dir, hits };
}

/** The fixture's fetchsvn URLs name svn://127.0.0.1:18663. */
export const FIXTURE_SVN_PORT = 18663;

/** startHttp on a fixed port (the fixture's own 18661), waiting a while if another test holds it. */
async function listenOn(port: number, handler: Parameters<typeof startHttp>[0]): Promise<Running> {
  const { createServer } = await import('node:http');
  const until = Date.now() + 120_000;
  for (;;) {
    const server = createServer((req, res) => void handler(req, res));
    const sockets = new Set<import('node:net').Socket>();
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    const err = await new Promise<NodeJS.ErrnoException | null>((r) => {
      server.once('error', (e) => r(e));
      server.listen(port, '127.0.0.1', () => r(null));
    });
    if (!err) {
      return {
        port,
        url: (p) => `http://127.0.0.1:${port}${p}`,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      };
    }
    if (err.code !== 'EADDRINUSE') throw err;
    if (Date.now() > until) {
      throw new Error(`127.0.0.1:${port} is still in use after 120 s: the fixture's URLs name this port, so the test needs it (${err.message})`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Waits until nothing listens on 127.0.0.1:`port` (the fixture's dead mirror, 18662, must stay
 * dead); fails with a message that names the port after `ms`.
 */
export async function waitPortFree(port: number, ms = 60_000): Promise<void> {
  const { Socket } = await import('node:net');
  const until = Date.now() + ms;
  for (;;) {
    const listening = await new Promise<boolean>((r) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
      s.connect(port, '127.0.0.1');
    });
    if (!listening) return;
    if (Date.now() > until) throw new Error(`something listens on 127.0.0.1:${port}; the fixture needs that port dead (its "dead mirror")`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface FixtureCrawl {
  dir: string;
  dbFile: string;
  /** the crawl's kept drv store (`--store`) */
  store: string;
}

/**
 * `fodder crawl` of the fixture set for one system (the CLI, as a user runs it), keeping its .drv
 * files in a drv store (`--store`); with `{ keepStore: false }` they are kept only in the database.
 */
export async function crawlFixture(system?: string): Promise<FixtureCrawl>;
export async function crawlFixture(system: string, o: { keepStore: false }): Promise<Omit<FixtureCrawl, 'store'>>;
export async function crawlFixture(system = 'x86_64-linux', o = { keepStore: true }): Promise<Omit<FixtureCrawl, 'store'> & { store?: string }> {
  const dir = tempDir('fodder-crawl-');
  const dbFile = join(dir, 'fodder.db');
  const store = join(dir, 'store');
  const r = await fodder([
    'crawl',
    '--nixpkgs',
    FIXTURE,
    '--system',
    system,
    '--variant',
    'default',
    '--db',
    dbFile,
    ...(o.keepStore ? ['--store', store] : []),
    '--json',
  ]);
  if (r.code !== 0) throw new Error(`crawl failed: ${r.stderr}`);
  if (!o.keepStore) return { dir, dbFile };
  return { dir, dbFile, store };
}

export interface FodWithEnv {
  fod: Fod;
  env: FodEnv;
}

/** Every FOD in the database with its .drv environment, by name order. */
export function fodsWithEnv(dbFile: string): FodWithEnv[] {
  const db = openDb(dbFile, { readonly: true });
  try {
    const rows = db.prepare(`SELECT ${FOD_COLUMNS}, f.env_json FROM fods f ORDER BY f.name, f.drv_path`).all() as (FodRow & { env_json: string })[];
    return rows.map((r) => ({ fod: fodFromRow(r), env: JSON.parse(r.env_json) as FodEnv }));
  } finally {
    db.close();
  }
}

/** The FOD with its URLs moved from the fixture's host to `host` (an ephemeral test server). */
export function movedTo(f: FodWithEnv, host: string): FodWithEnv {
  const move = (u: string) => u.split(FIXTURE_HOST).join(host);
  return {
    env: f.env,
    fod: {
      ...f.fod,
      urls: f.fod.urls.map(move),
      resolvedUrls: f.fod.resolvedUrls.map(move),
      git: f.fod.git ? { ...f.fod.git, url: move(f.fod.git.url) } : null,
    },
  };
}

export interface PluginHarness {
  network: NetworkHandle;
  attempts: AttemptRecord[];
  /** a context for one FOD with a fresh work dir under `root` */
  ctx(env: FodEnv, name?: string): FetchContext;
  close(): Promise<void>;
}

/** The real shared downloader with test timings, and contexts for plug-ins. */
export function pluginHarness(root = tempDir('fodder-work-')): PluginHarness {
  const pool = createHashPool();
  const network = createNetwork({ ...NETWORK_DEFAULTS, retries: 0, connectTimeoutMs: 2000, idleTimeoutMs: 5000, retryDelayMs: 10 }, pool);
  const attempts: AttemptRecord[] = [];
  let n = 0;
  return {
    network,
    attempts,
    ctx(env, name = 'fod') {
      const workDir = join(root, `${String(n++).padStart(3, '0')}-${name}`);
      mkdirSync(workDir, { recursive: true });
      return {
        workDir,
        network,
        env,
        signal: new AbortController().signal,
        recordAttempt: (a) => {
          attempts.push(a);
        },
        onBytes: () => undefined,
      };
    },
    async close() {
      await network.close();
      await pool.close();
    },
  };
}
