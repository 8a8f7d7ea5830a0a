import { ErrorCode, FodderError } from '../errors.js';

/** Error codes of the mirror's storage (not of one URL): these abort a fetch run or a command. */
export const MirrorErrorCode = {
  MIRROR_UNWRITABLE: ErrorCode.MIRROR_UNWRITABLE,
  MIRROR_FULL: ErrorCode.MIRROR_FULL,
  MIRROR_LOCKED: ErrorCode.MIRROR_LOCKED,
  MIRROR_MISSING: ErrorCode.MIRROR_MISSING,
} as const;

/** Local storage errors that must stop the whole run rather than count against a URL. */
export function storageError(err: unknown, where: string): FodderError | null {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new FodderError(MirrorErrorCode.MIRROR_FULL, `no space left on the mirror's device (${where})`, { where, errno: code });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new FodderError(MirrorErrorCode.MIRROR_UNWRITABLE, `cannot write to the mirror (${where}): ${(err as Error).message}`, { where, errno: code });
  }
  return null;
}
