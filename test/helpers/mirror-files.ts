/**
 * A mirror's (or a bundle's) files as the off-grid tests read them on their own, without
 * fodder's code: to check a bundle object by object against the ground mirror.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Fod } from '../../src/graph/types.js';

/** Every file under `root`'s tarballs/ and cache/ (no temporary names, no nix-cache-info), relative to it. */
export function filesOf(root: string): Set<string> {
  const out = new Set<string>();
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!e.name.startsWith('.') && e.name !== 'nix-cache-info') out.add(relative(root, p));
    }
  };
  walk(join(root, 'tarballs'));
  walk(join(root, 'cache'));
  return out;
}

/**
 * What a mirror holds for a FOD, in this order: the declared-hash tarball; the cache's own
 * narinfo and the NAR file it names; a flat source's narinfo (`cache/flat/`, whose NAR is made
 * from that tarball).
 */
export function objectsFor(root: string, f: Fod): string[] {
  const out: string[] = [];
  if (f.hash.mode === 'flat' && existsSync(join(root, 'tarballs', f.hash.algo, f.hash.hex))) out.push(`tarballs/${f.hash.algo}/${f.hash.hex}`);
  const hashPart = f.outPath.slice('/nix/store/'.length, '/nix/store/'.length + 32);
  for (const ni of [`cache/${hashPart}.narinfo`, `cache/flat/${hashPart}.narinfo`]) {
    if (!existsSync(join(root, ni))) continue;
    out.push(ni);
    const url = /^URL: (.*)$/m.exec(readFileSync(join(root, ni), 'utf8'))![1];
    if (!url.startsWith('nar/flat/')) out.push(`cache/${url}`);
  }
  return out;
}
