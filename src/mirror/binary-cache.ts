/**
 * The mirror as a Nix binary cache of FOD outputs, in `DIR/cache`: `nix-cache-info`,
 * `<hash>.narinfo` per output and `nar/<filehash>.nar[.xz|.zst]`. A machine with
 * `substituters = file://DIR/cache` then substitutes sources directly, with no curl, git or
 * stdenv. Every output is checked before it is published: its store path must follow from the
 * declared hash and name, and its content must have the declared hash (NAR hash for recursive
 * FODs, file hash for flat ones). NAR files are written to a temporary name and renamed; the
 * narinfo is written last, the same way, so a reader never sees an entry whose NAR is missing.
 *
 * Flat sources get an entry whose NAR is made from their file in `tarballs/` when it is asked
 * for (`addFlat`, src/mirror/flat-nar.ts): `cache/flat/<hash>.narinfo`, served by `fodder
 * serve`; with `flat` on, they get a real NAR copy in the cache too (`addFile`), for a cache read
 * without `fodder serve`.
 *
 * Signing: with a secret key (Nix's `name:base64` format) every narinfo carries a `Sig` over
 * `1;<storePath>;<narHash>;<narSize>;` (FODs have no references). Nix accepts a narinfo whose
 * `CA` matches its store path without any signature (the content address is checked instead);
 * see docs/binary-cache.md.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, FodderError } from '../errors.js';
import { startProcess } from '../process.js';
import { toNix32, type HashValue } from '../nix-formats/hash.js';
import { fodStorePath } from '../nix-formats/store-path.js';
import type { Fod } from '../graph/types.js';
import type { FetchedOutput } from './types.js';
import { narHash, narOfFile, narStream } from '../nix-formats/nar.js';
import {
  fixedOutputCa,
  formatNarInfo,
  narInfoFileName,
  narInfoFingerprint,
  nixCacheInfo,
  parseNarInfo,
  publicKeyOf,
  signNarInfo,
  type NarInfo,
} from '../nix-formats/narinfo.js';
import { writeNarFile, type WrittenNar } from './nar-file.js';
import { FLAT_NARINFO_DIR, flatNarSource, flatNarUrl } from './flat-nar.js';
import { narSourceOfUrl } from './cache-entry.js';
import { fileDigest, flatNarDigests, type HashPool } from './hashing.js';
import { writeAtomic } from './hashed-mirror.js';

/** The ErrorCodes of the binary cache, by shorter names (src/errors.ts says what each means). */
export const CacheErrorCode = {
  HASH_MISMATCH: ErrorCode.CACHE_HASH_MISMATCH,
  PATH_MISMATCH: ErrorCode.CACHE_PATH_MISMATCH,
  OPTIONS_INVALID: ErrorCode.CACHE_OPTIONS_INVALID,
} as const;

export type CacheCompression = 'none' | 'xz' | 'zstd';

export interface BinaryCacheOptions {
  /** the mirror directory; the cache is `<mirrorDir>/cache` */
  mirrorDir: string;
  compression: CacheCompression;
  /** the compressor's level; absent: the tool's own default (xz 6, zstd 3) */
  level?: number;
  /** the secret key itself (`name:base64`), or null for an unsigned cache */
  secretKey: string | null;
  /** the priority nix-cache-info announces */
  priority: number;
  /**
   * whether flat sources get a real NAR copy in the cache (`addFile`) besides the entry made
   * from their file (`addFlat`); the cache itself takes whatever it is given
   */
  flat: boolean;
  /** threads that hash large flat files for `addFlat`; absent: hashed on the calling thread */
  hashPool?: HashPool;
}

/** What one published entry is. */
export interface CacheEntry {
  storePath: string;
  narInfoFile: string;
  url: string;
  narHash: HashValue;
  narSize: number;
  fileSize: number;
  signed: boolean;
  /** the entry was there already and nothing was written */
  existed: boolean;
}

