import { Writable } from 'node:stream';
import { Client, FTPError } from 'basic-ftp';
import { outcomeOfError } from './classify.js';
import { FetchError } from './outcome.js';
import { createReceiver, tryFailure, type Receiver, type TryEnv, type TryResult } from './receive.js';
import { isLocal } from './http.js';

export interface FtpEnv extends TryEnv {
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

function replyOf(err: unknown): number | null {
  return err instanceof FTPError && typeof err.code === 'number' ? err.code : null;
}

function failureOf(err: unknown, url: URL, truncated: boolean, extra: Partial<TryResult> = {}): TryResult {
  const reply = replyOf(err);
  if (reply !== null) {
    const outcome = reply === 550 ? 'ftp-not-found' : 'ftp-error';
    return tryFailure(outcome, `FTP ${reply}: ${(err as Error).message}`, { ftpReply: reply, finalUrl: url.href, ...extra });
  }
  const c = outcomeOfError(err, truncated);
  return tryFailure(c.outcome, c.message, { finalUrl: url.href, ...extra });
}

/**
 * Downloads an ftp:// URL in binary mode (passive), anonymously unless the URL carries a user.
 * FTP tries always start from byte 0; SIZE, when the server answers it, plays the part of
 * Content-Length for the size cap and for spotting a short transfer.
 */
export async function ftpTry(url: URL, env: FtpEnv): Promise<TryResult> {
  const client = new Client(env.idleTimeoutMs);
  const path = decodeURIComponent(url.pathname);
  let timer: NodeJS.Timeout | undefined;
  try {
    try {
      await Promise.race([
        client.access({
          host: url.hostname,
          port: url.port ? Number(url.port) : 21,
          user: url.username ? decodeURIComponent(url.username) : 'anonymous',
          password: url.password ? decodeURIComponent(url.password) : 'anonymous@',
          secure: false,
        }),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(Object.assign(new Error(`connect timeout after ${env.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' })),
            env.connectTimeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    let size: number | null = null;
    try {
      size = await client.size(path);
    } catch (err) {
      if (replyOf(err) === 550) return failureOf(err, url, false);
      if (replyOf(err) === null) throw err;
      // SIZE not supported: go on without it
    }
    if (size !== null && size > env.maxBytes) {
      return tryFailure('too-large', `SIZE ${size} is over the size cap of ${env.maxBytes} bytes`, { finalUrl: url.href });
    }
    const rx: Receiver = createReceiver(env, 0, size);
    let stop: Error | null = null;
    const sink = new Writable({
      highWaterMark: 1 << 20,
      write(chunk: Buffer, _enc, cb) {
        try {
          rx.push(chunk);
          cb();
        } catch (err) {
          stop = err as Error;
          cb(err as Error);
        }
      },
    });
    try {
      await client.downloadTo(sink, path);
    } catch (err) {
      rx.abandon();
      const cause = stop ?? err;
      if (cause instanceof FetchError) return tryFailure(cause.outcome, cause.message, { finalUrl: url.href, bytes: rx.received });
      if (isLocal(cause)) throw cause;
      return failureOf(cause, url, size !== null && rx.received < size, { bytes: rx.received });
    }
    if (size !== null && rx.received !== size) {
      rx.abandon();
      return tryFailure('truncated', `transfer ended after ${rx.received} of ${size} bytes`, { finalUrl: url.href, bytes: rx.received });
    }
    const done = await rx.finish();
    return { ...tryFailure('ok', ''), message: null, finalUrl: url.href, bytes: rx.received, size: done.size, digests: done.digests };
  } catch (err) {
    if (isLocal(err)) throw err;
    return failureOf(err, url, false);
  } finally {
    client.close();
  }
}
