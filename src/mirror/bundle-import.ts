/**
 * `fodder bundle import`: admits a bundle's objects into a mirror, each verified while it is
 * copied into a temporary file on the mirror's filesystem, fsynced and renamed into place (the
 * hashed mirror's `admitFile` for tarballs; the binary cache's way for NAR files and narinfos).
 * Nothing already in the mirror is touched; narinfos go last, each only once what it needs is
 * in the mirror (a flat source's, `cache/flat/`, once its tarball is in and the NAR made of it
 * has the narinfo's NarHash and NarSize: src/mirror/cache-entry.ts). A corrupt or foreign
 * object is refused and listed, and the rest go on.
 *
 * A journal (`tmp/import-<bundle id>.journal`) records each object done, so a re-run after a
 * kill skips what is in without reading it again; every admission is atomic on its own, so a
 * re-run without the journal would end the same.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { appendFile, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { extract as tarExtract } from 'tar-stream';
import { ErrorCode, FodderError } from '../errors.js';
import { encodeNix32, type HashAlgo } from '../nix-formats/hash.js';
import { narInfoFileName, narInfoFingerprint, nixCacheInfo, parseNarInfo, verifyNarInfoSig } from '../nix-formats/narinfo.js';
import { cacheEntryProblem } from './cache-entry.js';
import { FLAT_NARINFO_DIR } from './flat-nar.js';
import { createHashedMirror, type HashedMirror } from './hashed-mirror.js';
import { createHashPool, createInlineHasher, type HashPool } from './hashing.js';
import { INDEX_NAME, parseBundleIndex, type BundleIndex, type BundleObject } from './bundle-index.js';
import { writeAtomic } from './binary-cache.js';

export interface ImportOptions {
  mirrorDir: string;
  /** public keys (`name:base64`): with any, every narinfo must carry a valid signature by one */
  trustedKeys: readonly string[];
  /** `Priority` of the nix-cache-info written when the mirror has none */
  priority: number;
  onObject?: (o: BundleObject, outcome: 'imported' | 'present' | 'refused') => void;
}

export interface Refused {
  path: string;
  reason: string;
}

export interface ImportResult {
  mirror: string;
  objects: number;
  imported: number;
  /** already in the mirror: left as they were */
  present: number;
  bytes: number;
  refused: Refused[];
}

/** Files at most this big are hashed on the calling thread; larger ones by the hash pool's threads. */
const INLINE_HASH_MAX = 1 << 20;

type Outcome = { ok: true } | { ok: false; reason: string };

/** The volumes of a bundle directory: itself, or its `volume-N/` in order. */
export function bundleVolumes(dir: string): string[] {
  if (existsSync(join(dir, INDEX_NAME))) return [dir];
  const vols = existsSync(dir)
    ? readdirSync(dir)
        .filter((n) => /^volume-\d+$/.test(n) && existsSync(join(dir, n, INDEX_NAME)))
        .sort((a, b) => Number(a.slice(7)) - Number(b.slice(7)))
    : [];
  if (!vols.length) throw new FodderError(ErrorCode.BUNDLE_INVALID, `${dir}: no ${INDEX_NAME} and no volume-N/${INDEX_NAME}: not a bundle`, { where: dir });
  return vols.map((v) => join(dir, v));
}

/**
 * Imports a bundle: a directory (one volume or several), a tar file, or a tar stream
 * (`source` a Readable). Throws only when nothing can be imported (no index, no mirror, the
 * lock); refused objects are in the result.
 */
