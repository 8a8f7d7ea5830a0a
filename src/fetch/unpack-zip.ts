/**
 * Reads a zip's central directory (what Info-ZIP unzip goes by), so every entry can be judged
 * before unzip runs: names, Unix file types, declared sizes, encryption. Zip64 is understood.
 */
import { open } from 'node:fs/promises';
import { UnpackErrorCode, unpackError, type ArchiveEntry, type EntryType } from './unpack-policy.js';

const EOCD_SIG = 0x06054b50;
const EOCD64_LOCATOR_SIG = 0x07064b50;
const EOCD64_SIG = 0x06064b50;
const CDH_SIG = 0x02014b50;
/** EOCD (22) plus the longest comment (65535). */
const TAIL = 22 + 0xffff;

export interface ZipEntry extends ArchiveEntry {
  encrypted: boolean;
  method: number;
}

const S_IFMT = 0o170000;

function typeOf(madeBy: number, external: number, name: string): EntryType {
  const host = madeBy >> 8;
  const mode = external >>> 16;
  // Unix (3) and a few others store st_mode in the high half; unzip honours it only then
  if ((host === 3 || host === 19 || host === 30) && mode !== 0) {
    switch (mode & S_IFMT) {
      case 0o120000:
        return 'symlink';
      case 0o040000:
        return 'dir';
      case 0o100000:
        return name.endsWith('/') ? 'dir' : 'file';
      case 0o010000:
        return 'fifo';
      case 0o020000:
      case 0o060000:
      case 0o140000:
        return 'device';
      default:
        break;
    }
  }
  return name.endsWith('/') ? 'dir' : 'file';
}

/** Every entry of the central directory, in its order (the order unzip extracts in). */
export async function readZipEntries(path: string): Promise<ZipEntry[]> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const tailLen = Math.min(size, TAIL);
    const tail = Buffer.alloc(tailLen);
    await fh.read(tail, 0, tailLen, size - tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === EOCD_SIG) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw unpackError(UnpackErrorCode.FAILED, 'not a zip archive (no end of central directory)', {});
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    const eocdPos = size - tailLen + eocd;
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = Buffer.alloc(20);
      if (eocdPos < 20) throw unpackError(UnpackErrorCode.FAILED, 'zip64 locator missing', {});
      await fh.read(loc, 0, 20, eocdPos - 20);
      if (loc.readUInt32LE(0) !== EOCD64_LOCATOR_SIG) throw unpackError(UnpackErrorCode.FAILED, 'zip64 locator missing', {});
      const rec = Buffer.alloc(56);
      await fh.read(rec, 0, 56, Number(loc.readBigUInt64LE(8)));
      if (rec.readUInt32LE(0) !== EOCD64_SIG) throw unpackError(UnpackErrorCode.FAILED, 'zip64 end of central directory missing', {});
      count = Number(rec.readBigUInt64LE(32));
      cdSize = Number(rec.readBigUInt64LE(40));
      cdOffset = Number(rec.readBigUInt64LE(48));
    }
    // data prepended to the archive (self-extractors) shifts every offset; unzip corrects for it
    const shift = Math.max(0, eocdPos - (cdOffset + cdSize));
    if (cdOffset + shift + cdSize > size) throw unpackError(UnpackErrorCode.FAILED, 'zip central directory lies past the end of the file', {});
    if (cdSize > 256 * 1024 * 1024) throw unpackError(UnpackErrorCode.TOO_LARGE, `zip central directory of ${cdSize} bytes`, {});
    const cd = Buffer.alloc(cdSize);
    await fh.read(cd, 0, cdSize, cdOffset + shift);
    const out: ZipEntry[] = [];
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CDH_SIG) throw unpackError(UnpackErrorCode.FAILED, `bad zip central directory entry ${i}`, {});
      const madeBy = cd.readUInt16LE(p + 4);
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      let usize = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      const external = cd.readUInt32LE(p + 38);
      const end = p + 46 + nameLen + extraLen + commentLen;
      if (end > cd.length) throw unpackError(UnpackErrorCode.FAILED, `zip central directory entry ${i} runs past its end`, {});
      const name = cd.subarray(p + 46, p + 46 + nameLen).toString('latin1');
      if (usize === 0xffffffff) usize = zip64Size(cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen));
      out.push({ name, type: typeOf(madeBy, external, name), size: usize, encrypted: (flags & 1) !== 0, method });
      p = end;
    }
    return out;
  } finally {
    await fh.close();
  }
}

function zip64Size(extra: Buffer): number {
  let q = 0;
  while (q + 4 <= extra.length) {
    const id = extra.readUInt16LE(q);
    const len = extra.readUInt16LE(q + 2);
    if (id === 0x0001 && len >= 8) {
      const n = Number(extra.readBigUInt64LE(q + 4));
      if (!Number.isSafeInteger(n)) throw unpackError(UnpackErrorCode.TOO_LARGE, 'zip64 entry size past 2^53', {});
      return n;
    }
    q += 4 + len;
  }
  throw unpackError(UnpackErrorCode.FAILED, 'zip64 size missing from the extra field', {});
}
