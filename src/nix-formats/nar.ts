/**
 * NAR (Nix ARchive) serialisation of a file tree, streamed: nothing holds the whole archive or
 * a whole large file in memory. Matches `nix-store --dump` byte for byte: only the owner's
 * executable bit is kept, directory entries come in byte order of their names, symlink targets
 * are stored verbatim (dangling ones too). Paths travel as Buffers so names that are not UTF-8
 * survive. `unpackNar` restores an archive to disk, refusing names that could escape it.
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { mkdir, open, symlink, type FileHandle } from 'node:fs/promises';
import { ErrorCode, FodderError } from '../errors.js';
import type { HashAlgo } from './hash.js';

/** Error codes raised while dumping. */
export const NAR_UNSUPPORTED_FILE = ErrorCode.NAR_UNSUPPORTED_FILE;
export const NAR_FILE_CHANGED = ErrorCode.NAR_FILE_CHANGED;
/** Error code for an archive that is malformed, non-canonical or unsafe to restore. */
export const NAR_INVALID = ErrorCode.NAR_INVALID;

/** Files of at least this size are read asynchronously, in NAR_CHUNK_SIZE pieces; smaller ones in one synchronous read. */
export const NAR_LARGE_FILE = 1 << 20;
/** Bytes read from a large file per read call. */
export const NAR_CHUNK_SIZE = 4 << 20;
/** Small strings and small files are gathered into blocks of this size before being emitted. */
const BATCH_SIZE = 64 * 1024;

const PAD = Buffer.alloc(8);

/** A NAR string: u64 little-endian length, the bytes, zero padding to a multiple of 8. */
export function narString(s: string | Uint8Array): Buffer {
  const bytes = typeof s === 'string' ? Buffer.from(s) : Buffer.from(s.buffer, s.byteOffset, s.byteLength);
  const out = Buffer.alloc(8 + bytes.length + padLength(bytes.length));
  out.writeUInt32LE(bytes.length % 2 ** 32, 0);
  out.writeUInt32LE(Math.floor(bytes.length / 2 ** 32), 4);
  bytes.copy(out, 8);
  return out;
}

/** Zero bytes needed after `n` bytes to reach a multiple of 8. */
export function padLength(n: number): number {
  return (8 - (n % 8)) % 8;
}

const T = {
  magic: narString('nix-archive-1'),
  open: narString('('),
  close: narString(')'),
  type: narString('type'),
  regular: narString('regular'),
  executable: Buffer.concat([narString('executable'), narString('')]),
  contents: narString('contents'),
  symlink: narString('symlink'),
  target: narString('target'),
  directory: narString('directory'),
  entry: narString('entry'),
  name: narString('name'),
  node: narString('node'),
};

/** Options of the internal producer. */
interface ProduceOptions {
  /**
   * Reuse the large-file read buffers: a yielded chunk is valid only until the consumer asks
   * for the next one. Only for consumers that use each chunk synchronously (hashing).
   */
  reuse: boolean;
  /** Treat the root as a regular file with this executable flag, ignoring its mode bits. */
  flatFile?: { executable: boolean };
  /** Where fresh buffers come from (a pool of buffers handed back by another thread); default Buffer.allocUnsafe */
  alloc?: (size: number) => Buffer;
}

/** One directory being walked: its path and sorted entry names still to visit. */
interface Frame {
  path: Buffer;
  names: Buffer[];
  next: number;
}

/** What visiting one node left to do: nothing more, walk a directory, or stream a large file. */
type Visit = { kind: 'done' } | { kind: 'dir'; frame: Frame } | { kind: 'large'; path: Buffer; size: number };

const DONE: Visit = { kind: 'done' };

/** NAR tokens for code that writes NAR framing of its own (the parallel hash). */
export const NAR_TOKENS = { magic: T.magic, directoryOpen: Buffer.concat([T.open, T.type, T.directory]), node: T.node, close: T.close };

