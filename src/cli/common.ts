import type { Command } from 'commander';
import { resolveSettings } from '../config/settings.js';
import { FodderError, ErrorCode } from '../errors.js';
import type { CrawlInfo } from '../db/crawls.js';
import { SIGNAL_EXIT } from './failure.js';

/** The database of a command that reads no config file: `--db`, else the default `db`. */
export function dbPath(option: string | undefined): string {
  return resolveSettings({ flags: { db: option } }).db;
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

/**
 * Refuses an option given an empty value (`--store ""`, `--system ""`): it would otherwise mean
 * the current directory, or nothing, or the default, without a word.
 */
export function refuseEmptyValues(command: Command): void {
  for (const option of command.options) {
    const value: unknown = command.getOptionValue(option.attributeName());
    if (typeof value === 'string' && value.trim() === '') {
      const name = option.long ?? option.flags;
      throw new FodderError(ErrorCode.USAGE, `${name}: an empty value; leave the option out for its default`, { option: name });
    }
  }
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

/**
 * SIGINT and SIGTERM stop a long command cleanly: `controller` is aborted with the signal's name
 * as its reason, and the command ends its children, removes its scratch files, marks its run
 * interrupted and exits 130 or 143. A second signal ends the process at once. Returns the
 * function that removes the handlers.
 */
export function abortOnSignals(controller: AbortController): () => void {
  const on = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.stderr.write(`fodder: error [INTERRUPTED]: stopped at once by a second ${signal}\n`);
      process.exit(SIGNAL_EXIT[signal]);
    }
    controller.abort(signal);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  for (const s of signals) process.on(s, on);
  return () => {
    for (const s of signals) process.off(s, on);
  };
}

/** Which crawl an answer comes from, for its first line: the latest finished one, or the one asked for with its status. */
export function crawlLabel(c: CrawlInfo, asked: boolean): string {
  // a crawl of a followed branch (service.nixpkgs) names its commit
  const name = c.revision === null ? `crawl ${c.id}` : `crawl ${c.id} (commit ${c.revision.slice(0, 12)})`;
  if (!asked) return `${name}, the latest finished (${c.finishedAt ?? c.startedAt})`;
  return c.status === 'done' ? `${name}, finished ${c.finishedAt ?? ''}`.trimEnd() : `${name}, ${c.status.toUpperCase()}: what it recorded so far, partial`;
}

/** With --json the answer has no header: a crawl that has not finished is said on stderr. */
export function warnPartial(c: Pick<CrawlInfo, 'id'> & { status: string }): void {
  if (c.status !== 'done') process.stderr.write(`fodder: warning: crawl ${c.id} is ${c.status}: what it recorded so far is partial\n`);
}
