import { ErrorCode, FodderError, systemError } from '../errors.js';
import { databaseError } from '../db/open.js';

/** How a command ended badly: what to print and the exit status. */
export interface Failure {
  code: string;
  message: string;
  exitCode: number;
  /** not an expected failure: a bug in fodder (printed with its stack and a request to report it) */
  bug: boolean;
}

/** Exit statuses of a process stopped by a signal, as a shell reports them (128 + the signal's number). */
export const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGPIPE: 141 };

/**
 * What a thrown value means for the user. Expected failures (fodder's own errors, SQLite's,
 * failed system calls) become one line with a code; anything else is a bug.
 */
export function failureOf(err: unknown): Failure {
  const known = err instanceof FodderError ? err : (databaseError(err) ?? systemError(err));
  if (known) {
    const signal = known.code === ErrorCode.INTERRUPTED ? String((known.fields.signal as string | undefined) ?? 'SIGINT') : null;
    const exitCode = signal ? (SIGNAL_EXIT[signal] ?? 130) : known.code === ErrorCode.USAGE ? 2 : 1;
    return { code: known.code, message: known.message, exitCode, bug: false };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return { code: ErrorCode.BUG, message: e.stack ?? e.message, exitCode: 1, bug: true };
}

/** The text a failure prints on standard error. */
export function failureText(f: Failure): string {
  if (!f.bug) return `fodder: error [${f.code}]: ${f.message}\n`;
  return `fodder: internal error: ${f.message}\n` + 'fodder: this is a bug in fodder; please report it, with the command you ran and the lines above\n';
}
