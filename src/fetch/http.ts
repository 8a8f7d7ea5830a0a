import { rmSync } from 'node:fs';
import { request, type Dispatcher } from 'undici';
import { outcomeOfError } from './classify.js';
import { FetchError, outcomeOfStatus } from './outcome.js';
import { partSize } from './part-file.js';
import { createReceiver, tryFailure, type Receiver, type TryEnv, type TryResult } from './receive.js';

export interface HttpEnv extends TryEnv {
  dispatcher: Dispatcher;
  userAgent: string;
}

/** One HTTP exchange ends either in a redirect to follow or in the try's result. */
export type HopResult = { redirect: string; status: number } | TryResult;

type Headers = Record<string, string | string[] | undefined>;

function header(h: Headers, name: string): string | null {
  const v = h[name];
  return Array.isArray(v) ? (v[0] ?? null) : (v ?? null);
}

function contentLength(h: Headers): number | null {
  const v = header(h, 'content-length');
  if (v === null || !/^\d+$/.test(v.trim())) return null;
  return Number(v);
}

/** Retry-After in milliseconds (seconds or an HTTP date); null when absent or unreadable. */
function retryAfter(h: Headers): number | null {
  const v = header(h, 'retry-after');
  if (!v) return null;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, t - Date.now());
}

/** `bytes START-END/TOTAL` of a 206; null when it is not that shape. */
function contentRange(h: Headers): { start: number; total: number | null } | null {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec((header(h, 'content-range') ?? '').trim());
  if (!m) return null;
  return { start: Number(m[1]), total: m[3] === '*' ? null : Number(m[3]) };
}

/**
 * GETs `url` once: a redirect is returned for the caller to check and follow; anything else
 * is the try's result. The body is never decoded (no Accept-Encoding is sent and a
 * Content-Encoding is ignored), so a tarball is hashed exactly as the server sent it. A partial
 * file left at env.dest is resumed with a Range request; a server that ignores the range
 * gets the file from the start.
 */
export async function httpHop(url: URL, env: HttpEnv): Promise<HopResult> {
  let offset = partSize(env.dest);
  for (;;) {
    const headers: Record<string, string> = { 'user-agent': env.userAgent, accept: '*/*' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method: 'GET', headers, dispatcher: env.dispatcher, maxRedirections: 0, signal: env.signal });
    } catch (err) {
      return tryFailure(outcomeOfError(err, false).outcome, outcomeOfError(err, false).message, { finalUrl: url.href });
    }
    const { statusCode: status, headers: h, body } = res;
    const base = { httpStatus: status, finalUrl: url.href, retryAfterMs: retryAfter(h) };

    if (status >= 300 && status < 400 && status !== 304) {
      await body.dump().catch(() => undefined);
      const location = header(h, 'location');
      if (!location) return tryFailure('http-other', `${status} without a Location header`, base);
      let next: string;
      try {
        next = new URL(location, url).href;
      } catch {
        return tryFailure('bad-redirect', `${status} to an invalid Location: ${location}`, base);
      }
      return { redirect: next, status };
    }
    if (offset > 0 && (status === 416 || (status === 206 && contentRange(h)?.start !== offset))) {
      // the server cannot continue where we stopped: start over without a range
      await body.dump().catch(() => undefined);
      rmSync(env.dest, { force: true });
      offset = 0;
      continue;
    }
    if (status !== 200 && status !== 206) {
      await body.dump().catch(() => undefined);
      return tryFailure(outcomeOfStatus(status), `HTTP ${status}`, base);
    }

    const resumed = status === 206 ? offset : 0;
    const length = contentLength(h);
    const total = status === 206 ? (contentRange(h)?.total ?? (length === null ? null : resumed + length)) : length;
    if (total !== null && total > env.maxBytes) {
      discard(body);
      return tryFailure('too-large', `Content-Length ${total} is over the size cap of ${env.maxBytes} bytes`, base);
    }
    return receiveBody(body, env, resumed, total, length, base);
  }
}

async function receiveBody(
  body: Dispatcher.ResponseData['body'],
  env: HttpEnv,
  resumed: number,
  total: number | null,
  length: number | null,
  base: Pick<TryResult, 'httpStatus' | 'finalUrl' | 'retryAfterMs'>,
): Promise<TryResult> {
  let rx: Receiver;
  try {
    rx = createReceiver(env, resumed, total);
  } catch (err) {
    discard(body);
    throw err; // local: cannot open the part file
  }
  const result = (outcome: TryResult['outcome'], message: string | null, extra: Partial<TryResult> = {}): TryResult => ({
    ...tryFailure(outcome, message ?? '', base),
    message,
    bytes: rx.received,
    resumedFrom: resumed || null,
    ...extra,
  });
  try {
    for await (const chunk of body) rx.push(chunk as Buffer);
  } catch (err) {
    rx.abandon();
    discard(body);
    if (err instanceof FetchError) return result(err.outcome, err.message);
    if (isLocal(err)) throw err;
    const short = length !== null && rx.received < length;
    const c = outcomeOfError(err, short || length === null);
    return result(c.outcome, short ? `${c.message} after ${rx.received} of ${length} bytes` : c.message);
  }
  if (length !== null && rx.received !== length) {
    rx.abandon();
    return result('truncated', `body ended after ${rx.received} of ${length} bytes`);
  }
  const { size, digests } = await rx.finish();
  return result('ok', null, { size, digests });
}

/** Drops a body we will not read; undici reports the abort as an error nobody needs. */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** A write error on our side (disk full, read-only), as opposed to a network error. */
export function isLocal(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const syscall = (err as NodeJS.ErrnoException | undefined)?.syscall;
  return (
    code === 'ENOSPC' ||
    code === 'EDQUOT' ||
    code === 'EROFS' ||
    code === 'EACCES' ||
    code === 'EPERM' ||
    code === 'EIO' ||
    ((syscall === 'write' || syscall === 'open' || syscall === 'ftruncate') && code !== 'EPIPE' && code !== 'ECONNRESET')
  );
}
