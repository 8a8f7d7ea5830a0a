/**
 * A mirror's manifest: what it holds, compact, so a ground mirror can make a bundle of exactly
 * what a remote one lacks (`fodder manifest`, `bundle create --since`). JSON:
 *
 *   { "format": "fodder-manifest/1", "createdAt": ISO time,
 *     "tarballs": [[size, sha512, sha256, sha1, md5], ...]   one per stored file, hex ("" when a name is missing), sorted
 *     "cache": [[hashPart, narHash, url, fileSize], ...]     one per complete narinfo, sorted: the cache's own
 *                                                            (cache/, a NAR file) and flat sources' (cache/flat/,
 *                                                            URL nar/flat/…, fileSize the tarball's)
 *     "key": "name" | null, "sig": "name:base64" | null }
 *
 * The signature (the mirror's binary-cache key, Nix's Ed25519 format) covers
 * `fodder-manifest;1;<sha256 hex of the canonical text>`, the canonical text being the JSON of
 * the other fields in the order above, without spaces.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ErrorCode, FodderError } from '../errors.js';
import { hashSizes, HASH_ALGOS, toNix32, type HashAlgo } from '../nix-formats/hash.js';
import { parseNarInfo, publicKeyOf, signNarInfo, verifyNarInfoSig } from '../nix-formats/narinfo.js';
import { NARINFO_DIRS, narInfoPathOf, narSourceOf, narSourceOfUrl, NARINFO_NAME } from './cache-entry.js';

export const MANIFEST_FORMAT = 'fodder-manifest/1';

const hex = (algo: HashAlgo) => z.union([z.literal(''), z.string().regex(new RegExp(`^[0-9a-f]{${hashSizes[algo] * 2}}$`))]);
const manifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    createdAt: z.string(),
    tarballs: z.array(z.tuple([z.number().int().min(0), hex('sha512'), hex('sha256'), hex('sha1'), hex('md5')])),
    cache: z.array(z.tuple([z.string().regex(/^[0-9a-df-np-sv-z]{32}$/), z.string(), z.string(), z.number().int().min(0)])),
    key: z.string().nullable(),
    sig: z.string().nullable(),
  })
  .strict();

export type Manifest = z.infer<typeof manifestSchema>;

/** The order the tarball columns give the algorithms. */
const COLUMNS: readonly HashAlgo[] = ['sha512', 'sha256', 'sha1', 'md5'];
const isHex = (algo: HashAlgo, name: string) => name.length === hashSizes[algo] * 2 && /^[0-9a-f]+$/.test(name);