export interface BinaryCache {
  readonly dir: string;
  /** the public key narinfos are signed for, or null */
  readonly publicKey: string | null;
  /** `flat`: flat sources get a real NAR copy too */
  readonly copiesFlat: boolean;
  narInfoPath(storePath: string): string;
  /** the narinfo of a flat source whose NAR `fodder serve` makes from its file (`cache/flat/<hash>.narinfo`) */
  flatNarInfoPath(storePath: string): string;
  /** a complete entry (narinfo and its NAR file) exists for the FOD's output in the cache itself, signed or not */
  has(fod: Fod): boolean;
  /**
   * whether the FOD has every entry it should (a tree: its entry; a flat source: the one made
   * from its file, and with `flat` its copy too), and whether one lacks a signature by the key
   * now configured, in one read
   */
  state(fod: Fod): 'absent' | 'needs-signature' | 'complete';
  /** signs the FOD's existing entries with the key now configured where they lack that signature; null when there is none */
  sign(fod: Fod): Promise<CacheEntry | null>;
  /** publishes a recursive FOD's output tree */
  addTree(fod: Fod, path: string): Promise<CacheEntry>;
  /**
   * publishes a flat FOD's output file (e.g. the hashed mirror's copy). `digests`: the file's
   * hashes as already verified by the caller (the fetch stage hashed it while downloading);
   * without them the file is hashed again before anything is published.
   */
  addFile(fod: Fod, path: string, digests?: Partial<Record<Fod['hash']['algo'], string>>): Promise<CacheEntry>;
  /**
   * publishes a flat FOD's file held by the hashed mirror (`tarballs/<algo>/<hex>`) with no
   * copy: a narinfo whose NAR `fodder serve` makes from the file. The file is read once, for its
   * NAR hash and sha256 (checked against the declared hash when that is a sha256, and against
   * `digests.sha256` when given). Throws MIRROR_MISSING when the mirror lacks the file.
   */
  addFlat(fod: Fod, digests?: Partial<Record<Fod['hash']['algo'], string>>): Promise<CacheEntry>;
  /** publishes what a fetch plug-in produced */
  addOutput(fod: Fod, output: FetchedOutput): Promise<CacheEntry>;
  /**
   * Removes the temporary files of writes that never finished (a killed process). Only while
   * no other process writes to the cache (the mirror's lock).
   */
  removeLeftovers(): void;
}

/** Whether a FOD's output can be published: its out path must follow from its hash and name. */
export function publishable(fod: Fod): boolean {
  try {
    return fodStorePath(fod.hash, fod.name) === fod.outPath;
  } catch {
    return false;
  }
}

