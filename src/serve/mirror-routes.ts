/**
 * The mirror over HTTP, for an unmodified Nix: the hashed mirror at `/tarballs/<algo>/<hash>`
 * (`hashed-mirrors = http://HOST:PORT/tarballs/`) and the binary cache at `/`
 * (`substituters = http://HOST:PORT`). Files go out through @fastify/send: HEAD, Range,
 * Content-Length, ETag and Last-Modified as a static server gives them. Content-addressed
 * files never change, so they may be cached for good; a narinfo may be signed again later.
 *
 * Flat sources' NARs (`nar/flat/<nix32 sha256>.nar`, src/mirror/flat-nar.ts) are made from the
 * file in `tarballs/sha256/` as they are sent: its NAR's prefix, the file, padding and suffix,
 * with the same HEAD, Range (across the three parts), Content-Length and caching headers, and a
 * strong ETag (the name says the content); their narinfos are in `cache/flat/`.
 *
 * Every file is under its final name only once complete (the mirror renames into place), so a
 * reader never sees half of one.
 */
import { closeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FLAT_NARINFO_DIR, flatNarBytes, flatNarSha256, flatNarSource, openFlatNar } from '../mirror/flat-nar.js';
import { nixCacheInfo } from '../nix-formats/narinfo.js';
import { ErrorCode, FodderError } from '../errors.js';
import { NAR_NAME, NARINFO_NAME, tarballName } from './mirror-names.js';

export interface MirrorRoutesOptions {
  /** the mirror directory (`tarballs/`, `cache/`) */
  mirror: string;
  /** `Priority` of the nix-cache-info answered before the first fetch wrote one */
  priority: number;
}

/**
 * Files are read in chunks of 256 KiB, not fs.createReadStream's 64 KiB (@fastify/send's
 * default): `bench:serve` measured a 1 GiB file at 3 to 4 times the speed, with a quarter of the
 * service's CPU time (0.5-0.8 s against 1.8-3.8 s); chunks of 1 MiB took twice the CPU of
 * 256 KiB (docs/performance.md, "Serving").
 */
const CHUNK = 256 * 1024;
const FOREVER = { maxAge: '365d', immutable: true, highWaterMark: CHUNK } as const;
const A_MINUTE = { maxAge: '1m', immutable: false, highWaterMark: CHUNK } as const;

const notFound = (what: string) => new FodderError(ErrorCode.NOT_FOUND, `the mirror has no ${what}`);

export function registerMirrorRoutes(app: FastifyInstance, o: MirrorRoutesOptions): void {
  const cache = join(o.mirror, 'cache');
  /** a file of the mirror (a name already checked), or a 404 naming what was asked */
  const send = (reply: FastifyReply, root: string, name: string, what: string, options: typeof FOREVER | typeof A_MINUTE) => {
    if (!existsSync(join(root, name))) throw notFound(what);
    return reply.sendFile(name, root, options);
  };

  app.get('/nix-cache-info', async (_req, reply) => {
    reply.type('text/x-nix-cache-info');
    if (existsSync(join(cache, 'nix-cache-info'))) return reply.sendFile('nix-cache-info', cache, A_MINUTE);
    // no fetch has written the cache yet: it is empty, and says so
    return reply.header('cache-control', 'public, max-age=60').send(nixCacheInfo({ wantMassQuery: true, priority: o.priority }));
  });

  app.get<{ Params: { file: string } }>('/:file', async (req, reply) => {
    const { file } = req.params;
    if (!NARINFO_NAME.test(file)) throw notFound(`${JSON.stringify(file)} (not a narinfo name)`);
    reply.type('text/x-nix-narinfo');
    // the cache's own entry (a tree, or a flat source's copy), else the one of a flat source made from its file
    const root = existsSync(join(cache, file)) ? cache : join(cache, FLAT_NARINFO_DIR);
    return send(reply, root, file, `store path ${file.slice(0, 32)}`, A_MINUTE);
  });

  app.get<{ Params: { file: string } }>('/nar/flat/:file', async (req, reply) => {
    const { file } = req.params;
    const sha256 = flatNarSha256(file); // null unless exactly a name fodder writes
    if (!sha256) throw notFound(`${JSON.stringify(file)} (not a flat NAR name)`);
    const src = openFlatNar(flatNarSource(o.mirror, sha256));
    if (!src) throw notFound(`file with sha256 ${sha256} for NAR ${file}`);
    return sendFlatNar(req, reply, src, `"${file.slice(0, 52)}"`);
  });

  app.get<{ Params: { file: string } }>('/nar/:file', async (req, reply) => {
    const { file } = req.params;
    if (!NAR_NAME.test(file)) throw notFound(`${JSON.stringify(file)} (not a NAR file name)`);
    reply.type('application/x-nix-nar');
    return send(reply, join(cache, 'nar'), file, `NAR ${file}`, FOREVER);
  });

  app.get<{ Params: { algo: string; '*': string } }>('/tarballs/:algo/*', async (req, reply) => {
    const { algo, '*': name } = req.params;
    const wanted = tarballName(algo, name);
    if (!wanted) throw notFound(`${JSON.stringify(`${algo}/${name}`)} (not a ${algo} hash in base16, nix32 or base64)`);
    reply.type('application/octet-stream');
    return send(reply, join(o.mirror, 'tarballs', wanted.algo), wanted.hex, `file with ${wanted.algo} ${wanted.hex}`, FOREVER);
  });
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

/** A flat NAR (its file open): HEAD, conditional GET, Range, the caching headers of the immutable files. */
function sendFlatNar(req: FastifyRequest, reply: FastifyReply, src: NonNullable<ReturnType<typeof openFlatNar>>, etag: string) {
  const size = src.narSize;
  reply
    .type('application/x-nix-nar')
    .header('accept-ranges', 'bytes')
    .header('cache-control', 'public, max-age=31536000, immutable')
    .header('etag', etag)
    .header('last-modified', src.mtime.toUTCString());
  const notModified = req.headers['if-none-match']?.split(',').some((t) => t.trim() === etag || t.trim() === '*');
  const ifRange = req.headers['if-range'];
  const range = notModified || (ifRange !== undefined && ifRange !== etag) ? null : byteRange(req.headers.range, size);
  if (notModified || range === 'unsatisfiable' || req.method === 'HEAD') closeSync(src.fd);
  if (notModified) return reply.code(304).send();
  if (range === 'unsatisfiable') {
    return reply
      .code(416)
      .type('application/json; charset=utf-8')
      .header('content-range', `bytes */${size}`)
      .header('cache-control', 'no-store')
      .send({ error: { code: ErrorCode.NOT_FOUND, message: `range ${JSON.stringify(req.headers.range)} is outside the ${size} bytes of the NAR` } });
  }
  const { start, end } = range ?? { start: 0, end: size - 1 };
  if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${size}`);
  reply.header('content-length', String(end - start + 1));
  // fastify's HEAD route keeps the length given when the body is a stream (an empty one here)
  if (req.method === 'HEAD') return reply.send(Readable.from([]));
  return reply.send(Readable.from(flatNarBytes(src, start, end), { objectMode: false }));
}
