import { createHash } from 'node:crypto';
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { encodeNix32, hashSizes, HASH_ALGOS, nix32Length, type HashAlgo } from '../nix-formats/hash.js';
import { createHashPool, type HashPool } from './hashing.js';
import { parseNarInfo } from '../nix-formats/narinfo.js';
import { FLAT_NARINFO_DIR } from './flat-nar.js';
import { cacheEntryProblem } from './cache-entry.js';
import type { Digests } from './types.js';
import { aliasNames, createHashedMirror } from './hashed-mirror.js';
import { eachAtOnce } from './at-once.js';

export interface CorruptName {
  /** `<algo>/<name>` under tarballs/ */
  name: string;
  expected: string;
  actual: string;
  /** where it was moved, relative to the mirror */
  movedTo: string;
}

export interface BadNarInfo {
  /** `cache/flat/<hash>.narinfo` */
  name: string;
  /** what is wrong */
  reason: string;
  /** where it was moved, relative to the mirror */
  movedTo: string;
}

export interface VerifyResult {
  mirror: string;
  /** distinct files (inodes) hashed */
  files: number;
  /** names checked */
  names: number;
  bytes: number;
  corrupt: CorruptName[];
  /** names under tarballs/ that are not a hash spelling fodder writes; left alone */
  foreign: string[];
  /** alias links that were missing and were made again */
  repaired: number;
  /** flat sources' narinfos (`cache/flat/`) checked against their tarball */
  narInfos: number;
  /** those that do not describe their tarball's NAR (or whose tarball is gone), moved to quarantine */
  badNarInfos: BadNarInfo[];
  durationMs: number;
}

/** The encoding a name in an algorithm's directory uses, or null when it is none of ours. */
function nameEncoding(algo: HashAlgo, name: string): 'hex' | 'nix32' | null {
  const size = hashSizes[algo];
  if (name.length === size * 2 && /^[0-9a-f]+$/.test(name)) return 'hex';
  if (name.length === nix32Length(size) && /^[0-9abcdfghijklmnpqrsvwxyz]+$/.test(name) && (algo === 'sha256' || algo === 'sha512')) return 'nix32';
  return null;
}

const spell = (hex: string, enc: 'hex' | 'nix32') => (enc === 'hex' ? hex : encodeNix32(Buffer.from(hex, 'hex')));

/**
 * Re-hashes every file in the mirror (once per inode, all four algorithms) and checks every
 * name against it. A name whose content does not have its hash is moved to
 * `DIR/quarantine/<timestamp>/<algo>/<name>`; a file that verifies gets any missing alias back.
 */
export async function verifyMirror(dir: string, onProgress?: (done: number, total: number) => void): Promise<VerifyResult> {
  const t0 = Date.now();
  const mirror = createHashedMirror(dir, { create: false });
  mirror.lock();
  const pool = createHashPool();
  const result: VerifyResult = {
    mirror: mirror.root,
    files: 0,
    names: 0,
    bytes: 0,
    corrupt: [],
    foreign: [],
    repaired: 0,
    narInfos: 0,
    badNarInfos: [],
    durationMs: 0,
  };
  try {
    const groups = new Map<string, { size: number; names: { algo: HashAlgo; name: string; enc: 'hex' | 'nix32' }[] }>();
    for (const algo of HASH_ALGOS) {
      for (const name of readdirSync(join(mirror.tarballs, algo))) {
        const enc = nameEncoding(algo, name);
        const st = lstatSync(join(mirror.tarballs, algo, name));
        if (!enc || !st.isFile()) {
          result.foreign.push(`${algo}/${name}`);
          continue;
        }
        const key = `${st.dev}:${st.ino}`;
        const g = groups.get(key) ?? { size: st.size, names: [] };
        g.names.push({ algo, name, enc });
        groups.set(key, g);
      }
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const entries = [...groups.values()];
    let done = 0;
    const check = async (g: (typeof entries)[number]) => {
      const first = join(mirror.tarballs, g.names[0].algo, g.names[0].name);
      const digests: Digests = g.size <= 1 << 20 ? hashSmall(readFileSync(first)) : await pool.trailing(first).finish(g.size);
      result.files++;
      result.bytes += g.size;
      let good = 0;
      for (const n of g.names) {
        result.names++;
        const actual = spell(digests[n.algo], n.enc);
        if (actual === n.name) {
          good++;
          continue;
        }
        const qdir = join(mirror.root, 'quarantine', stamp, n.algo);
        mkdirSync(qdir, { recursive: true });
        renameSync(join(mirror.tarballs, n.algo, n.name), join(qdir, n.name));
        result.corrupt.push({ name: `${n.algo}/${n.name}`, expected: n.name, actual, movedTo: `quarantine/${stamp}/${n.algo}/${n.name}` });
      }
      if (good > 0 && good === g.names.length) {
        // the content is right: make sure it answers to every alias
        const names = aliasNames(digests);
        const stored = join(mirror.tarballs, g.names[0].algo, g.names[0].name);
        for (const a of names) {
          const p = join(mirror.tarballs, a.algo, a.name);
          if (!existsSync(p)) {
            linkSync(stored, p);
            result.repaired++;
          }
        }
      }
      onProgress?.(++done, entries.length);
    };
    // a few files at a time: small ones hash on this thread, big ones on the pool's threads
    await eachAtOnce(entries, 4, check);
    await mirror.syncDirs();
    await verifyFlatNarInfos(mirror.root, stamp, pool, result);
  } finally {
    await pool.close();
    mirror.unlock();
  }
  result.durationMs = Date.now() - t0;
  return result;
}

/**
 * Checks every flat source's narinfo against its tarball (after the tarballs were checked, so a
 * corrupt one is gone): the file its URL names must exist and its NAR have the narinfo's NarHash
 * and NarSize. A narinfo that fails is moved to `quarantine/<stamp>/cache/flat/`; the next fetch
 * writes it again once the file is back.
 */
async function verifyFlatNarInfos(root: string, stamp: string, pool: HashPool, result: VerifyResult): Promise<void> {
  const dir = join(root, 'cache', FLAT_NARINFO_DIR);
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.narinfo'))) {
    result.narInfos++;
    const reason = await flatNarInfoProblem(root, name, pool);
    if (!reason) continue;
    const qdir = join(root, 'quarantine', stamp, 'cache', FLAT_NARINFO_DIR);
    mkdirSync(qdir, { recursive: true });
    renameSync(join(dir, name), join(qdir, name));
    result.badNarInfos.push({ name: `cache/${FLAT_NARINFO_DIR}/${name}`, reason, movedTo: `quarantine/${stamp}/cache/${FLAT_NARINFO_DIR}/${name}` });
  }
}

/** What is wrong with a flat source's narinfo, or null when it describes its tarball's NAR (src/mirror/cache-entry.ts). */
async function flatNarInfoProblem(root: string, name: string, pool: HashPool): Promise<string | null> {
  const path = `cache/${FLAT_NARINFO_DIR}/${name}`;
  let info;
  try {
    info = parseNarInfo(readFileSync(join(root, path), 'utf8'));
  } catch (e) {
    return (e as Error).message;
  }
  return cacheEntryProblem(root, path, info, pool);
}

function hashSmall(data: Buffer): Digests {
  return Object.fromEntries(HASH_ALGOS.map((a) => [a, createHash(a).update(data).digest('hex')])) as Digests;
}
