/**
 * A small process that starts the crawl's Nix processes for one worker thread (see
 * src/eval/spawner.ts for why). It is started once, with an IPC channel, and takes messages:
 *
 *   { t: 'run', id, cmd, args, env, interactive }   start `cmd args` with `env` over this process's own
 *   { t: 'in', id, data }                            write `data` to an interactive run's standard input
 *
 * and answers, for each run, `{ t: 'pid', id, pid }`, then `{ t: 'out', id, data }` for each
 * chunk of its output, then `{ t: 'exit', id, code, signal }`, or `{ t: 'failed', id, message }`
 * when it cannot be started. The output of a plain run is its standard error (standard output is
 * discarded); an interactive run reads standard input from `in` messages, and its output is its
 * standard output and standard error merged into one pipe, in the order it wrote them (a
 * `nix repl` prints values on one and errors on the other). When the channel closes (the crawl
 * ended, or was killed) it kills what it started and exits.
 *
 * node:child_process rather than execa, on purpose: see src/eval/spawner.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';

type Message =
  { t: 'run'; id: number; cmd: string; args: string[]; env: Record<string, string>; interactive?: boolean } | { t: 'in'; id: number; data: string };

/** the longest a chunk of output waits before it is passed on: a plain run's stderr, an interactive run's replies */
const BATCH_MS = { plain: 25, interactive: 2 };

const running = new Map<number, ChildProcess>();
const send = (m: object) => {
  if (process.connected) process.send!(m);
};

function start(m: Extract<Message, { t: 'run' }>): void {
  const env = { ...process.env, ...m.env };
  // one pipe for both streams: the shell opens it, then becomes the command (same pid)
  const child = m.interactive
    ? spawn('/bin/sh', ['-c', 'exec "$0" "$@" 2>&1', m.cmd, ...m.args], { env, stdio: ['pipe', 'pipe', 'ignore'] })
    : spawn(m.cmd, m.args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  running.set(m.id, child);
  child.once('spawn', () => send({ t: 'pid', id: m.id, pid: child.pid }));
  child.once('error', (err) => {
    running.delete(m.id);
    send({ t: 'failed', id: m.id, message: err.message });
  });
  child.stdin?.on('error', () => {
    /* the command exited: its exit is reported */
  });
  // Nix writes a line per attribute: rather than wake the worker thread for each, what came in
  // the last few milliseconds is passed on in one message
  const out = (m.interactive ? child.stdout : child.stderr)!;
  const batchMs = m.interactive ? BATCH_MS.interactive : BATCH_MS.plain;
  out.setEncoding('utf8');
  let pending = '';
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    timer = null;
    if (pending) send({ t: 'out', id: m.id, data: pending });
    pending = '';
  };
  out.on('data', (data: string) => {
    pending += data;
    timer ??= setTimeout(flush, batchMs);
  });
  child.once('close', (code, signal) => {
    if (timer !== null) clearTimeout(timer);
    flush();
    if (!running.delete(m.id)) return;
    send({ t: 'exit', id: m.id, code, signal });
  });
}

process.on('message', (m: Message) => {
  if (m.t === 'run') start(m);
  else if (m.t === 'in') running.get(m.id)?.stdin?.write(m.data);
});

process.once('disconnect', () => {
  for (const child of running.values()) child.kill('SIGKILL');
  process.exit(0);
});
