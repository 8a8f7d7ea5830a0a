/**
 * The mirror over HTTP, for an unmodified Nix: the hashed mirror at `/tarballs/<algo>/<hash>`
 * (`hashed-mirrors = http://HOST:PORT/tarballs/`) and the binary cache at `/`
 * (`substituters = http://HOST:PORT`). Files go out through `sendFile` (./send-file.ts): HEAD,
 * Range, Content-Length, ETag and Last-Modified as a static server gives them. Content-addressed
 * files never change, so they may be cached for good, with their name as a strong ETag; a
 * narinfo may be signed again later.
 *
 * Flat sources' NARs (`nar/flat/<nix32 sha256>.nar`, src/mirror/flat-nar.ts) are made from the
 * file in `tarballs/sha256/` as they are sent: its NAR's prefix, the file, padding and suffix;
 * their narinfos are in `cache/flat/`.
 *
 * Every file is under its final name only once complete (the mirror renames into place), so a
 * reader never sees half of one; a file is opened once, so a request is answered from one file
 * even if its name is replaced meanwhile.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { narInfoPaths } from '../mirror/cache-entry.js';
import { flatNarSha256, flatNarSource } from '../mirror/flat-nar.js';
import { flatNarFrame } from '../nix-formats/nar.js';
import { nixCacheInfo } from '../nix-formats/narinfo.js';
import { ErrorCode, FodderError } from '../errors.js';
import { NAR_NAME, NARINFO_NAME, tarballName } from './mirror-names.js';
import { openFile, sendFile, weakEtag, type OpenFile } from './send-file.js';

export interface MirrorRoutesOptions {
  /** the mirror directory (`tarballs/`, `cache/`) */
  mirror: string;
  /** `Priority` of the nix-cache-info answered before the first fetch wrote one */
  priority: number;
}

const notFound = (what: string) => new FodderError(ErrorCode.NOT_FOUND, `the mirror has no ${what}`);

export function registerMirrorRoutes(app: FastifyInstance, o: MirrorRoutesOptions): void {
  const cache = join(o.mirror, 'cache');
  app.get('/nix-cache-info', async (req, reply) => {
    const f = openFile(join(cache, 'nix-cache-info'));
    if (f) return sendFile(req, reply, f, { type: 'text/x-nix-cache-info', etag: weakEtag(f), immutable: false });
    // no fetch has written the cache yet: it is empty, and says so
    return reply
      .type('text/x-nix-cache-info')
      .header('cache-control', 'public, max-age=60')
      .send(nixCacheInfo({ wantMassQuery: true, priority: o.priority }));
  });

  app.get<{ Params: { file: string } }>('/:file', async (req, reply) => {
    const { file } = req.params;
    if (!NARINFO_NAME.test(file)) throw notFound(`${JSON.stringify(file)} (not a narinfo name)`);
    // the cache's own entry (a tree, or a flat source's copy), else the one of a flat source made from its file
    const f = narInfoPaths(file).reduce<OpenFile | null>((found, rel) => found ?? openFile(join(o.mirror, rel)), null);
    if (!f) throw notFound(`store path ${file.slice(0, 32)}`);
    // a narinfo may be signed again: a weak ETag, kept a minute
    return sendFile(req, reply, f, { type: 'text/x-nix-narinfo', etag: weakEtag(f), immutable: false });
  });

  app.get<{ Params: { file: string } }>('/nar/flat/:file', async (req, reply) => {
    const { file } = req.params;
    const sha256 = flatNarSha256(file); // null unless exactly a name fodder writes
    if (!sha256) throw notFound(`${JSON.stringify(file)} (not a flat NAR name)`);
    const f = openFile(flatNarSource(o.mirror, sha256));
    if (!f) throw notFound(`file with sha256 ${sha256} for NAR ${file}`);
    const { prefix, suffix } = flatNarFrame(f.size);
    return sendFile(req, reply, { ...f, head: prefix, tail: suffix }, { type: NAR_TYPE, etag: `"${file.slice(0, 52)}"`, immutable: true });
  });

  app.get<{ Params: { file: string } }>('/nar/:file', async (req, reply) => {
    const { file } = req.params;
    if (!NAR_NAME.test(file)) throw notFound(`${JSON.stringify(file)} (not a NAR file name)`);
    const f = openFile(join(cache, 'nar', file));
    if (!f) throw notFound(`NAR ${file}`);
    return sendFile(req, reply, f, { type: NAR_TYPE, etag: `"${file}"`, immutable: true });
  });

  app.get<{ Params: { algo: string; '*': string } }>('/tarballs/:algo/*', async (req, reply) => {
    const { algo, '*': name } = req.params;
    const wanted = tarballName(algo, name);
    if (!wanted) throw notFound(`${JSON.stringify(`${algo}/${name}`)} (not a ${algo} hash in base16, nix32 or base64)`);
    const f = openFile(join(o.mirror, 'tarballs', wanted.algo, wanted.hex));
    if (!f) throw notFound(`file with ${wanted.algo} ${wanted.hex}`);
    return sendFile(req, reply, f, { type: 'application/octet-stream', etag: `"${wanted.algo}-${wanted.hex}"`, immutable: true });
  });
}

const NAR_TYPE = 'application/x-nix-nar';