/** Token runs written together for every regular file and every directory entry. */
const RUN = {
  regular: Buffer.concat([T.type, T.regular, T.contents]),
  executable: Buffer.concat([T.type, T.regular, T.executable, T.contents]),
  entryHead: Buffer.concat([T.entry, T.open, T.name]),
  closeTwice: Buffer.concat([T.close, T.close]),
};
/** `entry ( name`, before an entry's name. */
export const NAR_ENTRY_HEAD = RUN.entryHead;
/** Sync work done between two turns given back to the event loop, in ms. */
const BREATHER_MS = 10;

/**
 * The core producer: yields the NAR of `root` in chunks. Metadata and files below
 * NAR_LARGE_FILE are read with synchronous calls (a tree of small files is syscall-bound, and
 * one thread-pool round trip per call costs more than the call), gathered into blocks of
 * BATCH_SIZE, and the event loop gets a turn every BREATHER_MS. Larger files are read
 * asynchronously in NAR_CHUNK_SIZE pieces with the next read in flight while the consumer
 * works on the current one.
 */
async function* narChunks(root: string | Buffer, opts: ProduceOptions): AsyncGenerator<Buffer> {
  // Blocks (and the one medium-file buffer) go back to these pools once the consumer is done
  // with them, when it promised to be done by the time it asks for more (`reuse`): fresh
  // memory costs a page fault per 4 KiB on first touch.
  const blockPool: Buffer[] = [];
  let mediumSpare: Buffer | null = null;
  const alloc = opts.alloc ?? ((n: number) => Buffer.allocUnsafe(n));
  let block: Buffer = alloc(BATCH_SIZE);
  let fill = 0;
  /** Chunks to yield, each with the pooled buffer it lives in (if any). */
  const ready: { chunk: Buffer; owner: Buffer | null }[] = [];
  const spareChunks: Buffer[] = [];

  const seal = (): void => {
    if (fill === 0) return;
    ready.push({ chunk: block.subarray(0, fill), owner: block });
    block = blockPool.pop() ?? alloc(BATCH_SIZE);
    fill = 0;
  };
  function* drain(): Generator<Buffer> {
    while (ready.length > 0) {
      const { chunk, owner } = ready.shift()!;
      yield chunk;
      if (!opts.reuse || !owner) continue;
      if (owner.length === BATCH_SIZE) blockPool.push(owner);
      else mediumSpare = owner;
    }
  }
  /** A u64 little-endian length, written in place. */
  const putU64 = (n: number): void => {
    if (fill + 8 > BATCH_SIZE) seal();
    block.writeUInt32LE(n % 2 ** 32, fill);
    block.writeUInt32LE(Math.floor(n / 2 ** 32), fill + 4);
    fill += 8;
  };
  /** A NAR string (length, bytes, padding), written in place. */
  const putString = (b: Buffer): void => {
    const padded = b.length + padLength(b.length);
    if (fill + 8 + padded > BATCH_SIZE) {
      put(narString(b));
      return;
    }
    putU64(b.length);
    b.copy(block, fill);
    block.fill(0, fill + b.length, fill + padded);
    fill += padded;
  };
  const put = (b: Buffer): void => {
    if (fill + b.length > BATCH_SIZE) {
      seal();
      if (b.length > BATCH_SIZE) {
        ready.push({ chunk: b, owner: null });
        return;
      }
    }
    b.copy(block, fill);
    fill += b.length;
  };

  // Tokens and contents of a regular file, up to the padding after its contents; a large
  // file's contents are left to the caller.
  const regular = (path: Buffer, size: number, executable: boolean): Visit => {
    put(executable ? RUN.executable : RUN.regular);
    putU64(size);
    if (size >= NAR_LARGE_FILE) return { kind: 'large', path, size };
    if (fill + size + 1 > BATCH_SIZE) seal();
    const fd = openSync(path, 'r');
    try {
      if (size + 1 <= BATCH_SIZE) {
        readWhole(fd, block, fill, size, path);
        fill += size;
      } else {
        const own = mediumSpare ?? alloc(NAR_LARGE_FILE);
        mediumSpare = null;
        readWhole(fd, own, 0, size, path);
        ready.push({ chunk: own.subarray(0, size), owner: own });
      }
    } finally {
      closeSync(fd);
    }
    put(PAD.subarray(0, padLength(size)));
    return DONE;
  };

  // Everything of the node at `path` up to (not including) its closing ')'.
  const visit = (path: Buffer, flat?: { executable: boolean }): Visit => {
    put(T.open);
    const st = lstatSync(path);
    if (flat) {
      if (!st.isFile()) throw unsupported(path, 'is not a regular file');
      return regular(path, st.size, flat.executable);
    }
    if (st.isFile()) return regular(path, st.size, (st.mode & 0o100) !== 0);
    if (st.isSymbolicLink()) {
      put(T.type);
      put(T.symlink);
      put(T.target);
      put(narString(readlinkSync(path, { encoding: 'buffer' })));
      return DONE;
    }
    if (st.isDirectory()) {
      put(T.type);
      put(T.directory);
      const names = readdirSync(path, { encoding: 'buffer' });
      names.sort((a, b) => Buffer.compare(a, b));
      return { kind: 'dir', frame: { path, names, next: 0 } };
    }
    throw unsupported(path, 'has an unsupported type');
  };

  async function* largeFile(path: Buffer, size: number): AsyncGenerator<Buffer> {
    const take = (): Buffer => (opts.reuse && spareChunks.length > 0 ? spareChunks.pop()! : alloc(NAR_CHUNK_SIZE));
    const fh = await open(path, 'r');
    let pending: Promise<Buffer> | null = null;
    try {
      let pos = 0;
      let target = take();
      pending = readChunk(fh, target, pos, Math.min(NAR_CHUNK_SIZE, size), path);
      // A read ahead may fail while the consumer holds the previous chunk: it is awaited (and
      // its error thrown) below, this only keeps it from counting as unhandled meanwhile.
      pending.catch(() => undefined);
      while (pending) {
        const chunk: Buffer = await pending;
        const owner = target;
        pending = null;
        pos += chunk.length;
        if (pos < size) {
          target = take();
          pending = readChunk(fh, target, pos, Math.min(NAR_CHUNK_SIZE, size - pos), path);
          pending.catch(() => undefined);
        }
        yield chunk;
        if (opts.reuse) spareChunks.push(owner);
      }
      const probe = Buffer.allocUnsafe(1);
      if ((await fh.read(probe, 0, 1, size)).bytesRead !== 0) throw changed(path);
    } finally {
      // Never close the file under a read still in flight (the consumer stopped early).
      if (pending) await pending.catch(() => undefined);
      await fh.close();
    }
    put(PAD.subarray(0, padLength(size)));
  }

  // Finish a visit; returns the directory frame to descend into, if any.
  async function* settle(v: Visit): AsyncGenerator<Buffer, Frame | null> {
    if (v.kind === 'dir') return v.frame;
    if (v.kind === 'large') {
      seal();
      yield* drain();
      yield* largeFile(v.path, v.size);
    }
    put(T.close);
    return null;
  }

  put(T.magic);
  const stack: Frame[] = [];
  const first = visit(typeof root === 'string' ? Buffer.from(root) : root, opts.flatFile);
  if (first.kind === 'done') put(T.close);
  else {
    const frame = yield* settle(first);
    if (frame) stack.push(frame);
  }
  let lastBreak = Date.now();
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next < top.names.length) {
      const name = top.names[top.next++];
      put(RUN.entryHead);
      putString(name);
      put(T.node);
      const v = visit(Buffer.concat([top.path, SLASH, name]));
      // Leaves (the common case) need no generator: close the node here.
      if (v.kind === 'done') {
        put(RUN.closeTwice); // closes the node and the entry
      } else {
        const frame = yield* settle(v);
        if (frame) stack.push(frame);
        else put(T.close); // closes the entry
      }
    } else {
      stack.pop();
      put(T.close); // closes the directory node
      if (stack.length > 0) put(T.close); // closes the entry holding it
    }
    yield* drain();
    if (Date.now() - lastBreak >= BREATHER_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      lastBreak = Date.now();
    }
  }
  seal();
  yield* drain();
}

