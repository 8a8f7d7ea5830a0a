import { resolve } from 'node:path';
import { FodderError, ErrorCode } from '../errors.js';

export const DEFAULT_DB = 'data/fodder.db';
export const DEFAULT_MIRROR = 'data/mirror';

/** Resolves --db against the current directory. */
export function dbPath(option: string | undefined): string {
  return resolve(option ?? DEFAULT_DB);
}

/** Prints a value as JSON on stdout (the contract of every --json flag). */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/**
 * Collects a repeatable option, also splitting comma-separated values. An empty value is a
 * usage error (`--system ""` narrows nothing: it must not mean "all").
 */
export function collect(name: string) {
  return (value: string, previous: string[] = []): string[] => {
    const values = value.split(',').map((s) => s.trim());
    if (values.some((v) => v === '')) {
      throw new FodderError(ErrorCode.USAGE, `${name}: an empty value ("${value}"); leave the option out to mean all`, { option: name, value });
    }
    return previous.concat(values);
  };
}

/** Parses a positive integer option, naming the option when it is wrong. */
export function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) {
      throw new FodderError(ErrorCode.USAGE, `${name} must be a positive integer, got "${value}"`, { option: name, value });
    }
    return n;
  };
}

/** Whether progress should be drawn in place (a terminal) or printed as plain lines. */
export function isInteractive(): boolean {
  return Boolean(process.stderr.isTTY) && !process.env.CI;
}
