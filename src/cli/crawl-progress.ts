import type { Progress } from '../eval/progress.js';

/**
 * Progress on stderr: redrawn in place on a terminal, a plain line every few seconds (and at
 * each milestone) otherwise.
 */
export function createProgress(interactive: boolean, write: (s: string) => void = (s) => process.stderr.write(s)): Progress {
  const t0 = Date.now();
  let shardsQueued = 0,
    shardsDone = 0,
    attrs = 0,
    drvs = 0,
    fods = 0,
    errors = 0,
    targetsDone = 0,
    targets = 0;
  let lastPlain = 0;
  const line = () => {
    const secs = (Date.now() - t0) / 1000;
    const rate = secs > 0 ? Math.round(attrs / secs) : 0;
    return `crawl: targets ${targetsDone}/${targets}  shards ${shardsDone}/${shardsQueued}  attrs ${attrs}  drvs ${drvs}  fods ${fods}  errors ${errors}  ${rate} attrs/s  ${secs.toFixed(1)}s`;
  };
  const draw = (force = false) => {
    if (interactive) {
      write(`\r\x1b[K${line()}`);
      return;
    }
    const now = Date.now();
    if (force || now - lastPlain > 5000) {
      lastPlain = now;
      write(line() + '\n');
    }
  };
  return {
    start(info) {
      targets = info.targets;
      write(`crawl ${info.crawl}${info.resumed ? ' (resuming)' : ''}: ${info.targets} system/variant targets\n`);
    },
    resume(target, rows) {
      if (rows) write(`${interactive ? '\r\x1b[K' : ''}${target.system}/${target.variant}: ${rows} attributes already recorded, continuing\n`);
    },
    queued(n) {
      shardsQueued += n;
      draw();
    },
    shardDone(_t, rows, added, shards) {
      shardsDone += shards;
      attrs += rows.length;
      errors += rows.filter((r) => r.status === 'error').length;
      drvs += added.drvs;
      fods += added.fods;
      draw();
    },
    targetDone(target) {
      targetsDone++;
      if (interactive) draw();
      else write(`${target.system}/${target.variant}: done\n`);
    },
    finish() {
      if (interactive) write('\n');
      else draw(true);
    },
  };
}