const SLASH = Buffer.from('/');

function unsupported(path: Buffer, why: string): FodderError {
  const p = path.toString();
  return new FodderError(NAR_UNSUPPORTED_FILE, `file '${p}' ${why}`, { path: p });
}

function changed(path: Buffer): FodderError {
  const p = path.toString();
  return new FodderError(NAR_FILE_CHANGED, `file '${p}' changed size while being archived`, { path: p });
}

/**
 * Read exactly `size` bytes of `fd` into `buf` at `offset` (which has room for one more),
 * failing if the file is not that size. Asking for one byte more than expected makes the
 * usual short read prove the end of the file without an extra call.
 */
function readWhole(fd: number, buf: Buffer, offset: number, size: number, path: Buffer): void {
  let got = 0;
  for (;;) {
    const want = size + 1 - got;
    const n = readSync(fd, buf, offset + got, want, got);
    got += n;
    if (got > size) throw changed(path);
    if (n === 0 || (got === size && n < want)) break;
  }
  if (got !== size) throw changed(path);
}

async function readChunk(fh: FileHandle, buf: Buffer, pos: number, len: number, path: Buffer): Promise<Buffer> {
  let done = 0;
  while (done < len) {
    const { bytesRead } = await fh.read(buf, done, len - done, pos + done);
    if (bytesRead === 0) throw changed(path);
    done += bytesRead;
  }
  return buf.subarray(0, len);
}