export async function importBundle(source: string | Readable, opts: ImportOptions): Promise<ImportResult> {
  const mirror = createHashedMirror(opts.mirrorDir);
  mirror.lock();
  const pool = createHashPool();
  const result: ImportResult = { mirror: mirror.root, objects: 0, imported: 0, present: 0, bytes: 0, refused: [] };
  try {
    removeLeftovers(mirror.root);
    if (typeof source === 'string' && statSync(source).isDirectory()) {
      for (const vol of bundleVolumes(resolve(source))) {
        const ix = readFileSync(join(vol, INDEX_NAME), 'utf8');
        const importer = await createImporter(mirror, pool, opts, parseBundleIndex(ix, join(vol, INDEX_NAME)), ix, result);
        for (const o of importer.files) {
          const file = join(vol, o.path);
          if (!existsSync(file)) importer.refuse(o, 'missing from the bundle');
          else await importer.admit(o, () => createReadStream(file, { highWaterMark: 1 << 20 }));
        }
        for (const f of foreignFiles(vol, importer.index)) result.refused.push({ path: relative(vol, f), reason: 'foreign: not in the bundle index' });
        await importer.finish((o) => readFile(join(vol, o.path)).catch(() => null));
      }
    } else {
      await importTar(typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : source, mirror, pool, opts, result);
    }
    await mirror.syncDirs();
  } finally {
    await pool.close();
    mirror.unlock();
  }
  return result;
}

async function importTar(input: Readable, mirror: HashedMirror, pool: HashPool, opts: ImportOptions, result: ImportResult): Promise<void> {
  const ex = tarExtract();
  input.on('error', (e) => ex.destroy(e));
  input.pipe(ex);
  let importer: Importer | null = null;
  const narInfos = new Map<string, Buffer>();
  const drain = async (s: AsyncIterable<unknown>) => {
    for await (const _ of s) void _;
  };
  try {
    for await (const entry of ex) {
      const name = entry.header.name.replace(/^\.\//, '');
      if (!importer) {
        if (name !== INDEX_NAME)
          throw new FodderError(ErrorCode.BUNDLE_INVALID, `the tar stream does not begin with ${INDEX_NAME} (found ${name}): not a bundle`, {});
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        const text = Buffer.concat(chunks).toString('utf8');
        importer = await createImporter(mirror, pool, opts, parseBundleIndex(text, `${INDEX_NAME} of the tar stream`), text, result);
        continue;
      }
      const o = importer.byPath.get(name);
      if (!o || entry.header.type !== 'file') {
        result.refused.push({ path: name, reason: 'foreign: not in the bundle index' });
        await drain(entry);
      } else if (o.type === 'narinfo') {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const c of entry) if ((size += (c as Buffer).length) <= 1 << 20) chunks.push(c as Buffer);
        narInfos.set(o.path, Buffer.concat(chunks));
      } else {
        let used = false;
        await importer.admit(o, () => ((used = true), entry as AsyncIterable<Buffer>));
        if (!used) await drain(entry);
      }
    }
  } catch (e) {
    if (e instanceof FodderError) throw e;
    throw new FodderError(ErrorCode.BUNDLE_INVALID, `the tar stream is broken: ${(e as Error).message}`, {});
  }
  if (!importer) throw new FodderError(ErrorCode.BUNDLE_INVALID, 'the tar stream is empty: not a bundle', {});
  for (const o of importer.files) if (!importer.seen.has(o.path)) importer.refuse(o, 'missing from the bundle');
  await importer.finish(async (o) => narInfos.get(o.path) ?? null);
}

interface Importer {
  index: BundleIndex;
  byPath: Map<string, BundleObject>;
  /** the tarballs and NAR files, in the index's order */
  files: BundleObject[];
  seen: Set<string>;
  refuse(o: BundleObject, reason: string): void;
  /** verifies and admits one tarball or NAR file; `open` is called only when the object must be read */
  admit(o: BundleObject, open: () => AsyncIterable<Buffer | Uint8Array>): Promise<void>;
  /** the narinfos, once the files are in; then the journal is removed */
  finish(textOf: (o: BundleObject) => Promise<Buffer | null>): Promise<void>;
}

