/**
 * A small process that starts the crawl's Nix processes for one worker thread (see
 * src/eval/spawner.ts for why). It is started once, with an IPC channel, and takes messages:
 *
 *   { t: 'run', id, cmd, args, env }   start `cmd args` with `env` over this process's own
 *
 * and answers, for each run, `{ t: 'pid', id, pid }`, then `{ t: 'err', id, data }` for each
 * chunk of the command's standard error (standard output is discarded), then
 * `{ t: 'exit', id, code, signal }`, or `{ t: 'failed', id, message }` when it cannot be started.
 * When the channel closes (the crawl ended, or was killed) it kills what it started and exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';

interface RunMessage {
  t: 'run';
  id: number;
  cmd: string;
  args: string[];
  env: Record<string, string>;
}

/** the longest a chunk of a Nix process's standard error waits before it is passed on */
const BATCH_MS = 25;

const running = new Map<number, ChildProcess>();
const send = (m: object) => { if (process.connected) process.send!(m); };

process.on('message', (m: RunMessage) => {
  if (m.t !== 'run') return;
  const child = spawn(m.cmd, m.args, { env: { ...process.env, ...m.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  running.set(m.id, child);
  child.once('spawn', () => send({ t: 'pid', id: m.id, pid: child.pid }));
  child.once('error', (err) => { running.delete(m.id); send({ t: 'failed', id: m.id, message: err.message }); });
  // Nix writes a line per attribute: rather than wake the worker thread for each, what came in
  // the last BATCH_MS is passed on in one message
  const stderr = child.stderr!;
  stderr.setEncoding('utf8');
  let pending = '';
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    timer = null;
    if (pending) send({ t: 'err', id: m.id, data: pending });
    pending = '';
  };
  stderr.on('data', (data: string) => {
    pending += data;
    timer ??= setTimeout(flush, BATCH_MS);
  });
  child.once('close', (code, signal) => {
    if (timer !== null) clearTimeout(timer);
    flush();
    if (!running.delete(m.id)) return;
    send({ t: 'exit', id: m.id, code, signal });
  });
});

process.once('disconnect', () => {
  for (const child of running.values()) child.kill('SIGKILL');
  process.exit(0);
});
