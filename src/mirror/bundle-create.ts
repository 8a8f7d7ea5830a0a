/**
 * `fodder bundle create`: the objects a target's FODs need from the ground mirror, minus what a
 * remote mirror's manifest says it holds, written as a bundle directory (split into volumes when
 * asked) or a tar stream. Objects are copied as they are (the import verifies each); nothing is
 * held in memory but the list of objects.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { ErrorCode, FodderError } from '../errors.js';
import type { Fod } from '../graph/types.js';
import { cacheEntriesAt, fileSizeSync, tarballPath } from './holdings.js';
import { BUNDLE_FORMAT, formatBundleIndex, INDEX_NAME, type BundleIndex, type BundleObject } from './bundle-index.js';
import { manifestPaths, type Manifest } from './manifest.js';
import { BLOCK, TAR_END, tarFileHeader, tarPadding } from './tar-format.js';
import { writeAllSync } from './file-io.js';

export interface BundlePlan {
  /** the objects, in volumes (one volume when not split); in each, files first and narinfos last */
  volumes: BundleObject[][];
  objects: number;
  bytes: number;
  /** distinct outputs of the target */
  fods: number;
  /** the bytes of the largest FOD's objects: the smallest --volume-size that works */
  largest: number;
  /** outputs the remote holds already (every object they need) */
  remoteHas: number;
  /** outputs the ground mirror lacks: nothing to carry for them */
  groundLacks: Fod[];
}

/** What the remote's manifest holds, by object. */
function remoteObjects(m: Manifest | null): (o: BundleObject) => boolean {
  if (!m) return () => false;
  const have = manifestPaths(m);
  return (o) => have.has(o.path);
}

/**
 * The objects of the ground mirror at `root` a FOD needs: its tarball, its cache entries (found
 * by `entries`) and what they need. On this thread: a stat and a narinfo read each, which on
 * libuv's threads cost more in trips than in work.
 */
function groundObjects(fod: Fod, root: string, entries: ReturnType<typeof cacheEntriesAt>): BundleObject[] {
  const objects: BundleObject[] = [];
  const tarball = fod.hash.mode === 'flat' ? tarballPath(fod) : null;
  const tarballSize = tarball === null ? null : fileSizeSync(join(root, tarball));
  if (tarball !== null && tarballSize !== null) objects.push({ type: 'tarball', path: tarball, size: tarballSize });
  // a flat narinfo's NAR is made from the tarball just looked at: not looked at twice
  for (const entry of entries(fod.outPath, (rel) => (rel === tarball ? tarballSize : fileSizeSync(join(root, rel))))) {
    if (entry.source.type === 'nar') objects.push({ type: 'nar', path: entry.source.path, size: entry.size });
    // a flat NAR is made from the FOD's tarball, carried above
    else if (!objects.some((o) => o.type === 'tarball')) objects.push({ type: 'tarball', path: entry.source.path, size: entry.size });
    const text = Buffer.from(entry.text);
    objects.push({ type: 'narinfo', path: entry.path, size: text.length, sha256: createHash('sha256').update(text).digest('hex') });
  }
  return objects;
}

/**
 * Plans a bundle of `fods` from the ground mirror `ground`, minus what `since` (a remote's
 * manifest) holds. `volumeSize`: bytes a volume may hold; a FOD's objects stay in one volume,
 * and a FOD needing more than a volume is VOLUME_TOO_SMALL.
 */
