/**
 * A long-lived evaluator: one `nix repl` that imports the package set once and then answers
 * attribute after attribute (nix/evaluator.nix). The repl reads its input from a pipe and goes
 * on after an error, caught by `tryEval` or not (a missing attribute, a type error, `abort`,
 * infinite recursion), printing Nix's own message; only a crash (a stack overflow) or a kill for
 * a cap ends it. So the package set is imported once per worker thread and target, not once per
 * shard and again for every error, which is what a real nixpkgs costs most.
 *
 * Requests are pipelined: each is written as a line, followed by a line that evaluates a
 * sentinel string (`"@fodder@<n>"`), so the reply to request n is everything the repl printed
 * between sentinel n-1 and sentinel n: a value line (a string, printed as a Nix string literal)
 * or an error. Standard output and standard error come through one pipe, so they stay in order.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { spawner, type SpawnedRun } from './spawner.js';
import { NIX_ENV, cleanNixMessage, nixStoreArgs, rssKb } from './nix-run.js';

export interface SessionSpec {
  nixpkgs: string;
  system: string;
  config: Record<string, unknown>;
  /** a Nix expression merged over `config` */
  configNix: string | null;
  overlays: string[];
  exhaustive: boolean;
  /** the drv store directory Nix writes .drv files into */
  store: string;
  /**
   * `store` is a chroot store (`--store DIR`, files under `DIR/nix/store`) rather than a
   * binary-cache directory: on-demand targets, whose flakes Nix copies into the store and reads
   * back, which a binary-cache store cannot do
   */
  chroot?: boolean;
  /** experimental features beyond `nix-command` (`flakes`) */
  features?: string[];
  /** `--offline`: a flake's registry and inputs are never looked up on the network */
  offline?: boolean;
  /** where the session's spec files go, and Nix's TMPDIR */
  scratch: string;
  /** nix/evaluator.nix */
  evaluator: string;
  /** the longest one request may take */
  timeoutMs: number;
  /** the resident memory past which the repl is killed */
  memoryMb: number;
}

/** What the repl answered to one request. */
export type Reply = { ok: true; value: string } | { ok: false; message: string };

/** Why a session stopped before answering every request; the request it was on is the culprit. */
export interface Stop {
  reason: 'timeout' | 'memory' | 'died';
  /** what Nix printed for the culprit before it ended, or why it was killed */
  message: string;
}

export interface Answers {
  /** replies to the first `replies.length` requests, in order */
  replies: Reply[];
  /** set when the session ended before answering all of them */
  stopped: Stop | null;
}

type Pending = { seq: number; onReply: (r: Reply | Stop) => void };

