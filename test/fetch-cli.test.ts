/**
 * The built CLI (`node dist/src/cli/main.js`): bad input gives a clear error and a non-zero
 * exit without damaging what is stored, and `kill -9` during large downloads never leaves an
 * unverified file in the mirror.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDb } from '../src/db/open.js';
import { verifyMirror } from '../src/mirror/verify.js';
import { fetchRuns } from '../src/db/fetch-schema.js';
import { createTestCrawl, hashHex } from './helpers/fetch-db.js';
import { startHttp, startNginx, type Running } from './helpers/servers.js';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');

/** Runs a command without blocking this process (the test's own servers must keep answering). */
function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, CI: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => {
      stdout += String(d);
    });
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

const fodder = (args: string[]) => run(process.execPath, [cli, ...args]);

/** Runs a shell script as root of a new user and mount namespace (works for root and non-root). */
const inNamespace = (script: string) => run('unshare', ['-rm', 'sh', '-c', script]);

/**
 * Like the other CLI tests, these run dist/ as built by scripts/test.sh (or `npm run build`):
 * rebuilding here could rewrite dist/ under a test running in parallel. Only a missing build is made.
 */
function ensureBuilt(): void {
  if (!existsSync(cli)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
}

beforeAll(ensureBuilt, 180_000);

describe('bad input: a clear error, a non-zero exit, nothing damaged', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fodder-cli-'));
  const dbFile = join(dir, 'fodder.db');
  let server: Running;
  const small = Buffer.from('a small source\n'.repeat(100));
  const large = randomBytes(8 << 20);

  beforeAll(async () => {
    server = await startHttp((req, res) => {
      const body = req.url === '/small' ? small : req.url === '/large' ? large : null;
      if (!body) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    const c = createTestCrawl(dbFile);
    c.addFod({ name: 'small', urls: [server.url('/small')], content: small });
    c.close();
    // for the "full" test's second run: one 8 MiB source that cannot fit in 4 MiB
    const l = createTestCrawl(join(dir, 'full.db.large'));
    l.addFod({ name: 'large', urls: [server.url('/large')], content: large });
    l.close();
  });
  afterAll(async () => {
    await server?.close();
  });

  test("--crawl N fetches that crawl's sources, and names a crawl that does not exist", async () => {
    const none = await fodder(['fetch', '--db', dbFile, '--mirror', join(dir, 'm-crawl'), '--crawl', '7', '--no-progress']);
    expect(none.code, none.stderr).toBe(1);
    expect(none.stderr).toContain('fodder: error [CRAWL_UNKNOWN]: there is no crawl 7 (the latest is 1)');
    const r = await fodder(['fetch', '--db', dbFile, '--mirror', join(dir, 'm-crawl'), '--crawl', '1', '--json', '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ crawl: 1, fods: 1, mirrored: 1 });
  });

  test('an unknown --kind', async () => {
    const r = await fodder(['fetch', '--db', dbFile, '--mirror', join(dir, 'm1'), '--kind', 'bogus']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/unknown kind "bogus"; kinds are: url, archive, git, .*, and nix \(the fallback/);
  });

  test('a known kind the crawl has no source of: nothing to do, not an error; `--kind nix` alone selects every kind', async () => {
    const r = await fodder(['fetch', '--db', dbFile, '--mirror', join(dir, 'm-git'), '--kind', 'git', '--json', '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ fods: 0, mirrored: 0, kinds: ['git'], nixFallback: false });
    const all = await fodder(['fetch', '--db', dbFile, '--mirror', join(dir, 'm-git'), '--kind', 'nix', '--json', '--no-progress']);
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout)).toMatchObject({
      fods: 1,
      mirrored: 1,
      nixFallback: true,
      kinds: ['url', 'archive', 'git', 'hg', 'svn', 'patch', 'vendor', 'manual', 'other'],
      // a flat file goes to tarballs/ with a narinfo made from it (cache/flat/), no NAR copy: fetch.cache.flat is off by default
      byKind: { url: { fods: 1, mirrored: 1 } },
      mirroredBy: { url: 1 },
      published: 1,
    });
    expect(readdirSync(join(dir, 'm-git', 'cache', 'flat'))).toHaveLength(1);
    expect(readdirSync(join(dir, 'm-git', 'cache', 'nar'))).toEqual([]);
  });

  test('a signing key that cannot be read, and a bad cache or nix key in the config, are named', async () => {
    const r = await fodder(['fetch', '--db', dbFile, '--mirror', join(dir, 'm-key'), '--sign-key', join(dir, 'no-such.secret')]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/CACHE_OPTIONS_INVALID.*--sign-key: .*no-such\.secret/);
    writeFileSync(join(dir, 'bad.secret'), 'not a key');
    const bad = await fodder(['fetch', '--db', dbFile, '--mirror', join(dir, 'm-key'), '--sign-key', join(dir, 'bad.secret')]);
    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stderr).toMatch(/--sign-key: .*bad\.secret/);
    const cfg = join(dir, 'cache.yaml');
    writeFileSync(cfg, `db: ${dbFile}\nfetch:\n  cache:\n    compression: gzip\n  nix:\n    jobz: 2\n`);
    const c = await fodder(['fetch', '--config', cfg]);
    expect(c.code, c.stderr).toBe(1);
    expect(c.stderr).toMatch(/key "fetch\.cache\.compression": Invalid enum value/);
    expect(c.stderr).toMatch(/unknown key "jobz" in fetch\.nix/);
    expect(existsSync(join(dir, 'm-key', 'cache'))).toBe(false);
  });

  test('no database at all', async () => {
    const r = await fodder(['fetch', '--db', join(dir, 'nope.db'), '--mirror', join(dir, 'm2')]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/DB_EMPTY.*no database at .*nope\.db.*fodder crawl/);
  });

  test('a database from no crawl', async () => {
    const empty = join(dir, 'empty.db');
    openDb(empty, { create: true }).close();
    for (const cmd of [['fetch', '--mirror', join(dir, 'm3')], ['report']]) {
      const r = await fodder([...cmd, '--db', empty]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/DB_EMPTY.*holds no crawl yet: run `fodder crawl`/);
    }
  });

  test('a mirror path that is a file', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const r = await fodder(['fetch', '--db', dbFile, '--mirror', file]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/MIRROR_UNWRITABLE.*not a directory/);
  });

  test('a read-only mirror: refused before anything is fetched; what it holds still verifies', async () => {
    const mirror = join(dir, 'ro-mirror');
    expect((await fodder(['fetch', '--db', dbFile, '--mirror', mirror, '--no-progress'])).code).toBe(0);
    const before = readdirSync(join(mirror, 'tarballs', 'sha512'));
    const r = await inNamespace(`mount --bind ${mirror} ${mirror} && mount -o remount,bind,ro ${mirror} && \
      "${process.execPath}" ${cli} fetch --db ${dbFile} --mirror ${mirror} --retry-failed; echo "exit=$?"`);
    expect(r.stdout).toMatch(/exit=1/);
    expect(r.stderr).toMatch(/MIRROR_UNWRITABLE.*read-only file system/i);
    expect(readdirSync(join(mirror, 'tarballs', 'sha512'))).toEqual(before);
    expect((await fodder(['verify', '--mirror', mirror, '--db', dbFile])).code).toBe(0);
  });

  test('a full mirror: the run stops with MIRROR_FULL, no partial file is kept, earlier content still verifies', async () => {
    const mirror = join(dir, 'full-mirror');
    mkdirSync(mirror);
    const db2 = join(dir, 'full.db');
    const c = createTestCrawl(db2);
    c.addFod({ name: 'small', urls: [server.url('/small')], content: small });
    c.close();
    const node = `"${process.execPath}" ${cli}`;
    const r = await inNamespace(`set -e
      mount -t tmpfs -o size=4m tmpfs ${mirror}
      ${node} fetch --db ${db2} --mirror ${mirror} --no-progress >/dev/null
      echo "first-ok"
      set +e
      ${node} fetch --db ${db2}.large --mirror ${mirror} --no-progress; echo "exit=$?"
      ${node} verify --mirror ${mirror} --db ${db2}; echo "verify=$?"
      find ${mirror}/tmp -type f | wc -l | sed 's/^/tmpfiles=/'`);
    expect(r.stdout).toMatch(/first-ok/);
    expect(r.stdout).toMatch(/exit=1/);
    expect(r.stderr).toMatch(/MIRROR_FULL.*no space left/);
    expect(r.stdout).toMatch(/verify=0/);
    expect(r.stdout).toMatch(/tmpfiles=0/);
  });

  test('--json prints the summary; progress goes to stderr as plain lines off a terminal', async () => {
    const r = await fodder(['fetch', '--db', dbFile, '--mirror', join(dir, 'json-mirror'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ fods: 1, mirrored: 1, dead: 0, brokenHash: 0, outcomes: { ok: 1 } });
    expect(r.stderr).toMatch(/^fetch run \d+ \(crawl 1\): 1 sources to fetch, 0 skipped\n/);
    expect(r.stderr).toMatch(/fetch: 1\/1 files .* 0 failed {2}ETA 0s\n$/);
    expect(r.stderr).not.toContain('\r');
  });

  test('a config file supplies the database, the mirror and the fetch settings; a bad key is named', async () => {
    const cfg = join(dir, 'fodder.yaml');
    writeFileSync(cfg, `db: ${dbFile}\nfetch:\n  mirror: cfg-mirror\n  concurrency: 2\n  idleTimeoutSec: 0.5\n  retries: 0\n`);
    const r = await fodder(['fetch', '--config', cfg, '--json', '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).mirror).toBe(join(dir, 'cfg-mirror'));
    writeFileSync(cfg, `fetch:\n  concurency: 2\n`);
    const bad = await fodder(['fetch', '--config', cfg]);
    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stderr).toMatch(/CONFIG_INVALID.*unknown key "concurency" in fetch/);
    const badFlag = await fodder(['fetch', '--db', dbFile, '--idle-timeout', 'soon']);
    expect(badFlag.code, badFlag.stderr).toBe(2);
    expect(badFlag.stderr).toMatch(/--idle-timeout: Expected number/);
  });

  test('report: every format, to a file; an unknown format is a usage error', async () => {
    for (const format of ['table', 'json', 'markdown', 'html']) {
      const out = join(dir, `report.${format}`);
      const r = await fodder(['report', '--db', dbFile, '--format', format, '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(existsSync(out)).toBe(true);
    }
    const r = await fodder(['report', '--db', dbFile, '--format', 'pdf']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--format must be one of table, json, markdown, html, got "pdf"/);
  });
});

describe('kill -9 during large downloads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fodder-kill-'));
  const upstream = join(dir, 'upstream');
  const mirror = join(dir, 'mirror');
  const dbFile = join(dir, 'fodder.db');
  let nginx: Running;
  const sizes = [72 << 20, 64 << 20, 64 << 20]; // 200 MiB in all
  const hashes: string[] = [];

  beforeAll(async () => {
    mkdirSync(upstream);
    const c = createTestCrawl(dbFile);
    nginx = await startNginx(upstream, 'limit_rate 25m;');
    sizes.forEach((size, i) => {
      const body = randomBytes(size);
      writeFileSync(join(upstream, `big-${i}.tar.xz`), body);
      hashes.push(hashHex('sha256', body));
      c.addFod({ name: `big-${i}`, urls: [nginx.url(`/big-${i}.tar.xz`)], content: body });
    });
    c.close();
  }, 60_000);
  afterAll(async () => {
    await nginx?.close();
  });

  /** bytes in the partial downloads under DIR/tmp */
  const partialBytes = (): number => {
    const tmp = join(mirror, 'tmp');
    if (!existsSync(tmp)) return 0;
    let n = 0;
    for (const d of readdirSync(tmp)) {
      try {
        n += statSync(join(tmp, d, 'download')).size;
      } catch {
        /* not started or just finished */
      }
    }
    return n;
  };
  /** waits until the running fetch has written `more` bytes beyond `from` (so a kill hits mid-download) */
  const waitForProgress = async (from: number, more: number) => {
    const until = Date.now() + 20_000;
    while (partialBytes() < from + more && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  };

  test('Ctrl-C stops the run cleanly: exit 130, run marked interrupted, partial files kept for a resume', async () => {
    const child = spawn(process.execPath, [cli, 'fetch', '--db', dbFile, '--mirror', mirror, '--no-progress'], { stdio: 'ignore' });
    await waitForProgress(0, 4 << 20);
    child.kill('SIGINT');
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(130);
    const db = openDb(dbFile, { readonly: true });
    const run = db.prepare(`SELECT status FROM fetch_runs ORDER BY id DESC LIMIT 1`).get() as { status: string };
    const results = db.prepare(`SELECT COUNT(*) n FROM fetch_results WHERE verdict != 'ok'`).get() as { n: number };
    db.close();
    expect(run.status).toBe('interrupted');
    expect(results.n).toBe(0);
    expect(readdirSync(join(mirror, 'tmp')).length).toBeGreaterThan(0);
    expect((await verifyMirror(mirror)).corrupt).toEqual([]);
  }, 60_000);

  test('SIGTERM stops it as cleanly: exit 143, one line saying so, run marked interrupted', async () => {
    const child = spawn(process.execPath, [cli, 'fetch', '--db', dbFile, '--mirror', mirror, '--no-progress'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    await waitForProgress(partialBytes(), 4 << 20);
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(143);
    expect(stderr).toMatch(/^fodder: error \[INTERRUPTED\]: fetch run \d+ stopped by SIGTERM, marked interrupted; run the same command to go on/);
    const db = openDb(dbFile, { readonly: true });
    const run = db.prepare(`SELECT status FROM fetch_runs ORDER BY id DESC LIMIT 1`).get() as { status: string };
    db.close();
    expect(run.status).toBe('interrupted');
    expect((await verifyMirror(mirror)).corrupt).toEqual([]);
  }, 60_000);

  test('every file in the mirror verifies after each kill, and a rerun completes the mirror', async () => {
    for (const more of [8 << 20, 20 << 20, 4 << 20, 30 << 20]) {
      const before = partialBytes();
      const child = spawn(process.execPath, [cli, 'fetch', '--db', dbFile, '--mirror', mirror, '--no-progress'], { stdio: 'ignore' });
      await waitForProgress(before, more);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const v = await verifyMirror(mirror);
      expect(v.corrupt).toEqual([]);
      // whatever is under a final name is complete
      for (const name of readdirSync(join(mirror, 'tarballs', 'sha256'))) {
        if (name.length === 64) expect(hashes).toContain(name);
      }
    }
    // each run marked the one killed before it; the last killed is recorded `running` still, with
    // a process that is gone: read as interrupted
    const killed = openDb(dbFile, { readonly: true });
    const left = killed.prepare(`SELECT id FROM fetch_runs WHERE status = 'running'`).pluck().all() as number[];
    expect(left).toEqual([fetchRuns(killed)[0].id]);
    expect(fetchRuns(killed)[0].status).toBe('interrupted');
    killed.close();
    const r = await fodder(['fetch', '--db', dbFile, '--mirror', mirror, '--json', '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.dead + s.brokenHash).toBe(0);
    // ... and the next run marked them so: no run is left `running` by a process that died
    const after = openDb(dbFile, { readonly: true });
    expect(after.prepare(`SELECT status, COUNT(*) n FROM fetch_runs GROUP BY status ORDER BY status`).all()).toEqual([
      { status: 'done', n: 1 },
      { status: 'interrupted', n: 6 },
    ]);
    after.close();
    for (const h of hashes) expect(existsSync(join(mirror, 'tarballs', 'sha256', h))).toBe(true);
    const v = await verifyMirror(mirror);
    expect(v.corrupt).toEqual([]);
    expect(v.files).toBe(3);
    expect(readdirSync(join(mirror, 'tmp'))).toEqual([]);
    // the partial files the killed runs left were resumed, not downloaded again from zero
    const db = openDb(dbFile, { readonly: true });
    const resumed = db.prepare(`SELECT COUNT(*) n FROM fetch_attempts WHERE resumed_from > 0 AND outcome = 'ok'`).get() as { n: number };
    db.close();
    expect(resumed.n).toBeGreaterThan(0);
  }, 180_000);
});
