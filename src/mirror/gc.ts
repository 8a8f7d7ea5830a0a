/**
 * `fodder gc`: removes the mirror objects no kept crawl needs. The kept crawls are those of the
 * newest `keep` revisions of the package set (`keptCrawlIds`); what they need is, for every FOD
 * they saw, the file of its declared hash (`tarballs/<algo>/<hex>`, with every alias name of that
 * file, which are hard links to it), what `mirror_state` records for it, and its binary cache
 * entry (`<hash>.narinfo` of its output path and the NAR file that narinfo names; for a flat
 * source, `flat/<hash>.narinfo`, whose NAR is made from its tarball). Everything else under
 * `tarballs/<algo>/`, every other narinfo, every flat narinfo whose tarball goes (or is gone)
 * and every NAR file no remaining narinfo names is removed. Files being written (`tmp/`, `.tmp-*`) are never touched, and the mirror's
 * lock is held, so no fetch writes while gc removes.
 *
 * Order, so a kill at any point leaves a mirror that serves only whole entries: the narinfos
 * first, then the NAR files (a narinfo never points at a missing NAR), then the tarballs' alias
 * names, each file's stored name (`sha512/<hex>`) last. Then `mirror_state` forgets the files
 * that are gone, so the next fetch fetches them again if a crawl needs them.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, unlinkSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';
import { keptCrawlIds } from '../db/crawls.js';
import { neededObjects } from '../db/gc-queries.js';
import type { Db } from '../db/open.js';
import { HASH_ALGOS } from '../nix-formats/hash.js';
import { narInfoFileName } from '../nix-formats/narinfo.js';
import { createHashedMirror } from './hashed-mirror.js';
import { forgetMissing } from './mirror-db.js';
import { FLAT_NARINFO_DIR } from './flat-nar.js';
import { narSourceOfUrl } from './cache-entry.js';

export interface GcOptions {
  db: Db;
  mirrorDir: string;
  /** revisions whose crawls are kept */
  keep: number;
  /** say what would be removed, remove nothing */
  dryRun?: boolean;
}

export interface GcResult {
  mirror: string;
  dryRun: boolean;
  /** the crawls whose objects were kept */
  keptCrawls: number[];
  /** files freed (a tarball counts once, whatever its number of names) */
  tarballs: number;
  narinfos: number;
  nars: number;
  /** names removed under `tarballs/` (each file has up to six) */
  tarballNames: number;
  bytes: number;
  /** sources the database no longer counts as mirrored */
  forgotten: number;
}

const inode = (st: Stats) => `${st.dev}:${st.ino}`;

/** The regular files of a directory (none when it is missing), with their stats. */
function filesOf(dir: string): { path: string; name: string; st: Stats }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => !n.startsWith('.'))
    .map((name) => ({ name, path: join(dir, name), st: lstatSync(join(dir, name)) }))
    .filter((f) => f.st.isFile());
}

/** The `URL:` a narinfo names (relative to the cache), or null when it has none. */
function narUrl(file: string): string | null {
  try {
    return /^URL: *(\S+) *$/m.exec(readFileSync(file, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** A narinfo's file name for a store path, or null for a path that is not one. */
function narInfoName(outPath: string): string | null {
  try {
    return narInfoFileName(outPath);
  } catch {
    return null;
  }
}

export function collectGarbage(o: GcOptions): GcResult {
  const root = resolve(o.mirrorDir);
  const dryRun = o.dryRun ?? false;
  const mirror = dryRun ? null : createHashedMirror(root, { create: false });
  mirror?.lock();
  try {
    const keptCrawls = keptCrawlIds(o.db, o.keep);
    const need = neededObjects(o.db, keptCrawls, root);

    // the tarballs kept: by inode, so every alias name of a needed file is kept with it
    const keptInodes = new Set<string>();
    const keepFile = (path: string) => {
      if (existsSync(path)) keptInodes.add(inode(lstatSync(path)));
    };
    for (const h of need.hashes) if (/^[0-9a-f]+$/.test(h.hex)) keepFile(join(root, 'tarballs', h.algo, h.hex));
    for (const p of need.mirrorPaths) keepFile(resolve(root, p));
    const doomed = new Map<string, { paths: string[]; size: number }>();
    for (const algo of HASH_ALGOS) {
      for (const f of filesOf(join(root, 'tarballs', algo))) {
        if (keptInodes.has(inode(f.st))) continue;
        const entry = doomed.get(inode(f.st)) ?? { paths: [], size: f.st.size };
        entry.paths.push(f.path);
        doomed.set(inode(f.st), entry);
      }
    }

    // the binary cache kept: the narinfos of the needed output paths, and the NAR files they name
    const cache = join(root, 'cache');
    const keptNarInfos = new Set(need.outPaths.map(narInfoName).filter((n): n is string => n !== null));
    const narInfos = filesOf(cache).filter((f) => f.name.endsWith('.narinfo'));
    const goneNarInfos = narInfos.filter((f) => !keptNarInfos.has(f.name));
    const keptNars = new Set(
      narInfos
        .filter((f) => keptNarInfos.has(f.name))
        .map((f) => narUrl(f.path))
        .filter((u): u is string => u !== null),
    );
    const goneNars = filesOf(join(cache, 'nar')).filter((f) => !keptNars.has(`nar/${f.name}`));
    // the flat sources' narinfos: kept with their output path and their tarball
    const tarballKept = (url: string | null) => {
      const source = url ? narSourceOfUrl(url) : null;
      const file = source?.type === 'flat' ? join(root, source.path) : null;
      return file !== null && existsSync(file) && !doomed.has(inode(lstatSync(file)));
    };
    const goneFlat = filesOf(join(cache, FLAT_NARINFO_DIR)).filter(
      (f) => f.name.endsWith('.narinfo') && (!keptNarInfos.has(f.name) || !tarballKept(narUrl(f.path))),
    );
    goneNarInfos.push(...goneFlat);

    const stored = (p: string) => p.startsWith(join(root, 'tarballs', 'sha512') + '/') && /^[0-9a-f]{128}$/.test(p.slice(-128));
    const result: GcResult = {
      mirror: root,
      dryRun,
      keptCrawls,
      tarballs: doomed.size,
      narinfos: goneNarInfos.length,
      nars: goneNars.length,
      tarballNames: [...doomed.values()].reduce((n, d) => n + d.paths.length, 0),
      bytes: [...doomed.values(), ...goneNarInfos.map((f) => ({ size: f.st.size })), ...goneNars.map((f) => ({ size: f.st.size }))].reduce(
        (n, d) => n + d.size,
        0,
      ),
      forgotten: 0,
    };
    if (dryRun) return result;
    for (const f of goneNarInfos) unlinkSync(f.path);
    for (const f of goneNars) unlinkSync(f.path);
    for (const d of doomed.values()) {
      for (const p of [...d.paths.filter((x) => !stored(x)), ...d.paths.filter(stored)]) unlinkSync(p);
    }
    result.forgotten = forgetMissing(o.db, root);
    return result;
  } finally {
    mirror?.unlock();
  }
}
