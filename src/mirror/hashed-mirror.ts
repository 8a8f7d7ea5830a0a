import { closeSync, existsSync, fsync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, link, lstat, open, rename, rm, stat } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join, resolve } from 'node:path';
import { FodderError } from '../errors.js';
import { encodeNix32, HASH_ALGOS, type HashAlgo } from '../nix-formats/hash.js';
import { MirrorErrorCode, storageError } from './storage-error.js';
import type { Digests } from './types.js';

/**
 * The hashed mirror: `DIR/tarballs/<algo>/<name>` answering every name the public tarballs
 * mirror answers. Each file is stored once as `sha512/<hex>`; `md5/<hex>`, `sha1/<hex>`,
 * `sha256/<hex>`, `sha256/<nix32>` and `sha512/<nix32>` are hard links to it. Nix uses
 * `DIR/tarballs/` as a `hashed-mirrors` entry (it asks for `<algo>/<hex>`).
 *
 * Nothing appears under a final name before it is complete, verified and fsynced: downloads
 * live in `DIR/tmp/` (same filesystem) until admitFile links them into place.
 */
export interface HashedMirror {
  readonly root: string;
  readonly tarballs: string;
  /** absolute path of `tarballs/<algo>/<hex>` */
  pathOf(algo: HashAlgo, hex: string): string;
  /** whether the mirror holds content with this hash */
  has(algo: HashAlgo, hex: string): boolean;
  /** a work directory for one source (kept across runs so a download can resume) */
  workDir(key: string): string;
  /** removes a work directory; never throws */
  removeWorkDir(key: string): Promise<void>;
  /**
   * moves a verified file into the mirror under every alias its digests give; returns the stored
   * path. `prepared`: the caller made its data durable (`syncFiles`) and created it read-only
   * (0444), so it is neither fsynced nor changed here.
   */
  admitFile(path: string, digests: Partial<Digests>, prepared?: boolean): Promise<string>;
  /** fsyncs the directories that got new names since the last call */
  syncDirs(): Promise<void>;
  /** takes the mirror's lock (one writer at a time); throws MIRROR_LOCKED if a live process has it */
  lock(): void;
  /** gives the lock back; never throws (a lock it cannot remove is taken over by the next run) */
  unlock(): void;
}

/**
 * Every `algo/name` a file with these digests is reachable as; the first is where it is stored.
 * Digests left out give no names (a bundle's import hashes only what it verifies and sha256).
 */
export function aliasNames(d: Partial<Digests>): { algo: HashAlgo; name: string }[] {
  const nix32 = (hex: string) => encodeNix32(Buffer.from(hex, 'hex'));
  const names: { algo: HashAlgo; name: string | undefined }[] = [
    { algo: 'sha512', name: d.sha512 },
    { algo: 'sha256', name: d.sha256 },
    { algo: 'sha1', name: d.sha1 },
    { algo: 'md5', name: d.md5 },
    { algo: 'sha256', name: d.sha256 && nix32(d.sha256) },
    { algo: 'sha512', name: d.sha512 && nix32(d.sha512) },
  ];
  return names.filter((n): n is { algo: HashAlgo; name: string } => n.name !== undefined);
}

const fsyncFd = promisify(fsync);
const execFileP = promisify(execFile);

/**
 * fsyncs a file or a directory (its names). Opened and closed on this thread: only the fsync
 * waits in libuv's pool, so many of them at once do not queue the other file operations behind
 * three steps each.
 */
export async function syncPath(path: string): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `text` to `file` through a temporary name beside it: fsynced, then renamed. */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await rename(tmp, file);
}

/**
 * Makes complete files durable at once: one `sync -f` (syncfs(2) of their filesystem, which
 * writes back and flushes once for all of them) where coreutils has it, else an fsync each. Many
 * small files cost one device flush each when fsynced one by one (`bench:bundle`).
 */
export async function syncFiles(paths: readonly string[]): Promise<void> {
  if (!paths.length) return;
  try {
    // node:child_process, not src/process.ts: an import that only syncs does not load execa
    await execFileP('sync', ['-f', paths[0]]);
    return;
  } catch {
    /* no sync(1), or it failed: fsync each below */
  }
  await Promise.all(paths.map(syncPath));
}

const LOCK_FILE = 'lock';
let linkSeq = 0;
/** Work dirs untouched for this long are leftovers of sources no longer fetched. */
const STALE_WORK_MS = 7 * 24 * 3600 * 1000;

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function unwritable(root: string, err: unknown, what: string): FodderError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOTDIR' || code === 'EEXIST') {
    return new FodderError(MirrorErrorCode.MIRROR_UNWRITABLE, `mirror ${root}: ${what} is not a directory`, { mirror: root });
  }
  return (
    storageError(err, `mirror ${root}: ${what}`) ??
    new FodderError(MirrorErrorCode.MIRROR_UNWRITABLE, `mirror ${root}: cannot use ${what}: ${(err as Error).message}`, { mirror: root })
  );
}