export function planBundle(fods: readonly Fod[], ground: string, since: Manifest | null, volumeSize: number | null): BundlePlan {
  const root = resolve(ground);
  const remoteHas = remoteObjects(since);
  const seenOut = new Set<string>();
  const taken = new Set<string>();
  const units: { fod: Fod; objects: BundleObject[] }[] = [];
  const plan: BundlePlan = { volumes: [], objects: 0, bytes: 0, largest: 0, fods: 0, remoteHas: 0, groundLacks: [] };
  const distinct = fods.filter((fod) => !seenOut.has(fod.outPath) && seenOut.add(fod.outPath));
  plan.fods = distinct.length;
  const entries = cacheEntriesAt(root);
  for (const fod of distinct) {
    const objects = groundObjects(fod, root, entries);
    if (objects.length === 0) {
      plan.groundLacks.push(fod);
      continue;
    }
    const wanted = objects.filter((o) => !remoteHas(o) && !taken.has(o.path));
    if (wanted.length === 0) {
      plan.remoteHas++;
      continue;
    }
    for (const o of wanted) taken.add(o.path);
    units.push({ fod, objects: wanted });
  }
  // volumes: units in order, a new volume when the next would not fit
  let current: BundleObject[] = [];
  let used = 0;
  for (const u of units) {
    const size = u.objects.reduce((s, o) => s + o.size, 0);
    plan.largest = Math.max(plan.largest, size);
    if (volumeSize !== null && size > volumeSize) {
      throw new FodderError(
        ErrorCode.VOLUME_TOO_SMALL,
        `${u.fod.name} (${u.fod.outPath}) needs ${size} bytes, more than a volume of ${volumeSize}: pass a larger --volume-size`,
        { outPath: u.fod.outPath, size, volumeSize },
      );
    }
    if (volumeSize !== null && used + size > volumeSize && current.length) {
      plan.volumes.push(current);
      current = [];
      used = 0;
    }
    current.push(...u.objects);
    used += size;
    plan.objects += u.objects.length;
    plan.bytes += size;
  }
  if (current.length || plan.volumes.length === 0) plan.volumes.push(current);
  // in each volume the files come first, the narinfos (which need them) last
  plan.volumes = plan.volumes.map((v) => [...v.filter((o) => o.type !== 'narinfo'), ...v.filter((o) => o.type === 'narinfo')]);
  return plan;
}

function indexOf(plan: BundlePlan, i: number, now: Date): BundleIndex {
  const split = plan.volumes.length > 1;
  return { format: BUNDLE_FORMAT, createdAt: now.toISOString(), volume: split ? i + 1 : null, volumes: plan.volumes.length, objects: plan.volumes[i] };
}

/** Where volume `i` of the plan goes: `out/` itself, or `out/volume-N/` when split. */
const volumeDir = (plan: BundlePlan, out: string, i: number) => (plan.volumes.length > 1 ? join(resolve(out), `volume-${i + 1}`) : resolve(out));

/**
 * Removes from `out` what a bundle written there before holds and this plan does not (a disk
 * used again next season), so the import finds no foreign file: its objects, its index and its
 * volumes; and the temporary files of a run that was killed. Only the bundle's own names are
 * touched (`bundle.json`, `tarballs/`, `cache/`, `volume-N/`), and objects only in a directory
 * holding a bundle index.
 */
async function removeStale(plan: BundlePlan, out: string): Promise<void> {
  const top = resolve(out);
  if (!existsSync(top)) return;
  if (existsSync(join(top, 'tmp')) || existsSync(join(top, 'cache', 'nix-cache-info'))) {
    throw new FodderError(ErrorCode.USAGE, `--out ${top} is a mirror (it has tmp/ or cache/nix-cache-info): a bundle goes to a directory of its own`, {
      option: '--out',
    });
  }
  const dirs = plan.volumes.map((_, i) => volumeDir(plan, out, i));
  const keep = new Set(plan.volumes.flatMap((v, i) => v.map((o) => join(dirs[i], o.path))));
  const isBundle = (d: string) => existsSync(join(d, INDEX_NAME));
  const removeFiles = async (d: string, stale: (path: string) => boolean) => {
    for (const sub of ['tarballs', 'cache']) {
      const entries = existsSync(join(d, sub)) ? await readdir(join(d, sub), { recursive: true, withFileTypes: true }) : [];
      for (const e of entries) if (!e.isDirectory() && stale(join(e.parentPath, e.name))) await rm(join(e.parentPath, e.name), { force: true });
    }
  };
  for (const name of await readdir(top)) {
    const d = join(top, name);
    if (/^volume-\d+$/.test(name) && !dirs.includes(d) && isBundle(d)) await rm(d, { recursive: true, force: true });
  }
  if (!dirs.includes(top) && isBundle(top)) {
    await removeFiles(top, () => true);
    await rm(join(top, INDEX_NAME), { force: true });
  }
  for (const d of dirs) {
    if (isBundle(d)) await removeFiles(d, (p) => !keep.has(p));
    await rm(join(d, INCOMING), { recursive: true, force: true }); // a killed run's half copies
  }
}

