import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { cacheSchema } from '../config/schema.js';
import { FodderError } from '../errors.js';
import { CacheErrorCode, type BinaryCacheOptions } from '../mirror/binary-cache.js';
import { publicKeyOf } from '../nix-formats/narinfo.js';

/** The `cache:` options (`fetch.cache` in the config file), validated once at the edge. */
export const binaryCacheOptionsSchema = cacheSchema;

export type BinaryCacheConfig = z.input<typeof binaryCacheOptionsSchema>;

/** Validates a `cache:` section and reads its key file; errors name the bad key. */
export function binaryCacheOptions(mirrorDir: string, raw: unknown): BinaryCacheOptions {
  const parsed = binaryCacheOptionsSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new FodderError(CacheErrorCode.OPTIONS_INVALID, `cache.${i.path.join('.')}: ${i.message}`, { key: i.path.join('.') });
  }
  const o = parsed.data;
  let secretKey: string | null = null;
  if (o.secretKeyFile) {
    try {
      secretKey = readFileSync(o.secretKeyFile, 'utf8').trim();
      publicKeyOf(secretKey);
    } catch (e) {
      throw new FodderError(CacheErrorCode.OPTIONS_INVALID, `cache.secretKeyFile: ${o.secretKeyFile}: ${(e as Error).message}`, { key: 'secretKeyFile' });
    }
  }
  return { mirrorDir, compression: o.compression, level: o.level, secretKey, priority: o.priority, flat: o.flat };
}
