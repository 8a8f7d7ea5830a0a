/**
 * A served mirror read over HTTP, for `--missing --mirror URL`: `fodder serve`'s URL (the cache
 * at `/`, the hashed mirror at `/tarballs/`), or any static server of a mirror directory (the
 * cache at `/cache/`). HEAD for tarballs and NAR files, GET for narinfos, a bounded number at
 * once. The holding rule is the directory's (src/mirror/holdings.ts).
 */
import PQueue from 'p-queue';
import { request } from 'undici';
import { ErrorCode, FodderError } from '../errors.js';
import { fileHoldingSource, holdingOf, type MirrorView } from '../mirror/holdings.js';

/** Requests at once to the served mirror. */
const CONCURRENCY = 16;

function unreachable(url: string, why: string): FodderError {
  return new FodderError(ErrorCode.MIRROR_UNREACHABLE, `mirror ${url}: ${why}`, { url });
}

/** The status and body (GET) or length (HEAD) of one URL; 404 and 410 are absence, anything else not 2xx an error. */
async function ask(url: string, method: 'GET' | 'HEAD'): Promise<{ ok: false } | { ok: true; size: number | null; text: string }> {
  let res;
  try {
    res = await request(url, { method, headersTimeout: 30_000, bodyTimeout: 60_000 });
  } catch (e) {
    throw unreachable(url, (e as Error).message);
  }
  const text = method === 'GET' && res.statusCode < 300 ? await res.body.text() : (await res.body.dump(), '');
  if (res.statusCode === 404 || res.statusCode === 410) return { ok: false };
  if (res.statusCode >= 300) throw unreachable(url, `HTTP ${res.statusCode}`);
  const length = Number(res.headers['content-length']);
  return { ok: true, size: Number.isFinite(length) ? length : null, text };
}

/** A served mirror at `base` (http:// or https://). Finds where its binary cache is first. */
export async function createUrlMirrorView(base: string): Promise<MirrorView> {
  const root = base.replace(/\/+$/, '');
  let cacheRoot: string | null = null;
  for (const c of [root, `${root}/cache`]) {
    if ((await ask(`${c}/nix-cache-info`, 'GET')).ok) {
      cacheRoot = c;
      break;
    }
  }
  if (cacheRoot === null) throw unreachable(root, 'answers no nix-cache-info at / or /cache/: not a mirror');
  const cache = cacheRoot;
  const queue = new PQueue({ concurrency: CONCURRENCY });
  const urlOf = (rel: string) => (rel.startsWith('cache/') ? `${cache}/${rel.slice('cache/'.length)}` : `${root}/${rel}`);
  const sizeOf = async (rel: string) => {
    const r = await ask(urlOf(rel), 'HEAD');
    return r.ok ? (r.size ?? 0) : null;
  };
  const narInfoOf = async (name: string) => {
    const r = await ask(`${cache}/${name}`, 'GET');
    return r.ok ? r.text : null;
  };
  const src = fileHoldingSource(sizeOf, narInfoOf);
  return { where: root, holds: (fod) => queue.add(() => holdingOf(fod, src), { throwOnTimeout: true }) };
}
