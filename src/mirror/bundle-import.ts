/**
 * `fodder bundle import`: admits a bundle's objects into a mirror, each verified while it is
 * copied into a temporary file on the mirror's filesystem, fsynced and renamed into place (the
 * hashed mirror's `admitFile` for tarballs; the binary cache's way for NAR files and narinfos).
 * An object is checked against the hash it is named by: a tarball's `<algo>/<hex>` (and its
 * sha256 is taken too, the name flat sources' NARs are found by), a NAR file's nix32 sha256; it
 * gets the names those give (`fodder verify` adds the md5, sha1 and sha512 ones). Files of a
 * bundle directory or tar file are copied and hashed on the hash pool's threads, one read per
 * block; a tar stream is read here.
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
import {
  appendFileSync,
  closeSync,
  createReadStream,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
} from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { extract as tarExtract } from 'tar-stream';
import { ErrorCode, FodderError } from '../errors.js';
import { encodeNix32, type HashAlgo } from '../nix-formats/hash.js';
import { narInfoFileName, narInfoFingerprint, nixCacheInfo, parseNarInfo, signedByAny, type NarInfo } from '../nix-formats/narinfo.js';
import { cacheEntryProblem } from './cache-entry.js';
import { FLAT_NARINFO_DIR } from './flat-nar.js';
import { createHashedMirror, syncFiles, syncPath, writeAtomic, type HashedMirror } from './hashed-mirror.js';
import { createHashPool, type FlatNarDigests, type HashPool } from './hashing.js';
import { flatNarFrame, flatNarHasher, type FlatNarFrame } from '../nix-formats/nar.js';
import { tarFileMembers } from './tar-format.js';
import { eachAtOnce } from './at-once.js';
import { fileSizeSync } from './holdings.js';
import { writeAllSync } from './file-io.js';
import type { Digests } from './types.js';
import { INDEX_NAME, parseBundleIndex, type BundleIndex, type BundleObject } from './bundle-index.js';

export interface ImportOptions {
  mirrorDir: string;
  /** public keys (`name:base64`): with any, every narinfo must carry a valid signature by one */
  trustedKeys: readonly string[];
  /** `Priority` of the nix-cache-info written when the mirror has none */
  priority: number;
  /** a volume's index read: its objects and their bytes (progress) */
  onIndex?: (objects: number, bytes: number) => void;
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

/** Where an object's bytes are: a range of a file (copied on a thread), or a stream read here. */
type Source = { file: string; offset: number; size: number } | { data: AsyncIterable<Buffer | Uint8Array> };

type Outcome = { ok: true } | { ok: false; reason: string };

