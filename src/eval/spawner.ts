/**
 * Starts the crawl's Nix processes from a small helper process (workers/nix-spawner.ts), one per
 * thread, instead of from the crawl's own process.
 *
 * Why: Linux starts a process by fork, which marks every page of the parent copy-on-write; each
 * page the parent writes afterwards faults once more. The crawl's process holds hundreds of MB
 * (the database's page cache, the results in flight), and it starts a Nix process per shard, so
 * after every start the coordinator paid a fault for every page it touched again. Measured here:
 * touching 400 MB after one spawn took 1.54 s (3 ms before it); the crawl's process took 260,000
 * page faults. The helper is started once, while the process is still small, and is itself
 * small, so its forks are cheap and nobody else pays for them.
 *
 * This and workers/nix-spawner.ts are the one place that starts processes with
 * node:child_process instead of execa (src/process.ts): execa would make the helper larger and
 * each start slower (bench/spawn.ts; the figures are in docs/architecture.md).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { workerScript } from '../config/defaults.js';

export interface SpawnedRun {
  /** the process id once started */
  readonly pid: number | undefined;
  /** SIGKILL, when it is running */
  kill(): void;
  /** writes to its standard input (an interactive run) */
  write(data: string): void;
  /** how it ended; rejects when it could not be started */
  readonly done: Promise<{ exitCode: number | null; signal: string | null }>;
}

interface RunState {
  pid: number | undefined;
  onOutput: (data: string) => void;
  resolve: (r: { exitCode: number | null; signal: string | null }) => void;
  reject: (err: Error) => void;
}

type HelperMessage =
  | { t: 'pid'; id: number; pid: number }
  | { t: 'out'; id: number; data: string }
  | { t: 'exit'; id: number; code: number | null; signal: string | null }
  | { t: 'failed'; id: number; message: string };

class Spawner {
  private readonly child: ChildProcess;
  private readonly runs = new Map<number, RunState>();
  private nextId = 1;

  constructor() {
    this.child = fork(workerScript('nix-spawner.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'json' });
    this.child.on('message', (m: HelperMessage) => this.onMessage(m));
    this.child.once('exit', (code, signal) => {
      const err = new Error(`the Nix process helper exited (${signal ?? `code ${code}`})`);
      for (const run of this.runs.values()) run.reject(err);
      this.runs.clear();
      if (current === this) current = null;
    });
    // an idle helper does not keep its thread (or the process) alive
    this.idle();
  }

  private idle(): void {
    this.child.unref();
    (this.child.channel as { unref?: () => void } | undefined)?.unref?.();
  }

  private busy(): void {
    this.child.ref();
    (this.child.channel as { ref?: () => void } | undefined)?.ref?.();
  }

  private onMessage(m: HelperMessage): void {
    const run = this.runs.get(m.id);
    if (!run) return;
    switch (m.t) {
      case 'pid':
        run.pid = m.pid;
        break;
      case 'out':
        run.onOutput(m.data);
        break;
      case 'exit':
        this.end(m.id);
        run.resolve({ exitCode: m.code, signal: m.signal });
        break;
      case 'failed':
        this.end(m.id);
        run.reject(new Error(m.message));
        break;
    }
  }

  private end(id: number): void {
    this.runs.delete(id);
    if (this.runs.size === 0) this.idle();
  }

  /**
   * Starts `cmd args` with `env` over the helper's environment; `onOutput` gets its standard
   * error as it comes. `interactive`: its standard input is open for `write`, and `onOutput`
   * gets its standard output and standard error merged, in the order it wrote them.
   */
  run(cmd: string, args: string[], env: Record<string, string>, onOutput: (data: string) => void = () => {}, interactive = false): SpawnedRun {
    const id = this.nextId++;
    let state!: RunState;
    const done = new Promise<{ exitCode: number | null; signal: string | null }>((resolve, reject) => {
      state = { pid: undefined, onOutput, resolve, reject };
    });
    this.runs.set(id, state);
    this.busy();
    this.child.send({ t: 'run', id, cmd, args, env, interactive });
    return {
      get pid() {
        return state.pid;
      },
      kill: () => {
        if (state.pid === undefined || !this.runs.has(id)) return;
        try {
          process.kill(state.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      },
      write: (data: string) => {
        if (this.runs.has(id)) this.child.send({ t: 'in', id, data });
      },
      done,
    };
  }
}

// one helper per thread (each worker thread imports this module afresh)
let current: Spawner | null = null;

/** This thread's helper, started on first use; `warm()` starts it early, while the process is small. */
export function spawner(): Spawner {
  return (current ??= new Spawner());
}

export const warm = (): void => {
  spawner();
};