/**
 * The NAR serialisation of the file tree at `path`, as a stream of fresh Buffers (each one may
 * be kept by the consumer). Works with `Readable.from(narStream(p))` and `pipeline`.
 */
export function narStream(path: string | Buffer): AsyncIterable<Buffer> {
  return narChunks(path, { reuse: false });
}

/**
 * `narStream` taking its buffers from `alloc`: for a consumer on another thread that hands the
 * memory back once it has used it (no fresh pages to fault in per chunk).
 */
export function narStreamWith(path: string | Buffer, alloc: (size: number) => Buffer): AsyncIterable<Buffer> {
  return narChunks(path, { reuse: false, alloc });
}

/**
 * The NAR of a single regular file as a flat file node, whatever its mode bits say: how a flat
 * fixed output (a plain download) sits in the store. `executable` defaults to false.
 */
export function narOfFile(path: string | Buffer, executable = false): AsyncIterable<Buffer> {
  return narChunks(path, { reuse: false, flatFile: { executable } });
}

/** The NAR of a small in-memory regular file. */
export function narFromBuffer(contents: Uint8Array, executable = false): Buffer {
  const { prefix, suffix } = flatNarFrame(contents.length, executable);
  return Buffer.concat([prefix, contents, suffix]);
}

/** The bytes around a regular file's contents in its NAR: `prefix ‖ contents ‖ suffix`, and that NAR's size. */
export interface FlatNarFrame {
  /** magic, `( type regular [executable ""] contents`, the size as a u64 */
  prefix: Buffer;
  /** zero padding of the contents to a multiple of 8, then `)` */
  suffix: Buffer;
  narSize: number;
}

/**
 * The NAR of one regular file of `size` bytes, without its contents: what `nix-store --dump`
 * writes before and after them. A file's NAR can so be hashed or sent from the file itself.
 */
export function flatNarFrame(size: number, executable = false): FlatNarFrame {
  const length = Buffer.alloc(8);
  length.writeUInt32LE(size % 2 ** 32, 0);
  length.writeUInt32LE(Math.floor(size / 2 ** 32), 4);
  const prefix = Buffer.concat([T.magic, T.open, executable ? RUN.executable : RUN.regular, length]);
  const suffix = Buffer.concat([PAD.subarray(0, padLength(size)), T.close]);
  return { prefix, suffix, narSize: prefix.length + size + suffix.length };
}