const SENTINEL = '@fodder@';
// a value: a string literal on a line of its own, coloured by Nix 2.8 even when not on a terminal
// eslint-disable-next-line no-control-regex
const VALUE_LINE = /^(?:\x1b\[[0-9;]*m)*"(.*)"(?:\x1b\[[0-9;]*m)*$/;
const ECHO = 'nix-repl> ';

let sessionCounter = 0;

/** A Nix string literal of `s`. */
export function nixString(s: string): string {
  return `"${s.replace(/[\\"$\n\r\t]/g, (c) => (({ '\n': '\\n', '\r': '\\r', '\t': '\\t' }) as Record<string, string>)[c] ?? `\\${c}`)}"`;
}

/** The string a Nix string literal, as the repl prints it, stands for. */
function unescapeNixString(body: string): string {
  return body.replace(/\\(.)/g, (_, c: string) => (({ n: '\n', r: '\r', t: '\t' }) as Record<string, string>)[c] ?? c);
}

/**
 * Nix's message from what the repl printed for one request, without what says nothing of the
 * package set: the echo of the input, the excerpt of the repl's own input line
 * (`at «string»:1:1:`), and (Nix 2.26 and later, which print `… while …` frames before the
 * message) the frames in the repl's input or in fodder's evaluator.
 */
export function replMessage(lines: string[], evaluator = 'nix/evaluator.nix'): string {
  // blocks: a frame (`… while …`) or an `error:` line, each with its position and excerpt lines
  const blocks: string[][] = [];
  for (const line of lines) {
    // eslint-disable-next-line no-control-regex
    const plain = line.replace(/\x1b\[[0-9;]*m/g, '');
    if (
      plain.startsWith(ECHO) ||
      plain.startsWith('Welcome to Nix') ||
      /^Nix \d+\.\d+\S*$/.test(plain) ||
      plain.startsWith('Type :? for help.') ||
      plain.trimStart().startsWith('(stack trace truncated')
    )
      continue;
    if (/^\s*(… |error:)/.test(plain) || blocks.length === 0) blocks.push([plain]);
    else blocks[blocks.length - 1].push(plain);
  }
  const own = (l: string) => /^\s*at «string»:\d+:\d+:?$/.test(l) || l.includes(evaluator);
  const kept: string[] = [];
  for (const block of blocks) {
    if (/^\s*… /.test(block[0]) && block.some(own)) continue;
    let inOwnExcerpt = false;
    for (const l of block) {
      if (own(l)) {
        inOwnExcerpt = true;
        continue;
      }
      if (inOwnExcerpt && (l.trim() === '' || /^\s+\d*\s*\|/.test(l))) continue;
      inOwnExcerpt = false;
      kept.push(l);
    }
  }
  while (kept.length && kept[0].trim() === '') kept.shift();
  // `error:` alone, then (after the frames dropped) the indented `error: <message>`
  while (kept.length > 1 && kept[0].trim() === 'error:' && (kept[1].trim() === '' || /^\s+(error:|…)/.test(kept[1]))) {
    kept.splice(0, kept[1].trim() === '' ? 2 : 1);
    if (kept.length && /^\s+error:/.test(kept[0])) kept[0] = kept[0].trimStart();
  }
  return cleanNixMessage(kept.join('\n'));
}

/** The reply that the lines printed for one request make. */
function toReply(lines: string[], evaluator: string): Reply {
  for (const line of lines) {
    const m = VALUE_LINE.exec(line);
    if (m) return { ok: true, value: unescapeNixString(m[1]) };
  }
  return { ok: false, message: replMessage(lines, evaluator) || 'Nix printed no value and no error' };
}

export class NixSession {
  private run: SpawnedRun | null = null;
  private partial = '';
  private lines: string[] = [];
  private readonly pending: Pending[] = [];
  private seq = 0;
  private ended = false;
  private killedFor: 'timeout' | 'memory' | null = null;
  private timer: NodeJS.Timeout | null = null;
  private poll: NodeJS.Timeout | null = null;
  /** requests answered since it started */
  answered = 0;
  /** the largest resident size seen, KiB */
  peakRssKb = 0;

  constructor(private readonly spec: SessionSpec) {}

  get alive(): boolean {
    return this.run !== null && !this.ended;
  }

  /** Starts the repl and imports the package set; the error that stops it loading, if any. */
  async start(): Promise<{ ok: true } | { ok: false; message: string }> {
    const s = this.spec;
    const n = ++sessionCounter;
    const specFile = join(s.scratch, `session-${threadId}-${n}.json`);
    const entry = join(s.scratch, `session-${threadId}-${n}.nix`);
    writeFileSync(specFile, JSON.stringify({ nixpkgs: s.nixpkgs, system: s.system, config: s.config, overlays: s.overlays, exhaustive: s.exhaustive }));
    writeFileSync(entry, `import ${nixString(s.evaluator)} {\n  specFile = ${nixString(specFile)};\n  extraConfig = (${s.configNix ?? '{ }'}\n  );\n}\n`);
    const env = {
      ...NIX_ENV,
      TMPDIR: s.scratch,
      // no line editing, no colours where Nix honours it, and no wrapping of long input lines
      TERM: 'dumb',
      NO_COLOR: '1',
      COLUMNS: '1000000',
    };
    const features = ['nix-command', ...(s.features ?? [])].join(' ');
    const args = [
      '--extra-experimental-features',
      features,
      'repl',
      ...(s.offline ? ['--offline'] : []),
      ...(s.chroot ? ['--store', s.store] : nixStoreArgs(s.store)),
    ];
    try {
      this.run = spawner().run('nix', args, env, (data) => this.onOutput(data), true);
    } catch (err) {
      return { ok: false, message: `cannot run nix repl: ${(err as Error).message}` };
    }
    this.run.done.then(
      (r) => this.onExit(r.signal ? `nix repl was killed by ${r.signal}` : `nix repl exited with code ${r.exitCode}`),
      (err: Error) => this.onExit(`cannot run nix repl: ${err.message}`),
    );
    this.run.write(`W = import ${nixString(entry)}\n`);
    const ready = await this.ask(['W.ready']);
    rmSync(specFile, { force: true });
    rmSync(entry, { force: true });
    this.answered = 0;
    if (ready.replies.length === 1) {
      const r = ready.replies[0];
      if (r.ok && r.value === 'ready') return { ok: true };
      this.close();
      return { ok: false, message: r.ok ? `the evaluator answered ${JSON.stringify(r.value)}` : r.message };
    }
    this.close();
    return { ok: false, message: ready.stopped!.message };
  }

  /**
   * Sends every expression at once and collects the replies in order; `onReply` sees each as it
   * comes (while Nix goes on with the next). Stops at the first request the session dies on or
   * is killed for: that one and the rest are not answered.
   */
  ask(exprs: string[], onReply?: (index: number, reply: Reply) => void): Promise<Answers> {
    const replies: Reply[] = [];
    if (exprs.length === 0) return Promise.resolve({ replies, stopped: null });
    if (!this.alive) return Promise.resolve({ replies, stopped: { reason: 'died', message: 'the session has ended' } });
    return new Promise((resolve) => {
      let stopped: Stop | null = null;
      let left = exprs.length;
      let text = '';
      exprs.forEach((expr, i) => {
        const seq = ++this.seq;
        this.pending.push({
          seq,
          onReply: (r) => {
            if ('reason' in r) stopped ??= r;
            else if (stopped === null) {
              replies.push(r);
              onReply?.(i, r);
            }
            if (--left === 0) resolve({ replies, stopped });
          },
        });
        text += `${expr}\n"${SENTINEL}${seq}"\n`;
      });
      this.watch();
      this.run!.write(text);
    });
  }

  /**
   * Binds `name` to `expr` in the repl, once per session (`name = expr` prints nothing; an error
   * in it shows when the name is used).
   */
  bind(name: string, expr: string): void {
    if (!this.alive || this.bound.get(name) === expr) return;
    this.bound.set(name, expr);
    this.run!.write(`${name} = ${expr}\n`);
  }

  private readonly bound = new Map<string, string>();

  /** Ends the repl. */
  close(): void {
    this.run?.kill();
    this.ended = true;
    this.unwatch();
  }

  /** The time cap of the request at the head of the queue, and the memory cap while any is pending. */
  private watch(): void {
    this.timer ??= setTimeout(() => this.killFor('timeout'), this.spec.timeoutMs);
    this.poll ??= setInterval(() => {
      const pid = this.run?.pid;
      if (pid === undefined) return;
      const rss = rssKb(pid);
      if (rss === null) return;
      if (rss > this.peakRssKb) this.peakRssKb = rss;
      if (rss > this.spec.memoryMb * 1024) this.killFor('memory');
    }, 100);
  }

  private unwatch(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.poll) clearInterval(this.poll);
    this.timer = this.poll = null;
  }

  private killFor(reason: 'timeout' | 'memory'): void {
    if (this.ended || this.pending.length === 0) return;
    this.killedFor ??= reason;
    this.run?.kill();
  }

  private onOutput(data: string): void {
    this.partial += data;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      const line = this.partial.slice(0, nl);
      this.partial = this.partial.slice(nl + 1);
      const m = VALUE_LINE.exec(line);
      if (m && m[1].startsWith(SENTINEL) && this.pending.length && m[1] === `${SENTINEL}${this.pending[0].seq}`) {
        const done = this.pending.shift()!;
        const reply = toReply(this.lines, this.spec.evaluator);
        this.lines = [];
        this.answered++;
        // the next request's time starts now
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        if (this.pending.length) this.watch();
        else this.unwatch();
        done.onReply(reply);
      } else {
        this.lines.push(line);
        if (this.lines.length > 2000) this.lines.splice(0, this.lines.length - 1000);
      }
    }
  }

  private onExit(how: string): void {
    if (this.partial) {
      this.lines.push(this.partial);
      this.partial = '';
    }
    this.ended = true;
    this.unwatch();
    const said = replMessage(this.lines, this.spec.evaluator);
    this.lines = [];
    let first = true;
    for (const p of this.pending.splice(0)) {
      if (first) {
        const message =
          this.killedFor === 'timeout'
            ? `evaluation passed the time cap (${this.spec.timeoutMs} ms)`
            : this.killedFor === 'memory'
              ? `evaluation passed the memory cap (${this.spec.memoryMb} MiB)`
              : said || how;
        p.onReply({ reason: this.killedFor ?? 'died', message });
        first = false;
      } else {
        p.onReply({ reason: 'died', message: 'not evaluated: the session ended' });
      }
    }
  }
}
