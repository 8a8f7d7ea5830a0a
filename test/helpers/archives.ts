/**
 * Hand-made archives for unpacking tests: a tar writer (ustar headers, GNU long names, any
 * type flag, any name, including the hostile ones real tools refuse to write) and a zip writer
 * (stored entries, Unix modes, declared sizes that may lie).
 */
import { gzipSync } from 'node:zlib';
import { crc32 } from 'node:zlib';

export interface TarItem {
  name: string;
  /** '0' file, '1' hard link, '2' symlink, '3' char device, '5' directory, '6' fifo, 'S' sparse, ... */
  type?: string;
  data?: Buffer | string;
  mode?: number;
  linkname?: string;
  /** size written in the header (defaults to the data length) */
  size?: number;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, type: string, size: number, mode: number, linkname: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'latin1');
  h.write(octal(mode, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(1, 12), 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(type, 156, 'latin1');
  h.write(linkname, 157, 100, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'latin1');
  return h;
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);

/** A tar archive (uncompressed) of `items`, in order, ended by two zero blocks. */
export function tar(items: TarItem[]): Buffer {
  const parts: Buffer[] = [];
  for (const it of items) {
    const type = it.type ?? '0';
    const data = it.data === undefined ? Buffer.alloc(0) : Buffer.from(it.data);
    const mode = it.mode ?? (type === '5' ? 0o755 : 0o644);
    let name = it.name;
    if (Buffer.byteLength(name, 'latin1') > 99) {
      const long = Buffer.from(`${name}\0`, 'latin1');
      parts.push(header('././@LongLink', 'L', long.length, 0, ''), long, pad(long.length));
      name = name.slice(0, 99);
    }
    parts.push(header(name, type, it.size ?? data.length, mode, it.linkname ?? ''), data, pad(data.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function tarGz(items: TarItem[]): Buffer {
  return gzipSync(tar(items));
}

export interface ZipItem {
  name: string;
  data?: Buffer | string;
  /** Unix st_mode (type and permissions); default a 0644 file */
  mode?: number;
  /** uncompressed size declared in the central directory (defaults to the data length) */
  declaredSize?: number;
  encrypted?: boolean;
}

/** A zip archive of stored (uncompressed) entries made "on Unix". */
export function zip(items: ZipItem[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const it of items) {
    const data = it.data === undefined ? Buffer.alloc(0) : Buffer.from(it.data);
    const name = Buffer.from(it.name, 'latin1');
    const crc = crc32(data);
    const size = it.declaredSize ?? data.length;
    const flags = it.encrypted ? 1 : 0;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(10, 4);
    lh.writeUInt16LE(flags, 6);
    lh.writeUInt16LE(0, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(data.length, 18);
    lh.writeUInt32LE(size, 22);
    lh.writeUInt16LE(name.length, 26);
    lh.writeUInt16LE(0, 28);
    locals.push(lh, name, data);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE((3 << 8) | 30, 4);
    ch.writeUInt16LE(10, 6);
    ch.writeUInt16LE(flags, 8);
    ch.writeUInt16LE(0, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(data.length, 20);
    ch.writeUInt32LE(size, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(((it.mode ?? 0o100644) << 16) >>> 0, 38);
    ch.writeUInt32LE(offset, 42);
    centrals.push(ch, name);
    offset += 30 + name.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(items.length, 8);
  eocd.writeUInt16LE(items.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}
