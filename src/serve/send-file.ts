/**
 * Files of the mirror over HTTP, sent by hand: HEAD, conditional GET (`If-None-Match`,
 * `If-Modified-Since`), one `Range` (`If-Range` by ETag or date), 416, Content-Length and the
 * caching headers a static server gives; the body is an open file, optionally framed by bytes
 * before and after it (a flat source's NAR: prefix, the file, padding and `)`).
 *
 * The body is read into buffers of a pool shared by all requests and each buffer is used again
 * once the socket has written it, at most RING of them in flight per response: no allocation per
 * chunk. Reading a 1 GiB file through fs.createReadStream (@fastify/send) allocated a fresh
 * buffer per chunk; the garbage collector's work for those grew with the service's heap, and the
 * service served such a file at 0.5-0.95 of nginx's rate, rising over its first few downloads,
 * where the same loop with reused buffers ran at 1.0-1.2 from the first (docs/performance.md,
 * "Serving").
 */
import { close, fstatSync, openSync } from 'node:fs';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode } from '../errors.js';
import { readAt } from '../mirror/file-io.js';

/** An open file and what frames it in the body sent. */
export interface OpenFile {
  fd: number;
  /** the file's size */
  size: number;
  mtime: Date;
  /** bytes sent before the file's */
  head?: Buffer;
  /** bytes sent after the file's */
  tail?: Buffer;
}

/** How the body is described to the client. */
export interface SendOptions {
  type: string;
  /** a strong (`"…"`) or weak (`W/"…"`) entity tag */
  etag: string;
  /** content-addressed: cached for good; otherwise for a minute */
  immutable: boolean;
}

/** Bytes read per chunk; 64 KiB took three to four times the CPU per GiB (docs/performance.md). */
const CHUNK = 256 * 1024;
/** Chunks one response may have read and not yet written. */
const RING = 4;
/** Free buffers kept for the next responses (16 MiB). */
const POOL_MAX = 64;
const pool: Buffer[] = [];

/** Opens a file to send (it stays the same file whatever happens to its name meanwhile); null when absent or not a regular file. */
export function openFile(path: string): OpenFile | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    close(fd, () => undefined);
    return null;
  }
  return { fd, size: st.size, mtime: st.mtime };
}

/** The weak entity tag of a file that may be written again under its name: its size and time. */
export function weakEtag(f: OpenFile): string {
  return `W/"${f.size.toString(16)}-${f.mtime.getTime().toString(16)}"`;
}

/**
 * The bytes a `Range` header asks for out of `size` (one range; `bytes=a-b`, `a-`, `-n`): the
 * first and last byte, `unsatisfiable`, or null to send everything (no header, several ranges,
 * or one that is not `bytes=`, which a server may ignore).
 */
export function byteRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    return n === 0 || size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return null; // invalid: ignored
  return start >= size ? 'unsatisfiable' : { start, end };
}

/** Whole seconds, as HTTP dates carry them. */
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
const httpDate = (s: string | undefined) => (s === undefined ? NaN : Date.parse(s));

/** Answers `req` with `f` (closed when done, whatever happens). */
export function sendFile(req: FastifyRequest, reply: FastifyReply, f: OpenFile, o: SendOptions): FastifyReply | undefined {
  const size = (f.head?.length ?? 0) + f.size + (f.tail?.length ?? 0);
  const lastModified = f.mtime.toUTCString();
  reply
    .type(o.type)
    .header('accept-ranges', 'bytes')
    .header('cache-control', o.immutable ? 'public, max-age=31536000, immutable' : 'public, max-age=60')
    .header('etag', o.etag)
    .header('last-modified', lastModified);
  const inm = req.headers['if-none-match'];
  const notModified =
    inm !== undefined
      ? inm.split(',').some((t) => t.trim() === '*' || t.trim().replace(/^W\//, '') === o.etag.replace(/^W\//, ''))
      : seconds(f.mtime) <= httpDate(req.headers['if-modified-since']) / 1000;
  const ifRange = req.headers['if-range'] as string | undefined;
  const rangeHolds = ifRange === undefined || (!o.etag.startsWith('W/') && ifRange === o.etag) || httpDate(ifRange) / 1000 === seconds(f.mtime);
  const range = notModified || !rangeHolds ? null : byteRange(req.headers.range, size);
  if (notModified || range === 'unsatisfiable') {
    close(f.fd, () => undefined);
    if (notModified) return reply.code(304).send();
    return reply
      .code(416)
      .type('application/json; charset=utf-8')
      .header('content-range', `bytes */${size}`)
      .header('cache-control', 'no-store')
      .send({ error: { code: ErrorCode.NOT_FOUND, message: `range ${JSON.stringify(req.headers.range)} is outside the ${size} bytes of ${req.url}` } });
  }
  const { start, end } = range ?? { start: 0, end: size - 1 };
  if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
  reply.header('content-length', String(end - start + 1));
  // the body goes out here, not through fastify (whose onResponse hooks still run)
  reply.hijack();
  const res = reply.raw;
  res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
  if (req.method === 'HEAD' || end < start) {
    close(f.fd, () => undefined);
    res.end();
    return;
  }
  writeBody(res, f, start, end).then(
    () => close(f.fd, () => undefined),
    (err: Error) => {
      close(f.fd, () => undefined);
      res.destroy(err); // the client sees a short body, never wrong bytes
    },
  );
  return;
}

/** Bytes `start`..`end` (inclusive) of head ‖ file ‖ tail to `res`, then its end; stops early when the client goes. */
async function writeBody(res: ServerResponse, f: OpenFile, start: number, end: number): Promise<void> {
  const head = f.head ?? Buffer.alloc(0);
  const tail = f.tail ?? Buffer.alloc(0);
  const slice = (buf: Buffer, at: number) => buf.subarray(Math.max(0, start - at), Math.max(0, Math.min(buf.length, end + 1 - at)));
  let gone = res.destroyed;
  let inFlight = 0;
  let wake: (() => void) | null = null;
  const wakeUp = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const onClose = () => {
    gone = true;
    wakeUp();
  };
  res.on('close', onClose);
  try {
    const first = slice(head, 0);
    if (first.length > 0) res.write(first);
    const to = Math.min(f.size, end + 1 - head.length); // exclusive
    for (let pos = Math.max(0, start - head.length); pos < to && !gone;) {
      if (inFlight >= RING) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      const buf = pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
      let n: number;
      try {
        n = await readAt(f.fd, buf, 0, Math.min(CHUNK, to - pos), pos);
      } catch (err) {
        pool.push(buf);
        throw err;
      }
      if (n === 0) {
        pool.push(buf);
        throw new Error(`the file ended at byte ${pos} of ${f.size}`);
      }
      if (gone) {
        pool.push(buf);
        break;
      }
      pos += n;
      inFlight++;
      // the socket holds the buffer until this callback: only then may it be read into again
      res.write(buf.subarray(0, n), () => {
        inFlight--;
        if (pool.length < POOL_MAX) pool.push(buf);
        wakeUp();
      });
    }
    const last = slice(tail, head.length + f.size);
    if (!gone) {
      if (last.length > 0) res.write(last);
      res.end();
    }
  } finally {
    res.off('close', onClose);
  }
}
