/**
 * `fodder fetch` against real servers on 127.0.0.1: Node's http for the failure modes, Debian's
 * nginx for redirects, gzip and ranges, ftp-srv for FTP. One crawl with every case, one fetch
 * run; each test checks one classification, and that nothing wrong reached the mirror.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { gzipSync } from 'node:zlib';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNix32 } from '../src/nix-formats/hash.js';
import { NETWORK_DEFAULTS, type NetworkOptions } from '../src/fetch/network.js';
import { runFetch } from '../src/fetch/run.js';
import type { FetchSummary } from '../src/fetch/progress.js';
import { verifyMirror } from '../src/mirror/verify.js';
import { buildReport } from '../src/report/build.js';
import { createTestCrawl, FLAT_CACHE, hashHex, type TestCrawl } from './helpers/fetch-db.js';
import { deadPort, startFtp, startHttp, startNginx, type Running } from './helpers/servers.js';

const net: NetworkOptions = {
  ...NETWORK_DEFAULTS,
  connectTimeoutMs: 1000,
  idleTimeoutMs: 2000,
  retries: 2,
  retryDelayMs: 10,
  maxRetryDelayMs: 50,
  maxBytes: 4 << 20,
};

const content = (name: string, size = 2000) => {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + name.length * 7 + name.charCodeAt(i % name.length)) & 0xff;
  return b;
};

describe('fetch classifies every failure and admits only verified content', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fodder-fetch-'));
  const upstream = join(dir, 'upstream');
  const mirrorDir = join(dir, 'mirror');
  let node: Running, nginx: Running, ftp: Running;
  let crawl: TestCrawl;
  let summary: FetchSummary;
  const hits = new Map<string, number>();
  const drv: Record<string, string> = {};
  const files = {
    ok: content('ok', 5000),
    big: content('big', 3 << 20), // hashed by the worker threads
    flaky: content('flaky'),
    resumable: content('resumable', 2 << 20),
    nginx: content('nginx'),
    ranged: content('ranged', 1500_000),
    chained: content('chained'),
    ftp: content('ftp', 70_000),
    mirrored: content('mirrored'),
    shared: content('shared'),
    tarball: gzipSync(content('a tarball', 30_000)),
    huge: content('huge', 5 << 20),
  };

  beforeAll(async () => {
    mkdirSync(join(upstream, 'pub'), { recursive: true });
    for (const name of ['nginx', 'ranged', 'chained', 'mirrored', 'shared', 'tarball'] as const) writeFileSync(join(upstream, `${name}.tar.gz`), files[name]);
    writeFileSync(join(upstream, 'pub', 'ftp.tar.gz'), files.ftp);
    node = await startHttp((req, res) => {
      const path = req.url ?? '/';
      const n = (hits.get(path) ?? 0) + 1;
      hits.set(path, n);
      const send = (b: Buffer) => {
        res.writeHead(200, { 'content-length': b.length });
        res.end(b);
      };
      switch (path) {
        case '/ok.tar.gz':
          return send(files.ok);
        case '/big.tar.gz':
          return send(files.big);
        case '/huge.tar.gz':
          return send(files.huge);
        case '/missing.tar.gz':
          res.writeHead(404);
          return res.end('not found');
        case '/gone.tar.gz':
          res.writeHead(410);
          return res.end('gone');
        case '/flaky.tar.gz':
          if (n === 1) {
            res.writeHead(500);
            return res.end('oops');
          }
          return send(files.flaky);
        case '/always-503.tar.gz':
          res.writeHead(503);
          return res.end('busy');
        case '/reset.tar.gz':
          res.writeHead(200, { 'content-length': 100_000 });
          res.write(Buffer.alloc(20_000, 1));
          setTimeout(() => req.socket.resetAndDestroy(), 100);
          return;
        case '/resumable.tar.gz': {
          const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
          if (n === 1 || !range) {
            res.writeHead(200, { 'content-length': files.resumable.length });
            res.write(files.resumable.subarray(0, 1 << 20));
            setTimeout(() => req.socket.resetAndDestroy(), 50);
            return;
          }
          const from = Number(range[1]);
          res.writeHead(206, {
            'content-length': files.resumable.length - from,
            'content-range': `bytes ${from}-${files.resumable.length - 1}/${files.resumable.length}`,
          });
          return res.end(files.resumable.subarray(from));
        }
        case '/short.tar.gz':
          res.writeHead(200, { 'content-length': 100_000 });
          res.write(Buffer.alloc(30_000, 2));
          setTimeout(() => req.socket.end(), 20);
          return;
        case '/stall.tar.gz':
          res.writeHead(200, { 'content-length': 100_000 });
          res.write(Buffer.alloc(10_000, 3));
          return; // never more
        case '/wrong.tar.gz':
          return send(Buffer.from('this is not the tarball you are looking for'));
        default:
          res.writeHead(404);
          return res.end();
      }
    });
    nginx = await startNginx(
      upstream,
      `
      location /gz/ { alias ${upstream}/; add_header Content-Encoding gzip; }
      location = /loop/a { return 302 /loop/b; }
      location = /loop/b { return 302 /loop/a; }
      location = /to-file { return 302 file:///etc/passwd; }
      location = /chain/1 { return 301 /chain/2; }
      location = /chain/2 { return 302 /chained.tar.gz; }
    `,
    );
    ftp = await startFtp(upstream);
    const dead = await deadPort();

    crawl = createTestCrawl(join(dir, 'fodder.db'));
    const add = (name: string, urls: string[], body: Buffer | string, extra: Partial<Parameters<TestCrawl['addFod']>[0]> = {}) => {
      drv[name] = crawl.addFod({ name, urls, content: body, ...extra });
    };
    add('ok', [node.url('/ok.tar.gz')], files.ok);
    add('big', [node.url('/big.tar.gz')], files.big, { algo: 'sha512' });
    add('missing', [node.url('/missing.tar.gz')], 'x');
    add('gone', [node.url('/gone.tar.gz')], 'x');
    add('flaky', [node.url('/flaky.tar.gz')], files.flaky);
    add('busy', [node.url('/always-503.tar.gz')], 'x');
    add('reset', [node.url('/reset.tar.gz')], 'x');
    add('resumable', [node.url('/resumable.tar.gz')], files.resumable);
    add('short', [node.url('/short.tar.gz')], 'x');
    add('stall', [node.url('/stall.tar.gz')], 'x');
    add('wrong', [node.url('/wrong.tar.gz')], 'the real tarball');
    add('too-large', [node.url('/huge.tar.gz')], files.huge);
    add('nginx', [nginx.url('/nginx.tar.gz')], files.nginx, { algo: 'sha1' });
    add('gzip-encoded', [nginx.url('/gz/tarball.tar.gz')], files.tarball);
    add('loop', [nginx.url('/loop/a')], 'x');
    add('to-file', [nginx.url('/to-file')], 'x');
    add('chained', [nginx.url('/chain/1')], files.chained, { algo: 'md5' });
    add('file-url', ['file:///etc/passwd'], 'x');
    add('ftp', [ftp.url('/pub/ftp.tar.gz')], files.ftp);
    add('ftp-missing', [ftp.url('/pub/nope.tar.gz')], 'x');
    add('mirror-first-dead', ['mirror://gnu/mirrored.tar.gz'], files.mirrored, {
      resolvedUrls: [`http://127.0.0.1:${dead}/gnu/mirrored.tar.gz`, nginx.url('/mirrored.tar.gz')],
    });
    add('shared-a', [nginx.url('/shared.tar.gz')], files.shared);
    add('shared-b', [nginx.url('/shared.tar.gz?again')], files.shared);
    add('git-source', ['https://example.invalid/repo.git'], 'x', { kind: 'git', mode: 'recursive' });
    add('with-postfetch', [nginx.url('/nginx.tar.gz')], 'x', { postFetch: true });
    // a partial download left by an earlier run: fetch resumes it with a Range request
    const ranged = crawl.addFod({ name: 'ranged', urls: [nginx.url('/ranged.tar.gz')], content: files.ranged });
    drv.ranged = ranged;
    const work = join(mirrorDir, 'tmp', `sha256-${hashHex('sha256', files.ranged)}`);
    mkdirSync(work, { recursive: true });
    writeFileSync(join(work, 'download'), files.ranged.subarray(0, 600_000));

    summary = await runFetch({ db: crawl.db, mirrorDir, kinds: ['url', 'git'], retryFailed: false, network: net, cache: FLAT_CACHE, nix: null });
  }, 60_000);

  afterAll(async () => {
    crawl?.close();
    await Promise.all([node?.close(), nginx?.close(), ftp?.close()]);
  });

  const attempts = (name: string) =>
    crawl.db.prepare(`SELECT * FROM fetch_attempts WHERE drv_path = ? ORDER BY id`).all(drv[name]) as {
      outcome: string;
      http_status: number | null;
      url_index: number;
      try: number;
      resumed_from: number | null;
      actual_hex: string | null;
      final_url: string | null;
      bytes: number;
    }[];
  const verdict = (name: string) =>
    (crawl.db.prepare(`SELECT verdict FROM fetch_results WHERE drv_path = ?`).get(drv[name]) as { verdict: string } | undefined)?.verdict;
  const stored = (algo: string, hex: string) => existsSync(join(mirrorDir, 'tarballs', algo, hex));

  test('a 200 is stored once under sha512/<hex> with every alias as a hard link', () => {
    expect(attempts('ok').map((a) => a.outcome)).toEqual(['ok']);
    const d = Object.fromEntries((['md5', 'sha1', 'sha256', 'sha512'] as const).map((a) => [a, hashHex(a, files.ok)]));
    const names = [
      `sha512/${d.sha512}`,
      `sha256/${d.sha256}`,
      `sha1/${d.sha1}`,
      `md5/${d.md5}`,
      `sha256/${encodeNix32(Buffer.from(d.sha256, 'hex'))}`,
      `sha512/${encodeNix32(Buffer.from(d.sha512, 'hex'))}`,
    ];
    const inodes = new Set(names.map((n) => statSync(join(mirrorDir, 'tarballs', n)).ino));
    expect(inodes.size).toBe(1);
    expect(statSync(join(mirrorDir, 'tarballs', names[0])).nlink).toBe(6);
    expect(readFileSync(join(mirrorDir, 'tarballs', names[0]))).toEqual(files.ok);
  });

  test('a file over 1 MiB is hashed by the worker threads and verifies against a sha512 declaration', () => {
    expect(verdict('big')).toBe('ok');
    expect(stored('sha512', hashHex('sha512', files.big))).toBe(true);
    expect(stored('md5', hashHex('md5', files.big))).toBe(true);
  });

  test('retries a 500 but not a 404 or a 410', () => {
    expect(attempts('missing').map((a) => [a.outcome, a.http_status])).toEqual([['http-404', 404]]);
    expect(attempts('gone').map((a) => [a.outcome, a.http_status])).toEqual([['http-410', 410]]);
    expect(attempts('flaky').map((a) => a.outcome)).toEqual(['http-5xx', 'ok']);
    expect(attempts('busy').map((a) => a.outcome)).toEqual(['http-5xx', 'http-5xx', 'http-5xx']);
    expect(verdict('flaky')).toBe('ok');
    expect(verdict('busy')).toBe('dead');
  });

  test('a connection reset mid-body is "reset", retried, and resumed with a Range request when the server allows', () => {
    expect(attempts('reset').map((a) => a.outcome)).toEqual(['reset', 'reset', 'reset']);
    const r = attempts('resumable');
    // after 1 MiB in flight the kernel may report the RST as an early close: either way a transient break
    expect(['reset', 'truncated']).toContain(r[0].outcome);
    expect(r[1].outcome).toBe('ok');
    expect(r.length).toBe(2);
    expect(r[1].resumed_from).toBeGreaterThan(0);
    expect(r[1].resumed_from).toBe(r[0].bytes);
    expect(r[1].bytes).toBe(files.resumable.length - r[0].bytes);
    expect(stored('sha256', hashHex('sha256', files.resumable))).toBe(true);
  });

  test('a body shorter than its Content-Length is "truncated"', () => {
    expect(attempts('short').map((a) => a.outcome)).toEqual(['truncated', 'truncated', 'truncated']);
  });

  test('a stall longer than the idle timeout is "timeout"', () => {
    expect(attempts('stall').map((a) => a.outcome)).toEqual(['timeout', 'timeout', 'timeout']);
  });

  test('wrong bytes are a hash mismatch with the actual hash recorded, and not retried', () => {
    const a = attempts('wrong');
    expect(a.map((x) => x.outcome)).toEqual(['hash-mismatch']);
    expect(a[0].actual_hex).toBe(hashHex('sha256', 'this is not the tarball you are looking for'));
    expect(verdict('wrong')).toBe('broken-hash');
    expect(stored('sha256', a[0].actual_hex!)).toBe(false);
  });

  test('a body over the size cap is "too-large" without being downloaded', () => {
    const a = attempts('too-large');
    expect(a.map((x) => x.outcome)).toEqual(['too-large']);
    expect(a[0].bytes).toBe(0);
  });

  test('a gzip Content-Encoding on a tarball is not decoded: the bytes are hashed as sent', () => {
    expect(attempts('gzip-encoded').map((a) => a.outcome)).toEqual(['ok']);
    const kept = readFileSync(join(mirrorDir, 'tarballs', 'sha256', hashHex('sha256', files.tarball)));
    expect(kept.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(kept).toEqual(files.tarball);
  });

  test('nginx: redirects are followed, a redirect loop and a redirect to file:// are refused', () => {
    const chained = attempts('chained');
    expect(chained.map((a) => a.outcome)).toEqual(['ok']);
    expect(chained[0].final_url).toBe(nginx.url('/chained.tar.gz'));
    expect(stored('md5', hashHex('md5', files.chained))).toBe(true);
    expect(attempts('loop').map((a) => [a.outcome, a.http_status])).toEqual([['redirect-loop', 302]]);
    expect(attempts('to-file').map((a) => a.outcome)).toEqual(['refused-scheme']);
    expect(attempts('nginx').map((a) => a.outcome)).toEqual(['ok']);
  });

  test('a file:// URL is refused without being read', () => {
    expect(attempts('file-url').map((a) => a.outcome)).toEqual(['refused-scheme']);
    expect(verdict('file-url')).toBe('dead');
  });

  test('nginx: a partial file from an earlier run is resumed with a Range request', () => {
    const a = attempts('ranged');
    expect(a.map((x) => [x.outcome, x.http_status, x.resumed_from])).toEqual([['ok', 206, 600_000]]);
    expect(stored('sha256', hashHex('sha256', files.ranged))).toBe(true);
  });

  test('ftp: a file is fetched, a missing one is "ftp-not-found"', () => {
    expect(attempts('ftp').map((a) => a.outcome)).toEqual(['ok']);
    expect(stored('sha256', hashHex('sha256', files.ftp))).toBe(true);
    expect(attempts('ftp-missing').map((a) => a.outcome)).toEqual(['ftp-not-found']);
  });

  test('a mirror:// URL whose first mirror is dead is fetched from the next one', () => {
    const a = attempts('mirror-first-dead');
    expect(a.map((x) => [x.url_index, x.outcome])).toEqual([
      [0, 'connect'],
      [0, 'connect'],
      [0, 'connect'],
      [1, 'ok'],
    ]);
    expect(verdict('mirror-first-dead')).toBe('ok');
  });

  test('two sources with the same hash are downloaded once', () => {
    expect(attempts('shared-a').length + attempts('shared-b').length).toBe(1);
    expect(summary.alreadyMirrored).toBe(1);
  });

  test('sources no plug-in reproduces are recorded unverifiable with the reason, not tried and not failed', () => {
    expect(summary.unverifiable).toEqual({ 'not-exact': 1, 'custom-postFetch': 1 });
    expect(attempts('git-source')).toEqual([]);
    expect(attempts('with-postfetch')).toEqual([]);
    const row = crawl.db.prepare(`SELECT verdict, reason, plugin, message FROM fetch_results WHERE drv_path = ?`).get(drv['with-postfetch']);
    expect(row).toEqual({ verdict: 'unverifiable', reason: 'custom-postFetch', plugin: null, message: expect.stringMatching(/^url: has a postFetch/) });
  });

  test('the summary adds up', () => {
    expect(summary.mirrored).toBe(11);
    expect(summary.dead).toBe(11);
    expect(summary.brokenHash).toBe(1);
    const unverifiable = Object.values(summary.unverifiable).reduce((a, b) => a + b, 0);
    expect(summary.mirrored + summary.alreadyMirrored + summary.dead + summary.brokenHash + unverifiable + summary.skipped.failedBefore).toBe(summary.fods);
    expect(summary.byKind.url).toEqual({ fods: 25, mirrored: 11, alreadyMirrored: 1, dead: 11, brokenHash: 1, unverifiable: 1, failedBefore: 0 });
    expect(summary.mirroredBy).toEqual({ url: 11 });
  });

  test("every mirrored file is in the binary cache too, under its FOD's store path", () => {
    expect(summary.published).toBe(12);
    const infos = readdirSync(join(mirrorDir, 'cache')).filter((n) => n.endsWith('.narinfo'));
    expect(infos).toHaveLength(12);
  });

  test('nothing unverified is in the mirror, and no temp file is left', async () => {
    const v = await verifyMirror(mirrorDir);
    expect(v.corrupt).toEqual([]);
    expect(v.files).toBe(11);
    expect(v.names).toBe(66);
    expect(readdirSync(join(mirrorDir, 'tmp'))).toEqual([]);
  });

  test('the report lists exactly the broken and the dead ones, and the rotting one', () => {
    const r = buildReport(crawl.db, { save: false });
    const names = (l: { fod: { name: string } }[]) => l.map((e) => e.fod.name).sort();
    expect(names(r.brokenHashes)).toEqual(['wrong']);
    expect(names(r.dead)).toEqual(['busy', 'file-url', 'ftp-missing', 'gone', 'loop', 'missing', 'reset', 'short', 'stall', 'to-file', 'too-large']);
    expect(names(r.rotting)).toEqual(['mirror-first-dead']);
    const wrong = r.brokenHashes[0];
    expect(wrong.expected.hex).toBe(hashHex('sha256', 'the real tarball'));
    expect(wrong.actual.hex).toBe(hashHex('sha256', 'this is not the tarball you are looking for'));
    expect(wrong.actual.sri).toMatch(/^sha256-/);
    const missing = r.dead.find((e) => e.fod.name === 'missing')!;
    expect(missing.urls).toEqual([{ url: node.url('/missing.tar.gz'), outcome: 'http-404', httpStatus: 404, message: 'HTTP 404' }]);
    expect(r.summary).toEqual({ fods: 26, mirrored: 12, brokenHash: 1, dead: 11, rotting: 1, unfetched: 0, unverifiable: 2, evalErrors: 0 });
    expect(r.unverifiable.map((e) => [e.fod.name, e.reason])).toEqual([
      ['with-postfetch', 'custom-postFetch'],
      ['git-source', 'not-exact'],
    ]);
  });
});