/** The sha256 of a regular file's NAR, fed the file's contents. */
export interface FlatNarHasher {
  update(contents: Uint8Array): void;
  /** the NAR's sha256, lowercase base16 */
  digest(): string;
}

/** Hashes `prefix ‖ contents ‖ suffix` of a `flatNarFrame` (or its bytes passed to a thread) as the contents come. */
export function flatNarHasher(frame: { prefix: Uint8Array; suffix: Uint8Array }): FlatNarHasher {
  const h = createHash('sha256').update(frame.prefix);
  return { update: (contents) => void h.update(contents), digest: () => h.update(frame.suffix).digest('hex') };
}

/** A NAR digest: algorithm, lowercase base16 and the archive's size in bytes. */
export interface NarHashResult {
  algo: HashAlgo;
  hex: string;
  size: number;
}

/**
 * Hash the NAR of `path` while streaming it (what `nix-hash --type <algo> <path>` prints),
 * holding at most a few MiB.
 */
export async function narHash(path: string | Buffer, algo: HashAlgo = 'sha256'): Promise<NarHashResult> {
  return hashChunks(narChunks(path, { reuse: true }), algo);
}

/** Hash any chunk stream: digest and byte count. */
export async function hashChunks(chunks: AsyncIterable<Uint8Array>, algo: HashAlgo = 'sha256'): Promise<NarHashResult> {
  const h = createHash(algo);
  let size = 0;
  for await (const c of chunks) {
    h.update(c);
    size += c.length;
  }
  return { algo, hex: h.digest('hex'), size };
}

/** Pulls exact byte counts out of a chunk stream. */
interface ByteReader {
  /** Exactly `n` bytes, copied. */
  bytes(n: number): Promise<Buffer>;
  /** Pass exactly `n` bytes to `sink`, chunk by chunk, without gathering them. */
  pipe(n: number, sink: (chunk: Buffer) => Promise<void>): Promise<void>;
  /** True when the stream has no bytes left. */
  atEnd(): Promise<boolean>;
  /** Stop reading the source early. */
  cancel(): Promise<void>;
}

function byteReader(source: AsyncIterable<Uint8Array>): ByteReader {
  const it = source[Symbol.asyncIterator]();
  let cur: Buffer = Buffer.alloc(0);
  let off = 0;
  const refill = async (): Promise<boolean> => {
    while (off >= cur.length) {
      const r = await it.next();
      if (r.done) return false;
      cur = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      off = 0;
    }
    return true;
  };
  const need = async (): Promise<void> => {
    if (!(await refill())) throw invalid('unexpected end of archive');
  };
  return {
    async bytes(n) {
      const out = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        await need();
        const take = Math.min(n - got, cur.length - off);
        cur.copy(out, got, off, off + take);
        off += take;
        got += take;
      }
      return out;
    },
    async pipe(n, sink) {
      let left = n;
      while (left > 0) {
        await need();
        const take = Math.min(left, cur.length - off);
        const piece = cur.subarray(off, off + take);
        off += take;
        left -= take;
        await sink(piece);
      }
    },
    async atEnd() {
      return !(await refill());
    },
    async cancel() {
      await it.return?.();
    },
  };
}

function invalid(why: string, fields: Record<string, unknown> = {}): FodderError {
  return new FodderError(NAR_INVALID, `invalid NAR: ${why}`, fields);
}

/** Longest tag, name and symlink target accepted when restoring. */
const MAX_TAG = 64;
const MAX_NAME = 255;
const MAX_TARGET = 4095;

async function readLength(r: ByteReader): Promise<number> {
  const b = await r.bytes(8);
  const n = b.readUInt32LE(0) + b.readUInt32LE(4) * 2 ** 32;
  if (n > Number.MAX_SAFE_INTEGER) throw invalid('length too large');
  return n;
}

