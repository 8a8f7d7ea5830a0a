/**
 * A streaming reader of tar headers (v7, ustar, GNU and pax), used only to judge entries before
 * GNU tar extracts them: every chunk of the decompressed stream passes through `push` first and
 * is handed to tar afterwards, so tar never sees a header that was refused. It also finds the
 * end of the archive (the first zero block, where GNU tar stops).
 */
import { BLOCK, paxRecords, tarChecksumOk, tarHeaderName, tarNumber, tarText } from '../mirror/tar-header.js';
import { UnpackErrorCode, unpackError, type EntryPolicy, type EntryType } from './unpack-policy.js';

/** Longest GNU long name / long link or pax header accepted. */
const MAX_META = 1 << 20;

export interface TarScanner {
  /**
   * Judges `chunk`; returns how many of its bytes belong to the archive (all of them, or fewer
   * when the end-of-archive block is in it). Throws a FodderError on a refused entry.
   */
  push(chunk: Buffer): number;
  /** true once the end-of-archive block was seen */
  readonly ended: boolean;
  /** throws when the stream stopped inside a header or an entry */
  finish(): void;
}

interface Pending {
  path?: string;
  linkpath?: string;
  size?: number;
}

type MetaKind = 'L' | 'K' | 'x' | 'g';

/**
 * `memberName` gives the name GNU tar writes a member under (its --strip-components and
 * --exclude), or null for a member it skips; the policy judges that name.
 */
export function createTarScanner(policy: EntryPolicy, memberName: (name: string) => string | null = (n) => n): TarScanner {
  const header = Buffer.alloc(BLOCK);
  let headerFill = 0;
  /** bytes of the current entry's data and padding still to pass */
  let skip = 0;
  /** collecting a metadata entry's data */
  let meta: { kind: MetaKind; data: Buffer; fill: number; size: number } | null = null;
  let pending: Pending = {};
  let ended = false;
  let offset = 0;

  const onHeader = (h: Buffer): void => {
    if (h.every((b) => b === 0)) {
      ended = true;
      return;
    }
    if (!checksumOk(h)) {
      throw unpackError(UnpackErrorCode.FAILED, `not a tar archive (bad header checksum at byte ${offset})`, { offset });
    }
    const typeflag = String.fromCharCode(h[156] || 0x30);
    let size = pending.size ?? headerSize(h, offset);
    if (typeflag === 'L' || typeflag === 'K' || typeflag === 'x' || typeflag === 'g') {
      size = headerSize(h, offset);
      if (size > MAX_META) throw unpackError(UnpackErrorCode.UNSUPPORTED, `tar metadata entry of ${size} bytes (cap ${MAX_META})`, { offset });
      policy.addMetaBytes(size, '(tar metadata)');
      meta = { kind: typeflag, data: Buffer.alloc(size), fill: 0, size };
      if (size === 0) endMeta();
      return;
    }
    const ustar = h.subarray(257, 263).toString('latin1') === 'ustar\0';
    const name = pending.path ?? tarHeaderName(h, ustar, 'latin1');
    const link = pending.linkpath ?? tarText(h, 157, 100, 'latin1');
    pending = {};
    const type = entryType(typeflag, name, offset);
    if ((type === 'symlink' || type === 'hardlink' || type === 'device' || type === 'fifo') && size !== 0 && typeflag !== '1') {
      throw unpackError(UnpackErrorCode.UNSUPPORTED, `tar entry '${name}' of type '${typeflag}' carries ${size} bytes of data`, { offset });
    }
    const written = memberName(name);
    if (written !== null) {
      const target = type === 'hardlink' ? memberName(link) : undefined;
      if (target === null) {
        throw unpackError(UnpackErrorCode.UNSUPPORTED, `hard link '${name}' points to '${link}', which tar does not write`, { offset });
      }
      policy.check({ name: written, type, linkTarget: target, size });
    }
    // a hard link's data (if any) is skipped by tar as well
    skip = padded(size);
  };

  const endMeta = (): void => {
    const m = meta!;
    meta = null;
    skip = padded(m.size) - m.size;
    if (m.kind === 'L') pending.path = tarText(m.data, 0, m.size, 'latin1');
    else if (m.kind === 'K') pending.linkpath = tarText(m.data, 0, m.size, 'latin1');
    else {
      const rec = parsePax(m.data, offset);
      const sparse = [...rec.keys()].some((k) => k.startsWith('GNU.sparse'));
      if (m.kind === 'g') {
        if (rec.has('path') || rec.has('linkpath') || rec.has('size') || sparse) {
          throw unpackError(UnpackErrorCode.UNSUPPORTED, 'a pax global header sets path, linkpath, size or sparse data', { offset });
        }
        return;
      }
      if (sparse) {
        throw unpackError(UnpackErrorCode.UNSUPPORTED, 'sparse files (pax GNU.sparse) are not unpacked by fodder', { offset });
      }
      const path = rec.get('path');
      const linkpath = rec.get('linkpath');
      const size = rec.get('size');
      if (path !== undefined) pending.path = path;
      if (linkpath !== undefined) pending.linkpath = linkpath;
      if (size !== undefined) {
        if (!/^\d+$/.test(size)) throw unpackError(UnpackErrorCode.FAILED, `bad pax size '${size}'`, { offset });
        pending.size = Number(size);
      }
    }
  };

  return {
    get ended() {
      return ended;
    },
    push(chunk: Buffer): number {
      let pos = 0;
      while (pos < chunk.length && !ended) {
        if (skip > 0) {
          const n = Math.min(skip, chunk.length - pos);
          skip -= n;
          pos += n;
          offset += n;
          continue;
        }
        if (meta) {
          const n = Math.min(meta.size - meta.fill, chunk.length - pos);
          chunk.copy(meta.data, meta.fill, pos, pos + n);
          meta.fill += n;
          pos += n;
          offset += n;
          if (meta.fill === meta.size) endMeta();
          continue;
        }
        const n = Math.min(BLOCK - headerFill, chunk.length - pos);
        chunk.copy(header, headerFill, pos, pos + n);
        headerFill += n;
        pos += n;
        offset += n;
        if (headerFill === BLOCK) {
          headerFill = 0;
          onHeader(header);
        }
      }
      return pos;
    },
    finish() {
      if (ended) return;
      if (offset === 0) throw unpackError(UnpackErrorCode.FAILED, 'empty archive: not a tar archive', {});
      // GNU tar accepts an archive that simply stops at an entry boundary (with a warning)
      if (skip > 0 || meta || headerFill > 0) {
        throw unpackError(UnpackErrorCode.FAILED, `tar archive is truncated (at byte ${offset})`, { offset });
      }
    },
  };
}

