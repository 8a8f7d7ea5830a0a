/**
 * A bundle: a directory laid out like a mirror (`tarballs/…`, `cache/…`) with an index,
 * `bundle.json`, listing every object with its size and what it is checked against; or the
 * same as a tar stream (the index first); or volumes `volume-1/`, `volume-2/`, … each a bundle
 * of its own. Objects are checked by what they are, not by the index's word: a tarball against
 * its name (`tarballs/<algo>/<hex>`), a NAR file against its name (the nix32 sha256 of the
 * file), a narinfo (`cache/` or, a flat source's, `cache/flat/`) against the sha256 the index
 * gives, its store path and what it needs (src/mirror/cache-entry.ts), and its signature when
 * keys are trusted.
 */
import { z } from 'zod';
import { ErrorCode, FodderError } from '../errors.js';
import { isNarInfoPath, NAR_NAME } from './cache-entry.js';

export const BUNDLE_FORMAT = 'fodder-bundle/1';
export const INDEX_NAME = 'bundle.json';

const tarballObject = z
  .object({ type: z.literal('tarball'), path: z.string().regex(/^tarballs\/(md5|sha1|sha256|sha512)\/[0-9a-f]{32,128}$/), size: z.number().int().min(0) })
  .strict();
const narObject = z
  .object({
    type: z.literal('nar'),
    path: z.string().refine((p) => p.startsWith('cache/nar/') && NAR_NAME.test(p.slice('cache/nar/'.length)), 'not cache/nar/<nix32>.nar[.xz|.zst]'),
    size: z.number().int().min(0),
  })
  .strict();
const narInfoObject = z
  .object({
    type: z.literal('narinfo'),
    path: z.string().refine(isNarInfoPath, 'not cache/<hash>.narinfo or cache/flat/<hash>.narinfo'),
    size: z.number().int().min(0),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();
const objectSchema = z.discriminatedUnion('type', [tarballObject, narObject, narInfoObject]);
const indexSchema = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    createdAt: z.string(),
    /** 1-based; null: the bundle is not split */
    volume: z.number().int().min(1).nullable(),
    volumes: z.number().int().min(1),
    objects: z.array(objectSchema),
  })
  .strict();

export type BundleObject = z.infer<typeof objectSchema>;
export type BundleIndex = z.infer<typeof indexSchema>;

/** Parses a bundle index; an index that is not one is BUNDLE_INVALID naming `where`. */
export function parseBundleIndex(text: string, where: string): BundleIndex {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new FodderError(ErrorCode.BUNDLE_INVALID, `${where}: the bundle index is not JSON (${(e as Error).message})`, { where });
  }
  const parsed = indexSchema.safeParse(data);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new FodderError(ErrorCode.BUNDLE_INVALID, `${where}: not a ${BUNDLE_FORMAT} index: ${i.path.join('.')}: ${i.message}`, { where });
  }
  return parsed.data;
}

/** The index's text: one object per line. */
export function formatBundleIndex(ix: BundleIndex): string {
  const objects = ix.objects.map((o) => `    ${JSON.stringify(o)}`).join(',\n');
  return `{\n  "format": ${JSON.stringify(ix.format)},\n  "createdAt": ${JSON.stringify(ix.createdAt)},\n  "volume": ${ix.volume},\n  "volumes": ${ix.volumes},\n  "objects": [${objects ? `\n${objects}\n  ` : ''}]\n}\n`;
}