export function createBinaryCache(options: BinaryCacheOptions): BinaryCache {
  const dir = resolve(options.mirrorDir, 'cache');
  const { compression, secretKey } = options;
  const publicKey = secretKey ? publicKeyOf(secretKey) : null;
  const narInfoPath = (storePath: string) => join(dir, narInfoFileName(storePath));
  const flatNarInfoPath = (storePath: string) => join(dir, FLAT_NARINFO_DIR, narInfoFileName(storePath));
  const mirrorDir = resolve(options.mirrorDir);

  let ready: Promise<void> | null = null;
  const prepare = () =>
    (ready ??= (async () => {
      await mkdir(join(dir, 'nar'), { recursive: true });
      await mkdir(join(dir, FLAT_NARINFO_DIR), { recursive: true });
      const info = join(dir, 'nix-cache-info');
      if (!existsSync(info)) await writeAtomic(info, nixCacheInfo({ wantMassQuery: true, priority: options.priority }));
    })());

  const storePathOf = (fod: Fod): string => {
    const path = fodStorePath(fod.hash, fod.name);
    if (path !== fod.outPath) {
      throw new FodderError(CacheErrorCode.PATH_MISMATCH, `${fod.drvPath}: ${fod.outPath} does not follow from its hash and name (${path})`, {
        drvPath: fod.drvPath,
        outPath: fod.outPath,
        computed: path,
      });
    }
    return path;
  };

  /**
   * The complete entry of a store path (its narinfo parses and its NAR file exists; `flat`: the
   * entry made from a file of the mirror, whose file exists), or null.
   */
  const readEntry = (storePath: string, flat = false): { file: string; info: NarInfo } | null => {
    const file = flat ? flatNarInfoPath(storePath) : narInfoPath(storePath);
    if (!existsSync(file)) return null;
    try {
      const info = parseNarInfo(readFileSync(file, 'utf8'));
      const source = flat ? narSourceOfUrl(info.url) : null;
      const nar = flat ? (source?.type === 'flat' ? join(mirrorDir, source.path) : null) : join(dir, info.url);
      return nar && existsSync(nar) ? { file, info } : null;
    } catch {
      return null;
    }
  };
  /**
   * true when no key is configured, or a signature by the key's name is there. By name only: a
   * cache holds many entries and every run looks at each, so signatures are not verified here
   * (a narinfo written by fodder under that name carries a good one; clients verify).
   */
  const keyName = publicKey ? publicKey.split(':')[0] : null;
  const signedByKey = (info: NarInfo): boolean => !keyName || info.sigs.some((sig) => sig.startsWith(`${keyName}:`));
  const entryOf = (storePath: string, file: string, info: NarInfo, existed: boolean): CacheEntry => ({
    storePath,
    narInfoFile: file,
    url: info.url,
    narHash: info.narHash,
    narSize: info.narSize,
    fileSize: info.fileSize ?? 0,
    signed: info.sigs.length > 0,
    existed,
  });

  /** The complete entry of a store path, signed by the key now configured (its narinfo is re-signed when it is not), or null. */
  const existing = async (storePath: string, flat = false): Promise<CacheEntry | null> => {
    const e = readEntry(storePath, flat);
    if (!e) return null;
    if (signedByKey(e.info)) return entryOf(storePath, e.file, e.info, true);
    e.info.sigs = [...e.info.sigs.filter((sig) => !sig.startsWith(`${keyName}:`)), signNarInfo(narInfoFingerprint(e.info), secretKey!)];
    await writeAtomic(e.file, formatNarInfo(e.info));
    return entryOf(storePath, e.file, e.info, false);
  };

  /** Writes the NAR, checks it, then the narinfo. `check` throws to withdraw the NAR. */
  const publish = async (
    fod: Fod,
    storePath: string,
    source: string,
    flatFile: boolean,
    check: (nar: WrittenCacheNar) => Promise<void>,
  ): Promise<CacheEntry> => {
    await prepare();
    const nar = await writeNar(source, dir, compression, { flatFile, level: options.level });
    try {
      await check(nar);
    } catch (e) {
      await rm(join(dir, nar.url), { force: true });
      throw e;
    }
    const info: NarInfo = {
      storePath,
      url: nar.url,
      compression: nar.compression,
      fileHash: nar.fileHash,
      fileSize: nar.fileSize,
      narHash: nar.narHash,
      narSize: nar.narSize,
      references: [],
      deriver: basename(fod.drvPath),
      ca: fixedOutputCa(fod.hash),
      sigs: [],
    };
    return writeEntry(narInfoPath(storePath), info);
  };

  /** Signs (with a key) and writes a new narinfo. */
  const writeEntry = async (file: string, info: NarInfo): Promise<CacheEntry> => {
    if (secretKey) info.sigs.push(signNarInfo(narInfoFingerprint(info), secretKey));
    await writeAtomic(file, formatNarInfo(info));
    return entryOf(info.storePath, file, info, false);
  };

  /** The entries a flat FOD should have: the one made from its file, and with `flat` its copy. */
  const flatEntries = (storePath: string) => [readEntry(storePath, true), ...(options.flat ? [readEntry(storePath)] : [])];

  const mismatch = (fod: Fod, actual: string) =>
    new FodderError(
      CacheErrorCode.HASH_MISMATCH,
      `${fod.name}: content has ${fod.hash.mode === 'flat' ? '' : 'NAR '}${fod.hash.algo}:${actual}, declared ${fod.hash.algo}:${fod.hash.hex}; not published`,
      { drvPath: fod.drvPath, expected: fod.hash.hex, actual },
    );

  const cache: BinaryCache = {
    dir,
    publicKey,
    copiesFlat: options.flat,
    narInfoPath,
    flatNarInfoPath,
    state(fod) {
      const entries = fod.hash.mode === 'flat' ? flatEntries(fod.outPath) : [readEntry(fod.outPath)];
      if (entries.some((e) => e === null)) return 'absent';
      return entries.every((e) => signedByKey(e!.info)) ? 'complete' : 'needs-signature';
    },
    has(fod) {
      return readEntry(fod.outPath) !== null;
    },
    async sign(fod) {
      const storePath = storePathOf(fod);
      if (fod.hash.mode !== 'flat') return existing(storePath);
      const copy = await existing(storePath);
      return (await existing(storePath, true)) ?? copy;
    },
    async addTree(fod, path) {
      if (fod.hash.mode !== 'recursive') throw mismatch(fod, '(a tree for a flat hash)');
      const storePath = storePathOf(fod);
      const have = await existing(storePath);
      if (have) return have;
      const other = fod.hash.algo === 'sha256' ? null : await narHash(path, fod.hash.algo);
      return publish(fod, storePath, path, false, async (nar) => {
        const actual = other ? other.hex : nar.narHash.hex;
        if (actual !== fod.hash.hex) throw mismatch(fod, actual);
      });
    },
    async addFile(fod, path, digests) {
      if (fod.hash.mode !== 'flat') throw mismatch(fod, '(a file for a recursive hash)');
      const storePath = storePathOf(fod);
      const have = await existing(storePath);
      if (have) return have;
      const actual = digests?.[fod.hash.algo] ?? (await fileDigest(path, fod.hash.algo));
      if (actual !== fod.hash.hex) throw mismatch(fod, actual);
      return publish(fod, storePath, path, true, async () => undefined);
    },
    async addFlat(fod, digests) {
      if (fod.hash.mode !== 'flat') throw mismatch(fod, '(a file for a recursive hash)');
      const storePath = storePathOf(fod);
      const have = await existing(storePath, true);
      if (have) return have;
      const path = join(mirrorDir, 'tarballs', fod.hash.algo, fod.hash.hex);
      let size: number;
      try {
        size = statSync(path).size;
      } catch {
        throw new FodderError(ErrorCode.MIRROR_MISSING, `${fod.name}: the hashed mirror has no file ${fod.hash.algo}/${fod.hash.hex}`, {
          drvPath: fod.drvPath,
          path,
        });
      }
      const d = await flatNarDigests(path, size, options.hashPool);
      if (fod.hash.algo === 'sha256' && d.sha256 !== fod.hash.hex) throw mismatch(fod, d.sha256);
      if (digests?.sha256 && d.sha256 !== digests.sha256) throw mismatch(fod, `sha256:${d.sha256} (the download had ${digests.sha256})`);
      if (!existsSync(flatNarSource(mirrorDir, d.sha256))) throw mismatch(fod, `sha256:${d.sha256} (no tarballs/sha256 name for it)`);
      await prepare();
      const narHash: HashValue = { algo: 'sha256', hex: d.narHash };
      return writeEntry(flatNarInfoPath(storePath), {
        storePath,
        url: flatNarUrl(d.sha256),
        compression: 'none',
        fileHash: narHash,
        fileSize: d.narSize,
        narHash,
        narSize: d.narSize,
        references: [],
        deriver: basename(fod.drvPath),
        ca: fixedOutputCa(fod.hash),
        sigs: [],
      });
    },
    addOutput(fod, output) {
      return output.type === 'tree' ? cache.addTree(fod, output.path) : cache.addFile(fod, output.path, output.digests);
    },
    removeLeftovers() {
      const leftovers = (d: string, re: RegExp) =>
        existsSync(d)
          ? readdirSync(d)
              .filter((n) => re.test(n))
              .map((n) => join(d, n))
          : [];
      const narinfos = /\.tmp-[0-9a-f]+$/;
      for (const f of [...leftovers(join(dir, 'nar'), /^\.tmp-/), ...leftovers(dir, narinfos), ...leftovers(join(dir, FLAT_NARINFO_DIR), narinfos)]) {
        rmSync(f, { force: true });
      }
    },
  };
  return cache;
}

