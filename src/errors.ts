/**
 * One error base class for the whole project. `code` is stable: it is what goes into the
 * database and what reports group by. `fields` carries structured detail (url, attr, key...).
 */
export class FodderError extends Error {
  readonly code: string;
  readonly fields: Record<string, unknown>;

  constructor(code: string, message: string, fields: Record<string, unknown> = {}) {
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
  code: string;
  message: string;
  fields?: Record<string, unknown>;
}

/** Error codes used across stages. Fetch outcome codes live in src/fetch. */
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
} as const;

const ERRNO_EXPLAINED: Record<string, [code: string, text: string]> = {
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

const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRINUSE', 'EADDRNOTAVAIL']);

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
    const why = errno === 'ENOENT' ? 'not found on PATH' : errno === 'EAGAIN' || errno === 'ENOMEM'
      ? 'the system has too many processes or too little memory' : ERRNO_EXPLAINED[errno]?.[1] ?? errno;
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
