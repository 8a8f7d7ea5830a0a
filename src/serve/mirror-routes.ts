/**
 * The mirror over HTTP, for an unmodified Nix: the hashed mirror at `/tarballs/<algo>/<hash>`
 * (`hashed-mirrors = http://HOST:PORT/tarballs/`) and the binary cache at `/`
 * (`substituters = http://HOST:PORT`). Files go out through @fastify/send: HEAD, Range,
 * Content-Length, ETag and Last-Modified as a static server gives them. Content-addressed
 * files never change, so they may be cached for good; a narinfo may be signed again later.
 *
 * Every file is under its final name only once complete (the mirror renames into place), so a
 * reader never sees half of one.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
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
    return send(reply, cache, file, `store path ${file.slice(0, 32)}`, A_MINUTE);
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