async function createImporter(
  mirror: HashedMirror,
  pool: HashPool,
  opts: ImportOptions,
  index: BundleIndex,
  indexText: string,
  result: ImportResult,
): Promise<Importer> {
  const root = mirror.root;
  const cacheDir = join(root, 'cache');
  await mkdir(join(cacheDir, 'nar'), { recursive: true });
  const work = join(root, 'tmp', 'import');
  await mkdir(work, { recursive: true });
  const journal = join(root, 'tmp', `import-${createHash('sha256').update(indexText).digest('hex').slice(0, 16)}.journal`);
  const done = new Set(existsSync(journal) ? readFileSync(journal, 'utf8').split('\n').filter(Boolean) : []);
  const byPath = new Map(index.objects.map((o) => [o.path, o]));
  const seen = new Set<string>();
  result.objects += index.objects.length;

  const record = async (o: BundleObject, outcome: 'imported' | 'present') => {
    if (outcome === 'imported') {
      result.imported++;
      result.bytes += o.size;
      await appendFile(journal, `${o.path}\n`);
    } else result.present++;
    opts.onObject?.(o, outcome);
  };
  const refuse = (o: BundleObject, reason: string) => {
    result.refused.push({ path: o.path, reason });
    opts.onObject?.(o, 'refused');
  };
  const inMirror = (o: BundleObject) => existsSync(join(root, o.path));

  /**
   * Copies `data` into a new temporary file while hashing it (all four hashes for a tarball,
   * sha256 for a NAR file). Returns once the bytes are written; the hashes may still be running.
   */
  const receive = async (o: BundleObject, data: AsyncIterable<Buffer | Uint8Array>, tmp: string, all: boolean) => {
    const fh = await open(tmp, 'wx', 0o644);
    const sha256 = all ? null : createHash('sha256');
    const hasher = all ? (o.size <= INLINE_HASH_MAX ? createInlineHasher() : pool.trailing(tmp)) : null;
    let size = 0;
    try {
      for await (const chunk of data) {
        const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        let off = 0;
        while (off < c.length) off += (await fh.write(c, off, c.length - off)).bytesWritten;
        size += c.length;
        sha256?.update(c);
        hasher?.update(c, size);
      }
    } catch (e) {
      hasher?.abort();
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    const digests = hasher?.finish(size) ?? null;
    digests?.catch(() => undefined); // awaited by the settling step
    return { size, sha256: sha256?.digest('hex') ?? null, digests };
  };

  /** Receives a tarball; the step returned checks its hash and admits it (all names, fsynced). */
  const receiveTarball = async (o: BundleObject, data: AsyncIterable<Buffer | Uint8Array>): Promise<() => Promise<Outcome>> => {
    const [, algo, hex] = o.path.split('/') as [string, HashAlgo, string];
    const tmp = join(work, randomBytes(8).toString('hex'));
    const got = await receive(o, data, tmp, true);
    return async () => {
      const digests = await got.digests!;
      if (digests[algo] !== hex) {
        await rm(tmp, { force: true });
        return { ok: false, reason: `corrupt: content has ${algo} ${digests[algo]}` };
      }
      await mirror.admitFile(tmp, digests);
      return { ok: true };
    };
  };

  /** Receives a NAR file; the step returned checks it against its name, fsyncs and renames it. */
  const receiveNar = async (o: BundleObject, data: AsyncIterable<Buffer | Uint8Array>): Promise<() => Promise<Outcome>> => {
    const name = o.path.slice('cache/nar/'.length);
    const tmp = join(cacheDir, 'nar', `.tmp-${randomBytes(8).toString('hex')}`);
    const got = await receive(o, data, tmp, false);
    return async () => {
      const actual = encodeNix32(Buffer.from(got.sha256!, 'hex'));
      if (actual !== name.slice(0, 52)) {
        await rm(tmp, { force: true });
        return { ok: false, reason: `corrupt: content has sha256 ${actual}` };
      }
      await syncFile(tmp);
      await rename(tmp, join(cacheDir, 'nar', name));
      return { ok: true };
    };
  };

  /** Objects received whose check and admission (hashes, fsync, rename) still run; at most MAX_SETTLING. */
  const settling = new Set<Promise<void>>();
  let failure: unknown = null;
  const settled = async (max: number) => {
    while (settling.size > max) await Promise.race(settling);
    if (failure) throw failure;
  };

  /** A narinfo is admitted once what it needs is in the mirror (cache-entry.ts), and signed when keys are trusted. */
  const checkNarInfo = async (o: BundleObject, text: Buffer): Promise<Outcome> => {
    if (o.type !== 'narinfo') return { ok: false, reason: 'not a narinfo' };
    const sha = createHash('sha256').update(text).digest('hex');
    if (sha !== o.sha256) return { ok: false, reason: `corrupt: its sha256 ${sha} is not the index's ${o.sha256}` };
    let info;
    try {
      info = parseNarInfo(text.toString('utf8'));
    } catch (e) {
      return { ok: false, reason: `corrupt: ${(e as Error).message}` };
    }
    if (narInfoFileName(info.storePath) !== basename(o.path)) return { ok: false, reason: `foreign: it describes ${info.storePath}` };
    const problem = await cacheEntryProblem(root, o.path, info, pool);
    if (problem) return { ok: false, reason: problem };
    if (opts.trustedKeys.length && !info.sigs.some((s) => verifyNarInfoSig(narInfoFingerprint(info), s, opts.trustedKeys))) {
      return { ok: false, reason: 'not signed by a trusted key' };
    }
    return { ok: true };
  };

  return {
    index,
    byPath,
    files: index.objects.filter((o) => o.type !== 'narinfo'),
    seen,
    refuse,
    async admit(o, openData) {
      seen.add(o.path);
      if (inMirror(o)) return record(o, done.has(o.path) ? 'imported' : 'present').then(() => undefined);
      const settle = o.type === 'tarball' ? await receiveTarball(o, openData()) : await receiveNar(o, openData());
      const p: Promise<void> = settle()
        .then((outcome) => (outcome.ok ? record(o, 'imported') : refuse(o, outcome.reason)))
        .catch((e: unknown) => {
          failure ??= e;
        })
        .finally(() => settling.delete(p));
      settling.add(p);
      await settled(MAX_SETTLING);
    },
    async finish(textOf) {
      await settled(0);
      let wroteAny = false;
      for (const o of index.objects) {
        if (o.type !== 'narinfo') continue;
        if (inMirror(o)) {
          await record(o, done.has(o.path) ? 'imported' : 'present');
          continue;
        }
        const text = await textOf(o);
        if (text === null) {
          refuse(o, 'missing from the bundle');
          continue;
        }
        const outcome = await checkNarInfo(o, text);
        if (!outcome.ok) {
          refuse(o, outcome.reason);
          continue;
        }
        await mkdir(dirname(join(root, o.path)), { recursive: true });
        await writeAtomic(join(root, o.path), text.toString('utf8'));
        wroteAny = true;
        await record(o, 'imported');
      }
      const info = join(cacheDir, 'nix-cache-info');
      if (wroteAny && !existsSync(info)) await writeAtomic(info, nixCacheInfo({ wantMassQuery: true, priority: opts.priority }));
      await syncDir(cacheDir);
      await syncDir(join(cacheDir, 'nar'));
      if (existsSync(join(cacheDir, FLAT_NARINFO_DIR))) await syncDir(join(cacheDir, FLAT_NARINFO_DIR));
      await rm(journal, { force: true });
    },
  };
}

/** Files received whose checks and fsyncs run at once, behind the copying (they overlap; memory stays flat). */
const MAX_SETTLING = 16;

async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncs a directory (its new names) or a file. */
const syncDir = syncFile;

/** Temporary files of an import that was killed: the work files and the NAR files not renamed. */
function removeLeftovers(root: string): void {
  const work = join(root, 'tmp', 'import');
  if (existsSync(work)) for (const n of readdirSync(work)) void rm(join(work, n), { force: true });
  const nar = join(root, 'cache', 'nar');
  if (existsSync(nar)) for (const n of readdirSync(nar)) if (n.startsWith('.tmp-')) void rm(join(nar, n), { force: true });
}

/** Files under a bundle volume's `tarballs/` and `cache/` the index does not list. */
function foreignFiles(vol: string, index: BundleIndex): string[] {
  const listed = new Set(index.objects.map((o) => join(vol, o.path)));
  const out: string[] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!listed.has(p)) out.push(p);
    }
  };
  walk(join(vol, 'tarballs'));
  walk(join(vol, 'cache'));
  return out;
}
