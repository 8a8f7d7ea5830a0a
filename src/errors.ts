/**
 * One error base class for the whole project. `code` is stable: it is what goes into the
 * database and what reports group by. `fields` carries structured detail (url, attr, key...).
 */
export class FodderError extends Error {
  readonly code: ErrorCode;
  readonly fields: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, fields: Record<string, unknown> = {}) {
    super(message);
    this.name = 'FodderError';
    this.code = code;
    this.fields = fields;
  }

  /** The plain shape that crosses a worker boundary. */
  toPlain(): PlainError {
    return { ok: false, code: this.code, message: this.message, fields: this.fields };
  }

  static fromPlain(p: PlainError): FodderError {
    return new FodderError(p.code, p.message, p.fields ?? {});
  }
}

export interface PlainError {
  ok: false;
  code: ErrorCode;
  message: string;
  fields?: Record<string, unknown>;
}

/**
 * Every error code of fodder, in one place. The strings are stored in databases and named in
 * docs/cli.md (which a test checks): never change one.
 */
export const ErrorCode = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  CONFIG_NOT_FOUND: 'CONFIG_NOT_FOUND',
  NIXPKGS_NOT_FOUND: 'NIXPKGS_NOT_FOUND',
  NIX_MISSING: 'NIX_MISSING',
  /** the Nix found is older than the package set's lib/minver.nix */
  NIX_TOO_OLD: 'NIX_TOO_OLD',
  NIX_FAILED: 'NIX_FAILED',
  DRV_PARSE: 'DRV_PARSE',
  DB_EMPTY: 'DB_EMPTY',
  DB_INVALID: 'DB_INVALID',
  ATTR_UNKNOWN: 'ATTR_UNKNOWN',
  ATTR_NOT_CRAWLED: 'ATTR_NOT_CRAWLED',
  ATTR_FAILED: 'ATTR_FAILED',
  /** an on-demand target (--expr, --file, --nixos-config, --flake) failed to evaluate, or yields no derivation */
  TARGET_FAILED: 'TARGET_FAILED',
  USAGE: 'USAGE',
  /** the database file is damaged (SQLite: malformed, not a database) */
  DB_CORRUPT: 'DB_CORRUPT',
  /** another process holds the database's write lock past the busy timeout */
  DB_BUSY: 'DB_BUSY',
  /** the database (or its folder, for the -wal and -shm files) cannot be written */
  DB_READONLY: 'DB_READONLY',
  /** the database's device is full */
  DB_FULL: 'DB_FULL',
  /** SQLite could not read or write the file (I/O error, cannot open) */
  DB_IO: 'DB_IO',
  /** permission denied on a file */
  IO_PERMISSION: 'IO_PERMISSION',
  /** a file system mounted (or remounted) read-only */
  IO_READ_ONLY: 'IO_READ_ONLY',
  /** no space (or quota) left on a device */
  IO_NO_SPACE: 'IO_NO_SPACE',
  /** a file or directory that should exist does not */
  IO_NOT_FOUND: 'IO_NOT_FOUND',
  /** any other failed file operation */
  IO_ERROR: 'IO_ERROR',
  /** a program could not be started (missing, too many processes, too little memory) */
  SPAWN_FAILED: 'SPAWN_FAILED',
  /** a network connection failed outside the per-URL handling of a fetch */
  NETWORK: 'NETWORK',
  /** the package set does not load for a system (or variant) */
  SYSTEM_UNKNOWN: 'SYSTEM_UNKNOWN',
  /** `--crawl N` names no crawl */
  CRAWL_UNKNOWN: 'CRAWL_UNKNOWN',
  /** crawls exist, but none has finished */
  CRAWL_UNFINISHED: 'CRAWL_UNFINISHED',
  /** a live process is running the same crawl */
  CRAWL_RUNNING: 'CRAWL_RUNNING',
  /** stopped by SIGINT or SIGTERM */
  INTERRUPTED: 'INTERRUPTED',
  /** fodder's own files are missing (not built, moved) */
  INSTALL_BROKEN: 'INSTALL_BROKEN',
  /** a crawl worker thread failed (it died, or fodder's own code failed on a whole shard) */
  WORKER_FAILED: 'WORKER_FAILED',
  /** fodder's own mistake: an error without a code (the stack is printed) */
  BUG: 'BUG',

  // the service (`fodder serve`, docs/api.md)
  /** the service cannot listen on its address (in use, not this machine's, a privileged port) */
  SERVE_LISTEN: 'SERVE_LISTEN',
  /** an HTTP request names nothing the service has (a path, a file of the mirror) */
  NOT_FOUND: 'NOT_FOUND',
  /** a write endpoint asked without the admin token (or no token is configured) */
  TOKEN_REQUIRED: 'TOKEN_REQUIRED',
  /** `GET /api/jobs/ID` names no job */
  JOB_UNKNOWN: 'JOB_UNKNOWN',
  /** `fodder job --id N` (the service's job process): the job has ended, or another live process runs it */
  JOB_TAKEN: 'JOB_TAKEN',

  // Nix's formats
  HASH_INVALID: 'HASH_INVALID',
  STORE_PATH_INVALID: 'STORE_PATH_INVALID',
  /** a file type a NAR cannot hold (a socket, a device) */
  NAR_UNSUPPORTED_FILE: 'NAR_UNSUPPORTED_FILE',
  /** a file changed while it was being dumped */
  NAR_FILE_CHANGED: 'NAR_FILE_CHANGED',
  /** an archive that is malformed, non-canonical or unsafe to restore */
  NAR_INVALID: 'NAR_INVALID',
  NARINFO_INVALID: 'NARINFO_INVALID',
  /** a signing key that cannot be read */
  KEY_INVALID: 'KEY_INVALID',

  // fetching and the mirror: these stop a run or a command
  MIRROR_UNWRITABLE: 'MIRROR_UNWRITABLE',
  MIRROR_FULL: 'MIRROR_FULL',
  MIRROR_LOCKED: 'MIRROR_LOCKED',
  MIRROR_MISSING: 'MIRROR_MISSING',
  /** xz or zstd failed */
  COMPRESS_FAILED: 'COMPRESS_FAILED',
  GIT_FAILED: 'GIT_FAILED',
  /** what Nix built does not have the declared hash after all */
  NIX_OUTPUT_MISMATCH: 'NIX_OUTPUT_MISMATCH',
  /** the content does not have the FOD's declared hash: nothing was published */
  CACHE_HASH_MISMATCH: 'CACHE_HASH_MISMATCH',
  /** the FOD's out path does not follow from its hash and name */
  CACHE_PATH_MISMATCH: 'CACHE_PATH_MISMATCH',
  CACHE_OPTIONS_INVALID: 'CACHE_OPTIONS_INVALID',
  /** a mirror's manifest that cannot be read, or whose signature fails */
  MANIFEST_INVALID: 'MANIFEST_INVALID',
  /** a bundle that cannot be read (no index, a broken index or tar stream) */
  BUNDLE_INVALID: 'BUNDLE_INVALID',
  /** `bundle import` refused objects (corrupt, foreign, unsigned); the others were imported */
  BUNDLE_REFUSED: 'BUNDLE_REFUSED',
  /** an object does not fit in one volume of `--volume-size` */
  VOLUME_TOO_SMALL: 'VOLUME_TOO_SMALL',
  /** `--mirror URL`: the served mirror did not answer as a mirror does */
  MIRROR_UNREACHABLE: 'MIRROR_UNREACHABLE',

  // unpacking an archive (src/fetch/unpack-policy.ts); a refusal makes the source unverifiable
  /** an entry would escape the work dir or is a device/fifo */
  UNPACK_UNSAFE: 'UNPACK_UNSAFE',
  /** past the size or entry-count cap */
  UNPACK_TOO_LARGE: 'UNPACK_TOO_LARGE',
  /** a format or feature fodder does not reproduce (sparse files, encryption, unknown types) */
  UNPACK_UNSUPPORTED: 'UNPACK_UNSUPPORTED',
  /** the archive is corrupt or the tool failed */
  UNPACK_FAILED: 'UNPACK_FAILED',
  /** stripRoot needs exactly one top-level entry (fetchzip fails the same way) */
  UNPACK_STRIP_ROOT: 'UNPACK_STRIP_ROOT',

  // what a failed try of one URL came to (src/fetch/outcome.ts; `fetch_attempts.outcome`, docs/fetch.md)
  HTTP_404: 'http-404',
  HTTP_410: 'http-410',
  HTTP_4XX: 'http-4xx',
  HTTP_5XX: 'http-5xx',
  HTTP_OTHER: 'http-other',
  DNS: 'dns',
  CONNECT: 'connect',
  TIMEOUT: 'timeout',
  RESET: 'reset',
  TLS: 'tls',
  TRUNCATED: 'truncated',
  TOO_LARGE: 'too-large',
  HASH_MISMATCH: 'hash-mismatch',
  REFUSED_SCHEME: 'refused-scheme',
  BAD_URL: 'bad-url',
  REDIRECT_LOOP: 'redirect-loop',
  BAD_REDIRECT: 'bad-redirect',
  FTP_NOT_FOUND: 'ftp-not-found',
  FTP_ERROR: 'ftp-error',
  ERROR: 'error',
} as const;

