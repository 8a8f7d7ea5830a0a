/**
 * Decoding a tar header's fields, for both readers of tar: the bundle reader (tar-format.ts) and
 * the judge of a fetched archive's entries before GNU tar unpacks it (fetch/unpack-tar.ts). Each
 * reader words its own errors; these functions return what they found, or why it is not a value.
 */

export const BLOCK = 512;

/** A text field: its bytes up to the first NUL (or the field's end). */
export function tarText(block: Buffer, off: number, len: number, encoding: 'utf8' | 'latin1'): string {
  const end = block.indexOf(0, off);
  return block.toString(encoding, off, end < 0 || end > off + len ? off + len : end);
}

/**
 * A header's name: the name field, after ustar's prefix field and a slash when `prefixed` (the
 * reader decides from the magic) and the prefix is not empty.
 */
export function tarHeaderName(block: Buffer, prefixed: boolean, encoding: 'utf8' | 'latin1'): string {
  const name = tarText(block, 0, 100, encoding);
  const prefix = prefixed ? tarText(block, 345, 155, encoding) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/**
 * The numeric field of `len` bytes at `off`: GNU base-256 when the high bit of its first byte is
 * set (the value is the bytes after the first, big-endian; the reader judges the first byte's
 * other bits), else octal digits padded with NULs and spaces (none is 0). With `trim`
 * 'whitespace' other whitespace around the digits is ignored too. The text, when it is not octal.
 */
export function tarNumber(block: Buffer, off: number, len: number, trim: 'spaces' | 'whitespace'): number | { notOctal: string } {
  if (block[off] & 0x80) {
    let n = 0;
    for (let i = off + 1; i < off + len; i++) n = n * 256 + block[i];
    return n;
  }
  let text = block
    .toString('latin1', off, off + len)
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (trim === 'whitespace') text = text.trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return { notOctal: text };
  return parseInt(text, 8);
}

/**
 * Whether `stored` is the checksum of header `block`: the sum of its bytes with the checksum field
 * counted as spaces, unsigned or signed (bytes past 127 as negative), which GNU tar both accepts.
 */
export function tarChecksumOk(block: Buffer, stored: number): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  if (stored === sum) return true;
  // the signed sum: each byte past 127 counts 256 less
  let high = 0;
  for (let i = 0; i < BLOCK; i++) if ((i < 148 || i >= 156) && block[i] > 127) high++;
  return stored === sum - 256 * high;
}

/**
 * The records of a pax extended header's data, `<length> <key>=<value>\n` each, its length
 * counting itself; a later record of a key wins. `strict` reads them as GNU tar does: a NUL where
 * a record starts ends them, and a record without its newline ('header') or its '=' ('record') is
 * malformed. Otherwise a record's last byte is dropped whatever it is, and a record without '='
 * is kept as it comes (the bundle reader's way).
 */
export function paxRecords(data: Buffer, encoding: 'utf8' | 'latin1', strict: boolean): Map<string, string> | 'header' | 'record' {
  const out = new Map<string, string>();
  for (let pos = 0; pos < data.length;) {
    if (strict && data[pos] === 0) break;
    const space = data.indexOf(0x20, pos);
    const len = space < 0 ? NaN : Number(data.toString('latin1', pos, space));
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length || (strict && data[pos + len - 1] !== 0x0a)) return 'header';
    const record = data.toString(encoding, space + 1, pos + len - 1);
    const eq = record.indexOf('=');
    if (strict && eq < 0) return 'record';
    out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}