/** The volumes of a bundle directory: itself, or its `volume-N/` in order. */
function bundleVolumes(dir: string): string[] {
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
        // a narinfo is small: read on this thread, as a tar file's are (bytesAt)
        const narInfoText = (o: BundleObject) => {
          try {
            return readFileSync(join(vol, o.path));
          } catch {
            return null;
          }
        };
        // the largest first: the pool's two threads then end together, where in the index's order
        // one hashed a last large object alone (2.12-2.35 s -> 2.04-2.14 s for 1.1 GiB, 3,187 files);
        // a tar file is read in its order (one disk, read straight through)
        for (const o of [...importer.files].sort((a, b) => b.size - a.size)) {
          const file = join(vol, o.path);
          const size = fileSizeSync(file);
          if (size === null) importer.refuse(o, 'missing from the bundle');
          else await importer.admit(o, () => ({ file, offset: 0, size }));
          // one narinfo's signature for each file, checked while the pool's threads copy (with trusted keys)
          importer.verifyAhead(narInfoText, 1);
        }
        for (const f of foreignFiles(vol, importer.index)) result.refused.push({ path: relative(vol, f), reason: 'foreign: not in the bundle index' });
        await importer.finish(async (o) => narInfoText(o));
      }
    } else if (typeof source === 'string' && statSync(source).isFile()) {
      await importTarFile(source, mirror, pool, opts, result);
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
      if (entry.header.type === 'directory') await drain(entry);
      else if (!o || entry.header.type !== 'file') {
        result.refused.push({ path: name, reason: 'foreign: not in the bundle index' });
        await drain(entry);
      } else if (o.type === 'narinfo') {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const c of entry) if ((size += (c as Buffer).length) <= 1 << 20) chunks.push(c as Buffer);
        narInfos.set(o.path, Buffer.concat(chunks));
      } else {
        let used = false;
        await importer.admit(o, () => ((used = true), { data: entry as AsyncIterable<Buffer> }));
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

/**
 * A tar file: its headers read by position, each object copied by a thread straight from its
 * place in the archive.
 */
async function importTarFile(path: string, mirror: HashedMirror, pool: HashPool, opts: ImportOptions, result: ImportResult): Promise<void> {
  let importer: Importer | null = null;
  const narInfos = new Map<string, Buffer>();
  const fd = openSync(path, 'r');
  // small reads (the index, narinfos) here: a trip to libuv's threads each cost more than the read
  const bytesAt = (offset: number, size: number) => {
    const b = Buffer.alloc(size);
    return b.subarray(0, readSync(fd, b, 0, size, offset));
  };
  try {
    for await (const m of tarFileMembers(path)) {
      const name = m.name.replace(/^\.\//, '');
      if (!importer) {
        if (name !== INDEX_NAME) throw new FodderError(ErrorCode.BUNDLE_INVALID, `${path} does not begin with ${INDEX_NAME} (found ${name}): not a bundle`, {});
        const text = bytesAt(m.offset, Math.min(m.size, 1 << 30)).toString('utf8');
        importer = await createImporter(mirror, pool, opts, parseBundleIndex(text, `${INDEX_NAME} of ${path}`), text, result);
        continue;
      }
      const o = importer.byPath.get(name);
      if (m.type === '5') continue; // a directory of a bundle packed by tar
      if (!o || m.type !== '0') result.refused.push({ path: name, reason: 'foreign: not in the bundle index' });
      else if (o.type === 'narinfo') narInfos.set(o.path, bytesAt(m.offset, Math.min(m.size, 1 << 20)));
      else await importer.admit(o, () => ({ file: path, offset: m.offset, size: m.size }));
    }
  } catch (e) {
    if (e instanceof FodderError) throw e;
    throw new FodderError(ErrorCode.BUNDLE_INVALID, `${path} is broken: ${(e as Error).message}`, {});
  } finally {
    closeSync(fd);
  }
  if (!importer) throw new FodderError(ErrorCode.BUNDLE_INVALID, `${path} is empty: not a bundle`, {});
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
  /**
   * verifies and admits one tarball or NAR file; `source` is called only when the object must be
   * read. A stream is read before this returns; a file range may still be copying.
   */
  admit(o: BundleObject, source: () => Source): Promise<void>;
  /** the narinfos, once the files are in; then the journal is removed */
  finish(textOf: (o: BundleObject) => Promise<Buffer | null>): Promise<void>;
  /**
   * with trusted keys: the signatures of the next `n` narinfos sent to be checked on the pool's
   * threads between the files they copy (the narinfos' own turn comes after the last file)
   */
  verifyAhead(textOf: (o: BundleObject) => Buffer | null, n: number): void;
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
  opts.onIndex?.(
    index.objects.length,
    index.objects.reduce((n, o) => n + o.size, 0),
  );

  const record = async (o: BundleObject, outcome: 'imported' | 'present') => {
    if (outcome === 'imported') {
      result.imported++;
      result.bytes += o.size;
      appendFileSync(journal, `${o.path}\n`);
    } else result.present++;
    opts.onObject?.(o, outcome);
  };
  const refuse = (o: BundleObject, reason: string) => {
    result.refused.push({ path: o.path, reason });
    opts.onObject?.(o, 'refused');
  };
  const inMirror = (o: BundleObject) => existsSync(join(root, o.path));
  /** a work file's name: this run's random part and a count (one random draw per object cost 57 ms in 3,000) */
  const run = randomBytes(6).toString('hex');
  let made = 0;
  const workName = () => `${run}-${(made++).toString(36)}`;

  /**
   * The flat sources' NARs as their tarballs were copied in (by the tarball's sha256): the
   * narinfos' check needs no second read of them. Taken only when the bundle carries flat
   * narinfos (one more sha256 over the bytes, in the same pass).
   */
  const flatNars = new Map<string, FlatNarDigests>();
  const wantsFlatNars = index.objects.some((o) => o.type === 'narinfo' && o.path.startsWith(`cache/${FLAT_NARINFO_DIR}/`));

  /**
   * Copies an object into the new file `tmp` (made with `mode`), hashing it with `algos` (and its
   * NAR's sha256 with `frame`); on failure `tmp` is removed.
   */
  const receive = async (
    source: Source,
    tmp: string,
    mode: number,
    algos: HashAlgo[],
    frame?: FlatNarFrame,
  ): Promise<{ digests: Partial<Digests>; narHash?: string }> => {
    const narFrame = frame && { prefix: frame.prefix, suffix: frame.suffix };
    try {
      if ('file' in source) return await pool.copy({ src: source.file, offset: source.offset, size: source.size, dest: tmp, mode, algos, narFrame });
      const fh = await open(tmp, 'wx', mode);
      try {
        const hashes = algos.map((a) => createHash(a));
        const nar = frame ? flatNarHasher(frame) : null;
        for await (const chunk of source.data) {
          const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
          for (let off = 0; off < c.length;) off += (await fh.write(c, off, c.length - off)).bytesWritten;
          for (const h of hashes) h.update(c);
          nar?.update(c);
        }
        const digests = Object.fromEntries(algos.map((a, i) => [a, hashes[i].digest('hex')]));
        return { digests, narHash: nar?.digest() };
      } finally {
        await fh.close();
      }
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  };

  /** Why a received object is not what its name says, or null; a refused one's file is removed. */
  const mismatch = async (o: BundleObject, tmp: string, digests: Partial<Digests>): Promise<string | null> => {
    let reason: string | null = null;
    if (o.type === 'tarball') {
      const [, algo, hex] = o.path.split('/') as [string, HashAlgo, string];
      if (digests[algo] !== hex) reason = `corrupt: content has ${algo} ${digests[algo]}`;
    } else {
      const actual = encodeNix32(Buffer.from(digests.sha256!, 'hex'));
      if (actual !== o.path.slice('cache/nar/'.length, 'cache/nar/'.length + 52)) reason = `corrupt: content has sha256 ${actual}`;
    }
    if (reason) await rm(tmp, { force: true });
    return reason;
  };

  /**
   * Verified objects waiting to be made durable together (`syncFiles`) and then put under their
   * names: a tarball by the hashed mirror's `admitFile`, a NAR file renamed. One batch is synced
   * while the next is copied; nothing is under its final name before its bytes are durable.
   */
  let batch: { o: BundleObject; tmp: string; digests: Partial<Digests> }[] = [];
  let batchBytes = 0;
  let flushing: Promise<void> = Promise.resolve();
  const flush = async () => {
    const items = batch;
    batch = [];
    batchBytes = 0;
    const before = flushing;
    flushing = before
      .then(async () => {
        await syncFiles(items.map((i) => i.tmp));
        // a few at once: each is a chmod, links and a rename, waits on libuv's threads more than work
        await eachAtOnce(items, ADMISSIONS_AT_ONCE, async ({ o, tmp, digests }) => {
          if (o.type === 'tarball') await mirror.admitFile(tmp, digests, true);
          else await rename(tmp, join(root, o.path));
          await record(o, 'imported');
        });
      })
      .catch((e: unknown) => {
        failure ??= e;
      });
    await before; // one batch syncing while the next fills
  };
  const verified = async (o: BundleObject, tmp: string, digests: Partial<Digests>) => {
    batch.push({ o, tmp, digests });
    batchBytes += o.size;
    if (batchBytes >= BATCH_BYTES || batch.length >= BATCH_OBJECTS) await flush();
  };

  /** Objects whose copy, check and admission (fsync, rename) still run; at most MAX_SETTLING. */
  const settling = new Set<Promise<void>>();
  let failure: unknown = null;
  const settled = async (max: number) => {
    while (settling.size > max) await Promise.race(settling);
    if (failure) throw failure;
  };

  /** A narinfo's text checked against the index and its name, and parsed; or why not. */
  const narInfoOf = (o: BundleObject, text: Buffer): NarInfo | string => {
    if (o.type !== 'narinfo') return 'not a narinfo';
    const sha = createHash('sha256').update(text).digest('hex');
    if (sha !== o.sha256) return `corrupt: its sha256 ${sha} is not the index's ${o.sha256}`;
    let info;
    try {
      info = parseNarInfo(text.toString('utf8'));
    } catch (e) {
      return `corrupt: ${(e as Error).message}`;
    }
    if (narInfoFileName(info.storePath) !== basename(o.path)) return `foreign: it describes ${info.storePath}`;
    return info;
  };
  const signedByTrusted = (info: NarInfo) => signedByAny(narInfoFingerprint(info), info.sigs, opts.trustedKeys);
  /**
   * Narinfos whose signature by a trusted key was found good ahead (`verifyAhead`), on the pool's
   * threads. Their text is checked against the index's sha256 again when they are admitted: the
   * same text, the same signature. One not found good ahead is checked again on this thread.
   */
  const signatureGood = new Set<string>();
  const ahead = opts.trustedKeys.length ? index.objects.filter((o) => o.type === 'narinfo') : [];
  let aheadAt = 0;
  let sigBatch: { path: string; fingerprint: string; sigs: string[] }[] = [];
  const checking: Promise<void>[] = [];
  const sendBatch = () => {
    const items = sigBatch;
    sigBatch = [];
    if (!items.length) return;
    const task = { items: items.map(({ fingerprint, sigs }) => ({ fingerprint, sigs })), keys: [...opts.trustedKeys] };
    checking.push(
      pool.verifySigs(task).then(
        (good) => items.forEach((it, i) => good[i] && signatureGood.add(it.path)),
        () => undefined, // checked on this thread when admitted, which reports what is wrong
      ),
    );
  };
  /** the narinfos sent ahead to the pool have their answers */
  const aheadChecked = async () => {
    sendBatch();
    await Promise.all(checking);
  };

  /** the signatures of the next `n` narinfos sent to the pool's threads, SIGS_AT_ONCE to a task */
  const verifyAhead = (textOf: (o: BundleObject) => Buffer | null, n: number) => {
    for (const end = Math.min(aheadAt + n, ahead.length); aheadAt < end; aheadAt++) {
      const o = ahead[aheadAt];
      const text = textOf(o);
      const info = text && narInfoOf(o, text);
      if (!info || typeof info === 'string' || !info.sigs.length) continue;
      try {
        sigBatch.push({ path: o.path, fingerprint: narInfoFingerprint(info), sigs: info.sigs });
      } catch {
        continue; // no fingerprint: refused when admitted, saying why
      }
      if (sigBatch.length >= SIGS_AT_ONCE) sendBatch();
    }
  };

  /** A narinfo is admitted once what it needs is in the mirror (cache-entry.ts), and signed when keys are trusted. */
  const checkNarInfo = async (o: BundleObject, text: Buffer): Promise<Outcome> => {
    const info = narInfoOf(o, text);
    if (typeof info === 'string') return { ok: false, reason: info };
    const problem = await cacheEntryProblem(root, o.path, info, pool, (sha256) => flatNars.get(sha256));
    if (problem) return { ok: false, reason: problem };
    if (opts.trustedKeys.length && !signatureGood.has(o.path) && !signedByTrusted(info)) {
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
    verifyAhead,
    async admit(o, sourceOf) {
      seen.add(o.path);
      if (inMirror(o)) return record(o, done.has(o.path) ? 'imported' : 'present').then(() => undefined);
      const tarball = o.type === 'tarball';
      const algo = tarball ? (o.path.split('/')[1] as HashAlgo) : 'sha256';
      const tmp = tarball ? join(work, workName()) : join(cacheDir, 'nar', `.tmp-${workName()}`);
      const source = sourceOf();
      const frame = tarball && wantsFlatNars ? flatNarFrame(o.size) : undefined;
      // a tarball made read-only as the hashed mirror keeps it (admitFile does not change it then)
      const received = receive(source, tmp, tarball ? 0o444 : 0o644, algo === 'sha256' ? ['sha256'] : [algo, 'sha256'], frame);
      // a stream must be read before the next entry; a file range copies on a thread meanwhile
      if ('data' in source) await received;
      const p: Promise<void> = received
        .then(async ({ digests, narHash }) => {
          const reason = await mismatch(o, tmp, digests);
          if (reason) return refuse(o, reason);
          if (frame && narHash) flatNars.set(digests.sha256!, { sha256: digests.sha256!, narHash, narSize: frame.narSize });
          await verified(o, tmp, digests);
        })
        .catch((e: unknown) => {
          failure ??= e;
        })
        .finally(() => settling.delete(p));
      settling.add(p);
      await settled(MAX_SETTLING);
    },
    async finish(textOf) {
      await settled(0);
      await flush();
      await flushing;
      if (failure) throw failure;
      if (aheadAt < ahead.length) {
        // the signatures not checked yet, on the pool's threads too, both free now
        const texts = new Map<string, Buffer | null>();
        for (const o of ahead.slice(aheadAt)) texts.set(o.path, await textOf(o));
        verifyAhead((o) => texts.get(o.path) ?? null, ahead.length);
      }
      await aheadChecked();
      // narinfos are checked and written to work files NARINFOS_AT_ONCE at a time, made durable a
      // batch at a time (one `sync -f`) and only then renamed into place (an fsync and a check
      // each, one after the other, took 6 s for 3,000 narinfos: docs/performance.md, "Bundles").
      // Their files are written and renamed on this thread: through libuv's threads (an open, a
      // write, a close; a rename) the 3,000 took 0.55-1.4 s, nothing else running meanwhile
      let wroteAny = false;
      const dirs = new Set<string>();
      const narinfos = index.objects.filter((o) => o.type === 'narinfo');
      for (let i = 0; i < narinfos.length; i += BATCH_OBJECTS) {
        const written: { o: BundleObject; tmp: string }[] = [];
        await eachAtOnce(narinfos.slice(i, i + BATCH_OBJECTS), NARINFOS_AT_ONCE, async (o) => {
          if (inMirror(o)) return record(o, done.has(o.path) ? 'imported' : 'present');
          const text = await textOf(o);
          if (text === null) return refuse(o, 'missing from the bundle');
          const outcome = await checkNarInfo(o, text);
          if (!outcome.ok) return refuse(o, outcome.reason);
          const tmp = join(work, workName());
          const fd = openSync(tmp, 'wx', 0o644);
          try {
            writeAllSync(fd, text);
          } finally {
            closeSync(fd);
          }
          written.push({ o, tmp });
        });
        await syncFiles(written.map((w) => w.tmp));
        for (const { o, tmp } of written) {
          const dir = dirname(join(root, o.path));
          if (!dirs.has(dir)) mkdirSync(dir, { recursive: true });
          dirs.add(dir);
          renameSync(tmp, join(root, o.path));
          await record(o, 'imported');
        }
        wroteAny ||= written.length > 0;
      }
      const info = join(cacheDir, 'nix-cache-info');
      if (wroteAny && !existsSync(info)) await writeAtomic(info, nixCacheInfo({ wantMassQuery: true, priority: opts.priority }));
      await syncPath(cacheDir);
      await syncPath(join(cacheDir, 'nar'));
      if (existsSync(join(cacheDir, FLAT_NARINFO_DIR))) await syncPath(join(cacheDir, FLAT_NARINFO_DIR));
      await rm(journal, { force: true });
    },
  };
}

/** Objects copied and checked at once (the copies queue for the pool's threads; memory stays flat). */
const MAX_SETTLING = 16;
/** Narinfo signatures a pool thread checks in one task. */
const SIGS_AT_ONCE = 128;
/** Narinfos read, checked and written at once. */
const NARINFOS_AT_ONCE = 16;
/** Verified objects put under their names at once. */
const ADMISSIONS_AT_ONCE = 8;
/** A batch made durable at once: this many bytes or objects, whichever comes first. */
const BATCH_BYTES = 64 << 20;
const BATCH_OBJECTS = 1024;

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