/**
 * Where a volume's objects are copied before they are renamed to their names (`writeBundleDir`):
 * a directory of its own, not a temporary name beside the object's. Made and renamed within
 * `tarballs/sha256/`, 3,000 objects and their 3,000 narinfos took 1.9 s (1.5 s of it system
 * time) against 1.1 s through this directory and 0.95 s with no temporary name at all
 * (docs/performance.md, "Bundles").
 */
const INCOMING = '.incoming';

/**
 * Writes the plan as a directory: `out/` itself, or `out/volume-N/` when split. Each object is
 * copied (`copyThrough`, on this thread) into the volume's `.incoming/` and renamed to its name,
 * the index written last, so a killed run leaves no half object under an object's name, and a
 * re-run copies only what is not there yet. What an earlier bundle there holds and this one
 * does not is removed first (`removeStale`).
 */
export async function writeBundleDir(plan: BundlePlan, ground: string, out: string, onObject?: (o: BundleObject) => void, now = new Date()): Promise<string[]> {
  const root = resolve(ground);
  const dirs: string[] = [];
  await removeStale(plan, out);
  const made = new Set<string>();
  let n = 0;
  const copy = (o: BundleObject, dir: string) => {
    const dest = join(dir, o.path);
    if (fileSizeSync(dest) !== o.size) {
      if (!made.has(dirname(dest))) mkdirSync(dirname(dest), { recursive: true });
      made.add(dirname(dest));
      const tmp = join(dir, INCOMING, String(n++));
      try {
        copyThrough(join(root, o.path), tmp);
        renameSync(tmp, dest);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw e;
      }
    }
    onObject?.(o);
  };
  for (let i = 0; i < plan.volumes.length; i++) {
    const dir = volumeDir(plan, out, i);
    dirs.push(dir);
    await mkdir(join(dir, INCOMING), { recursive: true });
    for (const o of plan.volumes[i]) copy(o, dir);
    await rm(join(dir, INCOMING), { recursive: true, force: true });
    await writeFile(join(dir, INDEX_NAME), formatBundleIndex(indexOf(plan, i, now)));
  }
  return dirs;
}

/**
 * The buffer objects are copied through into a bundle directory. One thread, one object after
 * the other, read and written 1 MiB at a time: 1.1 GiB of 3,187 objects in 0.61-0.64 s here, where
 * libuv's copyFile (copy_file_range after a truncate and a chmod of the new file) took 1.1 s
 * alone and 1.0-1.25 s four at a time, and `tar -cf - | tar -xf -` 0.7-0.9 s (each run from the
 * same page cache: docs/performance.md, "Bundles").
 */
const COPY_BLOCK = 1 << 20;
const copyBuffer = Buffer.allocUnsafe(COPY_BLOCK);

/** Copies the file `src` to the new file `dest` (which must not exist) on this thread, through `copyBuffer`. */
function copyThrough(src: string, dest: string): void {
  const from = openSync(src, 'r');
  try {
    // the source's mode given at creation
    const to = openSync(dest, 'wx', fstatSync(from).mode & 0o777);
    try {
      for (let n; (n = readSync(from, copyBuffer, 0, COPY_BLOCK, null)) > 0;) {
        writeAllSync(to, copyBuffer, n);
      }
    } finally {
      closeSync(to);
    }
  } finally {
    closeSync(from);
  }
}

/**
 * Writes the plan (one volume) as a tar archive: the index first, then every object with its
 * header (tar-format.ts). `out` is a file path or a stream. The archive is laid out in a ring of
 * TAR_RING buffers of TAR_SLOT bytes used again and again: headers, objects and padding are
 * put into one until it is full, then it is written (a file: at once, on this thread; a stream:
 * one write at a time, in order, while the next fills). Objects are read on this thread, as tar
 * does: 1.1 GiB in 0.37 s of reads and writes, where reads and writes on libuv's threads took
 * 0.6 s (docs/performance.md, "Bundles"). At most the ring is held.
 */