/**
 * Opens (creating it when `create`) the mirror at `dir` and checks it can be written: a probe
 * file is created and removed in `tmp/`. `create: false` only requires the directory to exist.
 */
export function createHashedMirror(dir: string, options: { create: boolean } = { create: true }): HashedMirror {
  const root = resolve(dir);
  const tarballs = join(root, 'tarballs');
  const tmp = join(root, 'tmp');
  if (!options.create) {
    if (!existsSync(tarballs) || !statSync(tarballs).isDirectory()) {
      throw new FodderError(MirrorErrorCode.MIRROR_MISSING, `no mirror at ${root} (expected ${tarballs}/): run \`fodder fetch\` first or pass --mirror DIR`, {
        mirror: root,
      });
    }
  }
  try {
    for (const a of HASH_ALGOS) mkdirSync(join(tarballs, a), { recursive: true });
    mkdirSync(tmp, { recursive: true });
    const probe = join(tmp, `.probe-${process.pid}`);
    writeFileSync(probe, 'fodder');
    unlinkSync(probe);
  } catch (err) {
    throw unwritable(root, err, 'the directory');
  }

  const dirty = new Set<string>();
  let locked = false;
  const pathOf = (algo: HashAlgo, name: string) => join(tarballs, algo, name);

  /** name -> the stored file, replacing a different file already there (it has the same hash) */
  const linkAlias = async (stored: string, alias: string) => {
    try {
      await link(stored, alias);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const [a, s] = await Promise.all([lstat(alias), stat(stored)]);
      if (a.ino === s.ino && a.dev === s.dev) return;
      const temp = `${alias}.link-${process.pid}-${linkSeq++}`;
      await rm(temp, { force: true });
      await link(stored, temp);
      await rename(temp, alias);
    }
  };

  return {
    root,
    tarballs,
    pathOf,
    has(algo, hex) {
      return existsSync(pathOf(algo, hex));
    },
    workDir(key) {
      const d = join(tmp, key);
      try {
        mkdirSync(d, { recursive: true });
      } catch (err) {
        throw unwritable(root, err, 'tmp/');
      }
      return d;
    },
    async removeWorkDir(key) {
      // best effort: it runs after failures too (a read-only mirror), which it must not hide; what
      // stays is removed by a later run. Not on the main thread: a directory's removal can take
      // milliseconds (ext4 scans the recently deleted inodes), which a service's requests would wait for.
      await rm(join(tmp, key), { recursive: true, force: true }).catch(() => undefined);
    },
    async admitFile(path, digests, prepared = false) {
      const names = aliasNames(digests);
      const stored = pathOf(names[0].algo, names[0].name);
      try {
        if (!prepared) {
          await syncPath(path);
          await chmod(path, 0o444);
        }
        await rename(path, stored);
        for (const n of names.slice(1)) await linkAlias(stored, pathOf(n.algo, n.name));
      } catch (err) {
        throw storageError(err, `storing ${stored}`) ?? err;
      }
      for (const n of names) dirty.add(join(tarballs, n.algo));
      return stored;
    },
    async syncDirs() {
      const dirs = [...dirty];
      dirty.clear();
      await Promise.all(dirs.map(syncPath));
    },
    lock() {
      const file = join(root, LOCK_FILE);
      for (let i = 0; i < 2; i++) {
        try {
          const fd = openSync(file, 'wx');
          writeSync(fd, `${process.pid}\n`);
          closeSync(fd);
          locked = true;
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw unwritable(root, err, 'the lock file');
          const pid = Number(readFileSync(file, 'utf8').trim());
          if (pid !== process.pid && pidAlive(pid)) {
            throw new FodderError(
              MirrorErrorCode.MIRROR_LOCKED,
              `mirror ${root} is in use by process ${pid} (another fodder fetch or verify); remove ${file} if that is wrong`,
              { mirror: root, pid },
            );
          }
          rmSync(file, { force: true }); // left by a process that died
        }
      }
      if (!locked) throw new FodderError(MirrorErrorCode.MIRROR_LOCKED, `cannot take the lock ${file}`, { mirror: root });
      // leftovers of dead runs: alias temp links, and work dirs nobody came back for
      for (const a of HASH_ALGOS) {
        for (const name of readdirSync(join(tarballs, a))) if (name.includes('.link-')) rmSync(join(tarballs, a, name), { force: true });
      }
      for (const name of readdirSync(tmp)) {
        const p = join(tmp, name);
        try {
          if (Date.now() - statSync(p).mtimeMs > STALE_WORK_MS) rmSync(p, { recursive: true, force: true });
        } catch {
          /* gone */
        }
      }
    },
    unlock() {
      if (!locked) return;
      locked = false;
      // best effort: a lock left behind (the mirror turned read-only) names a process that is gone,
      // and the next run takes it over
      try {
        rmSync(join(root, LOCK_FILE), { force: true });
      } catch {
        /* see above */
      }
    },
  };
}
