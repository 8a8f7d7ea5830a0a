import { resolve, dirname } from 'node:path';
import { z } from 'zod';
import { FodderError, ErrorCode } from '../errors.js';
import { readConfigFile } from '../config/load.js';
import type { FodKind } from '../graph/types.js';
import { NETWORK_DEFAULTS, type NetworkOptions } from './network.js';
import { parseKinds } from './registry.js';

/** The command line of `fodder fetch`, as commander hands it over. */
export interface FetchFlags {
  config?: string;
  db?: string;
  mirror?: string;
  kind?: string[];
  concurrency?: number;
  perHost?: number;
  retryFailed?: boolean;
  json?: boolean;
  connectTimeout?: string;
  idleTimeout?: string;
  retries?: string;
  retryDelay?: string;
  maxSize?: string;
}

export interface FetchSettings {
  db: string;
  mirror: string;
  kinds: FodKind[];
  retryFailed: boolean;
  network: NetworkOptions;
}

const seconds = z.coerce.number().positive();
const flagSchema = z.object({
  connectTimeout: seconds.optional(),
  idleTimeout: seconds.optional(),
  retries: z.coerce.number().int().min(0).optional(),
  retryDelay: z.coerce.number().min(0).optional(),
  maxSize: z.coerce.number().positive().optional(),
});

/**
 * Settings for one fetch run: defaults, then the config file's `fetch:` section, then the
 * command line. Validated once here; a bad value names its option.
 */
export function fetchSettings(flags: FetchFlags): FetchSettings {
  const parsed = flagSchema.safeParse({
    connectTimeout: flags.connectTimeout, idleTimeout: flags.idleTimeout, retries: flags.retries,
    retryDelay: flags.retryDelay, maxSize: flags.maxSize,
  });
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    const key = String(i.path[0]);
    const option = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new FodderError(ErrorCode.USAGE, `${option}: ${i.message} (got "${(flags as Record<string, unknown>)[key]}")`, { option });
  }
  const f = parsed.data;
  const raw = flags.config ? readConfigFile(flags.config) : null;
  const base = flags.config ? dirname(resolve(flags.config)) : process.cwd();
  const cfg = raw?.fetch;
  const db = flags.db ? resolve(flags.db) : raw?.db ? resolve(base, raw.db) : resolve('data/fodder.db');
  const mirror = flags.mirror ? resolve(flags.mirror) : cfg ? resolve(base, cfg.mirror) : resolve('data/mirror');
  const secs = (v: number | undefined, fallbackMs: number) => (v === undefined ? fallbackMs : Math.round(v * 1000));
  return {
    db,
    mirror,
    kinds: parseKinds(flags.kind?.length ? flags.kind : cfg?.kinds),
    retryFailed: Boolean(flags.retryFailed),
    network: {
      ...NETWORK_DEFAULTS,
      concurrency: flags.concurrency ?? cfg?.concurrency ?? NETWORK_DEFAULTS.concurrency,
      perHost: flags.perHost ?? cfg?.perHost ?? NETWORK_DEFAULTS.perHost,
      connectTimeoutMs: secs(f.connectTimeout ?? cfg?.connectTimeoutSec, NETWORK_DEFAULTS.connectTimeoutMs),
      idleTimeoutMs: secs(f.idleTimeout ?? cfg?.idleTimeoutSec, NETWORK_DEFAULTS.idleTimeoutMs),
      retries: f.retries ?? cfg?.retries ?? NETWORK_DEFAULTS.retries,
      retryDelayMs: f.retryDelay !== undefined ? Math.round(f.retryDelay * 1000) : NETWORK_DEFAULTS.retryDelayMs,
      maxBytes: Math.round((f.maxSize ?? cfg?.maxSizeMb ?? NETWORK_DEFAULTS.maxBytes / 2 ** 20) * 2 ** 20),
    },
  };
}