/** Summary of adding a batch of flat sources from the hashed mirror. */
export interface FlatSourcesAdded {
  added: CacheEntry[];
  existed: number;
  /** flat FODs whose file the mirror does not hold */
  missing: Fod[];
}

/**
 * Publishes every flat FOD of `fods` whose file the hashed mirror holds (`pathOf` answers
 * `tarballs/<algo>/<hex>`) as `fodder fetch` does: the entry made from its file (`addFlat`), and
 * with `flat` a copy (`addFile`); the others are returned as missing.
 */
export async function addFlatSources(
  cache: BinaryCache,
  fods: Fod[],
  mirror: { pathOf(algo: Fod['hash']['algo'], hex: string): string },
): Promise<FlatSourcesAdded> {
  const out: FlatSourcesAdded = { added: [], existed: 0, missing: [] };
  const seen = new Set<string>();
  for (const fod of fods) {
    if (fod.hash.mode !== 'flat' || seen.has(fod.outPath)) continue;
    seen.add(fod.outPath);
    const path = mirror.pathOf(fod.hash.algo, fod.hash.hex);
    if (!existsSync(path)) {
      out.missing.push(fod);
      continue;
    }
    const e = await addFlatSource(cache, fod, path);
    if (e.existed) out.existed++;
    else out.added.push(e);
  }
  return out;
}