/** Every code a FodderError can carry: what goes into the database and what reports group by. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const ERRNO_EXPLAINED: Record<string, [code: ErrorCode, text: string]> = {
  EACCES: [ErrorCode.IO_PERMISSION, 'permission denied'],
  EPERM: [ErrorCode.IO_PERMISSION, 'operation not permitted'],
  EROFS: [ErrorCode.IO_READ_ONLY, 'the file system is read-only'],
  ENOSPC: [ErrorCode.IO_NO_SPACE, 'no space left on the device'],
  EDQUOT: [ErrorCode.IO_NO_SPACE, 'disk quota exceeded'],
  ENOENT: [ErrorCode.IO_NOT_FOUND, 'no such file or directory'],
  ENOTDIR: [ErrorCode.IO_NOT_FOUND, 'a part of the path is not a directory'],
  EISDIR: [ErrorCode.IO_ERROR, 'is a directory'],
  EEXIST: [ErrorCode.IO_ERROR, 'already exists'],
  EIO: [ErrorCode.IO_ERROR, 'input/output error (a failing disk?)'],
  EMFILE: [ErrorCode.IO_ERROR, 'too many open files in this process (raise `ulimit -n`)'],
  ENFILE: [ErrorCode.IO_ERROR, 'too many open files on this system'],
  ENAMETOOLONG: [ErrorCode.IO_ERROR, 'file name too long'],
  ELOOP: [ErrorCode.IO_ERROR, 'too many levels of symbolic links'],
  EBUSY: [ErrorCode.IO_ERROR, 'device or resource busy'],
  EXDEV: [ErrorCode.IO_ERROR, 'cannot link or rename across file systems'],
  ENOTEMPTY: [ErrorCode.IO_ERROR, 'directory not empty'],
  ETXTBSY: [ErrorCode.IO_ERROR, 'text file busy'],
  EFBIG: [ErrorCode.IO_ERROR, 'file too large for the file system'],
};

const NETWORK_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRINUSE',
  'EADDRNOTAVAIL',
]);

/**
 * A failed system call (Node's errno errors: a file operation, a program start, a connection)
 * as a FodderError naming what failed; null for anything else. `doing` says what fodder was at.
 */