export async function writeBundleTar(
  plan: BundlePlan,
  ground: string,
  out: Writable | string,
  onObject?: (o: BundleObject) => void,
  now = new Date(),
): Promise<void> {
  if (plan.volumes.length > 1) throw new FodderError(ErrorCode.USAGE, 'a tar stream holds one volume: write volumes to a directory (--out DIR)');
  const root = resolve(ground);
  const sink = typeof out === 'string' ? fileSink(out) : streamSink(out);
  let failed: unknown = null;
  const ring = Array.from({ length: TAR_RING }, () => ({ buf: Buffer.allocUnsafe(TAR_SLOT), written: Promise.resolve() }));
  let turn = 0;
  let slot = ring[0];
  let used = 0;
  /** writes what the current buffer holds, and takes the next one once what it held is written */
  const next = async () => {
    if (used > 0) slot.written = sink.write(slot.buf.subarray(0, used)).catch((e: unknown) => void (failed ??= e));
    slot = ring[++turn % TAR_RING];
    used = 0;
    await slot.written;
    if (failed) throw failed;
  };
  /** puts `bytes` (a header, padding) into the archive */
  const put = async (bytes: Buffer) => {
    for (let off = 0; off < bytes.length;) {
      if (used === TAR_SLOT) await next();
      const n = bytes.copy(slot.buf, used, off);
      used += n;
      off += n;
    }
  };
  try {
    const index = Buffer.from(formatBundleIndex(indexOf(plan, 0, now)));
    await put(tarFileHeader(INDEX_NAME, index.length));
    await put(index);
    await put(ZEROS.subarray(0, tarPadding(index.length)));
    for (const o of plan.volumes[0]) {
      const fd = openSync(join(root, o.path), 'r');
      try {
        const size = fstatSync(fd).size;
        await put(tarFileHeader(o.path, size));
        for (let pos = 0; pos < size;) {
          if (used === TAR_SLOT) await next();
          const n = readSync(fd, slot.buf, used, Math.min(TAR_SLOT - used, size - pos), pos);
          if (n === 0) throw new Error(`${o.path} shrank while it was read`);
          used += n;
          pos += n;
        }
        await put(ZEROS.subarray(0, tarPadding(size)));
      } finally {
        closeSync(fd);
      }
      onObject?.(o);
    }
    await put(TAR_END);
    await next();
    await Promise.all(ring.map((r) => r.written));
    if (failed) throw failed;
    await sink.end();
  } finally {
    await sink.close();
  }
}

/** Where a tar archive goes: `write` resolves once `chunk` is written (or held no longer). */
interface TarSink {
  write(chunk: Buffer): Promise<void>;
  /** after the last write: the data complete */
  end(): Promise<void>;
  /** after end() or a failure */
  close(): Promise<void>;
}

/** A file, written on this thread as each buffer fills. */
function fileSink(path: string): TarSink {
  const fd = openSync(path, 'w');
  return {
    write: async (chunk) => {
      writeAllSync(fd, chunk);
    },
    end: async () => undefined,
    close: async () => closeSync(fd),
  };
}

/** A stream (standard output): each chunk written once its write callback says so. */
function streamSink(out: Writable): TarSink {
  let failed: Error | null = null;
  const onError = (e: Error) => (failed ??= e);
  out.on('error', onError);
  return {
    write: (chunk) =>
      new Promise<void>((res, rej) => {
        if (failed) return rej(failed);
        out.write(chunk, (e) => (e ? rej(e) : res()));
      }),
    end: () =>
      new Promise<void>((res, rej) => {
        out.end((e?: Error | null) => {
          const err = e ?? failed;
          if (err) rej(err);
          else res();
        });
      }),
    close: async () => void out.off('error', onError),
  };
}

/**
 * The buffers of the tar archive's ring, and their size. With the host's memory out of the way
 * (docs/performance.md, "Bundles", sixth session), the size hardly matters: a loop writing the
 * same 1.1 GiB archive took 0.49-0.57 s with 32 KiB, 128 KiB and 512 KiB writes alike (`tar -cf`
 * 0.58-0.61 s). Earlier figures that favoured 512 KiB measured the VM's memory, not the writes.
 */
const TAR_RING = 4;
const TAR_SLOT = 512 << 10;
/** padding: never written to */
const ZEROS = Buffer.alloc(BLOCK);
