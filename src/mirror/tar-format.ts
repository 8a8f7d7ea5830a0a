/**
 * The tar format as bundles use it (POSIX pax over ustar): a 512-byte header per member, its
 * bytes, zeros up to the next 512-byte boundary, and two zero blocks at the end. A name over
 * ustar's 100 (+ 155 prefix) bytes or a size from 8 GiB goes into a pax extended header before
 * the member's own (the size also base-256 in the ustar field, as GNU tar reads it).
 *
 * Written by hand rather than through a streaming tar library: a bundle is a few large copies,
 * and the header is all the format adds to them (`bench:bundle`, docs/performance.md). The
 * reader takes what GNU tar, bsdtar and this writer write: ustar, pax `x` headers (path, size),
 * GNU long names (`L`), base-256 sizes.
 */
import { open } from 'node:fs/promises';
import { BLOCK, paxRecords, tarChecksumOk, tarHeaderName, tarNumber } from './tar-header.js';

export { BLOCK };
/** two zero blocks: the end of an archive */
export const TAR_END = Buffer.alloc(2 * BLOCK);
/** the largest size ustar's 11 octal digits hold */
const USTAR_MAX_SIZE = 8 ** 11 - 1;

/** Zero bytes after a member of `size` bytes, up to the block boundary. */
export function tarPadding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function octal(block: Buffer, off: number, len: number, value: number): void {
  block.write(value.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

/** GNU's base-256 number: the first byte 0x80, then the value big-endian. */
function base256(block: Buffer, off: number, len: number, value: number): void {
  block.fill(0, off, off + len);
  block[off] = 0x80;
  for (let i = off + len - 1, v = value; i > off && v > 0; i--, v = Math.floor(v / 256)) block[i] = v % 256;
}

function ustarBlock(name: Buffer, prefix: Buffer, size: number, type: string, mtime: number, mode: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  name.copy(b, 0);
  octal(b, 100, 8, mode);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  if (size > USTAR_MAX_SIZE) base256(b, 124, 12, size);
  else octal(b, 124, 12, size);
  octal(b, 136, 12, Math.floor(mtime));
  b.write(type, 156, 1, 'latin1');
  b.write('ustar\u000000', 257, 8, 'latin1');
  prefix.copy(b, 345);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

/** `name` as ustar's name and prefix fields, or null when it does not fit them. */
function ustarName(name: Buffer): { name: Buffer; prefix: Buffer } | null {
  if (name.length <= 100) return { name, prefix: Buffer.alloc(0) };
  for (let i = name.length - 101; i < name.length && i <= 155; i++) {
    if (i >= 0 && name[i] === 0x2f) return { name: name.subarray(i + 1), prefix: name.subarray(0, i) };
  }
  return null;
}

/** One pax record, `<length> <key>=<value>\n`, its length counting itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body);
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** The header blocks of a regular file `name` of `size` bytes (mtime in seconds). */
export function tarFileHeader(name: string, size: number, mtime = 0, mode = 0o644): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  const fits = ustarName(bytes);
  const pax = (fits ? '' : paxRecord('path', name)) + (size > USTAR_MAX_SIZE ? paxRecord('size', String(size)) : '');
  const own = fits ?? { name: bytes.subarray(bytes.length - 100), prefix: Buffer.alloc(0) };
  const header = ustarBlock(own.name, own.prefix, size, '0', mtime, mode);
  if (!pax) return header;
  const records = Buffer.from(pax, 'utf8');
  const paxHeader = ustarBlock(Buffer.from('././@PaxHeader'), Buffer.alloc(0), records.length, 'x', mtime, 0o644);
  return Buffer.concat([paxHeader, records, Buffer.alloc(tarPadding(records.length)), header]);
}

/** A member as the reader gives it: `type` is ustar's type flag ('0' a regular file, '5' a directory, …). */
export interface TarMember {
  name: string;
  type: string;
  size: number;
  /** where its bytes start in the archive */
  offset: number;
}

/** A numeric field (tar-header.ts), octal text around which whitespace is ignored. */
function number(block: Buffer, off: number, len: number): number {
  const n = tarNumber(block, off, len, 'whitespace');
  if (typeof n !== 'number') throw new Error(`not an octal number: ${JSON.stringify(n.notOctal)}`);
  return n;
}

/**
 * Reads a tar header at a time through `read` (up to `length` bytes at `position`), yielding
 * each member but the pax and GNU long-name headers, which it applies; ends at the zero block
 * or the end of the data. A header with a bad checksum, or data cut short, throws.
 */
export async function* tarMembers(read: (length: number, position: number) => Promise<Buffer>): AsyncGenerator<TarMember> {
  let pos = 0;
  let pax = new Map<string, string>();
  let longName: string | null = null;
  for (;;) {
    const block = await read(BLOCK, pos);
    if (block.length === 0 || block.every((b) => b === 0)) return;
    if (block.length < BLOCK) throw new Error(`the archive ends inside a header at byte ${pos}`);
    if (!tarChecksumOk(block, number(block, 148, 8))) throw new Error(`a header with a bad checksum at byte ${pos}`);
    const type = String.fromCharCode(block[156] || 0x30);
    const size = number(block, 124, 12);
    const offset = pos + BLOCK;
    pos = offset + size + tarPadding(size);
    if (type === 'x' || type === 'L' || type === 'g' || type === 'K') {
      const data = await read(size, offset);
      if (data.length < size) throw new Error(`the archive ends inside a header at byte ${offset}`);
      if (type === 'x') {
        const records = paxRecords(data, 'utf8', false);
        if (typeof records === 'string') throw new Error('a broken pax header');
        pax = records;
      } else if (type === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    const name = pax.get('path') ?? longName ?? tarHeaderName(block, block.toString('latin1', 257, 262) === 'ustar', 'utf8');
    const realSize = pax.has('size') ? Number(pax.get('size')) : size;
    if (realSize !== size) pos = offset + realSize + tarPadding(realSize);
    pax = new Map();
    longName = null;
    yield { name, type, size: realSize, offset };
  }
}

/** Bytes read at once for headers: the headers of small members that follow each other come from one read. */
const HEADER_WINDOW = 64 << 10;

/** `tarMembers` of a tar file, read by position. */
export async function* tarFileMembers(path: string): AsyncGenerator<TarMember & { path: string }> {
  const fh = await open(path, 'r');
  try {
    const readAt = async (length: number, position: number) => {
      const b = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(b, got, length - got, position + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return b.subarray(0, got);
    };
    // the last window read: a bundle's thousands of small members cost a read per window, not per header
    let window = Buffer.alloc(0);
    let windowAt = 0;
    const read = async (length: number, position: number) => {
      const inside = position >= windowAt && position + length <= windowAt + window.length;
      if (!inside) {
        if (length > HEADER_WINDOW) return readAt(length, position);
        window = await readAt(HEADER_WINDOW, position);
        windowAt = position;
      }
      const from = position - windowAt;
      return Buffer.from(window.subarray(from, Math.min(from + length, window.length)));
    };
    for await (const m of tarMembers(read)) yield { ...m, path };
  } finally {
    await fh.close();
  }
}