async function readPadding(r: ByteReader, n: number): Promise<void> {
  const pad = padLength(n);
  if (pad === 0) return;
  const b = await r.bytes(pad);
  if (b.some((x) => x !== 0)) throw invalid('non-zero padding');
}

async function readBytes(r: ByteReader, max: number, what: string): Promise<Buffer> {
  const n = await readLength(r);
  if (n > max) throw invalid(`${what} longer than ${max} bytes`);
  const b = await r.bytes(n);
  await readPadding(r, n);
  return b;
}

async function readTag(r: ByteReader): Promise<string> {
  return (await readBytes(r, MAX_TAG, 'tag')).toString('latin1');
}

async function expectTag(r: ByteReader, tag: string): Promise<void> {
  const got = await readTag(r);
  if (got !== tag) throw invalid(`expected '${tag}', got '${got}'`);
}

function checkEntryName(name: Buffer): void {
  const s = name.toString('latin1');
  if (name.length === 0 || s === '.' || s === '..' || name.includes(0x2f) || name.includes(0)) {
    throw invalid(`unsafe entry name '${name.toString()}'`, { name: name.toString() });
  }
}

async function writeAll(fh: FileHandle, chunk: Buffer): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.length - done);
    done += bytesWritten;
  }
}

async function restoreNode(r: ByteReader, path: Buffer): Promise<void> {
  await expectTag(r, '(');
  await expectTag(r, 'type');
  const type = await readTag(r);
  if (type === 'regular') {
    let tag = await readTag(r);
    const executable = tag === 'executable';
    if (executable) {
      if ((await readLength(r)) !== 0) throw invalid('executable marker has a non-empty value');
      tag = await readTag(r);
    }
    if (tag !== 'contents') throw invalid(`expected 'contents', got '${tag}'`);
    const size = await readLength(r);
    const fh = await open(path, 'wx', executable ? 0o777 : 0o666);
    try {
      await r.pipe(size, (chunk) => writeAll(fh, chunk));
    } finally {
      await fh.close();
    }
    await readPadding(r, size);
  } else if (type === 'symlink') {
    await expectTag(r, 'target');
    const target = await readBytes(r, MAX_TARGET, 'symlink target');
    if (target.length === 0 || target.includes(0)) throw invalid('bad symlink target');
    await symlink(target, path);
  } else if (type === 'directory') {
    await mkdir(path, 0o777);
    let prev: Buffer | null = null;
    for (;;) {
      const tag = await readTag(r);
      if (tag === ')') return;
      if (tag !== 'entry') throw invalid(`expected 'entry' or ')', got '${tag}'`);
      await expectTag(r, '(');
      await expectTag(r, 'name');
      const name = await readBytes(r, MAX_NAME, 'entry name');
      checkEntryName(name);
      if (prev && Buffer.compare(prev, name) >= 0) throw invalid('directory entries not sorted or duplicated', { name: name.toString() });
      prev = name;
      await expectTag(r, 'node');
      await restoreNode(r, Buffer.concat([path, SLASH, name]));
      await expectTag(r, ')');
    }
  } else {
    throw invalid(`unknown node type '${type}'`);
  }
  await expectTag(r, ')');
}

/**
 * Restore a NAR read from `source` (a Readable or any chunk stream) to `dest`, which must not
 * exist yet (`nix-store --restore` semantics). Refuses entry names that are empty, `.`, `..` or
 * contain `/` or NUL, unsorted or duplicate entries, non-zero padding and trailing bytes.
 */
export async function unpackNar(source: AsyncIterable<Uint8Array>, dest: string | Buffer): Promise<void> {
  const r = byteReader(source);
  try {
    const magic = await readBytes(r, MAX_TAG, 'magic');
    if (magic.toString('latin1') !== 'nix-archive-1') throw invalid("input doesn't look like a Nix archive");
    await restoreNode(r, typeof dest === 'string' ? Buffer.from(dest) : dest);
    if (!(await r.atEnd())) throw invalid('trailing data after the archive');
  } catch (e) {
    await r.cancel().catch(() => undefined);
    throw e;
  }
}