/**
 * A flat FOD's file of the hashed mirror (`path`) published as `fodder fetch` does: the entry
 * made from it, and with `flat` a copy. The entry returned is the first; `existed` when both were.
 */
export async function addFlatSource(cache: BinaryCache, fod: Fod, path: string, digests?: Partial<Record<Fod['hash']['algo'], string>>): Promise<CacheEntry> {
  const e = await cache.addFlat(fod, digests);
  if (!cache.copiesFlat) return e;
  const copy = await cache.addFile(fod, path, digests);
  return { ...e, existed: e.existed && copy.existed };
}

type WrittenCacheNar = Omit<WrittenNar, 'compression'> & { compression: CacheCompression };

/** writeNarFile for none/xz; zstd (which writeNarFile lacks) through the `zstd` binary, the same way. */
async function writeNar(
  source: string,
  cacheDir: string,
  compression: CacheCompression,
  opts: { flatFile: boolean; level?: number },
): Promise<WrittenCacheNar> {
  if (compression !== 'zstd') return writeNarFile(source, cacheDir, compression, { flatFile: opts.flatFile, level: opts.level });
  const narDir = join(cacheDir, 'nar');
  const tmp = join(narDir, `.tmp-${randomBytes(8).toString('hex')}`);
  const narHasher = createHash('sha256');
  const fileHasher = createHash('sha256');
  let narSize = 0;
  let fileSize = 0;
  const nar = opts.flatFile ? narOfFile(source) : narStream(source);
  const child = startProcess('zstd', ['-q', '-c', `-${opts.level ?? 3}`, '-T1'], { stdin: 'pipe', stdout: 'pipe' });
  const exited = child.exit.then((e) => e.code);
  exited.catch(() => undefined);
  const feeding = pipeline(
    Readable.from(
      (async function* () {
        for await (const c of nar) {
          narHasher.update(c);
          narSize += c.length;
          yield c;
        }
      })(),
    ),
    child.stdin!,
  );
  feeding.catch(() => undefined);
  const fh = await open(tmp, 'wx');
  try {
    for await (const c of child.stdout!) {
      fileHasher.update(c);
      fileSize += c.length;
      let done = 0;
      while (done < c.length) done += (await fh.write(c, done, c.length - done)).bytesWritten;
    }
    await feeding;
    const code = await exited;
    if (code !== 0) throw new FodderError(ErrorCode.COMPRESS_FAILED, `zstd exited with ${code}: ${child.stderr()}`, { code });
    await fh.sync();
  } catch (e) {
    child.kill('SIGTERM');
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  const fileHash: HashValue = { algo: 'sha256', hex: fileHasher.digest('hex') };
  const name = `${toNix32(fileHash)}.nar.zst`;
  await rename(tmp, join(narDir, name));
  return { url: `nar/${name}`, compression: 'zstd', fileHash, fileSize, narHash: { algo: 'sha256', hex: narHasher.digest('hex') }, narSize };
}