function entryType(typeflag: string, name: string, offset: number): EntryType {
  switch (typeflag) {
    case '0':
    case '7':
      return name.endsWith('/') ? 'dir' : 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
    case '4':
      return 'device';
    case '5':
    case 'D':
      return 'dir';
    case '6':
      return 'fifo';
    case 'S':
      throw unpackError(UnpackErrorCode.UNSUPPORTED, `sparse file '${name}' (GNU 'S' entry) is not unpacked by fodder`, { offset });
    default:
      throw unpackError(UnpackErrorCode.UNSUPPORTED, `tar entry '${name}' has type '${typeflag}', which fodder does not unpack`, { offset, typeflag });
  }
}

const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

/** The size field: octal (NUL/space padded) or GNU base-256 (high bit set, positive and below 2^53). */
function headerSize(h: Buffer, offset: number): number {
  if (h[124] > 0x80) throw unpackError(UnpackErrorCode.FAILED, `negative or huge base-256 size at byte ${offset}`, { offset });
  const n = tarNumber(h, 124, 12, 'spaces');
  if (typeof n !== 'number') {
    throw unpackError(UnpackErrorCode.FAILED, `bad octal number '${n.notOctal}' in tar header at byte ${offset}`, { offset });
  }
  if (!Number.isSafeInteger(n)) throw unpackError(UnpackErrorCode.TOO_LARGE, `size past 2^53 at byte ${offset}`, { offset });
  return n;
}

/** The checksum (tar-header.ts); a checksum field that is not a number `headerSize` would take is a bad checksum. */
function checksumOk(h: Buffer): boolean {
  const stored = h[148] > 0x80 ? null : tarNumber(h, 148, 8, 'spaces');
  return typeof stored === 'number' && tarChecksumOk(h, stored);
}

/** `<len> <key>=<value>\n` records; pax values are UTF-8, kept as the bytes GNU tar will use (latin1 = byte for byte). */
function parsePax(data: Buffer, offset: number): Map<string, string> {
  const rec = paxRecords(data, 'latin1', true);
  if (typeof rec !== 'string') return rec;
  throw unpackError(UnpackErrorCode.FAILED, `malformed pax ${rec} at byte ${offset}`, { offset });
}
