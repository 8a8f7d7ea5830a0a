/**
 * The one way fodder starts a child process (tar, xz, unzip, zstd, git, Nix, rm): execa, with
 * the same conventions everywhere. The environment given is the whole environment (execa's
 * merging with this process's is off), so a caller that narrows it (git) gets exactly what it
 * asked for. An abort signal or a time limit kills the process with SIGKILL. Standard error is
 * captured as it comes, up to a limit; standard input and output are streams for the caller,
 * never buffered by execa. An exit code or a signal is a result, not an exception: only a
 * process that could not be started (ENOENT, EACCES) rejects `exit`, with Node's own error
 * (`code`, `syscall` `spawn ...`, `path`).
 *
 * With `ipc` (a Node program: the service's job process) messages go both ways over execa's IPC
 * channel (the child uses execa's `sendMessage` and `getCancelSignal`), and an abort is not a
 * SIGKILL at once: the reason is sent to the child, whose `getCancelSignal()` aborts with it, and
 * only a child still running `ipc.graceMs` later is killed.
 *
 * The one exception is the crawl's Nix process helper (workers/nix-spawner.ts,
 * src/eval/spawner.ts); docs/architecture.md says why.
 */
import type { Readable, Writable } from 'node:stream';
import { execa } from 'execa';

export interface ProcessExit {
  /** null when a signal ended it */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** killed because `timeoutMs` passed */
  timedOut: boolean;
}

export interface StartOptions {
  cwd?: string;
  /** the process's whole environment; this process's own when absent */
  env?: NodeJS.ProcessEnv;
  /** 'pipe': the caller writes `stdin`; a stream is piped in; default 'ignore' */
  stdin?: 'pipe' | 'ignore' | Readable;
  /** 'pipe': the caller reads `stdout`; default 'ignore' */
  stdout?: 'pipe' | 'ignore';
  /** SIGKILL when it aborts */
  signal?: AbortSignal;
  /** SIGKILL after this long; `stderr()` then ends with `(killed after N ms)` */
  timeoutMs?: number;
  /** characters of standard error kept: the first `max` ('head', the default), or about the last `max` ('tail') */
  stderrLimit?: { max: number; keep?: 'head' | 'tail' };
  /** an IPC channel to a Node child; an abort asks it to stop and kills it `graceMs` later */
  ipc?: { graceMs: number };
}

export interface StartedProcess {
  /** its standard input, with `stdin: 'pipe'`; a write after it exited is ignored (its exit says what happened) */
  readonly stdin: Writable | null;
  readonly stdout: (Readable & AsyncIterable<Buffer>) | null;
  /** its standard error so far, trimmed */
  stderr(): string;
  /** how it ended; rejects when it could not be started */
  readonly exit: Promise<ProcessExit>;
  /** sends `signal` (SIGKILL) when it is still running */
  kill(signal?: NodeJS.Signals): void;
  /** with `ipc`: the child's messages until it disconnects (unchecked: the receiver checks them) */
  messages(): AsyncIterable<unknown>;
}

export function startProcess(cmd: string, args: string[], o: StartOptions = {}): StartedProcess {
  const stdin = o.stdin ?? 'ignore';
  const child = execa(cmd, args, {
    cwd: o.cwd,
    env: o.env ?? process.env,
    extendEnv: false,
    stdin: typeof stdin === 'string' ? stdin : 'pipe',
    stdout: o.stdout ?? 'ignore',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    stripFinalNewline: false,
    cancelSignal: o.signal,
    timeout: o.timeoutMs,
    killSignal: 'SIGKILL',
    ...(o.ipc ? { ipc: true, gracefulCancel: o.signal !== undefined, forceKillAfterDelay: o.ipc.graceMs } : {}),
  });
  const limit = o.stderrLimit;
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    if (!limit) {
      err += d.toString();
      return;
    }
    if (limit.keep === 'tail') {
      err += d.toString();
      if (err.length > limit.max * 2) err = err.slice(-limit.max);
    } else if (err.length < limit.max) err += d.toString();
  });
  child.stdin?.on('error', () => undefined);
  if (typeof stdin !== 'string') stdin.pipe(child.stdin!);
  let timedOut = false;
  const exit = child.then((r) => {
    const cause = r.cause as NodeJS.ErrnoException | undefined;
    if (r.exitCode === undefined && r.signal === undefined && cause?.syscall?.startsWith('spawn')) throw cause;
    timedOut = r.timedOut;
    return { code: r.exitCode ?? null, signal: r.signal ?? null, timedOut: r.timedOut };
  });
  exit.catch(() => undefined);
  return {
    stdin: child.stdin,
    stdout: child.stdout as (Readable & AsyncIterable<Buffer>) | null,
    stderr: () => (timedOut ? `${err}\n(killed after ${o.timeoutMs} ms)` : err).trim(),
    exit,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    messages: () => (o.ipc && child.getEachMessage ? child.getEachMessage() : (async function* () {})()),
  };
}

/** What `runProcess` returns: its exit, all of its standard output and its standard error. */
export interface ProcessResult extends ProcessExit {
  stdout: Buffer;
  stderr: string;
}

/** Runs `cmd args` to its end, collecting standard output. */
export async function runProcess(cmd: string, args: string[], o: Omit<StartOptions, 'stdout'> = {}): Promise<ProcessResult> {
  const p = startProcess(cmd, args, { ...o, stdout: 'pipe' });
  const out: Buffer[] = [];
  p.stdout!.on('data', (d: Buffer) => out.push(d));
  const exit = await p.exit;
  return { ...exit, stdout: Buffer.concat(out), stderr: p.stderr() };
}