export function systemError(err: unknown, doing?: string): FodderError | null {
  const e = err as (NodeJS.ErrnoException & { dest?: string }) | undefined;
  if (!e || typeof e !== 'object' || typeof e.code !== 'string' || typeof e.syscall !== 'string') return null;
  const errno = e.code;
  const at = doing ? ` (${doing})` : '';
  const fields = { errno, syscall: e.syscall, path: e.path ?? null, dest: e.dest ?? null };
  if (e.syscall.startsWith('spawn')) {
    const program = e.path ?? e.syscall.slice('spawn '.length);
    const why =
      errno === 'ENOENT'
        ? 'not found on PATH'
        : errno === 'EAGAIN' || errno === 'ENOMEM'
          ? 'the system has too many processes or too little memory'
          : (ERRNO_EXPLAINED[errno]?.[1] ?? errno);
    return new FodderError(ErrorCode.SPAWN_FAILED, `cannot start ${program}${at}: ${why} (${errno})`, fields);
  }
  if (NETWORK_ERRNOS.has(errno)) {
    const x = e as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
    const where = x.hostname ?? (x.address ? `${x.address}${x.port ? `:${x.port}` : ''}` : 'the network');
    return new FodderError(ErrorCode.NETWORK, `${where}${at}: ${e.syscall} failed (${errno})`, fields);
  }
  const known = ERRNO_EXPLAINED[errno];
  if (!known && !e.path) return null;
  const [code, text] = known ?? [ErrorCode.IO_ERROR, errno];
  const what = e.path ? (e.dest ? `${e.path} -> ${e.dest}` : e.path) : 'a file';
  return new FodderError(code, `${what}${at}: ${text} (${e.syscall}, ${errno})`, fields);
}
