/**
 * What an archive may contain before fodder lets GNU tar or unzip write it to disk. Every entry
 * of a tar or zip is checked here, in archive order, before the extracting tool sees it:
 * absolute names, `..` components, entries reached through a symlink of the same archive,
 * hard links out of the tree, device files and fifos are refused, and the total size and entry
 * count are capped (decompression bombs). A refusal is never a verdict on the source: the
 * fetcher records it as unverifiable.
 */
import { ErrorCode, FodderError } from '../errors.js';

/** The ErrorCodes of unpacking, by shorter names (src/errors.ts says what each means). */
export const UnpackErrorCode = {
  UNSAFE: ErrorCode.UNPACK_UNSAFE,
  TOO_LARGE: ErrorCode.UNPACK_TOO_LARGE,
  UNSUPPORTED: ErrorCode.UNPACK_UNSUPPORTED,
  FAILED: ErrorCode.UNPACK_FAILED,
  STRIP_ROOT: ErrorCode.UNPACK_STRIP_ROOT,
} as const;

export type UnpackErrorCode = (typeof UnpackErrorCode)[keyof typeof UnpackErrorCode];

export function unpackError(code: UnpackErrorCode, message: string, fields: Record<string, unknown> = {}): FodderError {
  return new FodderError(code, message, fields);
}

export interface UnpackLimits {
  /** total bytes of all files (hard links count again), and of tar metadata */
  maxBytes: number;
  maxEntries: number;
}

export const DEFAULT_UNPACK_LIMITS: UnpackLimits = { maxBytes: 16 * 1024 ** 3, maxEntries: 2_000_000 };

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'device' | 'fifo';

export interface ArchiveEntry {
  /** the name as stored (bytes as latin1) */
  name: string;
  type: EntryType;
  /** hard link: the name of the earlier entry it links to */
  linkTarget?: string;
  size: number;
}

/** A name split into components; `.` and empty components dropped. Throws on absolute names and `..`. */
export function entryPath(name: string, what = 'entry'): string {
  if (name.startsWith('/')) {
    throw unpackError(UnpackErrorCode.UNSAFE, `${what} '${printable(name)}' is an absolute path`, { entry: printable(name), rule: 'absolute' });
  }
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) {
    throw unpackError(UnpackErrorCode.UNSAFE, `${what} '${printable(name)}' climbs out with '..'`, { entry: printable(name), rule: 'dot-dot' });
  }
  return parts.join('/');
}

// eslint-disable-next-line no-control-regex -- control characters are what it replaces
const CONTROL_CHARS = /[\x00-\x1f\x7f]/g;

export function printable(name: string): string {
  return Buffer.from(name, 'latin1').toString('utf8').replace(CONTROL_CHARS, '?');
}

/** The checker for one archive. `check` throws a FodderError on the first entry it refuses. */
export function createEntryPolicy(limits: UnpackLimits) {
  const symlinks = new Set<string>();
  const sizes = new Map<string, number>();
  let bytes = 0;
  let entries = 0;

  const throughSymlink = (path: string): string | null => {
    let i = path.indexOf('/');
    while (i >= 0) {
      const prefix = path.slice(0, i);
      if (symlinks.has(prefix)) return prefix;
      i = path.indexOf('/', i + 1);
    }
    return null;
  };

  const addBytes = (n: number, entry: string) => {
    bytes += n;
    if (bytes > limits.maxBytes) {
      throw unpackError(UnpackErrorCode.TOO_LARGE, `unpacked size passes the cap of ${limits.maxBytes} bytes (at '${printable(entry)}')`, {
        entry: printable(entry),
        maxBytes: limits.maxBytes,
      });
    }
  };

  return {
    get bytes() {
      return bytes;
    },
    get entries() {
      return entries;
    },
    /** counts bytes that are not file contents (tar long names, pax headers) against the cap */
    addMetaBytes(n: number, entry: string) {
      addBytes(n, entry);
    },
    check(e: ArchiveEntry): string {
      entries++;
      if (entries > limits.maxEntries) {
        throw unpackError(UnpackErrorCode.TOO_LARGE, `more than ${limits.maxEntries} entries`, { maxEntries: limits.maxEntries });
      }
      const path = entryPath(e.name);
      const shown = printable(e.name);
      if (e.type === 'device' || e.type === 'fifo') {
        throw unpackError(UnpackErrorCode.UNSAFE, `entry '${shown}' is a ${e.type === 'fifo' ? 'fifo' : 'device file'}`, { entry: shown, rule: e.type });
      }
      if (path === '') {
        if (e.type !== 'dir')
          throw unpackError(UnpackErrorCode.UNSAFE, `entry '${shown}' names the top directory but is a ${e.type}`, { entry: shown, rule: 'root' });
        return path;
      }
      const via = throughSymlink(path);
      if (via !== null) {
        throw unpackError(UnpackErrorCode.UNSAFE, `entry '${shown}' goes through the symlink '${printable(via)}'`, {
          entry: shown,
          symlink: printable(via),
          rule: 'symlink-escape',
        });
      }
      if (symlinks.has(path)) {
        throw unpackError(UnpackErrorCode.UNSAFE, `entry '${shown}' replaces the symlink of the same name`, { entry: shown, rule: 'symlink-replace' });
      }
      if (e.type === 'symlink' && sizes.has(path)) {
        throw unpackError(UnpackErrorCode.UNSAFE, `symlink '${shown}' replaces an earlier entry of the same name`, { entry: shown, rule: 'symlink-replace' });
      }
      if (e.type === 'hardlink') {
        const target = entryPath(e.linkTarget ?? '', `hard link target of '${shown}'`);
        const tvia = throughSymlink(target);
        if (tvia !== null || symlinks.has(target)) {
          throw unpackError(UnpackErrorCode.UNSAFE, `hard link '${shown}' points through the symlink '${printable(tvia ?? target)}'`, {
            entry: shown,
            rule: 'symlink-escape',
          });
        }
        const size = sizes.get(target);
        if (size === undefined) {
          throw unpackError(UnpackErrorCode.UNSAFE, `hard link '${shown}' points to '${printable(target)}', which is not an earlier entry`, {
            entry: shown,
            rule: 'hardlink-outside',
          });
        }
        addBytes(size, e.name);
        sizes.set(path, size);
        return path;
      }
      if (e.type === 'symlink') symlinks.add(path);
      if (e.type === 'file') addBytes(e.size, e.name);
      sizes.set(path, e.type === 'file' ? e.size : 0);
      return path;
    },
  };
}

export type EntryPolicy = ReturnType<typeof createEntryPolicy>;
