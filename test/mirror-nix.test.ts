/**
 * Real Nix uses the mirror: flat FODs with `builtin:fetchurl` are fetched by fodder from a
 * loopback server, the server is stopped, and Nix realises them in fresh chroot stores with no
 * substituters, through `hashed-mirrors` alone: once as a file:// URL, once served by nginx.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNix32 } from '../src/nix-formats/hash.js';
import { NETWORK_DEFAULTS } from '../src/fetch/network.js';
import { runFetch } from '../src/fetch/run.js';
import { createTestCrawl, FLAT_CACHE, hashHex } from './helpers/fetch-db.js';
import { startHttp, startNginx, type Running } from './helpers/servers.js';

interface Case {
  name: string;
  body: Buffer;
  algo: 'md5' | 'sha1' | 'sha256' | 'sha512';
  hashExpr: (hex: string) => { algo: string; hash: string };
}

const cases: Case[] = [
  { name: 'plain-sha256.tar.gz', body: Buffer.from('sha256 in base16\n'.repeat(300)), algo: 'sha256', hashExpr: (hex) => ({ algo: 'sha256', hash: hex }) },
  {
    name: 'nix32-sha256.tar.gz',
    body: Buffer.from('sha256 in nix32\n'.repeat(300)),
    algo: 'sha256',
    hashExpr: (hex) => ({ algo: 'sha256', hash: encodeNix32(Buffer.from(hex, 'hex')) }),
  },
  {
    name: 'sri-sha512.tar.gz',
    body: Buffer.from('sha512 as SRI\n'.repeat(300)),
    algo: 'sha512',
    hashExpr: (hex) => ({ algo: '', hash: `sha512-${Buffer.from(hex, 'hex').toString('base64')}` }),
  },
  { name: 'old-sha1.tar.gz', body: Buffer.from('sha1, as old packages have\n'.repeat(300)), algo: 'sha1', hashExpr: (hex) => ({ algo: 'sha1', hash: hex }) },
];

function nix(args: string[]): string {
  return execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}

describe('real Nix realises flat FODs from the mirror alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fodder-nix-'));
  const mirrorDir = join(dir, 'mirror');
  let upstream: Running;
  let drvs: string[] = [];

  beforeAll(async () => {
    upstream = await startHttp((req, res) => {
      const c = cases.find((x) => req.url === `/${x.name}`);
      if (!c) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-length': c.body.length });
      res.end(c.body);
    });
    const expr = `[
${cases
  .map((c) => {
    const h = c.hashExpr(hashHex(c.algo, c.body));
    const url = upstream.url(`/${c.name}`);
    return `  (derivation { name = "${c.name}"; system = "builtin"; builder = "builtin:fetchurl";
    url = "${url}"; urls = [ "${url}" ]; outputHashMode = "flat"; outputHashAlgo = "${h.algo}"; outputHash = "${h.hash}";
    unpack = false; executable = false; })`;
  })
  .join('\n')}
]`;
    writeFileSync(join(dir, 'fods.nix'), expr);
    const instStore = join(dir, 'store-instantiate');
    drvs = nix(['nix-instantiate', '--store', instStore, join(dir, 'fods.nix')])
      .trim()
      .split('\n');
    expect(drvs).toHaveLength(cases.length);

    // the crawl's view of these FODs, then fodder fetches them from the live server
    const crawl = createTestCrawl(join(dir, 'fodder.db'));
    for (const c of cases) crawl.addFod({ name: c.name, urls: [upstream.url(`/${c.name}`)], content: c.body, algo: c.algo });
    const s = await runFetch({
      db: crawl.db,
      mirrorDir,
      kinds: ['url'],
      retryFailed: false,
      network: { ...NETWORK_DEFAULTS, retries: 0 },
      cache: FLAT_CACHE,
      nix: null,
    });
    crawl.close();
    expect(s.mirrored).toBe(cases.length);
    await upstream.close(); // from here on the original URLs are dead
  }, 120_000);

  afterAll(async () => {
    await upstream?.close();
  });

  const realise = (store: string, mirrorUrl: string, extra: string[] = []) => {
    // the .drv files are copied into a fresh store by instantiating again there
    const fresh = nix(['nix-instantiate', '--store', store, join(dir, 'fods.nix')])
      .trim()
      .split('\n');
    expect(fresh).toEqual(drvs);
    const outs = nix([
      'nix-store',
      '--store',
      store,
      '--realise',
      ...fresh,
      '--option',
      'hashed-mirrors',
      mirrorUrl,
      '--option',
      'substituters',
      '',
      '--option',
      'connect-timeout',
      '2',
      ...extra,
    ])
      .trim()
      .split('\n');
    return outs.map((o) => readFileSync(join(store, o)));
  };

  test('as a file:// hashed mirror (the mirror dir made visible in the build chroot)', () => {
    const store = join(dir, 'store-file');
    const got = realise(store, `file://${mirrorDir}/tarballs/`, ['--option', 'extra-sandbox-paths', mirrorDir]);
    expect(got).toEqual(cases.map((c) => c.body));
  }, 120_000);

  test('as an http:// hashed mirror served by nginx', async () => {
    const nginx = await startNginx(mirrorDir);
    try {
      const store = join(dir, 'store-http');
      const got = realise(store, nginx.url('/tarballs/'));
      expect(got).toEqual(cases.map((c) => c.body));
    } finally {
      await nginx.close();
    }
  }, 120_000);
});