/** What the mirror at `dir` holds. Files being written (temporary names) are not listed. */
export function buildManifest(dir: string, secretKey: string | null, now = new Date()): Manifest {
  const root = resolve(dir);
  const byInode = new Map<string, { size: number; names: Partial<Record<HashAlgo, string>> }>();
  for (const algo of HASH_ALGOS) {
    const d = join(root, 'tarballs', algo);
    if (!existsSync(d)) continue;
    for (const name of readdirSync(d)) {
      if (!isHex(algo, name)) continue;
      const st = lstatSync(join(d, name));
      if (!st.isFile()) continue;
      const key = `${st.dev}:${st.ino}`;
      const e = byInode.get(key) ?? { size: st.size, names: {} };
      e.names[algo] = name;
      byInode.set(key, e);
    }
  }
  const tarballs = [...byInode.values()]
    .filter((e) => e.names.sha512 || e.names.sha256)
    .map((e) => [e.size, ...COLUMNS.map((a) => e.names[a] ?? '')] as Manifest['tarballs'][number])
    .sort((a, b) => cmp(a[1] + a[2], b[1] + b[2]));
  const cache: Manifest['cache'] = [];
  for (const dir of NARINFO_DIRS) {
    if (!existsSync(join(root, dir))) continue;
    for (const name of readdirSync(join(root, dir))) {
      if (!NARINFO_NAME.test(name)) continue;
      try {
        const info = parseNarInfo(readFileSync(join(root, dir, name), 'utf8'));
        const source = narSourceOf(info);
        if (!source || narInfoPathOf(name.slice(0, 32), source) !== `${dir}/${name}`) continue;
        const st = lstatSync(join(root, source.path));
        if (!st.isFile()) continue;
        cache.push([name.slice(0, 32), toNix32(info.narHash), info.url, st.size]);
      } catch {
        /* an entry whose NAR is missing, or a narinfo that does not parse: not held */
      }
    }
  }
  cache.sort((a, b) => cmp(a[0], b[0]) || cmp(a[2], b[2]));
  const body = { format: MANIFEST_FORMAT, createdAt: now.toISOString(), tarballs, cache } as const;
  if (!secretKey) return { ...body, key: null, sig: null };
  const key = publicKeyOf(secretKey).split(':')[0];
  return { ...body, key, sig: signNarInfo(fingerprint({ ...body, key }), secretKey) };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** What the signature covers. */
function fingerprint(m: Omit<Manifest, 'sig'>): string {
  const canonical = JSON.stringify([m.format, m.createdAt, m.tarballs, m.cache, m.key]);
  return `fodder-manifest;1;${createHash('sha256').update(canonical).digest('hex')}`;
}

/** The manifest's JSON text: one line per entry, so it stays readable and diffable. */
export function formatManifest(m: Manifest): string {
  const list = (rows: unknown[]) => (rows.length ? `[\n${rows.map((r) => `    ${JSON.stringify(r)}`).join(',\n')}\n  ]` : '[]');
  return (
    `{\n  "format": ${JSON.stringify(m.format)},\n  "createdAt": ${JSON.stringify(m.createdAt)},\n` +
    `  "tarballs": ${list(m.tarballs)},\n  "cache": ${list(m.cache)},\n` +
    `  "key": ${JSON.stringify(m.key)},\n  "sig": ${JSON.stringify(m.sig)}\n}\n`
  );
}

function invalid(file: string, why: string): FodderError {
  return new FodderError(ErrorCode.MANIFEST_INVALID, `manifest ${file}: ${why}`, { file });
}

/**
 * Reads and checks a manifest. With `trustedKeys` (public keys, `name:base64`), it must carry a
 * valid signature by one of them; without, a signature is not checked.
 */
export function readManifest(file: string, trustedKeys: readonly string[]): Manifest {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw invalid(file, `not readable as JSON (${(e as Error).message})`);
  }
  const parsed = manifestSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(file, `not a ${MANIFEST_FORMAT} manifest: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  const m = parsed.data;
  if (trustedKeys.length) {
    if (!m.sig || !m.key) throw invalid(file, `unsigned, and trusted keys are configured (${trustedKeys.map((k) => k.split(':')[0]).join(', ')})`);
    if (!m.sig.startsWith(`${m.key}:`) || !verifyNarInfoSig(fingerprint(m), m.sig, trustedKeys)) {
      throw invalid(file, `its signature by "${m.key}" does not verify with the trusted keys`);
    }
  }
  return m;
}

/**
 * Every object the mirror a manifest describes held, as paths relative to a mirror: each
 * tarball under all its names, each narinfo where it belongs, and the NAR file it names (a flat
 * source's NAR is its tarball, listed with the tarballs).
 */
export function manifestPaths(m: Manifest): Set<string> {
  const have = new Set<string>();
  for (const row of m.tarballs) COLUMNS.forEach((a, i) => row[i + 1] && have.add(`tarballs/${a}/${row[i + 1]}`));
  for (const [hashPart, , url] of m.cache) {
    const source = narSourceOfUrl(url);
    if (!source) continue;
    have.add(narInfoPathOf(hashPart, source));
    if (source.type === 'nar') have.add(source.path);
  }
  return have;
}
